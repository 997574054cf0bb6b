"""Value files on a local disk: what FileSystemStore and SqliteStore share.

Both local stores keep large values as files that are never modified once
written, so a reader keeps the version it opened and another local store
may hard-link the file instead of copying it. The modules:

- :mod:`.descriptors`: folders and files by descriptor, never following a
  symbolic link; writing a whole buffer; flushing a filesystem.
- :mod:`.tempfiles`: temp files ``<kind>-<token>.held`` (named so only once
  their writer holds an ``flock`` on them), and the removal of those dead
  writers left.
- :mod:`.spool`: reading incoming data into memory, a temp file, a hard link
  or a kernel copy (:class:`~.spool.Spooled`).
- :mod:`.streams`: the streams and :class:`~..value.Value` over an open
  value file.

POSIX only, except :mod:`.streams` (``flock`` and ``openat``-style calls).
"""
