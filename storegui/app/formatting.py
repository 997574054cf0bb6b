"""How sizes, times and origins read in the app (plain text, no widgets)."""

from __future__ import annotations

import time

from ..units import format_size as _format_size

ORIGIN_LABELS = {"local": "Local", "shadowing": "Shadowing", "remote": "Remote"}

KEY_ORIGIN_TIPS = {
    "local": "Local: only in the mount store; not pushed to the backing store yet.",
    "shadowing": (
        "Shadowing: a local copy in the mount store hides the backing store's version "
        "(push it to replace the backing copy, or revert to drop the local copy)."
    ),
    "remote": "Remote: only in the backing store (pull it to work on a local copy).",
}

FOLDER_ORIGIN_TIPS = {
    "local": "Local: every key under this folder is only in the mount store.",
    "shadowing": "Mixed: keys under this folder are in the mount store and the backing store.",
    "remote": "Remote: every key under this folder is only in the backing store.",
}

def format_size(size: int | None) -> str:
    """``1536`` -> ``"1.5 KiB"``; None -> ``""`` (binary units, as the command line shows)."""
    return "" if size is None else _format_size(size)


def format_time(epoch: float | None) -> str:
    """Epoch seconds as local time ``"2024-05-01 13:45"``; None -> ``""``."""
    if epoch is None:
        return ""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))
    except (OverflowError, OSError, ValueError):
        return ""


def format_progress(done: int, total: int | None) -> str:
    """``"1.2 MiB of 3.4 MiB"`` (or just the bytes done when the total is unknown)."""
    if total is None:
        return format_size(done)
    return f"{format_size(done)} of {format_size(total)}"
