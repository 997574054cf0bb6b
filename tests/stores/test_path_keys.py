"""Keys with empty, '.' or '..' parts: stores keep them, new keys made up by people are refused."""

import pytest

from storegui.stores import MemoryStore
from storegui.stores.errors import InvalidKeyError
from storegui.stores.keys import check_path_key, path_key_problem


@pytest.mark.parametrize(("key", "says"), [
    ("projects/demo/../x", "has a '..' part"),
    ("projects/demo/./x", "has a '.' part"),
    ("..", "has a '..' part"),
    ("projects/demo/a//b", "has two in a row: '/'"),
    ("/x", "starts with '/'"),
])
def test_poor_path_keys_are_named_and_refused(key, says):
    problem = path_key_problem(key)
    assert problem is not None and says in problem and repr(key) in problem
    with pytest.raises(InvalidKeyError, match="key .* part|empty folder name") as info:
        check_path_key(key)
    assert info.value.key == key


@pytest.mark.parametrize("key", ["a/b", "x", "a/...", "a/.hidden", "a/b.", "ünï/ключ"])
def test_ordinary_keys_pass(key):
    assert path_key_problem(key) is None and check_path_key(key) == key


def test_stores_themselves_keep_accepting_them():  # as the contract suite requires
    store = MemoryStore()
    store.from_bytes("dots/../x", b"1")
    store.from_bytes("a//b", b"2")
    assert sorted(store.keys()) == ["a//b", "dots/../x"]
