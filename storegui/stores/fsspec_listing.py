"""Listings of FsspecStore: ``list_dir`` as one delimiter listing, and walks of keys.

``list_dir(prefix)`` lists the folder the prefix names with the filesystem's
delimiter listing (``fs.ls``: on S3 one ListObjectsV2 request with
``Delimiter="/"`` per 1,000 children), so its cost grows with the number of
children, not with the size of the store; sizes and modification times come
from that listing. The ``.storegui`` folder at the root is hidden.
"""

from __future__ import annotations

from collections.abc import Iterator

from .fsspec_io import RemoteFS, object_info
from .fsspec_keys import RESERVED, decode_path, decode_segment, encode_key, encode_segment
from .fsspec_keys import url_unquote as _url_unquote
from .keys import check_prefix, split_child
from .value import Entry

#: Above this many top-level folders a walk of every key lists the root flat
#: (one listing) instead of one listing per folder.
_MAX_FOLDER_WALKS = 64


class ListingMixin:
    """``list_dir`` and ``_iter_keys`` for :class:`~.fsspec_store.FsspecStore`."""

    # FsspecStore provides _root, protocol, _live(), _error(), _rel() and _ensure().

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
