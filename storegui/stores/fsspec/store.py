"""FsspecStore: the store contract over any fsspec filesystem (S3, SFTP, local, memory, HTTP).

Layout (version 1) under the root URL (``s3://bucket/prefix``...), readable by
other tools:

``<root>/<key>``
    The key's data, byte for byte. Ordinary keys are their own path; keys a
    filesystem cannot hold as paths are encoded reversibly (see
    :mod:`.keys`).
``<root>/.storegui/meta/<key>.json``
    ``{"v": 1, "key": "<key>", "metadata": {...}, "size": <bytes>,
    "created": <epoch s>, "modified": <epoch s>}``: the key's metadata (the
    truth), written after its data. A data object with no such file (put there
    by another tool) is a key with metadata ``{}``.
``<root>/.storegui/index/``
    The metadata index queries read (see :mod:`.index`).
``<root>/.storegui/tmp/``
    Data being written on filesystems without atomic uploads, and the
    previous data of keys changed inside an open transaction.

A write streams the data (an S3 multipart upload, discarded on failure, so a
failed or cancelled write never leaves a partial object), then writes the
metadata object and the key's index shard together. Between the two steps a
reader sees the new data with the previous metadata; a pending marker in the
index folder makes queries re-read a key whose write did not finish.

Connecting a writable store cleans up after writers that died (see
:mod:`.sweep`). Options: see :mod:`.options`.
"""

from __future__ import annotations

import io
import json
import math
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

import fsspec

from ..contract import Store, Transaction
from ..errors import InvalidMetadataError, StoreError, StoreKeyError
from ..keys import check_key, check_prefix, split_child
from ..metadata import encode_metadata, matches, select_fields
from ..value import Entry, Value, open_range
from .errors import GuardedStream, is_precondition_failure, translate
from .index import STALE_UPLOAD, DamagedShard, MetadataIndex, marker_alive
from .keys import (
    RESERVED,
    check_fits,
    decode_path,
    decode_segment,
    encode_key,
    encode_segment,
    url_quote,
)
from .keys import url_unquote as _url_unquote
from .options import (
    HTTP,
    S3,
    check_bucket,
    endpoint_of,
    filesystem_options,
    safe_url,
    secret_values,
)
from .records import current, matches_data, times
from .remotefs import ObjectInfo, RemoteFS, object_info
from .sweep import MAX_MARKERS, MAX_REPAIRS, _none

DEFAULT_BLOCK_SIZE = 8 << 20
_S3_MIN_PART = 5 << 20


class _Source(io.RawIOBase):
    """The caller's data stream; remembers an error it raised (the caller's, not ours)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            readinto = getattr(self._raw, "readinto", None)
            if readinto is not None:
                return readinto(buffer) or 0
            data = self._raw.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)
        except BaseException as exc:
            self.error = exc
            raise


_MAX_FOLDER_WALKS = 64


class Snapshot:
    """A key's state before its first change in a transaction."""

    __slots__ = ("existed", "record", "backup", "tag")

    def __init__(self, existed: bool, record: bytes | None, tag: Any = None) -> None:
        self.existed = existed
        self.record = record
        self.tag = tag  # the data's tag then (its record may name it)
        self.backup: str | None = None


class FsspecStore(Store):
    """A store kept under a root of any fsspec filesystem; the module docstring has the layout.

    Parameters
    ----------
    url : str
        ``s3://bucket/prefix``, ``sftp://user@host/path``, ``file:///path``,
        ``memory://name``, ``https://host/path`` (read-only)...
    readonly : bool, optional
        Refuse writes (default: only for http and https).
    block_size : int
        Bytes per streamed block: the S3 multipart part size (at least 5 MiB
        there) and the read-ahead of streamed reads. Values up to this size
        are read in one request.
    endpoint_url : str, optional
        An S3-compatible endpoint (MinIO, Ceph, moto...), passed to s3fs.
    connect_timeout, read_timeout : float
        Seconds to wait for a connection and for each answer (S3, HTTP).
    attempts : int
        Tries per S3 request, counting the first. A request fails after at
        most ``attempts * (connect_timeout + read_timeout)`` seconds.
    **storage_options
        Passed to the fsspec filesystem (``key``/``secret``/``token``,
        ``profile``, ``anon``, ``client_kwargs``, ``config_kwargs``,
        ``username``/``password``...). Credentials are better given to
        :meth:`connect`; either way they stay in memory and are never shown.

    Raises
    ------
    StoreError
        The URL names no filesystem fsspec knows, or its package is missing.
    """

    def __init__(
        self,
        url: str,
        *,
        readonly: bool | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
        endpoint_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        attempts: int = 2,
        **storage_options: Any,
    ) -> None:
        super().__init__()
        if not isinstance(url, str) or "://" not in url:
            raise StoreError(f"an fsspec store needs a URL like s3://bucket/prefix, not {url!r}")
        scheme = url.split("://", 1)[0].lower()
        try:
            self._cls = fsspec.get_filesystem_class(scheme)
        except (ValueError, ImportError) as exc:
            raise StoreError(f"cannot open {safe_url(url)}: {exc}") from None
        known = self._cls.protocol if isinstance(self._cls.protocol, tuple) else (
            self._cls.protocol,)
        self.protocol = scheme if scheme in known else known[0]
        if self.protocol in S3 and block_size < _S3_MIN_PART:
            raise StoreError(f"block_size must be at least {_S3_MIN_PART} bytes for s3:// "
                             f"(S3's smallest multipart part), not {block_size}")
        self._url = safe_url(url)
        self._root = self._cls._strip_protocol(url).rstrip("/")
        check_bucket(self.protocol, url)
        self._options = {**self._cls._get_kwargs_from_urls(url), **storage_options}
        if endpoint_url is not None:
            self._options["endpoint_url"] = endpoint_url
        self._block_size = int(block_size)
        self._timeouts = (float(connect_timeout), float(read_timeout), int(attempts))
        self.readonly = self.protocol in HTTP if readonly is None else bool(readonly)
        self.local = self.protocol in ("file", "local", "memory")
        self._credentials: Any = None
        self._rfs: RemoteFS | None = None
        self._index: MetadataIndex | None = None
        # The root's path inside its bucket, for the object name limit.
        bucket_path = self._root.split("/", 1)[1] + "/" if "/" in self._root else ""
        self._in_bucket = bucket_path if self.protocol in S3 | {"gs", "gcs"} else ""

    # ------------------------------------------------------------------ identity

    @property
    def url(self) -> str:
        """The store URL, without any password."""
        return self._url

    @property
    def endpoint(self) -> str:
        """Where requests go (S3 endpoint, or scheme and host), without credentials."""
        return endpoint_of(self.protocol, self._options, self._url)

    def info(self) -> dict:
        """The base information plus ``protocol``, ``endpoint`` and ``layout``."""
        out = super().info()
        out.update(protocol=self.protocol, local=self.local, layout=1,
                   endpoint=self.endpoint or None)
        return out

    # ------------------------------------------------------------------ connection

    def _open(self, credentials: Any) -> None:
        credentials = self._credentials if credentials is None else credentials
        connect, read, attempts = self._timeouts
        try:
            options = filesystem_options(self.protocol, self._options, credentials,
                                         connect, read, attempts)
            fs = self._cls(**options)
        except StoreError as exc:
            raise StoreError(exc.message, store=self) from None
        except Exception as exc:
            raise self._error(exc, "connecting to", credentials=credentials) from exc
        if self.protocol in S3:
            # botocore already retries each request (``attempts``); s3fs's own loop
            # on top would multiply the time a dead or silent server takes to fail.
            fs.retries = 1
        rfs = RemoteFS(fs, self.protocol, self._block_size)
        try:
            self._check_root(rfs, credentials)
        except BaseException:
            rfs.close()
            raise
        self._rfs = rfs
        self._credentials = credentials  # in memory only, for reconnecting
        self._index = MetadataIndex(rfs, self._root + "/.storegui/index",
                                    listable=self.protocol not in HTTP)
        if not self.readonly and self.protocol not in HTTP:
            self._sweep()  # what writers that died left behind (see fsspec_sweep)

    def _close(self) -> None:
        rfs, self._rfs, self._index = self._rfs, None, None
        if rfs is not None:
            rfs.close()

    def _check_root(self, rfs: RemoteFS, credentials: Any) -> None:
        """Fail now, with a clear message, if the bucket or folder cannot be used."""
        try:
            if rfs.is_s3:
                bucket = self._root.split("/", 1)[0]
                try:
                    rfs.run1(rfs.fs._call_s3("head_bucket", Bucket=bucket))
                except FileNotFoundError:
                    raise StoreError(f"connecting to {self.url} failed: the bucket {bucket!r} "
                                     f"does not exist at {self.endpoint}; create it or correct "
                                     f"the URL", store=self) from None
            elif self.protocol in HTTP:
                try:
                    rfs.run1(rfs._call("info", self._root + "/"))
                except FileNotFoundError:
                    pass  # a site need not serve its root folder
            elif not self.readonly:
                if not rfs.flat:
                    rfs.fs.makedirs(self._root + "/.storegui/tmp", exist_ok=True)
            elif not rfs.fs.exists(self._root):
                raise StoreError(f"connecting to {self.url} failed: the folder does not exist",
                                 store=self)
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "connecting to", credentials=credentials) from exc

    def _live(self) -> RemoteFS:
        self._ensure()
        rfs = self._rfs
        if rfs is None:
            raise StoreError(f"{self.url} was disconnected", store=self)
        return rfs

    # ------------------------------------------------------------------ errors and paths

    def _error(self, exc: BaseException, action: str, key: str | None = None,
               credentials: Any = None) -> StoreError:
        """A StoreError for ``exc``; ``credentials`` being tried are kept out of it too."""
        return translate(exc, action=action, url=self.url, key=key, store=self,
                         endpoint=self.endpoint, read_timeout=self._timeouts[1],
                         secrets=secret_values(self._options, self._credentials, credentials))

    def _check_key(self, key: Any) -> str:
        key = check_key(key, self)
        rel = encode_key(key)
        check_fits(key, [self._in_bucket + rel, f"{self._in_bucket}.storegui/meta/{rel}.json"],
                   self.protocol, self)
        return key

    def _rel(self, encoded: str) -> str:
        return url_quote(encoded) if self.protocol in HTTP else encoded

    def _data_path(self, key: str) -> str:
        return f"{self._root}/{self._rel(encode_key(key))}"

    def _meta_path(self, key: str) -> str:
        return f"{self._root}/.storegui/meta/{self._rel(encode_key(key))}.json"

    def _tmp_path(self) -> str:
        return f"{self._root}/.storegui/tmp/{uuid.uuid4().hex}"

    def _checked(self, results: list[Any], action: str, key: str | None) -> list[Any]:
        """``results`` of :meth:`RemoteFS.run`, raising the first error as a StoreError."""
        for result in results:
            if isinstance(result, BaseException):
                raise self._error(result, action, key) from result
        return results

    def _parse_record(self, raw: bytes | None, key: str) -> dict | None:
        if raw is None:
            return None
        try:
            record = json.loads(raw)
            if not isinstance(record.get("metadata"), dict):
                raise ValueError("no metadata object")
        except (ValueError, AttributeError) as exc:
            raise StoreError(f"the metadata of {key!r} at {self._meta_path(key)} is damaged "
                             f"({exc}); set it again", key, self) from None
        return record

    # ------------------------------------------------------------------ writes

    def _put(self, key: str, data: BinaryIO | None, metadata_text: str | None,
             buffer_size: int) -> None:
        # All or nothing: everything that can be checked is checked before the upload,
        # the previous data is kept (a server-side copy) until the new metadata object
        # (the commit point) is written, and a failure before then puts it back.
        started = time.time()
        rfs, index = self._live(), self._index
        data_path, meta_path = self._data_path(key), self._meta_path(key)
        pending = index.new_pending_path()
        backup = self._tmp_path() if data is not None else None
        results = rfs.run(index.mark_pending(pending, key, backup), rfs.head(data_path),
                          rfs.read(meta_path), index.read_shard(key))
        try:
            _, info, raw_record, shard = self._checked(results, "writing", key)
            if data is None and info is None:
                raise StoreKeyError(key, self)
            record = self._old_record(raw_record, key, info, metadata_text is None)
            metadata = (json.loads(metadata_text) if metadata_text is not None
                        else record["metadata"] if record else {})
            created = record.get("created") if record else None
            if not isinstance(created, int | float):
                created = info.modified if info is not None else None
            damaged = self._shard_damaged(index, key, shard)
            self._check_encodable(key, metadata)
            kept = False
            if data is not None and info is not None:
                kept = self._keep(key, backup)
        except BaseException:
            self._quietly(index.clear_pending(pending))
            raise
        if data is None:
            size, tag = info.size, info.tag
        else:
            size, tag = self._write_data(key, data, buffer_size, pending, backup if kept else None)
        now = max(started, time.time())
        entry = {"metadata": metadata, "created": now if created is None else created}
        document = {"v": 1, "key": key, "metadata": metadata, "size": size,
                    "created": entry["created"], "modified": now, "etag": tag}
        try:
            rfs.run1(rfs.write(meta_path, json.dumps(document, ensure_ascii=False).encode()))
        except BaseException as exc:
            self._undo(key, exc, pending, data is not None, info, raw_record,
                       backup if kept else None)
        # Committed. The shard is a cache of the metadata objects: if it cannot be
        # written the pending marker stays, so queries re-read this key.
        indexed = False
        if not damaged:
            try:
                index.apply(key, lambda _old: entry, prefetched=shard)
                indexed = True
            except Exception:  # noqa: BLE001 - the marker covers it (see above)
                pass
        done = []
        if kept and not self._hand_to_transaction(key, backup):
            done.append(rfs.remove(backup))
        if indexed:
            done.append(index.clear_pending(pending))
        else:
            index.let_go(pending)
        if done:
            self._quietly(*done)

    def _old_record(self, raw: bytes | None, key: str, info: Any, needed: bool) -> dict | None:
        """The record being replaced; a damaged one only matters when its metadata is kept."""
        if info is None:
            return None
        try:
            return self._parse_record(raw, key)
        except StoreError:
            if needed:
                raise
            return None

    @staticmethod
    def _shard_damaged(index: MetadataIndex, key: str, shard: tuple) -> bool:
        """Whether ``key``'s shard cannot be parsed (the write then leaves it to a rebuild)."""
        try:
            index.parse(key, shard[0])
        except DamagedShard:
            return True
        return False

    def _check_encodable(self, key: str, metadata: dict) -> None:
        """Refuse, before anything is written, metadata the record or the index cannot hold."""
        try:
            json.dumps({"v": 1, "keys": {key: {"metadata": metadata, "created": 0.0}}},
                       ensure_ascii=False)
        except (ValueError, TypeError, RecursionError) as exc:
            raise InvalidMetadataError(
                f"the metadata of {key!r} cannot be stored in {self.url} "
                f"({type(exc).__name__}: {exc}); {key!r} is unchanged", key, self) from None

    def _keep(self, key: str, backup: str) -> bool:
        """Copy the key's current data to ``backup``; False if it vanished meanwhile."""
        rfs = self._live()
        try:
            copied, _ = rfs.run1(rfs.copy_object(self._data_path(key), backup))
        except Exception as exc:
            error = self._error(exc, "writing", key)
            raise StoreError(f"{error.message}; keeping its previous data failed, so nothing "
                             f"was written and {key!r} is unchanged", key, self) from exc
        return copied

    def _write_data(self, key: str, data: BinaryIO, buffer_size: int, pending: str,
                    backup: str | None) -> tuple[int, Any]:
        source = _Source(data)
        rfs = self._rfs
        try:
            size, tag = rfs.upload(self._data_path(key), source, buffer_size, self._tmp_path())
            if tag is None:  # not S3: the tag another reader will see
                info = rfs.run1(rfs.head(self._data_path(key)))
                tag = info.tag if info is not None else None
            return size, json.loads(json.dumps(tag))
        except BaseException as exc:
            self._quietly(self._index.clear_pending(pending),
                          *([rfs.remove(backup)] if backup else []))
            if exc is source.error or isinstance(exc, StoreError):
                raise
            error = self._error(exc, "writing", key)
            raise StoreError(f"{error.message}; the upload was discarded and {key!r} is "
                             f"unchanged", key, self) from exc

    def _undo(self, key: str, exc: BaseException, pending: str, wrote_data: bool,
              info: Any, raw_record: bytes | None, backup: str | None) -> None:
        """Put the key back as it was after its metadata object could not be written; raise."""
        rfs, index = self._rfs, self._index
        error = self._error(exc, "writing", key)
        try:
            if wrote_data and backup is not None:
                _, tag = rfs.run1(rfs.copy_object(backup, self._data_path(key)))
                raw_record = self._retagged(raw_record, info.tag, tag)
            elif wrote_data:
                rfs.run1(rfs.remove(self._data_path(key)))
            # The failed write may have reached the server after all: write the old one back.
            if raw_record is not None:
                rfs.run1(rfs.write(self._meta_path(key), raw_record))
            else:
                rfs.run1(rfs.remove(self._meta_path(key)))
        except Exception as again:  # noqa: BLE001 - reported in the message
            index.let_go(pending)  # the marker names the backup: the next connect restores it
            what = self._error(again, "restoring", key).message
            raise StoreError(
                f"{error.message}; putting its previous state back failed too ({what}): "
                f"{key!r} may hold the new data with its previous metadata until this store is "
                f"connected again, which restores it", key, self) from exc
        self._quietly(index.clear_pending(pending), *([rfs.remove(backup)] if backup else []))
        raise StoreError(f"{error.message}; {key!r} was put back as it was", key, self) from exc

    @staticmethod
    def _retagged(raw: bytes | None, old_tag: Any, new_tag: Any) -> bytes | None:
        """A record describing data that was copied back (a copy may get another ETag)."""
        if raw is None or new_tag is None:
            return raw
        try:
            record = json.loads(raw)
        except ValueError:
            return raw
        # Compared as JSON has them: a (size, time) tag is a list once recorded.
        if not isinstance(record, dict) or record.get("etag") != json.loads(json.dumps(old_tag)):
            return raw
        record["etag"] = new_tag
        return json.dumps(record, ensure_ascii=False).encode()

    def _hand_to_transaction(self, key: str, backup: str) -> bool:
        """Inside a transaction, let the undo log keep ``backup`` as the key's old data."""
        txn = self._txn
        snap = txn.undo.get(key) if txn is not None else None
        if isinstance(snap, Snapshot) and snap.existed and snap.backup is None:
            snap.backup = backup
            return True
        return False

    def _delete(self, key: str) -> None:
        rfs, index = self._live(), self._index
        data_path, meta_path = self._data_path(key), self._meta_path(key)
        pending = index.new_pending_path()
        _, info = self._checked(rfs.run(index.mark_pending(pending, key), rfs.head(data_path)),
                                "deleting", key)
        if info is None:
            self._quietly(index.clear_pending(pending))
            raise StoreKeyError(key, self)
        try:
            self._back_up(key)
            self._checked(rfs.run(rfs.remove(data_path), rfs.remove(meta_path)), "deleting", key)
            index.apply(key, lambda _old: None)
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "deleting", key) from exc
        self._prune(data_path)
        self._prune(meta_path)
        self._quietly(index.clear_pending(pending))

    def _quietly(self, *coros: Any) -> None:
        """Run clean-up operations whose failure must not hide the real outcome."""
        rfs = self._rfs
        try:
            if rfs is None:
                raise RuntimeError("disconnected")
            rfs.run(*coros)  # errors come back as values and are dropped
        except Exception:  # noqa: BLE001 - best effort; the server may be gone
            for coro in coros:
                coro.close()

    def _prune(self, path: str) -> None:
        """Remove folders left empty by a delete (only filesystems with real folders)."""
        rfs = self._rfs
        if rfs is None or not rfs.posix:
            return
        parent = path.rsplit("/", 1)[0]
        while len(parent) > len(self._root) and parent.startswith(self._root + "/"):
            try:
                rfs.fs.rmdir(parent)
            except Exception:  # noqa: BLE001 - not empty, or already gone
                return
            parent = parent.rsplit("/", 1)[0]

    # ------------------------------------------------------------------ reads

    def _state(self, key: str) -> tuple[ObjectInfo | None, dict | None]:
        """The data object's info and the metadata record of ``key``, fetched together."""
        rfs = self._live()
        info, raw = self._checked(
            rfs.run(rfs.head(self._data_path(key)), rfs.read(self._meta_path(key))),
            "reading", key)
        return info, (self._parse_record(raw, key) if info is not None else None)

    def _get(self, key: str) -> Value:
        info, record = self._state(key)
        if info is None:
            raise StoreKeyError(key, self)
        text = encode_metadata(current(record, info))
        created, modified = times(record, info)
        return Value(lambda: self._open_data(key, info), text, info.size, created,
                     modified, lambda start, end: self._open_range(key, info, start, end))

    def _fetch(self, key: str, info: ObjectInfo, start: int | None = None,
               end: int | None = None) -> bytes:
        """Bytes of ``key`` in one request: the version ``info`` describes, else the newest."""
        rfs = self._live()
        path = self._data_path(key)
        (data,) = rfs.run(rfs.read(path, start, end, tag=info.tag if rfs.is_s3 else None))
        if isinstance(data, BaseException) and is_precondition_failure(data):
            # Replaced since get(): read the whole new version, never a mix of two.
            (data,) = rfs.run(rfs.read(path, start, end))
        if isinstance(data, BaseException):
            raise self._error(data, "reading", key) from data
        if data is None:
            raise StoreKeyError(key, self, f"{key!r} was deleted from {self.url} while being read")
        return data

    def _open_data(self, key: str, info: ObjectInfo) -> BinaryIO:
        rfs = self._live()
        if rfs.flat or info.size <= self._block_size:
            return io.BytesIO(self._fetch(key, info))
        try:
            raw = rfs.open_read(self._data_path(key))
        except Exception as exc:
            raise self._error(exc, "reading", key) from exc
        return GuardedStream(raw, lambda exc: self._error(exc, "reading", key))

    def _open_range(self, key: str, info: ObjectInfo, start: int, end: int | None) -> BinaryIO:
        if start >= info.size or (end is not None and end <= start):
            return io.BytesIO(b"")
        if end is not None and end - start <= self._block_size:
            return io.BytesIO(self._fetch(key, info, start, end))
        return open_range(self._open_data(key, info), start, end)

    def _stat(self, key: str) -> Entry:
        rfs = self._live()
        info, raw = self._checked(
            rfs.run(rfs.head(self._data_path(key)), rfs.read(self._meta_path(key))),
            "reading", key)
        try:
            record = self._parse_record(raw, key) if info is not None else None
        except StoreError:
            record = None  # a damaged record does not hide the data's size and time
        if info is None:
            raise StoreKeyError(key, self)
        return Entry(key, False, info.size, times(record, info)[1])

    def _exists(self, key: str) -> bool:
        rfs = self._live()
        (info,) = self._checked(rfs.run(rfs.head(self._data_path(key))), "reading", key)
        return info is not None

    def _get_metadata_text(self, key: str) -> str:
        info, record = self._state(key)
        if info is None:
            raise StoreKeyError(key, self)
        return encode_metadata(current(record, info))

    # ------------------------------------------------------------------ listing

    # Listings of FsspecStore: ``list_dir`` as one delimiter listing, and walks of keys.
    #
    # ``list_dir(prefix)`` lists the folder the prefix names with the filesystem's
    # delimiter listing (``fs.ls``: on S3 one ListObjectsV2 request with
    # ``Delimiter="/"`` per 1,000 children), so its cost grows with the number of
    # children, not with the size of the store; sizes and modification times come
    # from that listing. The ``.storegui`` folder at the root is hidden.

    def _dir_path(self, dirkey: str) -> str:
        """The folder of keys starting with ``dirkey`` ("" or ending with "/")."""
        if not dirkey:
            return self._root
        return f"{self._root}/{self._rel(encode_key(dirkey[:-1]))}"

    def _name_to_segment(self, name: str, top: bool) -> str | None:
        if self.protocol in ("http", "https"):
            name = _url_unquote(name)
        try:
            segment = decode_segment(name)
        except UnicodeDecodeError:
            return None
        return segment if encode_segment(segment, top) == name else None

    def _path_to_key(self, path: str) -> str | None:
        """The key stored at ``path``, or None (not under the root, reserved, not a key)."""
        base = self._root + "/"
        if not path.startswith(base):
            return None
        rel = path[len(base):]
        if not rel or rel.endswith("/") or rel.startswith(RESERVED + "/"):
            return None
        if self.protocol in ("http", "https"):
            rel = _url_unquote(rel)
        return decode_path(rel)

    def list_dir(self, prefix: str = "", delimiter: str = "/") -> Iterator[Entry]:
        """The immediate children of ``prefix``, from one delimiter listing of its folder.

        Raises
        ------
        StoreError
            The listing failed (unreachable server, no access...).
        """
        self._ensure()
        check_prefix(prefix)
        rfs = self._live()
        dirkey = prefix[: prefix.rfind("/") + 1]
        if delimiter != "/" or rfs.flat:
            return self._list_dir_walk(rfs, prefix, dirkey, delimiter)
        dirpath = self._dir_path(dirkey)
        try:
            listing = rfs.children(dirpath)
        except Exception as exc:
            raise self._error(exc, "listing") from exc
        base = dirpath + "/"
        seen: dict[str, Entry] = {}
        for info in listing:
            name = info.get("name", "")
            if not name.startswith(base):
                continue
            rest = name[len(base):]
            is_dir = info.get("type") == "directory"
            if is_dir:
                rest = rest.rstrip("/")
            if not rest or "/" in rest or (not dirkey and rest == RESERVED):
                continue
            segment = self._name_to_segment(rest, top=not dirkey)
            if segment is None:
                continue
            key = dirkey + segment
            if not key.startswith(prefix):
                continue
            if is_dir:
                seen[key + "/"] = Entry(key + "/", True)
            else:
                oi = object_info(info)
                seen[key] = Entry(key, False, oi.size, oi.modified)
        return iter(sorted(seen.values(), key=lambda e: e.key))

    def _list_dir_walk(self, rfs: RemoteFS, prefix: str, dirkey: str,
                       delimiter: str) -> Iterator[Entry]:
        """list_dir from a flat listing (memory://, or a delimiter other than "/")."""
        try:
            files = rfs.files_under(self._root if rfs.flat else self._dir_path(dirkey))
        except Exception as exc:
            raise self._error(exc, "listing") from exc
        seen: dict[str, Entry] = {}
        for path, info in files.items():
            key = self._path_to_key(path)
            if key is None or not key.startswith(prefix):
                continue
            child, is_dir = split_child(key, prefix, delimiter)
            if is_dir:
                seen.setdefault(child, Entry(child, True))
            else:
                oi = object_info(info)
                seen[key] = Entry(key, False, oi.size, oi.modified)
        return iter(sorted(seen.values(), key=lambda e: e.key))

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        rfs = self._live()
        dirkey = prefix[: prefix.rfind("/") + 1]
        try:
            if rfs.flat:
                paths = list(rfs.files_under(self._root))
            elif dirkey:
                paths = list(rfs.files_under(self._dir_path(dirkey)))
            else:
                paths = self._all_paths(rfs)
        except Exception as exc:
            raise self._error(exc, "listing") from exc
        keys = []
        for path in paths:
            key = self._path_to_key(path)
            if key is not None and key.startswith(prefix):
                keys.append(key)
        return iter(sorted(keys))

    def _all_paths(self, rfs: RemoteFS) -> list[str]:
        """Every file under the root except the ``.storegui`` folder (which is not walked)."""
        top = rfs.children(self._root)
        reserved = f"{self._root}/{RESERVED}"
        folders = [i["name"].rstrip("/") for i in top if i.get("type") == "directory"
                   and i["name"].rstrip("/") != reserved]
        if len(folders) > _MAX_FOLDER_WALKS:
            return list(rfs.files_under(self._root))
        paths = [i["name"] for i in top if i.get("type") != "directory"]
        for folder in folders:
            paths.extend(rfs.files_under(folder))
        return paths

    # ------------------------------------------------------------------ queries

    # Queries of FsspecStore: answered from the metadata index, not key by key.
    #
    # A query with criteria loads the index (see :mod:`.index`: one listing
    # of the index folder, then only the shards that changed, concurrently) and
    # matches every entry in memory. A query without criteria walks the keys (one
    # listing per 1,000 keys on S3) and takes each key's metadata from the index.

    def _query(self, criteria: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        try:
            view = self._index_view()
            keys = list(self._iter_keys("")) if not criteria else None
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "querying") from exc
        if keys is not None:
            for key in keys:
                entry = view.get(key)
                yield key, encode_metadata(entry["metadata"]) if entry else "{}"
            return
        for key in sorted(view):
            metadata = view[key]["metadata"]
            if matches(metadata, criteria):
                yield key, encode_metadata(metadata)

    def _index_view(self) -> dict[str, dict]:
        self._live()
        return self._index.load(self._resolve, repair=not self.readonly)

    def _records(self, keys: list[str], action: str) -> list[tuple[Any, dict | None]]:
        """(data info or None, metadata record or None) of each key, fetched concurrently."""
        rfs = self._live()
        coros = []
        for key in keys:
            coros += [rfs.head(self._data_path(key)), rfs.read(self._meta_path(key))]
        results = rfs.run(*coros)
        out = []
        for i, key in enumerate(keys):
            info, raw = self._checked(results[2 * i:2 * i + 2], action, key)
            out.append((info, self._parse_record(raw, key) if info is not None else None))
        return out

    def _resolve(self, keys: list[str]) -> dict[str, dict | None]:
        """Index entries of ``keys`` read from their metadata objects (None: no such key)."""
        out: dict[str, dict | None] = {}
        for key, (info, record) in zip(keys, self._records(keys, "querying"), strict=True):
            if info is None:
                out[key] = None
            elif record is None:
                out[key] = {"metadata": {}, "created": info.modified}
            else:
                out[key] = {"metadata": record["metadata"], "created": record.get("created")}
        return out

    def multiget_metadata(
        self, keys: Iterable[str], select: Iterable[str] | None = None
    ) -> Iterator[dict]:
        """``get_metadata`` of each key, in order, all fetched concurrently.

        Raises
        ------
        KeyError
            One of the keys does not exist.
        """
        keys = [self._check_key(k) for k in keys]
        select = list(select) if select is not None else None
        out = []
        for key, (info, record) in zip(keys, self._records(keys, "reading"), strict=True):
            if info is None:
                raise StoreKeyError(key, self)
            out.append(select_fields(current(record, info), select))
        return iter(out)

    def rebuild_index(self) -> int:
        """Recreate the metadata index from the per-key metadata objects; return the key count.

        Use it after other tools deleted or changed keys behind this store's
        back. Costs one listing per 1,000 keys plus one small read per key
        (concurrent).

        Raises
        ------
        ReadOnlyError
            The store is read-only.
        StoreError
            The filesystem failed.
        """
        self._check_writable()
        rfs = self._live()
        keys = list(self._iter_keys(""))
        entries: dict[str, dict] = {}
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            raws = self._checked(rfs.run(*(rfs.read(self._meta_path(k)) for k in batch)),
                                 "rebuilding the index of", None)
            for key, raw in zip(batch, raws, strict=True):
                record = self._parse_record(raw, key)
                if record is not None:
                    entries[key] = {"metadata": record["metadata"],
                                    "created": record.get("created")}
        try:
            self._index.rebuild(entries)
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "rebuilding the index of") from exc
        return len(keys)

    # ------------------------------------------------------------------ transactions

    # Transactions of FsspecStore: an undo log of each key's state before its first change.
    #
    # A snapshot holds whether the key existed and its metadata object. Its data
    # is copied to ``<root>/.storegui/tmp/`` (server-side on S3) only when the
    # transaction is about to overwrite or delete it; a rollback moves that copy
    # back, a commit deletes it.

    def _snapshot(self, key: str) -> Snapshot:
        rfs = self._live()
        info, raw = self._checked(
            rfs.run(rfs.head(self._data_path(key)), rfs.read(self._meta_path(key))),
            "writing", key)
        return Snapshot(info is not None, raw if info is not None else None,
                        info.tag if info is not None else None)

    def _back_up(self, key: str) -> None:
        """Inside a transaction, keep the key's data before its first overwrite or delete."""
        txn = self._txn
        snap = txn.undo.get(key) if txn is not None else None
        if isinstance(snap, Snapshot) and snap.existed and snap.backup is None:
            backup = self._tmp_path()
            self._live().copy(self._data_path(key), backup)
            snap.backup = backup

    def _restore(self, key: str, snapshot: Any) -> None:
        if not isinstance(snapshot, Snapshot):
            return
        rfs = self._live()
        data_path, meta_path = self._data_path(key), self._meta_path(key)
        try:
            if not snapshot.existed:
                self._checked(rfs.run(rfs.remove(data_path), rfs.remove(meta_path)),
                              "rolling back", key)
                self._index.apply(key, lambda _old: None)
                return
            raw = snapshot.record
            if snapshot.backup is not None:
                # A copy, not a move: a copy's new tag is known (the record names it).
                _, tag = rfs.run1(rfs.copy_object(snapshot.backup, data_path))
                self._quietly(rfs.remove(snapshot.backup))
                snapshot.backup = None
                raw = self._retagged(raw, snapshot.tag, tag)
            record = self._parse_record(raw, key)
            if record is None:
                rfs.run1(rfs.remove(meta_path))
                self._index.apply(key, lambda _old: None)
            else:
                entry = {"metadata": record["metadata"], "created": record.get("created")}
                self._index.apply(key, lambda _old: entry,
                                  lambda _new: [rfs.write(meta_path, raw)])
        except StoreError:
            raise
        except Exception as exc:
            raise self._error(exc, "rolling back", key) from exc

    def _commit(self, txn: Transaction) -> None:
        backups = [s.backup for s in txn.undo.values()
                   if isinstance(s, Snapshot) and s.backup is not None]
        if backups and self._rfs is not None:
            # Best effort: the transaction's writes are done; a leftover copy only costs space.
            self._quietly(*(self._rfs.remove(b) for b in backups))

    # ------------------------------------------------------------------ clean-up after dead writers

    def _sweep(self) -> None:
        """Clean up what dead writers left (best effort: a failure is left to the next one)."""
        try:
            self._sweep_now()
        except Exception:  # noqa: BLE001 - clean-up must never stop a connect
            pass

    def _sweep_now(self) -> None:
        rfs = self._rfs
        pending_dir = self._root + "/.storegui/index/pending"
        markers, uploads = rfs.run(rfs.list_page(pending_dir), rfs.list_uploads(self._root + "/"))
        markers = [] if isinstance(markers, BaseException) else markers[:MAX_MARKERS]
        uploads = [] if isinstance(uploads, BaseException) else uploads
        if not markers and not uploads:
            return
        raws = rfs.run(*(rfs.read(path) for path, _ in markers))
        now = time.time()
        live: set[str] = set()
        dead: dict[str, list[tuple[str, dict]]] = {}
        for (path, modified), raw in zip(markers, raws, strict=True):
            try:
                marker = json.loads(raw)
                key = marker["key"]
            except (TypeError, ValueError, KeyError):
                continue
            if not isinstance(key, str):
                continue
            age = None if modified is None else now - modified
            if marker_alive(marker, path, age, STALE_UPLOAD):
                live.add(self._data_path(key))
            else:
                dead.setdefault(self._data_path(key), []).append((path, marker))
        for upload in uploads:
            if upload["path"] in live:
                continue
            started = [m.get("started") for _, m in dead.get(upload["path"], [])]
            mine = any(isinstance(t, int | float) and (upload["initiated"] or 0) >= t - 2
                       for t in started)
            old = upload["initiated"] is not None and now - upload["initiated"] > STALE_UPLOAD
            if mine or old:
                self._quietly(rfs.abort_upload(upload["path"], upload["id"]))
        repairs = [(p, m) for data_path, found in dead.items() if data_path not in live
                   for p, m in found][:MAX_REPAIRS]
        for path, marker in repairs:
            self._repair(path, marker)

    def _repair(self, path: str, marker: dict) -> None:
        """Finish or undo the dead write of ``marker``; then remove the marker."""
        rfs, index = self._rfs, self._index
        key = marker["key"]
        data_path, meta_path = self._data_path(key), self._meta_path(key)
        backup = marker.get("backup") if isinstance(marker.get("backup"), str) else None
        info, raw, kept = rfs.run(rfs.head(data_path), rfs.read(meta_path),
                                  rfs.head(backup) if backup else _none())
        for result in (info, raw, kept):
            if isinstance(result, BaseException):
                return
        try:
            record = json.loads(raw) if raw is not None else None
        except ValueError:
            record = None
        if info is not None and not matches_data(record, info):
            started = marker.get("started")
            if kept is not None:
                # Died between its upload and its metadata object: the previous data back.
                _, tag = rfs.run1(rfs.copy_object(backup, data_path))
                if isinstance(record, dict) and record.get("size") == kept.size:
                    fixed = self._retagged(raw, record.get("etag"), tag)
                    if fixed != raw:
                        rfs.run1(rfs.write(meta_path, fixed))
            elif record is None and isinstance(started, int | float) \
                    and info.modified is not None and info.modified >= math.floor(started):
                rfs.run1(rfs.remove(data_path))  # a new key's data, never committed
        info, raw = rfs.run(rfs.head(data_path), rfs.read(meta_path))
        if isinstance(info, BaseException) or isinstance(raw, BaseException):
            return
        try:
            record = json.loads(raw) if raw is not None else {}
        except ValueError:
            record = {}
        metadata = record.get("metadata") if isinstance(record, dict) else None
        entry = None if info is None else {
            "metadata": metadata if isinstance(metadata, dict) else {},
            "created": record.get("created", info.modified) if metadata else info.modified}
        try:
            index.apply(key, lambda _old: entry)
        except DamagedShard:
            return  # left for rebuild_index(); the marker keeps queries re-reading the key
        self._quietly(*([rfs.remove(backup)] if backup else []), index.clear_pending(path))
