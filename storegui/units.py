"""How byte counts read for people, in the app and on the command line alike."""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_size(size: float) -> str:
    """``size`` bytes in binary units: ``"1 byte"``, ``"512 bytes"``, ``"1.5 KiB"``, ``"2.0 GiB"``.

    One convention everywhere (1 KiB = 1024 bytes), so the app and the
    command line show the same text for the same value.
    """
    if abs(size) < 1024:
        n = int(size)
        return "1 byte" if n == 1 else f"{n} bytes"
    value = float(size)
    for unit in _UNITS:
        value /= 1024.0
        if abs(value) < 1023.95 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")
