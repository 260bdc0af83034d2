"""show(): any value, printed safely inside an error message.

Messages name the caller's bad argument, and the argument may be hostile: an
int of 5000 digits (str() raises ValueError past sys.get_int_max_str_digits()
and is quadratic below it), an object whose __repr__ raises or never ends, a
string of a million characters.  Every message builder formats a value it did
not make with show(), so building the message cannot raise.
"""

from __future__ import annotations

LIMIT = 80                  # characters of a repr kept
INT_DIGITS = 40             # an int longer than this is shown by its size


def show(value) -> str:
    """A short, always-computable repr of value."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > INT_DIGITS * 3:        # 3 bits a digit, roughly; hex has no limit
            return f"<int of {value.bit_length()} bits, {'-' if value < 0 else ''}0x{abs(value) & 0xffff:04x} at the low end>"
        return repr(int(value))
    try:
        text = repr(value)
    except Exception:       # noqa: BLE001 - a hostile __repr__
        return f"<{type(value).__name__} object>"
    if not isinstance(text, str):
        return f"<{type(value).__name__} object>"
    return text if len(text) <= LIMIT else text[:LIMIT - 3] + "..."


def show_hex(value: int) -> str:
    """f"{value:#x}" for an address-sized int; show() for a longer one."""
    if isinstance(value, int) and value.bit_length() <= 72:
        return f"{value:#x}"
    return show(value)
