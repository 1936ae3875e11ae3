"""ETag, If-Match and version (docs/api.md#concurrency-etag-and-if-match)."""

import pytest

from mailapi import basic_body, describe, etag_of, parse_ts, problem, secret


def path(rep):
    return "/mail-servers/%d" % rep["id"]


def test_etag_is_the_version(api):
    rep = api.create(basic_body())
    r = api.get(path(rep))
    assert r.headers["ETag"] == '"1"' == etag_of(r.json()["version"])


def test_version_grows_by_one_on_every_change(api):
    rep = api.create(basic_body())
    assert rep["version"] == 1
    created_at = rep["created_at"]
    last = rep
    changes = [("patch", {"port": 2525}), ("put", basic_body(name=rep["name"], port=25)),
               ("patch", {"password": secret("pw")}), ("patch", {"password": None}),
               ("patch", {"is_default": True}), ("patch", {"name": "Renamed"})]
    for n, (kind, body) in enumerate(changes, start=2):
        if kind == "patch":
            r = api.patch(path(rep), body)
        else:
            r = api.put(path(rep), body)
        assert r.status_code == 200, describe(r)
        new = r.json()
        assert new["version"] == n, kind
        assert r.headers["ETag"] == etag_of(n)
        assert new["created_at"] == created_at
        assert parse_ts(new["updated_at"]) >= parse_ts(last["updated_at"])
        last = new
    g = api.get(path(rep))
    assert g.headers["ETag"] == etag_of(len(changes) + 1)


def test_refused_changes_keep_the_version(api):
    rep = api.create(basic_body())
    other = api.create(basic_body(name="Other"))
    problem(api.patch(path(rep), {"port": 0}), 422, "validation")
    problem(api.patch(path(rep), {"name": "OTHER"}), 409, "conflict")
    problem(api.request("PATCH", path(rep), data=b"{", content_type="application/json"),
            400, "bad-request")
    problem(api.request("PATCH", path(rep), data=b"{}", content_type="text/plain"),
            415, "unsupported-media-type")
    assert api.fetch(rep["id"]) == rep
    assert api.fetch(other["id"]) == other


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_matching_if_match_applies(api, method):
    rep = api.create(basic_body())
    hdr = {"If-Match": etag_of(rep["version"])}
    if method == "PUT":
        r = api.put(path(rep), basic_body(name=rep["name"], port=2525), headers=hdr)
    else:
        r = api.patch(path(rep), {"port": 2525}, headers=hdr)
    assert r.status_code == 200, describe(r)
    assert r.json()["port"] == 2525 and r.headers["ETag"] == etag_of(2)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("tag", ['"1"', '"3"', '"0"', '"abc"', 'W/"2"', '""'])
def test_stale_if_match(api, method, tag):
    rep = api.create(basic_body())
    rep = api.update(rep["id"], {"port": 2525})          # version 2
    hdr = {"If-Match": tag}
    if method == "PUT":
        r = api.put(path(rep), basic_body(name=rep["name"], port=25), headers=hdr)
    elif method == "PATCH":
        r = api.patch(path(rep), {"port": 25}, headers=hdr)
    else:
        r = api.delete(path(rep), headers=hdr)
    problem(r, 412, "precondition-failed")
    assert api.fetch(rep["id"]) == rep


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_if_match_star(api, method):
    rep = api.create(basic_body())
    hdr = {"If-Match": "*"}
    if method == "PUT":
        r = api.put(path(rep), basic_body(name=rep["name"], port=25), headers=hdr)
        assert r.status_code == 200, describe(r)
    elif method == "PATCH":
        r = api.patch(path(rep), {"port": 25}, headers=hdr)
        assert r.status_code == 200, describe(r)
    else:
        r = api.delete(path(rep), headers=hdr)
        assert r.status_code == 204, describe(r)


def test_if_match_on_delete(api):
    rep = api.create(basic_body())
    rep2 = api.update(rep["id"], {"port": 26})
    problem(api.delete(path(rep), headers={"If-Match": etag_of(1)}), 412,
            "precondition-failed")
    assert api.fetch(rep["id"]) == rep2
    r = api.delete(path(rep), headers={"If-Match": etag_of(2)})
    assert r.status_code == 204, describe(r)
    problem(api.get(path(rep)), 404, "not-found")


def test_if_match_list(api):
    rep = api.create(basic_body())
    r = api.patch(path(rep), {"port": 26}, headers={"If-Match": '"7", "1"'})
    assert r.status_code == 200, describe(r)
    r = api.patch(path(rep), {"port": 27}, headers={"If-Match": '"7", "1"'})
    problem(r, 412, "precondition-failed")


def test_without_if_match_the_change_applies(api):
    rep = api.create(basic_body())
    api.update(rep["id"], {"port": 26})
    new = api.update(rep["id"], {"port": 27})            # the client never saw version 2
    assert new["port"] == 27 and new["version"] == 3


def test_lost_update_is_prevented(api):
    """Two editors read version 1; the second one's write is refused."""
    rep = api.create(basic_body())
    tag = api.get(path(rep)).headers["ETag"]
    first = api.patch(path(rep), {"sender_name": "Editor one"}, headers={"If-Match": tag})
    assert first.status_code == 200, describe(first)
    second = api.patch(path(rep), {"sender_name": "Editor two"}, headers={"If-Match": tag})
    problem(second, 412, "precondition-failed")
    assert api.fetch(rep["id"])["sender_name"] == "Editor one"
