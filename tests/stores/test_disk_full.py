"""A write that finds no room names the key and the store, and leaves the key as it was.

The child process runs under a file size limit (``RLIMIT_FSIZE``, with
``SIGXFSZ`` ignored, so writes past it fail with ``EFBIG`` as they would on a
full disk) and writes a large value over a small one in a real store.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = r"""
import json, resource, signal, sys
from storegui.stores import open_store, StoreError
from storegui.stores.errors import DiskFullError
url = sys.argv[1]
store = open_store(url)
store.connect()
store.from_bytes("k", b"old value")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))
out = {}
try:
    store.from_bytes("k", b"x" * (4 << 20))
except StoreError as exc:
    out = {"type": type(exc).__name__, "message": str(exc), "full": isinstance(exc, DiskFullError)}
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
out["value"] = store.to_bytes("k").decode()
print(json.dumps(out))
"""


@pytest.mark.parametrize("kind", ["filesystem", "sqlite"])
def test_a_write_past_the_room_left_names_key_and_store_and_keeps_the_old_value(tmp_path, kind):
    url = (tmp_path / "store").as_uri() if kind == "filesystem" else f"sqlite://{tmp_path}/s.db"
    if kind == "filesystem":
        (tmp_path / "store").mkdir()
    done = subprocess.run([sys.executable, "-c", CHILD, url], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["value"] == "old value"
    assert out["full"], out
    assert "'k'" in out["message"] and "nothing was written" in out["message"], out["message"]
    assert "file is larger" in out["message"], out["message"]
