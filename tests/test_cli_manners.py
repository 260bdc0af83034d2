"""The command line's manners: a closed pipe, --version, examples in every --help,
near-miss GFP names, unknown slub_debug letters."""

import subprocess
import sys
from pathlib import Path

import pytest

import pyalloc
from pyalloc import cli


def pyalloc_cmd(*argv, **kw):
    return subprocess.run([sys.executable, "-m", "pyalloc", *argv], capture_output=True, text=True,
                          timeout=300, **kw)


def test_closed_pipe_is_quiet():
    """`pyalloc demo | head -1`: no BrokenPipeError traceback, the status of a SIGPIPE death."""
    p = subprocess.Popen([sys.executable, "-m", "pyalloc", "demo", "--mem", "64M", "--backend", "model"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()                  # the reader is gone before the first line, as after head -1
    err = p.stderr.read().decode()
    p.wait(timeout=300)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert p.returncode == 141
    # and in a real shell pipeline, head gets its line and the shell sees no noise
    r = subprocess.run(f"'{sys.executable}' -m pyalloc demo --mem 64M --backend model | head -1",
                       shell=True, capture_output=True, text=True, timeout=300)
    assert r.stdout.startswith("# pyalloc demo: 64M machine") and r.stderr == ""


def test_version():
    r = pyalloc_cmd("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"pyalloc {pyalloc.__version__} (simulating the Linux 6.18 allocators on x86-64)"


def test_every_subcommand_has_an_example(capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"demo", "proc", "serve", "plot"} <= set(sub.choices)
    for name, sp in sub.choices.items():
        text = sp.format_help()
        assert "example:\n  pyalloc " + name in text, name
    assert "examples:" in parser.format_help()


def test_gfp_typo_suggests_the_name(backend):
    with pyalloc.Machine(mem="16M", backend=backend) as m:
        before = m.proc("buddyinfo")
        with pytest.raises(pyalloc.GFPError, match=r"unknown GFP flag 'GFP_KERNL' .*; did you mean GFP_KERNEL\?$"):
            m.kmalloc(64, "GFP_KERNL")
        with pytest.raises(pyalloc.GFPError, match=r"did you mean __GFP_NOWARN\?$"):
            m.alloc_pages("GFP_ATOMIC|__GFP_NOWRN")
        with pytest.raises(pyalloc.GFPError) as info:
            m.alloc_pages("GFP_KERNEL|banana")
        assert "did you mean" not in str(info.value)          # nothing near enough to suggest
        assert m.proc("buddyinfo") == before


def test_unknown_slub_debug_letter_is_reported_as_the_kernel_does(backend):
    with pytest.warns(pyalloc.PyallocWarning), pyalloc.Machine(mem="16M", backend=backend, slub_debug="FZQ") as m:
        assert any(line.endswith("slab_debug option 'Q' unknown. skipped") for line in m.dmesg())
    r = pyalloc_cmd("proc", "buddyinfo", "--mem", "16M", "--backend", backend, "--slub-debug", "FZQ")
    assert r.returncode == 0
    assert r.stderr == "slab_debug option 'Q' unknown. skipped\n"
    assert r.stdout.startswith("Node 0, zone      DMA ")


@pytest.mark.parametrize("command", ["proc", "replay", "serve", "plot"])
def test_help_mentions_only_options_that_apply(command):
    r = pyalloc_cmd(command, "--help")
    assert r.returncode == 0
    assert "--pressure" not in r.stdout                     # demo's option alone
    if command == "replay":
        assert "built-in workload" not in r.stdout        # a replay runs the trace, no workload
    assert "seed of the machine's random choices" in r.stdout


def test_demo_help_keeps_its_pressure_defaults():
    assert "128M with --pressure" in " ".join(pyalloc_cmd("demo", "--help").stdout.split())



def test_dash_reads_the_trace_from_stdin_wherever_a_trace_path_is(tmp_path):
    trace = (Path(__file__).parent / "fixtures" / "ftrace-kmem.txt").read_text()
    from_file = pyalloc_cmd("report", "--slab", str(Path(__file__).parent / "fixtures" / "ftrace-kmem.txt"))
    from_stdin = pyalloc_cmd("report", "--slab", "-", input=trace)
    assert from_stdin.returncode == 0 and from_stdin.stdout == from_file.stdout
    pytest.importorskip("matplotlib", reason="pyalloc[plot] is not installed")
    r = pyalloc_cmd("plot", "-o", str(tmp_path / "r.png"), "--replay", "-", "--ticks", "2", "--mem", "64M",
                    "--backend", "model", input=trace)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "r.png").stat().st_size > 1000
