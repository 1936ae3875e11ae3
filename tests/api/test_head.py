"""HEAD on every GET route (RFC 9110 section 9.3.2): the GET answer's status
and headers, Content-Length included, and no body; the Allow header of a 405
lists HEAD wherever GET is allowed (docs/api.md, "Methods")."""

import socket

import pytest

from mailapi import BASE_URL, Client, basic_body, describe

# Headers that differ between two answers by nature.
VARYING = {"date", "x-request-id", "connection", "keep-alive"}


def heads(resp):
    return {k.lower(): v for k, v in resp.headers.items() if k.lower() not in VARYING}


def same_as_get(client, path, params=None):
    g = client.request("GET", path, params=params)
    h = client.request("HEAD", path, params=params)
    assert h.status_code == g.status_code, "%s / %s" % (describe(g), describe(h))
    assert h.content == b"", describe(h)
    assert heads(h) == heads(g), describe(h)
    # The length of the body GET sends (or none at all).
    if "content-length" in heads(g):
        assert int(h.headers["Content-Length"]) == len(g.content), describe(h)
    return g, h


@pytest.fixture
def server(api):
    return api.create(basic_body())


def test_head_on_every_get_route(api, server, anon):
    sid = server["id"]
    g, _ = same_as_get(api, "/mail-servers")
    assert g.status_code == 200 and g.json()["items"], describe(g)
    g, _ = same_as_get(api, "/mail-servers", params={"limit": 1, "sort": "-name"})
    assert g.status_code == 200
    g, h = same_as_get(api, "/mail-servers/%d" % sid)
    assert g.status_code == 200 and h.headers.get("ETag"), describe(h)
    api.update(sid, {"is_default": True})
    g, _ = same_as_get(api, "/mail-servers/default")
    assert g.status_code == 200, describe(g)
    # The public callback, with a state it does not know.
    g, _ = same_as_get(anon, "/oauth2/callback", params={"state": "x" * 43, "code": "c"})
    assert g.status_code < 500, describe(g)
    g, _ = same_as_get(anon, "/healthz")
    assert g.status_code == 200, describe(g)


def test_head_refusals_match_get(api, anon):
    # The same checks as GET, in the same order: token, id, query.
    for client, path, params, status in (
            (anon, "/mail-servers", None, 401),
            (api, "/mail-servers/999999999", None, 404),
            (api, "/mail-servers/abc", None, 404),
            (api, "/mail-servers", {"limit": 0}, 400),
            (api, "/nothing-here", None, 404)):
        g, h = same_as_get(client, path, params)
        assert g.status_code == status, describe(g)
        assert h.headers["Content-Type"].startswith("application/problem+json"), describe(h)


def test_head_changes_nothing(api, server):
    before = api.snapshot()
    for _ in range(3):
        r = api.request("HEAD", "/mail-servers/%d" % server["id"])
        assert r.status_code == 200, describe(r)
    assert api.snapshot() == before


def test_allow_lists_head_with_get(api, server):
    sid = server["id"]
    for path, allow in (("/mail-servers", "GET, HEAD, POST"),
                        ("/mail-servers/default", "GET, HEAD"),
                        ("/mail-servers/%d" % sid, "GET, HEAD, PUT, PATCH, DELETE"),
                        ("/mail-servers/batch-delete", "POST"),
                        ("/mail-servers/%d/oauth2/refresh" % sid, "POST")):
        r = api.request("OPTIONS", path)
        assert r.status_code == 405, describe(r)
        assert r.headers.get("Allow") == allow, describe(r) + " Allow: %r" % r.headers.get("Allow")
    # HEAD where there is no GET: 405, no body, the route's Allow.
    r = api.request("HEAD", "/mail-servers/batch-delete")
    assert r.status_code == 405 and r.content == b"", describe(r)
    assert r.headers.get("Allow") == "POST", describe(r)


def test_head_on_the_wire(api, server):
    """nginx passes HEAD to the service and sends no body bytes: the next
    answer on the same connection starts right after the head."""
    host, port = BASE_URL.split("//", 1)[1].split(":")
    path = "/api/v1/mail-servers/%d" % server["id"]
    req = ("HEAD {p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n\r\n"
           "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").format(
               p=path, t=api.token)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(req.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    first, _, rest = data.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200"), first[:80]
    length = [int(line.split(b":", 1)[1]) for line in first.split(b"\r\n")
              if line.lower().startswith(b"content-length:")]
    assert length and length[0] > 0, first
    # What follows the head is the second answer, not a body.
    assert rest.startswith(b"HTTP/1.1 200"), rest[:80]
    assert rest.endswith(b'{"status":"ok"}'), rest[-80:]
    # And the length is that of the GET body.
    assert length[0] == len(Client().request("GET", path[len("/api/v1"):]).content)
