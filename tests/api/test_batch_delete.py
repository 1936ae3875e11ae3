"""POST /mail-servers/batch-delete (docs/api.md#endpoints)."""

import pytest

from mailapi import BATCH_MAX, basic_body, describe, oauth_body, problem, validation


def create_n(api, n):
    return [api.create(basic_body())["id"] for _ in range(n)]


def test_mixed_found_and_not_found(api):
    a, b, c = create_n(api, 3)
    missing = [c + 1000, c + 2000]
    r = api.batch_delete([missing[1], b, missing[0], a])
    assert r.status_code == 200, describe(r)
    assert r.json() == {"deleted": sorted([a, b]), "not_found": sorted(missing)}
    assert [s["id"] for s in api.list_all()] == [c]


def test_duplicates_reported_once(api):
    a, b = create_n(api, 2)
    gone = b + 500
    r = api.batch_delete([b, a, b, gone, a, gone, gone])
    assert r.status_code == 200, describe(r)
    assert r.json() == {"deleted": sorted([a, b]), "not_found": [gone]}
    assert api.snapshot() == {}


def test_only_not_found(api):
    (a,) = create_n(api, 1)
    r = api.batch_delete([a + 1, a + 2])
    assert r.status_code == 200, describe(r)
    assert r.json() == {"deleted": [], "not_found": [a + 1, a + 2]}
    assert list(api.snapshot()) == [a]


def test_already_deleted_are_not_found(api):
    a, b = create_n(api, 2)
    assert api.batch_delete([a]).json() == {"deleted": [a], "not_found": []}
    r = api.batch_delete([a, b])
    assert r.json() == {"deleted": [b], "not_found": [a]}


def test_both_auth_types(api):
    a = api.create(basic_body())["id"]
    o = api.create(oauth_body(is_default=True))["id"]
    r = api.batch_delete([o, a])
    assert r.json() == {"deleted": sorted([a, o]), "not_found": []}


def test_five_hundred_ids(api):
    keep = create_n(api, 3)
    wanted = keep[:2] + [keep[-1] + 10 + i for i in range(BATCH_MAX - 2)]
    r = api.batch_delete(list(reversed(wanted)))
    assert r.status_code == 200, describe(r)
    body = r.json()
    assert body["deleted"] == keep[:2]
    assert body["not_found"] == sorted(wanted[2:])
    assert list(api.snapshot()) == [keep[2]]


@pytest.mark.parametrize("ids", [
    pytest.param([], id="empty"),
    pytest.param(list(range(1, BATCH_MAX + 2)), id="501"),
    pytest.param([0], id="zero"),
    pytest.param([-1], id="negative"),
    pytest.param(["1"], id="string"),
    pytest.param([1.5], id="fraction"),
    pytest.param([True], id="bool"),
    pytest.param([None], id="null"),
    pytest.param([[1]], id="nested-array"),
    pytest.param([{"id": 1}], id="object"),
    pytest.param("1", id="not-a-list"),
    pytest.param(1, id="number"),
    pytest.param(None, id="null-list"),
    pytest.param({"0": 1}, id="object-list"),
])
def test_bad_ids(api, ids):
    keep = create_n(api, 2)
    before = api.snapshot()
    r = api.post("/mail-servers/batch-delete", {"ids": ids})
    validation(r, "ids")
    assert api.snapshot() == before
    assert sorted(before) == keep


def test_one_bad_id_deletes_nothing(api):
    """One transaction: a list with a bad entry deletes none of the good ones."""
    keep = create_n(api, 3)
    before = api.snapshot()
    for bad in ([keep[0], "x", keep[1]], [keep[0], 0], keep + [-5], keep + [2.5]):
        r = api.post("/mail-servers/batch-delete", {"ids": bad})
        validation(r, "ids")
        assert api.snapshot() == before


def test_huge_id(api):
    (a,) = create_n(api, 1)
    r = api.post("/mail-servers/batch-delete", {"ids": [a, 99999999999999999999999]})
    if r.status_code == 200:
        assert r.json()["deleted"] == [a]
    else:
        validation(r, "ids")
        assert list(api.snapshot()) == [a]


def test_id_at_int64_max(api):
    r = api.post("/mail-servers/batch-delete", {"ids": [9223372036854775807]})
    assert r.status_code == 200, describe(r)
    assert r.json() == {"deleted": [], "not_found": [9223372036854775807]}


def test_more_items_than_the_json_limit(api):
    keep = create_n(api, 1)
    r = api.post("/mail-servers/batch-delete", {"ids": keep * 1001})
    assert r.status_code in (400, 422), describe(r)
    assert list(api.snapshot()) == keep


def test_missing_ids(api):
    validation(api.post("/mail-servers/batch-delete", {}), "ids")


def test_unknown_member(api):
    (a,) = create_n(api, 1)
    r = api.post("/mail-servers/batch-delete", {"ids": [a], "force": True})
    validation(r, "force")
    assert list(api.snapshot()) == [a]


def test_not_an_object(api):
    (a,) = create_n(api, 1)
    problem(api.post("/mail-servers/batch-delete", [a]), 400, "bad-request")
    assert list(api.snapshot()) == [a]


def test_batch_delete_is_not_an_id(api):
    """/mail-servers/batch-delete is not an item: GET is a 405, not a 404."""
    problem(api.get("/mail-servers/batch-delete"), 405, "method-not-allowed")
