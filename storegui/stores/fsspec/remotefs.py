"""Filesystem access for FsspecStore.

:class:`RemoteFS` wraps one fsspec filesystem and offers the few operations the
store needs: stat / read / write / conditional write / remove of small
objects (run many at once, concurrently on async filesystems such as s3fs and
http), delimiter listings, and atomic streamed writes of data.

Atomic writes: on object stores (S3, GCS, Azure) an object appears only when
its upload completes, so data is streamed straight to its name (a multipart
upload on S3) and a failure *discards* the upload instead of committing it.
Elsewhere (local, memory, SFTP) data goes to a temporary name and is moved
into place when complete.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO

from fsspec.asyn import sync
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from ..transfer.streaming import copy_stream
from .errors import error_code, is_missing, is_precondition_failure, is_unsupported

# Object stores where an object becomes visible only when its upload completes.
_ATOMIC_OBJECT_STORES = {"s3", "s3a", "gs", "gcs", "abfs", "az"}
_POSIX_LIKE = {"file", "local", "sftp", "ssh"}


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a listing or a HEAD request says about one object."""

    size: int
    modified: float | None
    #: A token that changes when the object changes (S3's ETag), or None.
    tag: Any = None


def to_epoch(value: Any) -> float | None:
    """Epoch seconds from a datetime, a number, or an ISO / HTTP date string."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError, TypeError):
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        with contextlib.suppress(ValueError, TypeError):
            return parsedate_to_datetime(value).timestamp()
    return None


def object_info(info: dict) -> ObjectInfo:
    """An :class:`ObjectInfo` from an fsspec ``info`` / ``ls`` dictionary."""
    modified = None
    for name in ("LastModified", "mtime", "modified", "last_modified", "updated", "created"):
        modified = to_epoch(info.get(name))
        if modified is not None:
            break
    size = int(info.get("size") or 0)
    tag = info.get("ETag") or info.get("etag")
    if tag is None and modified is not None:
        tag = (size, modified)
    return ObjectInfo(size, modified, tag)


def _drive(coro: Coroutine) -> Any:
    """Run a coroutine that never suspends (it only calls a synchronous filesystem)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    except Exception as exc:  # noqa: BLE001 - handed back like asyncio.gather does
        return exc
    coro.close()
    raise RuntimeError("a synchronous filesystem call tried to wait on an event loop")


class S3Upload:
    """A sink for :func:`copy_stream` that uploads to one S3 object.

    Up to ``block_size`` bytes go in one PUT at :meth:`commit`; more go in a
    multipart upload of ``block_size`` parts, completed by :meth:`commit`.
    Until then no object appears; :meth:`abort` discards the parts.
    """

    def __init__(self, rfs: RemoteFS, path: str) -> None:
        self._rfs = rfs
        self._bucket, self._key = rfs._bucket_key(path)
        self._buffer = bytearray()
        self._parts: list[dict] = []
        self.upload_id: str | None = None

    def _s3(self, method: str, **kwargs: Any) -> Any:
        return self._rfs.run1(self._rfs.fs._call_s3(method, Bucket=self._bucket, Key=self._key,
                                                    **kwargs))

    def write(self, chunk: Any) -> int:
        size = self._rfs.block_size
        self._buffer += chunk
        if len(self._buffer) >= size:
            whole = len(self._buffer) - len(self._buffer) % size
            view = memoryview(self._buffer)
            try:
                for start in range(0, whole, size):
                    self._part(view[start:start + size])
            finally:
                view.release()
            del self._buffer[:whole]
        return len(chunk)

    def _part(self, body: Any) -> None:
        if self.upload_id is None:
            self.upload_id = self._s3("create_multipart_upload")["UploadId"]
        number = len(self._parts) + 1
        out = self._s3("upload_part", UploadId=self.upload_id, PartNumber=number,
                       Body=bytes(body))
        self._parts.append({"PartNumber": number, "ETag": out["ETag"]})

    def commit(self) -> Any:
        """Make the object appear; return its ETag."""
        if self.upload_id is None:
            return self._s3("put_object", Body=bytes(self._buffer)).get("ETag")
        if self._buffer:
            self._part(self._buffer)
            self._buffer = bytearray()
        out = self._s3("complete_multipart_upload", UploadId=self.upload_id,
                       MultipartUpload={"Parts": self._parts})
        self.upload_id = None
        return out.get("ETag")

    def abort(self) -> None:
        """Discard the parts uploaded so far (best effort: the server may be gone)."""
        upload_id, self.upload_id = self.upload_id, None
        if upload_id is not None:
            with contextlib.suppress(Exception):
                self._s3("abort_multipart_upload", UploadId=upload_id)


class RemoteFS:
    """One fsspec filesystem, with the operations FsspecStore builds on.

    Parameters
    ----------
    fs : fsspec.AbstractFileSystem
    protocol : str
        The store's protocol (``"s3"``, ``"memory"``, ``"file"``...).
    block_size : int
        Part size of streamed uploads and read-ahead of streamed reads.
    max_concurrency : int
        How many small requests :meth:`run` has in flight at once.
    """

    def __init__(self, fs: AbstractFileSystem, protocol: str, block_size: int,
                 max_concurrency: int = 32) -> None:
        self.fs = fs
        self.protocol = protocol
        self.block_size = block_size
        self.max_concurrency = max_concurrency
        self.is_async = bool(getattr(fs, "async_impl", False))
        self.is_s3 = protocol in ("s3", "s3a")
        #: Whether the server honours If-Match / If-None-Match on writes.
        self.conditional = self.is_s3
        self.atomic_objects = protocol in _ATOMIC_OBJECT_STORES
        self.posix = protocol in _POSIX_LIKE
        # fsspec's memory filesystem is a dict of path -> file; its ls/info
        # cannot show a file and a folder of the same name, so it is read flat.
        self.flat = protocol == "memory"

    # ------------------------------------------------------------------ running

    def run(self, *coros: Coroutine) -> list[Any]:
        """Run the operations (concurrently where possible); results or exceptions, in order."""
        if not self.is_async:
            return [_drive(c) for c in coros]

        async def gather() -> list[Any]:
            gate = asyncio.Semaphore(self.max_concurrency)

            async def one(coro: Coroutine) -> Any:
                async with gate:
                    return await coro

            return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)

        return sync(self.fs.loop, gather)

    def run1(self, coro: Coroutine) -> Any:
        """Run one operation; return its result or raise its exception."""
        (result,) = self.run(coro)
        if isinstance(result, BaseException):
            raise result
        return result

    async def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            return await getattr(self.fs, "_" + name)(*args, **kwargs)
        return getattr(self.fs, name)(*args, **kwargs)

    def _bucket_key(self, path: str) -> tuple[str, str]:
        bucket, key, _ = self.fs.split_path(path)
        return bucket, key

    # ------------------------------------------------------------------ small objects

    async def head(self, path: str) -> ObjectInfo | None:
        """Size, modification time and tag of the file at ``path``; None if there is none."""
        if self.is_s3:
            bucket, key = self._bucket_key(path)
            try:
                out = await self.fs._call_s3("head_object", Bucket=bucket, Key=key)
            except FileNotFoundError as exc:
                if is_missing(exc):
                    return None
                raise
            return ObjectInfo(int(out["ContentLength"]), to_epoch(out.get("LastModified")),
                              out.get("ETag"))
        if self.flat:
            f = self.fs.store.get(self.fs._strip_protocol(path))
            if f is None:
                return None
            return ObjectInfo(f.size, to_epoch(f.modified), (f.size, to_epoch(f.modified)))
        try:
            info = await self._call("info", path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        if info.get("type", "file") != "file":
            return None
        return object_info(info)

    async def read(self, path: str, start: int | None = None, end: int | None = None,
                   tag: Any = None) -> bytes | None:
        """The bytes of ``path`` (``start``..``end``-1 if given); None if there is no file.

        With ``tag`` (S3), the read fails with a precondition error if the
        object changed since the tag was seen.
        """
        if self.is_s3:
            bucket, key = self._bucket_key(path)
            kw: dict[str, Any] = {}
            if start is not None or end is not None:
                last = "" if end is None else str(end - 1)
                kw["Range"] = f"bytes={start or 0}-{last}"
            if tag:
                kw["IfMatch"] = tag
            try:
                resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=key, **kw)
            except FileNotFoundError as exc:
                if is_missing(exc):
                    return None
                raise
            try:
                return await resp["Body"].read()
            finally:
                resp["Body"].close()
        try:
            return await self._call("cat_file", path, start=start, end=end)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    async def read_tagged(self, path: str) -> tuple[bytes | None, Any]:
        """``(bytes or None, tag)``: the tag is the S3 ETag of what was read (else None)."""
        if not self.is_s3:
            return await self.read(path), None
        bucket, key = self._bucket_key(path)
        try:
            resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
        except FileNotFoundError as exc:
            if is_missing(exc):
                return None, None
            raise
        try:
            return await resp["Body"].read(), resp.get("ETag")
        finally:
            resp["Body"].close()

    async def write(self, path: str, data: bytes) -> Any:
        """Write a small object in one request; return its new tag (S3) or None."""
        if self.is_s3:
            bucket, key = self._bucket_key(path)
            out = await self.fs._call_s3("put_object", Bucket=bucket, Key=key, Body=data)
            return out.get("ETag")
        if self.flat:
            self._memory_put(path, data)
            return None
        await self._call("pipe_file", path, data)
        return None

    async def write_if(self, path: str, data: bytes, tag: Any, existed: bool) -> tuple[bool, Any]:
        """Write ``path`` only if it is still as read (tag ``tag``, or absent if not ``existed``).

        Returns ``(written, new tag)``. Filesystems without conditional writes
        always write (their callers serialise writers in-process).
        """
        if self.is_s3 and self.conditional:
            bucket, key = self._bucket_key(path)
            cond = {"IfMatch": tag} if existed else {"IfNoneMatch": "*"}
            try:
                out = await self.fs._call_s3("put_object", Bucket=bucket, Key=key, Body=data,
                                             **cond)
            except OSError as exc:
                if is_precondition_failure(exc):
                    return False, None
                if not is_unsupported(exc):
                    raise
                self.conditional = False  # an S3 clone without conditional writes
            else:
                return True, out.get("ETag")
        return True, await self.write(path, data)

    async def remove(self, path: str) -> None:
        """Delete the file at ``path`` (nothing happens if there is none)."""
        if self.is_s3:
            bucket, key = self._bucket_key(path)
            await self.fs._call_s3("delete_object", Bucket=bucket, Key=key)
            return
        if self.flat:
            self.fs.store.pop(self.fs._strip_protocol(path), None)
            return
        with contextlib.suppress(FileNotFoundError):
            await self._call("rm_file", path)

    def _memory_put(self, path: str, data: bytes) -> None:
        from fsspec.implementations.memory import MemoryFile

        path = self.fs._strip_protocol(path)
        self.fs.store[path] = MemoryFile(self.fs, path, data)

    # ------------------------------------------------------------------ listings

    def children(self, dirpath: str) -> list[dict]:
        """The delimiter listing of ``dirpath`` (one paginated request on S3); [] if missing."""
        try:
            return self.fs.ls(dirpath, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def files_under(self, dirpath: str) -> dict[str, dict]:
        """Every file below ``dirpath`` (a flat listing on object stores), by path."""
        try:
            return self.fs.find(dirpath, detail=True, withdirs=False)
        except (FileNotFoundError, NotADirectoryError):
            return {}

    # ------------------------------------------------------------------ data

    def write_stream(self, path: str, source: BinaryIO, buffer_size: int, tmp_path: str) -> int:
        """Stream ``source`` into ``path`` atomically; return the bytes written.

        See :meth:`upload`.
        """
        return self.upload(path, source, buffer_size, tmp_path)[0]

    def upload(self, path: str, source: BinaryIO, buffer_size: int,
               tmp_path: str) -> tuple[int, Any]:
        """Stream ``source`` into ``path`` atomically; return ``(bytes written, new tag)``.

        On S3 the tag is the ETag the server gave the new object (one PUT up
        to one block, else a multipart upload of ``block_size`` parts);
        elsewhere it is None. On any error (including one raised by
        ``source``) nothing is left at ``path``: the S3 upload is aborted
        (and never completed, so even a failed abort leaves no object), a
        temporary file is removed.
        """
        if self.is_s3:
            upload = S3Upload(self, path)
            try:
                written = copy_stream(source, upload, buffer_size)
                return written, upload.commit()
            except BaseException:
                upload.abort()
                raise
        target = path if self.atomic_objects else tmp_path
        kwargs = {"block_size": self.block_size} if self.atomic_objects else {}
        f = self.fs.open(target, "wb", **kwargs)
        try:
            written = copy_stream(source, f, buffer_size)
            f.close()
        except BaseException:
            self.discard(f)
            if target != path:
                self.run(self.remove(target))
            raise
        if target != path:
            try:
                self.move_into_place(target, path)
            except BaseException:
                self.run(self.remove(target))
                raise
        return written, None

    async def copy_object(self, src: str, dst: str) -> tuple[bool, Any]:
        """Copy one file (server-side on S3): ``(True, new tag)``; ``(False, None)``: no ``src``."""
        if self.is_s3:
            bucket, key = self._bucket_key(src)
            dst_bucket, dst_key = self._bucket_key(dst)
            try:
                out = await self.fs._call_s3("copy_object", Bucket=dst_bucket, Key=dst_key,
                                             CopySource={"Bucket": bucket, "Key": key})
            except FileNotFoundError as exc:
                if is_missing(exc):
                    return False, None
                raise
            except OSError as exc:
                if error_code(exc) not in ("InvalidRequest", "EntityTooLarge"):
                    raise
                # Over 5 GB: s3fs copies part by part (UploadPartCopy).
                await self.fs._cp_file(src, dst)
                info = await self.head(dst)
                return True, info.tag if info else None
            return True, out.get("CopyObjectResult", {}).get("ETag")
        if await self.head(src) is None:
            return False, None
        self.copy(src, dst)
        # Elsewhere a tag is (size, modified time): the copy's own, which only it can tell.
        info = await self.head(dst)
        return True, info.tag if info else None

    # ------------------------------------------------------------------ multipart uploads

    async def list_uploads(self, prefix: str) -> list[dict]:
        """Incomplete S3 multipart uploads under ``prefix`` (one request: the first 1,000)."""
        if not self.is_s3:
            return []
        bucket, key = self._bucket_key(prefix)
        out = await self.fs._call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key,
                                     MaxUploads=1000)
        return [{"path": f"{bucket}/{u['Key']}", "id": u["UploadId"],
                 "initiated": to_epoch(u.get("Initiated"))} for u in out.get("Uploads", [])]

    async def list_page(self, dirpath: str) -> list[tuple[str, float | None]]:
        """(path, modified) of files under ``dirpath``: on S3 one request (the first 1,000)."""
        if not self.is_s3:
            found = await self._call("find", dirpath, detail=True, withdirs=False)
            return [(p, object_info(i).modified) for p, i in found.items()]
        bucket, key = self._bucket_key(dirpath)
        out = await self.fs._call_s3("list_objects_v2", Bucket=bucket, Prefix=key + "/",
                                     MaxKeys=1000)
        return [(f"{bucket}/{o['Key']}", to_epoch(o.get("LastModified")))
                for o in out.get("Contents", [])]

    async def abort_upload(self, path: str, upload_id: str) -> None:
        """Abort an incomplete S3 multipart upload."""
        bucket, key = self._bucket_key(path)
        await self.fs._call_s3("abort_multipart_upload", Bucket=bucket, Key=key,
                               UploadId=upload_id)

    @staticmethod
    def discard(f: Any) -> None:
        """Throw away a file open for writing without committing what was written."""
        with contextlib.suppress(Exception):
            f.discard()  # S3: abort the multipart upload (may fail if the server is gone)
        with contextlib.suppress(Exception):
            if isinstance(f, AbstractBufferedFile):
                f.closed = True  # close() would complete the upload with what was buffered
            else:
                f.close()

    def move_into_place(self, src: str, dst: str) -> None:
        """Replace ``dst`` by ``src`` in one step (rename, or copy then delete ``src``)."""
        if self.flat:
            stripped = self.fs._strip_protocol(src)
            self._memory_put(dst, self.fs.store[stripped].getvalue())
            self.fs.store.pop(stripped, None)
        elif type(self.fs).mv is AbstractFileSystem.mv:
            # The generic mv expands glob characters; copy the single file instead.
            self.fs.cp_file(src, dst)
            self.run(self.remove(src))
        else:
            self.fs.mv(src, dst)

    def copy(self, src: str, dst: str) -> None:
        """Copy one file (server-side on object stores)."""
        if self.flat:
            self._memory_put(dst, self.fs.store[self.fs._strip_protocol(src)].getvalue())
            return
        try:
            self.fs.cp_file(src, dst)
        except NotImplementedError:
            with self.fs.open(src, "rb") as source:
                self.write_stream(dst, source, 1 << 20, dst + ".part")

    def open_read(self, path: str) -> BinaryIO:
        """A streaming reader of ``path`` (read-ahead of one block)."""
        return self.fs.open(path, "rb", block_size=self.block_size)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the filesystem's network sessions (best effort)."""
        fs = self.fs
        with contextlib.suppress(Exception):
            if self.is_s3 and getattr(fs, "_s3", None) is not None:
                sync(fs.loop, fs._s3creator.__aexit__, None, None, None, timeout=5)
                fs._s3 = None
            elif getattr(fs, "_session", None) is not None and self.is_async:
                sync(fs.loop, fs._session.close, timeout=5)
                fs._session = None
            elif hasattr(fs, "client") and hasattr(fs.client, "close"):
                fs.client.close()


__all__ = ["ObjectInfo", "RemoteFS", "S3Upload", "object_info", "to_epoch"]
