"""Turn fsspec, botocore and aiohttp exceptions into StoreErrors a user can act on.

:func:`translate` builds the error; :class:`GuardedStream` applies it to the
reads of a streamed download. Every message names what was being done, the
key, the store URL and (for network stores) the endpoint, says what went
wrong in words, and suggests what to check. Credentials never appear: the URL
and endpoint are given without them, and any secret value the store knows of
is blanked out of the text.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import io
import socket
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

from ..errors import StoreError, StoreKeyError

_UNREACHABLE_ERRNOS = {
    errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN,
    errno.EADDRNOTAVAIL,
}
_DROPPED_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}
_DENIED_CODES = {
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
    "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "403",
}


def _classes(module: str, *names: str) -> tuple[type, ...]:
    """Exception classes of an optional dependency (empty if it is not installed)."""
    try:
        mod = __import__(module, fromlist=list(names))
    except ImportError:
        return ()
    return tuple(getattr(mod, n) for n in names if hasattr(mod, n))


_BOTO_TIMEOUT = _classes("botocore.exceptions", "ReadTimeoutError", "ConnectTimeoutError")
_BOTO_UNREACHABLE = _classes("botocore.exceptions", "EndpointConnectionError",
                             "ProxyConnectionError")
_BOTO_DROPPED = _classes("botocore.exceptions", "ConnectionClosedError", "IncompleteReadError")
_BOTO_CREDENTIALS = _classes("botocore.exceptions", "NoCredentialsError",
                             "PartialCredentialsError")
_BOTO_CONNECTION = _classes("botocore.exceptions", "ConnectionError", "HTTPClientError")
_AIOHTTP_TIMEOUT = _classes("aiohttp", "ServerTimeoutError")
_AIOHTTP_UNREACHABLE = _classes("aiohttp", "ClientConnectorError")
_AIOHTTP_DROPPED = _classes("aiohttp", "ServerDisconnectedError", "ClientPayloadError",
                            "ClientOSError")
_FSSPEC_TIMEOUT = _classes("fsspec.exceptions", "FSTimeoutError")
_FILE_EXPIRED = _classes("fsspec.exceptions", "FileExpired")
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError, socket.timeout) + _BOTO_TIMEOUT \
    + _AIOHTTP_TIMEOUT + _FSSPEC_TIMEOUT


def error_code(exc: BaseException) -> str | None:
    """The S3 error code behind ``exc`` (``NoSuchBucket``, ``AccessDenied``...), if any."""
    seen = 0
    while exc is not None and seen < 5:
        response = getattr(exc, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen = 0
    while exc is not None and seen < 5:
        yield exc
        exc = exc.__cause__ or exc.__context__
        seen += 1


def is_precondition_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a failed conditional request (the object changed meanwhile)."""
    return isinstance(exc, FileExistsError) or error_code(exc) in (
        "PreconditionFailed", "412", "ConditionalRequestConflict", "409")


def is_missing(exc: BaseException) -> bool:
    """Whether ``exc`` says an object is not there (and not that the bucket is missing)."""
    return isinstance(exc, FileNotFoundError) and error_code(exc) != "NoSuchBucket"


def is_unsupported(exc: BaseException) -> bool:
    """Whether the server refused a request feature it does not implement."""
    return error_code(exc) in ("NotImplemented", "501")


def _reason(exc: BaseException, endpoint: str, read_timeout: float | None) -> tuple[str, str]:
    """(what went wrong, what to check) for ``exc``."""
    where = endpoint or "the server"
    code = error_code(exc)
    if code == "NoSuchBucket":
        return "the bucket does not exist", "create the bucket or correct the URL"
    if isinstance(exc, PermissionError) or code in _DENIED_CODES:
        detail = f" ({code})" if code and code != "403" else ""
        return (f"{where} denied access{detail}",
                "check the credentials (environment, profile file, or connect(credentials)) "
                "and their permissions")
    if _BOTO_CREDENTIALS and isinstance(exc, _BOTO_CREDENTIALS):
        return ("no credentials were found",
                "set them in the environment or a profile, or pass them to connect()")
    for item in _chain(exc):
        if isinstance(item, _TIMEOUTS):
            limit = f" within {read_timeout:g} s" if read_timeout else " in time"
            return (f"{where} did not answer{limit}",
                    "check that the server is running and not overloaded, or raise read_timeout")
        if isinstance(item, _BOTO_UNREACHABLE + _AIOHTTP_UNREACHABLE) or (
            isinstance(item, OSError) and item.errno in _UNREACHABLE_ERRNOS
        ) or isinstance(item, socket.gaierror):
            return (f"cannot reach {where}",
                    "check that the server is running and the endpoint URL is right")
        if isinstance(item, _BOTO_DROPPED + _AIOHTTP_DROPPED) or (
            isinstance(item, OSError) and item.errno in _DROPPED_ERRNOS
        ):
            return (f"the connection to {where} was lost",
                    "check the server and the network, then try again")
        if _FILE_EXPIRED and isinstance(item, _FILE_EXPIRED):
            return ("the object changed while it was being read", "read it again")
        if _BOTO_CONNECTION and isinstance(item, _BOTO_CONNECTION):
            return (f"the connection to {where} failed", "check the server and the network")
    if isinstance(exc, FileExistsError | NotADirectoryError | IsADirectoryError):
        return ("a key and a folder of the same name collide on this filesystem",
                "use an object store (s3://, memory://) or rename one of them")
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}", ""


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value blanked out."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def translate(
    exc: BaseException,
    *,
    action: str,
    url: str,
    key: str | None = None,
    store: Any = None,
    endpoint: str = "",
    read_timeout: float | None = None,
    secrets: Iterable[str] = (),
) -> StoreError:
    """A :class:`StoreError` describing ``exc`` (a StoreError is returned unchanged).

    ``action`` is a verb such as ``"writing"`` (``"connecting to"`` without a
    key); the message reads ``"writing 'k' in s3://b/p failed: cannot reach
    http://host:9000; check ..."``.
    A plain missing object with a key becomes a :class:`StoreKeyError`.
    """
    if isinstance(exc, StoreError):
        return exc
    if key is not None and is_missing(exc):
        return StoreKeyError(key, store)
    what, hint = _reason(exc, endpoint, read_timeout)
    subject = f"{action} {key!r} in {url}" if key is not None else f"{action} {url}"
    message = f"{subject} failed: {what}" + (f"; {hint}" if hint else "")
    return StoreError(redact(message, secrets), key, store)


class GuardedStream(io.RawIOBase):
    """A readable stream over a filesystem file that turns its errors into StoreErrors.

    ``on_error(exc)`` returns the exception to raise instead of ``exc``.
    """

    def __init__(self, raw: BinaryIO, on_error: Callable[[BaseException], BaseException]) -> None:
        super().__init__()
        self._raw = raw
        self._on_error = on_error

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(getattr(self._raw, "seekable", lambda: False)())

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._guard(self._raw.seek, offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def read(self, size: int = -1) -> bytes:
        return self._guard(self._raw.read, -1 if size is None else size)

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def _guard(self, fn: Callable, *args: Any) -> Any:
        try:
            return fn(*args)
        except ValueError:  # a closed stream or a bad argument: the caller's mistake
            raise
        except Exception as exc:  # OSError, and botocore / aiohttp errors that are not
            raise self._on_error(exc) from exc

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self._raw.close()
        super().close()
