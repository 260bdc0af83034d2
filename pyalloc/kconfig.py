"""Kernel options: ``Machine(kconfig={...})`` by Kconfig names, to the core's kconfig word.

The options pyalloc models and their defaults (those of the real 6.18 machine whose
configuration ships in tests/fixtures/kconfig-6.18.txt) are :data:`pyalloc._abi.KCONFIG_OPTIONS`.
A name may carry the ``CONFIG_`` prefix; values are bools.
"""

from __future__ import annotations

from collections.abc import Mapping

from ._abi import KCONFIG_BIT, KCONFIG_DEFAULT, KCONFIG_OPTIONS
from .errors import InvalidArgument, show

__all__ = ["parse", "names", "OPTIONS"]

OPTIONS = tuple(name for name, _ in KCONFIG_OPTIONS)


def parse(kconfig: Mapping[str, bool] | None) -> int:
    """The kconfig word for *kconfig* (unnamed options keep their default); InvalidArgument for an
    unknown option, a non-bool value or a non-mapping."""
    word = KCONFIG_DEFAULT
    if kconfig is None:
        return word
    if not isinstance(kconfig, Mapping):
        raise InvalidArgument(f"kconfig must be a dict of option names to bools, not {show(kconfig)}")
    for key, value in kconfig.items():
        name = key[7:] if isinstance(key, str) and key.startswith("CONFIG_") else key
        if not isinstance(name, str) or name not in KCONFIG_BIT:
            raise InvalidArgument(f"unknown kconfig option {show(key)}; pyalloc models {', '.join(OPTIONS)}")
        if not isinstance(value, bool):
            raise InvalidArgument(f"kconfig option {name} must be True or False, not {show(value)}")
        word = word | KCONFIG_BIT[name] if value else word & ~KCONFIG_BIT[name]
    return word


def names(word: int) -> dict[str, bool]:
    """Every modelled option and whether *word* turns it on."""
    return {name: bool(word & KCONFIG_BIT[name]) for name in OPTIONS}
