"""ModelStore: applying vnmgr snapshots and change events."""

from __future__ import annotations

from vna.modelstore import ModelStore


def test_modelstore_apply_upsert_delete_and_noop():
    store = ModelStore()
    store.load({"networks": {"n": {"uuid": "n", "id": 1}}})
    changes = store.apply(
        [
            {"resource": "networks", "uuid": "n", "op": "upsert", "data": {"uuid": "n", "id": 1}},
            {"resource": "networks", "uuid": "m", "op": "upsert", "data": {"uuid": "m", "id": 2}},
            {"resource": "networks", "uuid": "n", "op": "delete", "data": None},
            {"resource": "routes", "uuid": "x", "op": "delete", "data": None},
        ],
        seq=5,
    )
    assert [(c.uuid, c.old is None, c.new is None) for c in changes] == [
        ("m", True, False),
        ("n", False, True),
    ]
    assert set(store.model["networks"]) == {"m"} and store.seq == 5


def test_modelstore_is_copy_on_write():
    store = ModelStore()
    store.load({"networks": {"n": {"uuid": "n", "id": 1}}})
    before = store.model
    store.apply([{"resource": "networks", "uuid": "n", "op": "delete", "data": None}])
    assert "n" in before["networks"] and "n" not in store.model["networks"]
    resync = store.load({"networks": {"n": {"uuid": "n", "id": 1}}})
    assert [(c.resource, c.uuid) for c in resync] == [("networks", "n")]
