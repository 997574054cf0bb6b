"""Push / revert of a key neither store holds says "no such key", not "no local copy"."""

import pytest

from storegui.stores import MemoryStore, MountedStore
from storegui.stores.mounted.rules import Live, MountFacts, push_reason, revert_reason


@pytest.fixture
def store():
    backing = MemoryStore()
    backing.from_bytes("data/remote.txt", b"r")
    s = MountedStore("data/", MemoryStore(), backing)
    s.connect()
    yield s
    s.disconnect()


@pytest.mark.parametrize("action", ["push", "revert"])
def test_a_key_in_neither_store(store, action):
    with pytest.raises(KeyError) as info:
        getattr(store, action)("data/nope")
    assert str(info.value).startswith("no such key 'data/nope'")
    assert getattr(store, f"{action}_denied_reason")("data/nope").startswith(
        "no such key 'data/nope'")


def test_a_backing_only_key_still_has_no_local_copy(store):
    with pytest.raises(KeyError, match="'data/remote.txt' has no local copy to push"):
        store.push("data/remote.txt")
    with pytest.raises(KeyError, match="'data/remote.txt' has no local copy to revert"):
        store.revert("data/remote.txt")


def test_the_rules_say_so_for_the_app():
    facts = MountFacts("data/")
    assert push_reason(Live("data/nope", False, None), facts).startswith("no such key")
    assert revert_reason(Live("data/nope", False, None), facts).startswith("no such key")
    assert "no local copy to push" in push_reason(Live("data/r", False, "remote"), facts)
