"""The connect sweep of FsspecStore: clean up after writers that died.

A writer killed mid-write leaves its pending marker (see
:mod:`.index`), maybe a copy of the key's previous data in
``.storegui/tmp/``, and on S3 maybe an incomplete multipart upload, which
the bucket would keep (and bill) forever. Connecting a writable store runs
one bounded sweep: one listing of the pending markers and one
ListMultipartUploads under the root (the first 1,000 of each), reads of at
most :data:`MAX_MARKERS` markers, and the repair of at most
:data:`MAX_REPAIRS` dead writes (a few requests each).

Which writer is dead (:func:`~.index.marker_alive`): one on this
machine whose process is gone (or, for this process, whose write is no
longer running); one on another machine once its marker is
:data:`~.index.STALE_UPLOAD` (24 h) old, since its process cannot be
asked. A dead write is repaired: if its metadata object was not written (the
record does not describe the data object), the previous data is copied back
from its backup, or the new key's data removed; then the key's shard entry
is rewritten from its record and the marker and backup are removed. An
incomplete upload is aborted when the only writers of its key are dead and
it started after the dead marker, or when no live writer claims its key and
it is older than STALE_UPLOAD.
"""

from __future__ import annotations

from typing import Any

MAX_MARKERS = 64
MAX_REPAIRS = 16


async def _none() -> Any:
    return None
