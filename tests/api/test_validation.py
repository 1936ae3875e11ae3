"""Field rules (docs/api.md#a-mail-server) at and over each limit, on create and on patch.

Every refused request must be a 422 validation problem naming exactly the failing
fields, and must change nothing.
"""

import pytest

from mailapi import (CLIENT_ID_MAX, DROP, EMAIL_MAX, HOST_MAX, NAME_MAX, SCOPE_MAX,
                     SECRET_MAX, URL_MAX, USERNAME_MAX, basic_body, describe, oauth_body,
                     problem, secret, unset, validation)

OK, BAD, EITHER = "ok", "bad", "either"

HOST_253 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
HOST_254 = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 62])
EMAIL_254 = "l" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 57, "com"])
EMAIL_255 = "l" * 64 + "@" + ".".join(["b" * 63, "c" * 63, "d" * 58, "com"])
URL_BASE = "https://login.example.com/"
URL_2048 = URL_BASE + "a" * (URL_MAX - len(URL_BASE))
URL_2049 = URL_2048 + "a"
assert len(HOST_253) == HOST_MAX and len(EMAIL_254) == EMAIL_MAX and len(URL_2048) == URL_MAX


def long_secret(n):
    s = secret("long")
    return s + "x" * (n - len(s))


TEXT_FIELDS = ("name", "sender_name", "username", "client_id")
SECRET_FIELDS = ("password", "secret_key", "access_token", "refresh_token")
CONTROL = [("nul", "\u0000"), ("soh", "\u0001"), ("tab", "\t"), ("lf", "\n"), ("cr", "\r"),
           ("esc", "\u001b"), ("del", "\u007f"), ("c1-nel", "\u0085"), ("c1-apc", "\u009f")]


def text_cases(field, max_chars):
    cases = [
        (field, "a", OK, "1-char"),
        (field, "x" * max_chars, OK, "max-ascii"),
        (field, "x" * (max_chars + 1), BAD, "over-ascii"),
        (field, "  " + "x" * max_chars + "  ", OK, "max-counted-after-trimming"),
        (field, "  " + "x" * (max_chars + 1) + "  ", BAD, "over-padded"),
        (field, "\u00e9" * max_chars, OK, "max-2-byte"),
        (field, "\u00e9" * (max_chars + 1), BAD, "over-2-byte"),
        (field, "\u65e5" * max_chars, OK, "max-3-byte"),
        (field, "\U0001F600" * max_chars, OK, "max-emoji"),
        (field, "\U0001F600" * (max_chars + 1), BAD, "over-emoji"),
        # characters are Unicode code points: e + combining acute is two
        (field, "e\u0301" * (max_chars // 2), OK, "max-combining"),
        (field, "e\u0301" * (max_chars // 2 + 1), BAD, "over-combining"),
        (field, "", BAD, "empty"),
        (field, "   ", BAD, "blank"),
        (field, 5, BAD, "number"),
        (field, None, BAD, "null"),
        (field, True, BAD, "bool"),
        (field, ["a"], BAD, "array"),
        (field, {"a": "b"}, BAD, "object"),
    ]
    cases += [(field, "a%sb" % c, BAD, "control-" + n) for n, c in CONTROL]
    return cases


BASIC_CASES = text_cases("name", NAME_MAX) + text_cases("sender_name", NAME_MAX) + [
    ("server", v, OK, "ok-" + i) for i, v in [
        ("fqdn", "smtp.example.com"), ("localhost", "localhost"), ("single", "mail"),
        ("mixed-case", "SMTP.Example.COM"), ("hyphens", "a-b--c.example.com"),
        ("punycode", "xn--bcher-kva.example"), ("digit-first", "1st.example.com"),
        ("label-63", "a" * 63 + ".example.com"), ("253", HOST_253),
        ("ipv4", "192.0.2.1"), ("ipv4-max", "255.255.255.255"), ("loopback", "127.0.0.1"),
        ("ipv6", "2001:db8::1"), ("ipv6-loopback", "::1"), ("ipv6-any", "::"),
        ("ipv6-link-local", "fe80::1"), ("ipv4-mapped", "::ffff:192.0.2.1"),
        ("ipv6-full", "2001:0db8:0000:0000:0000:0000:0000:0001")]
] + [
    ("server", v, BAD, "bad-" + i) for i, v in [
        ("empty", ""), ("blank", " "), ("label-64", "a" * 64 + ".example.com"),
        ("254", HOST_254), ("leading-hyphen", "-smtp.example.com"),
        ("trailing-hyphen", "smtp-.example.com"), ("underscore", "smtp_relay.example.com"),
        ("space", "smtp example.com"), ("leading-space", " smtp.example.com"),
        ("with-port", "smtp.example.com:25"), ("url", "https://smtp.example.com"),
        ("with-path", "smtp.example.com/x"), ("empty-label", "smtp..example.com"),
        ("leading-dot", ".example.com"), ("non-ascii", "ex\u00e4mple.com"),
        ("ipv4-octet-256", "256.1.1.1"), ("ipv6-two-gaps", "2001:db8::1::2"),
        ("ipv6-bad-hex", "2001:db8::g"), ("ipv6-long-group", "12345::1"),
        ("nul", "smtp.example.com\u0000"), ("lf", "smtp.example.com\n"),
        ("number", 25), ("null", None), ("array", ["smtp.example.com"])]
] + [
    ("port", v, OK, "ok-%s" % v) for v in (1, 25, 465, 587, 65535)
] + [
    ("port", v, BAD, "bad-" + i) for i, v in [
        ("0", 0), ("-1", -1), ("65536", 65536), ("70000", 70000), ("string", "25"),
        ("empty", ""), ("null", None), ("bool", True), ("fraction", 25.5),
        ("1e10", 1e10), ("huge", 99999999999999999999), ("array", [25]), ("object", {"p": 25})]
] + [
    ("port", 25.0, EITHER, "25.0"),
] + [
    ("sender_email", v, OK, "ok-" + i) for i, v in [
        ("short", "a@b.co"), ("plain", "console@example.com"),
        ("plus", "first.last+tag@sub.example.com"), ("apostrophe", "o'brien@example.com"),
        ("upper", "UPPER@EXAMPLE.COM"), ("254", EMAIL_254)]
] + [
    ("sender_email", v, BAD, "bad-" + i) for i, v in [
        ("empty", ""), ("no-at", "plainaddress"), ("no-local", "@example.com"),
        ("no-domain", "user@"), ("space-local", "user @example.com"),
        ("space-domain", "user@exa mple.com"), ("leading-space", " user@example.com"),
        ("trailing-space", "user@example.com "), ("two-ats", "a@b@example.com"),
        ("255", EMAIL_255), ("nul", "user\u0000@example.com"), ("lf", "user@example.com\n"),
        ("tab", "user\t@example.com"), ("null", None), ("number", 5)]
] + [
    ("auth_type", v, BAD, "bad-%s" % i) for i, v in [
        ("upper", "BASIC"), ("title", "Basic"), ("oauth", "oauth"), ("OAuth2", "OAuth2"),
        ("ntlm", "ntlm"), ("empty", ""), ("null", None), ("number", 1), ("bool", True)]
] + [
    (f, v, OK, "ok-%s" % v) for f in ("is_default", "enable_ssl") for v in (True, False)
] + [
    (f, v, BAD, "bad-" + i) for f in ("is_default", "enable_ssl") for i, v in [
        ("string", "true"), ("one", 1), ("zero", 0), ("yes", "yes"), ("array", [True])]
] + [
    ("username", v, OK, "ok-" + i) for i, v in [
        ("empty", ""), ("null", None), ("email", "user@example.com"),
        ("domain", "DOMAIN\\user"), ("max", "\u00fc" * USERNAME_MAX)]
] + [
    ("username", v, BAD, "bad-" + i) for i, v in [
        ("over", "\u00fc" * (USERNAME_MAX + 1)), ("nul", "a\u0000b"), ("lf", "a\nb"),
        ("number", 5), ("bool", True)]
] + [
    ("password", v, OK, "ok-" + i) for i, v in [
        ("empty", ""), ("null", None), ("plain", secret("pw")),
        ("punctuation", secret("pw") + " sp'a\"ce\\s \u00fc\U0001F511"),
        ("max", long_secret(SECRET_MAX))]
] + [
    ("password", v, BAD, "bad-" + i) for i, v in [
        ("over", long_secret(SECRET_MAX + 1)), ("nul", secret("pw") + "\u0000x"),
        ("lf", secret("pw") + "\nx"), ("number", 5), ("bool", True)]
] + [
    # fields of the other auth type: null or "" is ignored, a value is refused
    (f, v, OK, "other-type-" + i) for f in ("client_id", "secret_key", "authorization_url",
                                            "token_url", "scope", "access_token",
                                            "refresh_token")
    for i, v in (("null", None), ("empty", ""))
] + [
    (f, v, BAD, "other-type-value") for f, v in [
        ("client_id", "client"), ("secret_key", secret("sk")),
        ("authorization_url", "https://login.example.com/authorize"),
        ("token_url", "https://login.example.com/token"), ("scope", "openid"),
        ("access_token", secret("at")), ("refresh_token", secret("rt"))]
] + [
    (f, DROP, BAD, "missing") for f in ("name", "server", "port", "sender_name",
                                        "sender_email")
]

# (field, value, expected on create, id[, expected on patch])
OAUTH_CASES = [
    ("client_id", v, OK, "ok-" + i) for i, v in [
        ("plain", "client-123"), ("max", "x" * CLIENT_ID_MAX),
        ("max-non-ascii", "\u00fc" * CLIENT_ID_MAX)]
] + [
    ("client_id", v, BAD, "bad-" + i) for i, v in [
        ("missing", DROP), ("empty", ""), ("null", None), ("over", "x" * (CLIENT_ID_MAX + 1)),
        ("number", 5), ("nul", "a\u0000b"), ("lf", "a\nb")]
] + [
    (f, v, OK, "ok-" + i) for f in ("authorization_url", "token_url") for i, v in [
        ("microsoft", "https://login.microsoftonline.com/common/oauth2/v2.0/token"),
        ("ipv4-port", "https://192.0.2.10:8443/token"), ("ipv6-port", "https://[2001:db8::10]:8443/token"),
        ("no-path", "https://example.com"), ("query", "https://example.com/p?q=1&r=2"),
        ("upper-host", "https://LOGIN.Example.com/token"), ("max", URL_2048)]
] + [
    (f, v, BAD, "bad-" + i) for f in ("authorization_url", "token_url") for i, v in [
        ("missing", DROP), ("empty", ""), ("null", None),
        ("http", "http://login.example.com/token"), ("ftp", "ftp://login.example.com/token"),
        ("relative", "/oauth2/token"), ("no-scheme", "login.example.com/token"),
        ("no-host", "https://"), ("empty-host", "https:///token"),
        ("space-host", "https://exa mple.com/token"), ("space-path", "https://example.com/a b"),
        ("nul", "https://example.com/\u0000"), ("javascript", "javascript:alert(1)"),
        ("bad-port", "https://example.com:99999/token"),
        ("bad-host", "https://-bad.example.com/token"), ("over", URL_2049), ("number", 5),
        # RFC 6749 section 3.1 and 3.2: endpoint URIs have no fragment
        ("fragment", "https://login.example.com/token#frag")]
] + [
    ("secret_key", v, OK, "ok-" + i) for i, v in [
        ("plain", secret("sk")), ("max", long_secret(SECRET_MAX))]
] + [
    # required when created with oauth2; on a later patch null/"" just clear it
    ("secret_key", v, BAD, "bad-" + i, p) for i, v, p in [
        ("missing", DROP, OK), ("empty", "", OK), ("null", None, OK)]
] + [
    ("secret_key", v, BAD, "bad-" + i) for i, v in [
        ("over", long_secret(SECRET_MAX + 1)), ("nul", secret("sk") + "\u0000"),
        ("number", 5)]
] + [
    (f, v, OK, "ok-" + i) for f in ("access_token", "refresh_token") for i, v in [
        ("missing", DROP), ("null", None), ("empty", ""), ("plain", secret(f[:2])),
        ("max", long_secret(SECRET_MAX))]
] + [
    (f, v, BAD, "bad-" + i) for f in ("access_token", "refresh_token") for i, v in [
        ("over", long_secret(SECRET_MAX + 1)), ("nul", secret(f[:2]) + "\u0000"),
        ("lf", secret(f[:2]) + "\n"), ("number", 5)]
] + [
    ("scope", v, OK, "ok-" + i) for i, v in [
        ("missing", DROP), ("null", None), ("empty", ""), ("one", "openid"),
        ("several", "https://outlook.office.com/SMTP.Send offline_access"),
        ("max", "x" * SCOPE_MAX)]
] + [
    ("scope", v, BAD, "bad-" + i) for i, v in [
        ("over", "x" * (SCOPE_MAX + 1)), ("nul", "a\u0000b"), ("lf", "a\nb"),
        ("number", 5), ("array", ["openid"])]
] + [
    ("username", v, OK, "other-type-" + i) for i, v in (("null", None), ("empty", ""))
] + [
    ("password", v, OK, "other-type-" + i) for i, v in (("null", None), ("empty", ""))
] + [
    ("username", "bob", BAD, "other-type-value"),
    ("password", secret("pw"), BAD, "other-type-value"),
]


def params(cases, patch=False):
    """pytest params; for patch, without the cases that leave a field out."""
    out = []
    for c in cases:
        field, value, create_exp, cid = c[:4]
        patch_exp = c[4] if len(c) > 4 else create_exp
        if patch and value is DROP:
            continue
        out.append(pytest.param(field, value, create_exp, patch_exp,
                                id="%s-%s" % (field, cid)))
    return out


# URLs are stored in libcurl's normalized form (test_urls.py).
NORMALIZED_URL = {"https://LOGIN.Example.com/token": "https://login.example.com/token",
                  "https://example.com": "https://example.com/"}


def assert_stored(rep, field, value):
    if field.endswith("_url") and value in NORMALIZED_URL:
        assert rep[field] == NORMALIZED_URL[value], field
    elif field in SECRET_FIELDS:
        assert rep[field + "_set"] is (value not in (None, "")), field
    elif value is None or value == "":
        assert unset(rep[field]), field
    elif field == "port" and isinstance(value, float):
        assert rep[field] == int(value)
    elif field in TEXT_FIELDS:
        # text is stored without the spaces at its ends
        assert rep[field] == value.strip(" \u00a0\u3000"), field
    else:
        assert rep[field] == value, field


OTHER_TYPE = {
    "basic": ("client_id", "authorization_url", "token_url", "scope", "secret_key",
              "access_token", "refresh_token"),
    "oauth2": ("username", "password"),
}


def assert_applied(rep, auth_type, field, value):
    """After a successful request: the value is stored, or ignored (other type)."""
    if value is DROP:
        return
    if field in OTHER_TYPE[auth_type]:
        if field in SECRET_FIELDS:
            assert rep[field + "_set"] is False, field
        else:
            assert rep[field] is None, field
    else:
        assert_stored(rep, field, value)


def run_create(api, make, field, value, expected):
    body = make(**{field: value})
    r = api.post("/mail-servers", body)
    if expected == EITHER:
        assert r.status_code in (201, 422), describe(r)
        expected = OK if r.status_code == 201 else BAD
    if expected == OK:
        assert r.status_code == 201, describe(r)
        rep = r.json()
        assert_applied(rep, body["auth_type"], field, value)
        assert api.fetch(rep["id"]) == rep
    else:
        validation(r, field)
        assert api.snapshot() == {}


def run_patch(api, make, field, value, expected):
    old = api.create(make())
    r = api.patch("/mail-servers/%d" % old["id"], {field: value})
    if expected == EITHER:
        assert r.status_code in (200, 422), describe(r)
        expected = OK if r.status_code == 200 else BAD
    if expected == OK:
        assert r.status_code == 200, describe(r)
        rep = r.json()
        assert_applied(rep, old["auth_type"], field, value)
        assert api.fetch(old["id"]) == rep
    else:
        validation(r, field)
        assert api.fetch(old["id"]) == old


@pytest.mark.parametrize("field,value,expected,_patch", params(BASIC_CASES))
def test_create_basic_field(api, field, value, expected, _patch):
    run_create(api, basic_body, field, value, expected)


@pytest.mark.parametrize("field,value,_create,expected", params(BASIC_CASES, patch=True))
def test_patch_basic_field(api, field, value, _create, expected):
    run_patch(api, basic_body, field, value, expected)


@pytest.mark.parametrize("field,value,expected,_patch", params(OAUTH_CASES))
def test_create_oauth2_field(api, field, value, expected, _patch):
    run_create(api, oauth_body, field, value, expected)


@pytest.mark.parametrize("field,value,_create,expected", params(OAUTH_CASES, patch=True))
def test_patch_oauth2_field(api, field, value, _create, expected):
    run_patch(api, oauth_body, field, value, expected)


def test_missing_auth_type(api):
    """auth_type has no default: a create without it is refused (OpenAPI),
    or makes a basic server."""
    r = api.post("/mail-servers", basic_body(auth_type=DROP))
    if r.status_code == 201:
        assert r.json()["auth_type"] == "basic"
    else:
        validation(r, "auth_type")
        assert api.snapshot() == {}


def test_several_failing_fields_at_once(api):
    body = basic_body(name="", server="-bad-", port=0, sender_email="not-an-address",
                      sender_name="x" * (NAME_MAX + 1))
    r = api.post("/mail-servers", body)
    validation(r, "name", "server", "port", "sender_email", "sender_name")
    assert api.snapshot() == {}


def test_several_failing_fields_at_once_on_patch(api):
    old = api.create(basic_body())
    r = api.patch("/mail-servers/%d" % old["id"], {"port": 70000, "sender_email": "x",
                                                   "enable_ssl": "yes"})
    validation(r, "port", "sender_email", "enable_ssl")
    assert api.fetch(old["id"]) == old


def test_several_failing_fields_at_once_oauth2(api):
    body = oauth_body(client_id=DROP, token_url="http://login.example.com/token",
                      authorization_url="not a url", secret_key=DROP)
    r = api.post("/mail-servers", body)
    validation(r, "client_id", "token_url", "authorization_url", "secret_key")
    assert api.snapshot() == {}


def test_failing_fields_of_every_kind_at_once(api):
    body = basic_body(port="25", username="a\u0000b")
    body["colour"] = "blue"
    r = api.post("/mail-servers", body)
    validation(r, "port", "username", "colour")


def test_every_missing_required_field_reported(api):
    r = api.post("/mail-servers", {})
    got = validation(r, "name", "server", "port", "sender_name", "sender_email", exact=False)
    assert got <= {"name", "server", "port", "sender_name", "sender_email", "auth_type"}


@pytest.mark.parametrize("key", ["colour", "Name", "password_confirm", "is_deleted",
                                 "__proto__", "passwd", "oauth2_last_error_code"])
def test_unknown_field(api, key):
    body = basic_body()
    body[key] = "x"
    validation(api.post("/mail-servers", body), key)
    assert api.snapshot() == {}


def test_unknown_field_on_put_and_patch(api):
    old = api.create(basic_body())
    body = basic_body(name=old["name"])
    body["colour"] = "blue"
    validation(api.put("/mail-servers/%d" % old["id"], body), "colour")
    validation(api.patch("/mail-servers/%d" % old["id"], {"colour": "blue"}), "colour")
    assert api.fetch(old["id"]) == old


def test_unknown_empty_key(api):
    body = basic_body()
    body[""] = 1
    r = api.post("/mail-servers", body)
    problem(r, 422, "validation")
    assert api.snapshot() == {}


def test_secret_key_required_when_switching_to_oauth2(api):
    old = api.create(basic_body())
    switch = {"auth_type": "oauth2", "client_id": "client",
              "authorization_url": "https://login.example.com/authorize",
              "token_url": "https://login.example.com/token"}
    validation(api.patch("/mail-servers/%d" % old["id"], switch), "secret_key")
    validation(api.patch("/mail-servers/%d" % old["id"], dict(switch, secret_key="")),
               "secret_key")
    validation(api.put("/mail-servers/%d" % old["id"],
                       oauth_body(name=old["name"], secret_key=DROP)), "secret_key")
    assert api.fetch(old["id"]) == old
    new = api.update(old["id"], dict(switch, secret_key=secret("sk")))
    assert new["auth_type"] == "oauth2" and new["secret_key_set"] is True


def test_switching_to_oauth2_needs_its_fields(api):
    old = api.create(basic_body())
    r = api.patch("/mail-servers/%d" % old["id"], {"auth_type": "oauth2",
                                                   "secret_key": secret("sk")})
    validation(r, "client_id", "authorization_url", "token_url")
    assert api.fetch(old["id"]) == old


def test_put_oauth2_keeps_its_stored_secret_key(api):
    old = api.create(oauth_body())
    new = api.replace(old["id"], oauth_body(name=old["name"], secret_key=DROP))
    assert new["secret_key_set"] is True


def test_switching_to_basic_needs_nothing_else(api):
    old = api.create(oauth_body())
    new = api.update(old["id"], {"auth_type": "basic"})
    assert new["auth_type"] == "basic"


def test_put_validates_like_post(api):
    old = api.create(basic_body())
    r = api.put("/mail-servers/%d" % old["id"], basic_body(name="", port=0))
    validation(r, "name", "port")
    r = api.put("/mail-servers/%d" % old["id"], {"name": "only a name"})
    validation(r, "server", "port", "sender_name", "sender_email", exact=False)
    assert api.fetch(old["id"]) == old


def test_other_type_fields_all_blank_on_create(api):
    """A basic server may carry every oauth2 field as null or "" (a GET shape)."""
    body = basic_body(client_id=None, secret_key="", authorization_url=None, token_url="",
                      scope=None, access_token=None, refresh_token="")
    rep = api.create(body)
    assert rep["client_id"] is None and rep["token_url"] is None
    assert rep["secret_key_set"] is False
