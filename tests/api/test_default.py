"""The single default server (docs/api.md#the-default-server)."""

from mailapi import basic_body, describe, etag_of, oauth_body, problem


def defaults(api):
    return [s["id"] for s in api.list_all() if s["is_default"]]


def get_default(api):
    r = api.get("/mail-servers/default")
    if r.status_code == 404:
        problem(r, 404, "not-found")
        return None
    assert r.status_code == 200, describe(r)
    rep = r.json()
    assert r.headers["ETag"] == etag_of(rep["version"])
    assert rep["is_default"] is True
    return rep


def test_no_default(api):
    api.create(basic_body())
    problem(api.get("/mail-servers/default"), 404, "not-found")


def test_no_server_at_all(api):
    problem(api.get("/mail-servers/default"), 404, "not-found")


def test_create_as_default(api):
    api.create(basic_body())
    d = api.create(basic_body(is_default=True))
    got = get_default(api)
    assert got == api.fetch(d["id"])
    assert defaults(api) == [d["id"]]


def test_create_moves_the_default(api):
    first = api.create(basic_body(is_default=True))
    second = api.create(oauth_body(is_default=True))
    assert defaults(api) == [second["id"]]
    assert get_default(api)["id"] == second["id"]
    old = api.fetch(first["id"])
    assert old["is_default"] is False
    # unmarking is a change of the previous default: its version grows
    assert old["version"] == first["version"] + 1


def test_put_moves_the_default(api):
    first = api.create(basic_body(is_default=True))
    other = api.create(basic_body())
    body = basic_body(name=other["name"], is_default=True)
    moved = api.replace(other["id"], body)
    assert moved["is_default"] is True
    assert defaults(api) == [other["id"]]
    assert api.fetch(first["id"])["version"] == first["version"] + 1


def test_patch_moves_the_default(api):
    a = api.create(basic_body(is_default=True))
    b = api.create(basic_body())
    c = api.create(oauth_body())
    for target in (b, c, a, c):
        api.update(target["id"], {"is_default": True})
        assert defaults(api) == [target["id"]]
        assert get_default(api)["id"] == target["id"]


def test_marking_the_default_again_keeps_one(api):
    a = api.create(basic_body(is_default=True))
    again = api.update(a["id"], {"is_default": True})
    assert again["is_default"] is True
    assert defaults(api) == [a["id"]]


def test_unmarking_leaves_none(api):
    a = api.create(basic_body(is_default=True))
    api.update(a["id"], {"is_default": False})
    assert defaults(api) == []
    problem(api.get("/mail-servers/default"), 404, "not-found")


def test_put_without_is_default_unmarks(api):
    """PUT replaces: an omitted is_default is false."""
    a = api.create(basic_body(is_default=True))
    body = basic_body(name=a["name"])
    del body["is_default"]
    assert api.replace(a["id"], body)["is_default"] is False
    problem(api.get("/mail-servers/default"), 404, "not-found")


def test_deleting_the_default_leaves_none(api):
    a = api.create(basic_body(is_default=True))
    api.create(basic_body())
    assert api.delete("/mail-servers/%d" % a["id"]).status_code == 204
    problem(api.get("/mail-servers/default"), 404, "not-found")
    assert defaults(api) == []


def test_batch_deleting_the_default_leaves_none(api):
    a = api.create(basic_body(is_default=True))
    b = api.create(basic_body())
    r = api.batch_delete([a["id"]])
    assert r.status_code == 200, describe(r)
    problem(api.get("/mail-servers/default"), 404, "not-found")
    assert [s["id"] for s in api.list_all()] == [b["id"]]


def test_refused_requests_do_not_move_the_default(api):
    a = api.create(basic_body(name="Keeper", is_default=True))
    b = api.create(basic_body())
    before = api.snapshot()
    # invalid
    r = api.patch("/mail-servers/%d" % b["id"], {"is_default": True, "port": 0})
    problem(r, 422, "validation")
    r = api.post("/mail-servers", basic_body(is_default=True, sender_email="x"))
    problem(r, 422, "validation")
    # name taken
    r = api.post("/mail-servers", basic_body(name="KEEPER", is_default=True))
    problem(r, 409, "conflict")
    r = api.put("/mail-servers/%d" % b["id"], basic_body(name="keeper", is_default=True))
    problem(r, 409, "conflict")
    # stale If-Match
    r = api.patch("/mail-servers/%d" % b["id"], {"is_default": True},
                  headers={"If-Match": etag_of(b["version"] + 7)})
    problem(r, 412, "precondition-failed")
    assert api.snapshot() == before
    assert get_default(api)["id"] == a["id"]


def test_default_reflects_later_changes(api):
    a = api.create(basic_body(is_default=True))
    api.update(a["id"], {"sender_name": "Changed"})
    got = get_default(api)
    assert got["sender_name"] == "Changed" and got["version"] == a["version"] + 1
