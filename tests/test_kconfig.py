"""Machine(seed=, kconfig=): the kernel options pyalloc models, their defaults, bad input, snapshots."""

import pytest

import pyalloc
from pyalloc import _abi
from pyalloc.errors import InvalidArgument

REAL_DEFAULTS = {"SLUB_CPU_PARTIAL": True, "SLAB_FREELIST_RANDOM": True, "SLAB_FREELIST_HARDENED": True,
                 "RANDOM_KMALLOC_CACHES": False}


def _fixture_options() -> dict[str, bool]:
    """The modelled options as the real 6.18 machine's .config sets them."""
    import pathlib
    text = (pathlib.Path(__file__).parent / "fixtures" / "kconfig-6.18.txt").read_text()
    got = {}
    for name in REAL_DEFAULTS:
        if f"CONFIG_{name}=y" in text:
            got[name] = True
        elif f"# CONFIG_{name} is not set" in text:
            got[name] = False
    return got


def test_defaults_are_the_real_machines(backend):
    with pyalloc.Machine(mem="16M", backend=backend) as m:
        assert m.kconfig == REAL_DEFAULTS
        assert m.seed == 0
    fixture = _fixture_options()
    assert fixture == {k: v for k, v in REAL_DEFAULTS.items() if k in fixture}
    assert len(fixture) >= 3


def test_options_by_name_with_or_without_prefix(backend):
    with pyalloc.Machine(mem="16M", backend=backend, seed=7,
                         kconfig={"CONFIG_SLUB_CPU_PARTIAL": False, "RANDOM_KMALLOC_CACHES": True}) as m:
        assert m.seed == 7
        assert m.kconfig == dict(REAL_DEFAULTS, SLUB_CPU_PARTIAL=False, RANDOM_KMALLOC_CACHES=True)


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "seed must be"),
    ({"seed": 1 << 63}, "seed must be"),
    ({"seed": 1.5}, "seed must be"),
    ({"seed": True}, "seed must be"),
    ({"kconfig": {"SLUB_TINY": True}}, "unknown kconfig option 'SLUB_TINY'"),
    ({"kconfig": {"SLAB_FREELIST_RANDOM": 1}}, "must be True or False"),
    ({"kconfig": {3: True}}, "unknown kconfig option"),
    ({"kconfig": ["SLUB_CPU_PARTIAL"]}, "must be a dict"),
])
def test_bad_seed_or_kconfig(backend, kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        pyalloc.Machine(mem="16M", backend=backend, **kwargs)


def test_the_core_refuses_a_bad_word_too(backend):
    from pyalloc.machine.machine import _load_core
    core = _load_core(backend)
    with pytest.raises(pyalloc.PyallocError):
        core(4096, 2, -1, 0, _abi.KCONFIG_MASK + 1)
    with pytest.raises(pyalloc.PyallocError):
        core(4096, 2, -1, -5, 0)


@pytest.mark.parametrize("other", ["c", "model"])
def test_snapshots_carry_seed_and_kconfig(backend, other, tmp_path):
    with pyalloc.Machine(mem="16M", backend=backend, seed=99, kconfig={"SLAB_FREELIST_HARDENED": False}) as m:
        m.kmalloc(100, "GFP_KERNEL")
        m.save(tmp_path / "m.snap")
        with pyalloc.Machine.load(tmp_path / "m.snap", backend=other) as n:
            assert (n.seed, n.kconfig) == (m.seed, m.kconfig)


def test_prandom_is_splitmix64():
    # the published SplitMix64 outputs for seed 1234567 (Vigna's reference splitmix64.c)
    state, out = 1234567, []
    for _ in range(3):
        state, x = _abi.prandom_next(state)
        out.append(x)
    assert out == [6457827717110365317, 3203168211198807973, 9817491932198370423]


def test_unknown_slub_debug_letters_are_logged_and_warned(backend):
    with pytest.warns(pyalloc.PyallocWarning, match="'X'"):
        m = pyalloc.Machine(mem="16M", backend=backend, slub_debug="FX")
    with m:
        assert "slab_debug option 'X' unknown. skipped" in "\n".join(m.dmesg())
