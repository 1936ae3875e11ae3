"""Bad input (docs/api.md#bad-input): unreadable bodies are 400, other media types
415, bodies over 64 KiB 413, methods a path does not list 405 with Allow.
Every refusal changes nothing and no input yields a 500 (the response checker
refuses any undocumented status)."""

import json

import pytest

from mailapi import (JSON_MAX_DEPTH, MAX_BODY_BYTES, basic_body, describe, oauth_body,
                     problem, secret, validation)

# ---------------------------------------------------------------- helpers

BODY_TARGETS = ["post", "put", "patch", "batch"]


@pytest.fixture
def existing(api):
    """One server, and the snapshot that refused requests must leave as it is."""
    rep = api.create(basic_body(name="Existing"))
    return rep


def send(api, target, raw, existing, content_type=None, **kw):
    """Send raw bytes to one of the body-taking operations."""
    if target == "post":
        path, method, ctype = "/mail-servers", "POST", "application/json"
    elif target == "put":
        path, method, ctype = "/mail-servers/%d" % existing["id"], "PUT", "application/json"
    elif target == "patch":
        path, method, ctype = ("/mail-servers/%d" % existing["id"], "PATCH",
                               "application/merge-patch+json")
    else:
        path, method, ctype = "/mail-servers/batch-delete", "POST", "application/json"
    return api.request(method, path, data=raw, content_type=content_type or ctype, **kw)


def valid_raw(target, existing):
    """A body that each target would accept."""
    if target == "batch":
        return {"ids": [existing["id"]]}
    if target == "patch":
        return {"port": 2525}
    return basic_body(name="Other" if target == "post" else existing["name"])


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def unchanged(api, before):
    assert api.snapshot() == before


# ---------------------------------------------------------------- 400

NOT_OBJECTS = {
    "empty": b"",
    "whitespace": b"  \n",
    "array": b"[]",
    "array-of-object": b'[{"name": "x"}]',
    "string": b'"x"',
    "number": b"1",
    "null": b"null",
    "true": b"true",
}

SYNTAX = {
    "open-brace": b"{",
    "missing-value": b'{"name":}',
    "single-quotes": b"{'name': 'x'}",
    "trailing-comma": b'{"port": 25,}',
    "unquoted-key": b"{name: 1}",
    "nan": b'{"port": NaN}',
    "infinity": b'{"port": Infinity}',
    "leading-zero": b'{"port": 025}',
    "plus-sign": b'{"port": +25}',
    "hex": b'{"port": 0x19}',
    "raw-control-in-string": b'{"name": "a\x01b"}',
    "raw-newline-in-string": b'{"name": "a\nb"}',
    "bad-escape": b'{"name": "a\\xb"}',
    "short-unicode-escape": b'{"name": "a\\u12"}',
    "unterminated-string": b'{"name": "abc',
    "line-comment": b'{"port": 25 // comment\n}',
    "block-comment": b'{"port": /* c */ 25}',
    "leading-comment": b'/* c */ {"port": 25}',
    "hash-comment": b'# c\n{"port": 25}',
    "trailing-garbage": b'{"port": 25} x',
    "two-objects": b'{"port": 25}{"port": 26}',
    "trailing-nul": b'{"port": 25}\x00',
    "nul-inside": b'{"port":\x00 25}',
}

INVALID_UTF8 = {
    "ff-byte": b'{"name": "\xff"}',
    "lone-continuation": b'{"name": "\x80"}',
    "overlong-slash": b'{"name": "\xc0\xaf"}',
    "utf8-surrogate": b'{"name": "\xed\xa0\x80"}',
    "truncated": b'{"name": "\xe2\x82"}',
    "over-max-codepoint": b'{"name": "\xf4\x90\x80\x80"}',
    "latin1": '{"name": "Zo\u00eb"}'.encode("latin-1"),
    "in-key": b'{"na\xffme": "x"}',
}

DUPLICATES = {
    "top-level": b'{"port": 25, "port": 26}',
    "escaped-same-key": b'{"port": 25, "p\\u006frt": 26}',
    "null-then-value": b'{"username": null, "username": "x"}',
    "ids": b'{"ids": [1], "ids": [2]}',
    "read-only": b'{"version": 1, "version": 2}',
    "nested": b'{"oauth2_last_error": {"code": "a", "code": "b"}}',
}


def nested(depth):
    """A body nested `depth` levels deep (the outer object counts as one)."""
    inner = "[" * (depth - 1) + "1" + "]" * (depth - 1)
    return ('{"port": %s}' % inner).encode()


DEEP = {
    "depth-%d" % (JSON_MAX_DEPTH + 1): nested(JSON_MAX_DEPTH + 1),
    "depth-100": nested(100),
    "depth-10000-arrays": nested(10000),
    "depth-10000-objects": ('{"a":' * 10000 + "1" + "}" * 10000).encode(),
    "depth-60000-unclosed": b"[" * 60000,
}


def cases(table):
    return [pytest.param(v, id=k) for k, v in table.items()]


@pytest.mark.parametrize("target", BODY_TARGETS)
@pytest.mark.parametrize("raw", cases(NOT_OBJECTS))
def test_body_not_an_object(api, existing, target, raw):
    before = api.snapshot()
    problem(send(api, target, raw, existing), 400, "bad-request")
    unchanged(api, before)


@pytest.mark.parametrize("target", BODY_TARGETS)
@pytest.mark.parametrize("raw", cases(SYNTAX))
def test_body_not_json(api, existing, target, raw):
    before = api.snapshot()
    problem(send(api, target, raw, existing), 400, "bad-request")
    unchanged(api, before)


@pytest.mark.parametrize("target", BODY_TARGETS)
@pytest.mark.parametrize("raw", cases(INVALID_UTF8))
def test_body_not_utf8(api, existing, target, raw):
    before = api.snapshot()
    problem(send(api, target, raw, existing), 400, "bad-request")
    unchanged(api, before)


@pytest.mark.parametrize("bad", [pytest.param(v, id=k) for k, v in {
    "ff-byte": b"\xff", "overlong-slash": b"\xc0\xaf", "utf8-surrogate": b"\xed\xa0\x80",
    "over-max-codepoint": b"\xf4\x90\x80\x80", "truncated": b"\xe2\x82"}.items()])
@pytest.mark.parametrize("target", ["post", "put", "patch"])
def test_invalid_utf8_in_an_otherwise_valid_body(api, existing, target, bad):
    """Not valid UTF-8 is a 400 before any field rule (never a 500 from the database)."""
    before = api.snapshot()
    body = valid_raw(target, existing)
    body["sender_name"] = "PLACEHOLDER"
    raw = dumps(body).replace(b"PLACEHOLDER", b"before" + bad + b"after")
    problem(send(api, target, raw, existing), 400, "bad-request")
    unchanged(api, before)


@pytest.mark.parametrize("target", BODY_TARGETS)
@pytest.mark.parametrize("raw", cases(DUPLICATES))
def test_duplicate_keys(api, existing, target, raw):
    before = api.snapshot()
    problem(send(api, target, raw, existing), 400, "bad-request")
    unchanged(api, before)


def test_duplicate_key_in_a_full_create_body(api):
    raw = dumps(basic_body(name="First"))[:-1] + b', "name": "Second"}'
    problem(api.request("POST", "/mail-servers", data=raw, content_type="application/json"),
            400, "bad-request")
    assert api.snapshot() == {}


@pytest.mark.parametrize("target", BODY_TARGETS)
@pytest.mark.parametrize("raw", cases(DEEP))
def test_nested_too_deep(api, existing, target, raw):
    before = api.snapshot()
    problem(send(api, target, raw, existing), 400, "bad-request")
    unchanged(api, before)
    assert api.get("/healthz").status_code == 200


def test_nesting_within_the_limit_is_a_validation_error(api):
    r = api.request("POST", "/mail-servers", content_type="application/json",
                    data=dumps(basic_body(port=[[1]])))
    problem(r, 422, "validation")
    assert api.snapshot() == {}


def test_lone_surrogate_escape(api):
    """\\ud800 is valid JSON syntax but no Unicode character: never stored."""
    raw = dumps(dict(basic_body(), sender_name="PLACEHOLDER")).replace(
        b"PLACEHOLDER", b"a\\ud800b")
    r = api.request("POST", "/mail-servers", data=raw, content_type="application/json")
    assert r.status_code in (400, 422), describe(r)
    assert api.snapshot() == {}


def test_escaped_text_is_decoded(api):
    raw = dumps(dict(basic_body(), name="PLACEHOLDER")).replace(
        b'"PLACEHOLDER"', b'"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/"')
    r = api.request("POST", "/mail-servers", data=raw, content_type="application/json")
    assert r.status_code == 201, describe(r)
    assert r.json()["name"] == "caf\u00e9 \U0001F600 \"q\" \\ /"


@pytest.mark.parametrize("escape", ["\\u0000", "\\u0001", "\\u001f", "\\u007f", "\\u0085",
                                    "\\n", "\\t", "\\r", "\\b", "\\f"])
@pytest.mark.parametrize("field", ["name", "sender_name", "username", "server",
                                   "sender_email", "password"])
def test_escaped_control_characters(api, field, escape):
    """A JSON-escaped NUL or other control character is a 422 naming the field."""
    value = secret("pw") if field == "password" else (
        "smtp.example.com" if field == "server" else
        "a@example.com" if field == "sender_email" else "text")
    raw = dumps(dict(basic_body(), **{field: "PLACEHOLDER"})).replace(
        b'"PLACEHOLDER"', ('"%s%s"' % (value, escape)).encode())
    r = api.request("POST", "/mail-servers", data=raw, content_type="application/json")
    validation(r, field)
    assert api.snapshot() == {}


def test_escaped_nul_in_patch(api, existing):
    r = api.request("PATCH", "/mail-servers/%d" % existing["id"],
                    content_type="application/merge-patch+json",
                    data=b'{"name": "before\\u0000after"}')
    validation(r, "name")
    assert api.fetch(existing["id"]) == existing


def test_too_many_members(api):
    body = basic_body()
    for i in range(300):
        body["extra%03d" % i] = i
    r = api.post("/mail-servers", body)
    assert r.status_code in (400, 422), describe(r)
    assert api.snapshot() == {}


def test_trailing_whitespace_is_fine(api):
    raw = dumps(basic_body()) + b"\r\n \t\n"
    r = api.request("POST", "/mail-servers", data=raw, content_type="application/json")
    assert r.status_code == 201, describe(r)


def test_body_on_delete_is_not_a_crash(api, existing):
    r = api.request("DELETE", "/mail-servers/%d" % existing["id"], data=b"{garbage",
                    content_type="application/json")
    assert r.status_code in (204, 400), describe(r)


def test_service_still_answers(api):
    r = api.get("/healthz")
    assert r.status_code == 200, describe(r)


# ---------------------------------------------------------------- 415

BAD_MEDIA = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
             "application/xml", "text/json", "application/jsonx", "application/json-patch+json",
             "application/problem+json", "*/*", "application", "garbage"]


@pytest.mark.parametrize("target", BODY_TARGETS)
@pytest.mark.parametrize("ctype", BAD_MEDIA)
def test_other_media_type(api, existing, target, ctype):
    before = api.snapshot()
    r = send(api, target, dumps(valid_raw(target, existing)), existing, content_type=ctype)
    problem(r, 415, "unsupported-media-type")
    unchanged(api, before)


@pytest.mark.parametrize("target", BODY_TARGETS)
def test_missing_media_type(api, existing, target):
    before = api.snapshot()
    r = send(api, target, dumps(valid_raw(target, existing)), existing,
             headers={"Content-Type": None})
    assert "Content-Type" not in r.request.headers
    problem(r, 415, "unsupported-media-type")
    unchanged(api, before)


@pytest.mark.parametrize("target", ["post", "put", "batch"])
def test_merge_patch_media_type_only_for_patch(api, existing, target):
    before = api.snapshot()
    r = send(api, target, dumps(valid_raw(target, existing)), existing,
             content_type="application/merge-patch+json")
    problem(r, 415, "unsupported-media-type")
    unchanged(api, before)


def test_media_type_checked_before_the_body(api, existing):
    problem(send(api, "post", b"{not json", existing, content_type="text/plain"),
            415, "unsupported-media-type")


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8",
                                   "application/json;charset=UTF-8",
                                   "Application/JSON", "APPLICATION/JSON; Charset=\"utf-8\""])
def test_accepted_media_type_spellings(api, ctype):
    r = api.request("POST", "/mail-servers", data=dumps(basic_body()), content_type=ctype)
    assert r.status_code == 201, describe(r)


# ---------------------------------------------------------------- 413


def padded(body, size):
    """The JSON body padded with spaces to exactly `size` bytes."""
    raw = dumps(body)
    assert len(raw) <= size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def test_body_of_exactly_64_kib_is_read(api):
    raw = padded(basic_body(), MAX_BODY_BYTES)
    assert len(raw) == MAX_BODY_BYTES
    r = api.request("POST", "/mail-servers", data=raw, content_type="application/json")
    assert r.status_code == 201, describe(r)


@pytest.mark.parametrize("target", BODY_TARGETS)
def test_body_just_over_64_kib(api, existing, target):
    before = api.snapshot()
    raw = padded(valid_raw(target, existing), MAX_BODY_BYTES + 1)
    problem(send(api, target, raw, existing), 413, "payload-too-large")
    unchanged(api, before)


def test_body_of_one_mib(api, existing):
    before = api.snapshot()
    raw = padded(basic_body(), 1024 * 1024)
    problem(send(api, "post", raw, existing), 413, "payload-too-large")
    unchanged(api, before)


def test_chunked_body_over_64_kib(api, existing):
    before = api.snapshot()
    raw = padded(basic_body(), MAX_BODY_BYTES + 4096)

    def chunks():
        for i in range(0, len(raw), 8192):
            yield raw[i:i + 8192]

    r = send(api, "post", chunks(), existing)
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    problem(r, 413, "payload-too-large")
    unchanged(api, before)


def test_chunked_body_under_the_limit(api, existing):
    raw = dumps(basic_body())

    def chunks():
        for i in range(0, len(raw), 16):
            yield raw[i:i + 16]

    r = send(api, "post", chunks(), existing)
    assert r.status_code == 201, describe(r)


def test_large_secret_over_the_limit_is_not_echoed(api, existing):
    before = api.snapshot()
    raw = dumps(basic_body(password=secret("big") + "p" * (MAX_BODY_BYTES + 10)))
    r = send(api, "post", raw, existing)
    problem(r, 413, "payload-too-large")
    unchanged(api, before)


# ---------------------------------------------------------------- 405

ALLOWED = {
    "/mail-servers": {"GET", "POST"},
    "/mail-servers/{id}": {"GET", "PUT", "PATCH", "DELETE"},
    "/mail-servers/batch-delete": {"POST"},
    "/mail-servers/default": {"GET"},
}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def not_allowed():
    for path, allowed in ALLOWED.items():
        for m in METHODS:
            if m not in allowed:
                yield pytest.param(path, m, allowed, id="%s-%s" % (m, path))


def allow_set(resp):
    return {m.strip().upper() for m in resp.headers.get("Allow", "").split(",") if m.strip()}


@pytest.mark.parametrize("path,method,allowed", list(not_allowed()))
def test_method_not_allowed(api, existing, path, method, allowed):
    before = api.snapshot()
    real = path.replace("{id}", str(existing["id"]))
    kw = {}
    if method in ("POST", "PUT", "PATCH"):
        kw = {"data": dumps({"ids": [existing["id"]]} if "batch" in path
                            else basic_body(name=existing["name"])),
              "content_type": "application/json"}
    r = api.request(method, real, **kw)
    problem(r, 405, "method-not-allowed")
    got = allow_set(r)
    assert allowed <= got, describe(r) + " Allow: %s" % sorted(got)
    assert method not in got
    assert not (got - allowed - {"HEAD", "OPTIONS"})
    unchanged(api, before)


def test_method_not_allowed_on_item_with_bad_id(api):
    r = api.request("POST", "/mail-servers/abc", data=b"{}", content_type="application/json")
    assert r.status_code in (404, 405), describe(r)


def test_oauth2_body_with_bad_media_type(api):
    r = api.request("POST", "/mail-servers", data=dumps(oauth_body()), content_type="text/plain")
    problem(r, 415, "unsupported-media-type")
    assert api.snapshot() == {}
