"""A real S3-protocol server for tests: moto's server mode on 127.0.0.1.

:class:`S3Server` runs moto's WSGI application (the one ``moto_server`` and
``moto.server.ThreadedMotoServer`` run) on a werkzeug server thread in this
process, so the buckets it holds survive a restart. Unlike ThreadedMotoServer
it can also *die*: :meth:`S3Server.kill` closes the listening socket and every
open client connection at once, as a crashed server would, and
:meth:`S3Server.restart` listens again on the same port.
"""

from __future__ import annotations

import logging
import socket
import threading
import uuid
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

REGION = "us-east-1"
#: Dummy credentials moto accepts (it does not check them unless told to).
ACCESS_KEY = "storegui-test-key"
SECRET_KEY = "storegui-test-secret"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3Server:
    """moto's S3 server on 127.0.0.1; start(), kill(), restart(), stop().

    Parameters
    ----------
    port : int, optional
        The port to listen on (default: a free one).
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._admin: Any = None
        #: Every request served, as "METHOD /path?query" (for counting requests in tests).
        self.requests: list[str] = []
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    @property
    def endpoint_url(self) -> str:
        """The server's URL, for ``endpoint_url=``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server accepts connections now."""
        return self._server is not None

    def _handler(self) -> type:
        server = self

        class Handler(MotoRequestHandler):
            def setup(self) -> None:
                super().setup()
                # Answers are written in pieces; without NODELAY each one waits
                # for a delayed ACK (~40 ms per request).
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with server._lock:
                    server._connections.add(self.connection)

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    with server._lock:
                        server._connections.discard(self.connection)

            def log_request(self, *args: Any, **kwargs: Any) -> None:
                server.requests.append(self.requestline.rsplit(" ", 1)[0])

        return Handler

    def start(self) -> S3Server:
        """Listen on the port (again, after kill) with the same buckets."""
        if self._server is not None:
            return self
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", self.port, app, threaded=True,
                                   request_handler=self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"moto-s3-{self.port}", daemon=True)
        self._thread.start()
        return self

    def kill(self) -> None:
        """Die abruptly: stop listening and cut every open connection."""
        with self._lock:
            admin, self._admin = self._admin, None
        if admin is not None:
            admin.close()
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        if self._thread is not None:
            self._thread.join(5)

    def restart(self) -> None:
        """Come back on the same port after :meth:`kill`; buckets and objects are kept."""
        self.kill()
        self.start()

    stop = kill

    # ------------------------------------------------------------------ buckets

    def client(self, **kwargs: Any) -> Any:
        """A boto3 S3 client for this server (dummy credentials unless given)."""
        return self.client_for("s3", **kwargs)

    def client_for(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client of ``service`` (moto serves every service on the one port)."""
        import boto3

        options = {"endpoint_url": self.endpoint_url, "region_name": REGION,
                   "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY}
        options.update(kwargs)
        return boto3.client(service, **options)

    def new_bucket(self, prefix: str = "sg") -> str:
        """Create a bucket with a fresh name and return the name."""
        name = f"{prefix}-{uuid.uuid4().hex[:16]}"
        with self._lock:
            if self._admin is None:  # making a client costs ~0.1 s: keep one
                self._admin = self.client()
            admin = self._admin
        admin.create_bucket(Bucket=name)
        return name

    def count(self, fn: Any) -> list[str]:
        """The requests served while ``fn()`` runs."""
        start = len(self.requests)
        fn()
        return self.requests[start:]

    def put_directly(self, bucket: str, objects: dict[str, bytes]) -> None:
        """Create many objects at once through moto's backend (no HTTP round trips)."""
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key, value in objects.items():
            backend.put_object(bucket, key, value)

    def store_options(self, **extra: Any) -> dict:
        """FsspecStore options that reach this server (short timeouts for tests)."""
        options = {"endpoint_url": self.endpoint_url, "key": ACCESS_KEY,
                   "secret": SECRET_KEY, "client_kwargs": {"region_name": REGION},
                   "connect_timeout": 2.0, "read_timeout": 10.0}
        options.update(extra)
        return options

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
