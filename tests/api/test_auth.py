"""Who may call it (docs/api.md#who-may-call): bearer JWT, pinned HS256, role administrator.

Tokens are minted by build/mailsrv-tool; the bad ones are built here with the
test stack's key (tests/api/mailapi.py make_jwt). No token is ever printed.
"""

import base64
import hashlib
import hmac
import json
import time

import pytest

from mailapi import (Client, b64url, basic_body, claims, describe, jwt_key, make_jwt,
                     mint_token, problem, register_token)


def endpoints(existing_id):
    """(method, path, body) of every operation of section 2 in this suite's scope."""
    item = "/mail-servers/%d" % existing_id
    return [
        ("GET", "/mail-servers", None),
        ("POST", "/mail-servers", basic_body(name="Never created")),
        ("GET", item, None),
        ("PUT", item, basic_body(name="Never replaced")),
        ("PATCH", item, {"name": "Never patched"}),
        ("DELETE", item, None),
        ("POST", "/mail-servers/batch-delete", {"ids": [existing_id]}),
        ("GET", "/mail-servers/default", None),
    ]


def hs256(h, p):
    """The right signature over header and payload parts (for odd headers/payloads)."""
    return b64url(hmac.new(jwt_key(), ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest())


def call(client, method, path, body):
    if body is None:
        return client.request(method, path)
    ctype = "application/merge-patch+json" if method == "PATCH" else "application/json"
    return client.request(method, path, json_body=body, content_type=ctype)


def unauthorized(resp):
    problem(resp, 401, "unauthorized")
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert challenge.split(" ")[0].lower() == "bearer", describe(resp)


@pytest.fixture
def existing(api):
    return api.create(basic_body(name="Protected", is_default=True))


def expect_refused(api, existing, token, status):
    """Every operation refuses the token, and nothing changes."""
    before = api.snapshot()
    client = Client(token=token)
    for method, path, body in endpoints(existing["id"]):
        r = call(client, method, path, body)
        if status == 401:
            unauthorized(r)
        else:
            problem(r, 403, "forbidden")
    assert api.snapshot() == before


def test_valid_token_works(api, existing):
    for method, path, body in endpoints(existing["id"])[:3]:
        r = call(api, method, path, body)
        assert r.status_code in (200, 201), describe(r)


def test_python_built_token_works(api, existing):
    """The control for the forged tokens below: same builder, right key, accepted."""
    r = Client(token=make_jwt(claims())).get("/mail-servers")
    assert r.status_code == 200, describe(r)


def test_tool_token_with_ttl_works(api, existing):
    r = Client(token=mint_token(sub="ttl-test", ttl=120)).get("/mail-servers")
    assert r.status_code == 200, describe(r)


def test_missing_token(api, existing):
    expect_refused(api, existing, None, 401)


@pytest.mark.parametrize("value", [
    "Bearer", "Bearer ", "Bearer  ", "Basic YWRtaW46YWRtaW4=", "Token abc", "abc",
    "Bearer abc", "Bearer a.b", "Bearer a.b.c", "Bearer ...", "Bearer a.b.c.d",
    "Bearer \u00e9\u00e9.\u00e9\u00e9.\u00e9\u00e9",
])
def test_malformed_authorization(api, existing, value):
    before = api.snapshot()
    client = Client(token=None)
    r = client.get("/mail-servers", headers={"Authorization": value.encode("utf-8")})
    unauthorized(r)
    r = client.post("/mail-servers", basic_body(name="Never"),
                    headers={"Authorization": value.encode("utf-8")})
    unauthorized(r)
    assert api.snapshot() == before


def test_bearer_scheme_is_case_insensitive(api, existing):
    tok = mint_token()
    r = Client(token=None).get("/mail-servers", headers={"Authorization": "bearer " + tok})
    assert r.status_code == 200, describe(r)


def test_garbage_base64_parts(api, existing):
    tok = "%s.%s.%s" % (b64url(b"not json"), b64url(b"{}"), b64url(b"x" * 32))
    expect_refused(api, existing, register_token(tok), 401)


def test_bad_signature(api, existing):
    expect_refused(api, existing, make_jwt(claims(), key=b"another key entirely"), 401)


def test_signature_of_another_token(api, existing):
    good = make_jwt(claims(sub="someone"))
    other = make_jwt(claims(sub="someone-else"))
    spliced = register_token(".".join(other.split(".")[:2] + [good.split(".")[2]]))
    expect_refused(api, existing, spliced, 401)


def test_tampered_payload(api, existing):
    good = make_jwt(claims(roles=["auditor"]))
    h, _, s = good.split(".")
    p = b64url(json.dumps(claims(roles=["administrator"])).encode())
    expect_refused(api, existing, register_token("%s.%s.%s" % (h, p, s)), 401)


def test_empty_signature(api, existing):
    good = make_jwt(claims())
    expect_refused(api, existing, register_token(good.rsplit(".", 1)[0] + "."), 401)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none(api, existing, alg):
    tok = make_jwt(claims(), header={"alg": alg, "typ": "JWT"}, alg="none")
    expect_refused(api, existing, tok, 401)


def test_alg_none_with_a_signature(api, existing):
    good = make_jwt(claims())
    tok = make_jwt(claims(), header={"alg": "none", "typ": "JWT"},
                   signature=good.rsplit(".", 1)[1])
    expect_refused(api, existing, tok, 401)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_with_the_right_key(api, existing, alg):
    """The algorithm is pinned by configuration, never taken from the token."""
    expect_refused(api, existing, make_jwt(claims(), alg=alg), 401)


@pytest.mark.parametrize("alg", ["hs256", "Hs256", "RS256", "ES256", "", None])
def test_other_alg_names(api, existing, alg):
    """HS256-signed, but the header names another (or no) algorithm."""
    hdr = {"typ": "JWT"}
    if alg is not None:
        hdr["alg"] = alg
    h = b64url(json.dumps(hdr).encode())
    p = b64url(json.dumps(claims()).encode())
    expect_refused(api, existing, register_token("%s.%s.%s" % (h, p, hs256(h, p))), 401)


def test_expired(api, existing):
    expect_refused(api, existing, make_jwt(claims(ttl=-600)), 401)


def test_expired_long_ago(api, existing):
    c = claims()
    c["exp"] = 1000000000
    expect_refused(api, existing, make_jwt(c), 401)


@pytest.mark.parametrize("exp", ["missing", "string", "float", "null", "huge-string"])
def test_exp_required_integer(api, existing, exp):
    c = claims()
    if exp == "missing":
        del c["exp"]
    elif exp == "string":
        c["exp"] = str(c["exp"])
    elif exp == "float":
        c["exp"] = c["exp"] + 0.5
    elif exp == "null":
        c["exp"] = None
    else:
        c["exp"] = "99999999999"
    expect_refused(api, existing, make_jwt(c), 401)


def test_not_yet_valid(api, existing):
    expect_refused(api, existing, make_jwt(claims(nbf=int(time.time()) + 3600)), 401)


def test_nbf_in_the_past_is_fine(api, existing):
    r = Client(token=make_jwt(claims(nbf=int(time.time()) - 60))).get("/mail-servers")
    assert r.status_code == 200, describe(r)


# The subject names the actor in logs and the audit trail: a token must name one.
@pytest.mark.parametrize("sub", ["", "   ", "\u00a0\u3000", None, 42, ["alice"], {"n": "a"}],
                         ids=["empty", "spaces", "unicode-spaces", "null", "number", "array",
                              "object"])
def test_subject_must_be_a_non_empty_string(api, existing, sub):
    expect_refused(api, existing, make_jwt(claims(sub=sub)), 401)


def test_token_without_subject(api, existing):
    c = claims()
    del c["sub"]
    expect_refused(api, existing, make_jwt(c), 401)


def test_issued_in_the_future(api, existing):
    """iat later than now plus the leeway (30 s): the issuer's clock is wrong,
    or the token was made to outlast its lifetime check."""
    now = int(time.time())
    expect_refused(api, existing, make_jwt(claims(iat=now + 3600)), 401)
    c = claims(iat=now + 600)
    c["exp"] = now + 900
    expect_refused(api, existing, make_jwt(c), 401)


def test_iat_within_the_leeway_is_fine(api, existing):
    r = Client(token=make_jwt(claims(iat=int(time.time()) + 5))).get("/mail-servers")
    assert r.status_code == 200, describe(r)


# MAILSRV_JWT_MAX_TTL (a day unless the stack sets it).
MAX_TTL = 86400


def test_lifetime_over_the_maximum(api, existing):
    now = int(time.time())
    # exp - iat one second over the maximum
    expect_refused(api, existing, make_jwt(claims(ttl=MAX_TTL + 1)), 401)
    # a year-long token
    expect_refused(api, existing, make_jwt(claims(ttl=366 * 86400)), 401)
    # an old iat cannot hide behind a near exp
    c = claims(iat=now - MAX_TTL - 60)
    c["exp"] = now + 60
    expect_refused(api, existing, make_jwt(c), 401)
    # without iat, what is left counts: exp - now
    c = claims()
    del c["iat"]
    c["exp"] = now + MAX_TTL + 3600
    expect_refused(api, existing, make_jwt(c), 401)


def test_lifetime_at_the_maximum_is_fine(api, existing):
    for tok in (make_jwt(claims(ttl=MAX_TTL)), mint_token(sub="day-long", ttl=MAX_TTL)):
        r = Client(token=tok).get("/mail-servers")
        assert r.status_code == 200, describe(r)
    c = claims()
    del c["iat"]
    c["exp"] = int(time.time()) + MAX_TTL - 60
    r = Client(token=make_jwt(c)).get("/mail-servers")
    assert r.status_code == 200, describe(r)


def test_make_token_default_is_accepted(api, existing):
    """`make token` and the tool issue one-hour tokens: within every rule."""
    tok = mint_token(sub="default-ttl")
    payload = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))
    assert payload["exp"] - payload["iat"] == 3600 and payload["sub"] == "default-ttl"
    r = Client(token=tok).get("/mail-servers")
    assert r.status_code == 200, describe(r)


def test_payload_not_an_object(api, existing):
    h = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    for payload in (b"[]", b"\"x\"", b"{", b""):
        p = b64url(payload)
        tok = register_token("%s.%s.%s" % (h, p, hs256(h, p)))
        unauthorized(Client(token=tok).get("/mail-servers"))


def test_padded_base64(api, existing):
    """base64url without padding (RFC 7515); a padded or standard-alphabet token is malformed."""
    good = make_jwt(claims())
    h, p, s = good.split(".")
    std = base64.b64encode(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))).decode()
    if std != s:
        unauthorized(Client(token=register_token("%s.%s.%s" % (h, p, std))).get(
            "/mail-servers"))


def test_long_token(api, existing):
    c = claims(pad="p" * 4000)
    r = Client(token=make_jwt(c, key=b"wrong key")).get("/mail-servers")
    unauthorized(r)


# ---------------------------------------------------------------- roles


@pytest.mark.parametrize("roles", ["auditor", "viewer,operator", "Administrator",
                                   "administrators", "admin"])
def test_tool_token_without_the_role(api, existing, roles):
    expect_refused(api, existing, mint_token(sub="no-role", roles=roles), 403)


def test_tool_token_with_several_roles(api, existing):
    tok = mint_token(sub="multi", roles="auditor,administrator,operator")
    r = Client(token=tok).get("/mail-servers")
    assert r.status_code == 200, describe(r)


@pytest.mark.parametrize("roles", [[], ["auditor"], ["ADMINISTRATOR"], [" administrator"]])
def test_token_without_the_role(api, existing, roles):
    expect_refused(api, existing, make_jwt(claims(roles=roles)), 403)


def test_token_without_roles_claim(api, existing):
    c = claims()
    del c["roles"]
    expect_refused(api, existing, make_jwt(c), 403)


@pytest.mark.parametrize("roles", ["administrator", {"administrator": True}, 1, None,
                                   [["administrator"]]])
def test_roles_claim_not_an_array_of_strings(api, existing, roles):
    """`roles` must be an array of strings: any other shape grants nothing."""
    before = api.snapshot()
    c = claims()
    c["roles"] = roles
    r = Client(token=make_jwt(c)).get("/mail-servers")
    assert r.status_code in (401, 403), describe(r)
    if r.status_code == 401:
        unauthorized(r)
    else:
        problem(r, 403, "forbidden")
    assert api.snapshot() == before


def test_no_token_reveals_nothing_about_ids(api, existing):
    """Without a token an unknown id is a 401 like a known one, not a 404."""
    anon = Client(token=None)
    unauthorized(anon.get("/mail-servers/%d" % (existing["id"] + 999)))
    unauthorized(anon.get("/mail-servers/%d" % existing["id"]))


def test_no_token_on_405_and_bad_id_paths(api, existing):
    anon = Client(token=None)
    for method, path, other in (("DELETE", "/mail-servers", 405),
                                ("GET", "/mail-servers/abc", 404)):
        r = anon.request(method, path)
        assert r.status_code in (401, other), describe(r)
        if r.status_code == 401:
            unauthorized(r)


def test_healthz_needs_no_token(api):
    r = Client(token=None).get("/healthz")
    assert r.status_code == 200, describe(r)
