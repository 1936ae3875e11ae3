"""Padded values (docs/api.md#a-mail-server): every string field sent with
spaces, tabs, line breaks, U+00A0 or U+3000 around it, on create, PUT and
PATCH. None is a 5xx; whatever is stored fits its field's limit; a text
field is stored without the spaces at its ends or refused with 422 naming
it; a secret is kept byte for byte (shown through the stand-in provider,
which accepts only the exact client secret and refresh token)."""

import pytest

from mailapi import (CLIENT_ID_MAX, EMAIL_MAX, HOST_MAX, NAME_MAX, SCOPE_MAX, URL_MAX,
                     USERNAME_MAX, basic_body, describe, oauth_body, secret, validation)
from oauth2_support import provider, refresh, server_body

assert provider  # a fixture, used by name

# What the service trims from the ends of a text field (U+0020 and the
# Unicode spaces), and what it refuses anywhere (control characters).
BLANKS = " \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009" \
         "\u200a\u2028\u2029\u202f\u205f\u3000"
PADS = [("space", " "), ("tab", "\t"), ("newline", "\n"), ("nbsp", "\u00a0"),
        ("ideographic-space", "\u3000"), ("mixed", " \u00a0\u3000 ")]
# Enough of the pad to push any field far past its limit when it is counted.
PAD_REPEAT = 400

# field: (auth type, kind, limit, a valid value)
TEXT, STRUCTURED, SECRET = "text", "structured", "secret"
FIELDS = {
    "name": ("basic", TEXT, NAME_MAX, None),
    "sender_name": ("basic", TEXT, NAME_MAX, "Security Console"),
    "username": ("basic", TEXT, USERNAME_MAX, "bob"),
    "client_id": ("oauth2", TEXT, CLIENT_ID_MAX, "client-123"),
    "server": ("basic", STRUCTURED, HOST_MAX, "smtp.example.com"),
    "sender_email": ("basic", STRUCTURED, EMAIL_MAX, "console@example.com"),
    "authorization_url": ("oauth2", STRUCTURED, URL_MAX, "https://login.example.com/authorize"),
    "token_url": ("oauth2", STRUCTURED, URL_MAX, "https://login.example.com/token"),
    "scope": ("oauth2", STRUCTURED, SCOPE_MAX, "openid offline_access"),
    "password": ("basic", SECRET, None, None),
    "secret_key": ("oauth2", SECRET, None, None),
    "access_token": ("oauth2", SECRET, None, None),
    "refresh_token": ("oauth2", SECRET, None, None),
}


def body_for(auth, **over):
    return basic_body(**over) if auth == "basic" else oauth_body(**over)


def core_value(field):
    auth, kind, _, value = FIELDS[field]
    if kind == SECRET:
        return secret(field)
    if field == "name":
        return body_for(auth)["name"]
    return value


def padded_values(core, pad):
    p = pad * PAD_REPEAT
    return [("before", p + core), ("after", core + p), ("around", p + core + p)]


def fits(field, value):
    _, kind, limit, _ = FIELDS[field]
    if kind == TEXT or field == "scope":
        return len(value) <= limit  # characters
    return len(value.encode("utf-8")) <= limit  # bytes


def check_answer(r, field, sent, core, mode):
    """The answer to one padded value: no 5xx; a 422 names exactly this field;
    a success stored something that fits, without the padding for text."""
    assert r.status_code < 500, "%s %s: %s" % (mode, field, describe(r))
    auth, kind, _, _ = FIELDS[field]
    if r.status_code != 200 and r.status_code != 201:
        validation(r, field)
        return None
    rep = r.json()
    if kind == SECRET:
        assert rep[field + "_set"] is True, "%s %s" % (mode, field)
        return rep
    stored = rep[field]
    assert fits(field, stored), "%s %s: stored %d characters" % (mode, field, len(stored))
    if kind == TEXT:
        assert stored == core, "%s %s: stored with its padding" % (mode, field)
    else:
        assert stored in (core, sent), "%s %s: stored something else" % (mode, field)
    return rep


def expected_ok(field, pad):
    """A text field takes space padding (trimmed); a secret takes any padding
    but control characters; the others refuse it."""
    _, kind, _, _ = FIELDS[field]
    control = any(ch in pad for ch in "\t\n")
    if control:
        return False
    return kind in (TEXT, SECRET)


@pytest.mark.parametrize("pad_id,pad", PADS, ids=[p[0] for p in PADS])
@pytest.mark.parametrize("field", list(FIELDS))
def test_a_padded_value_is_stored_trimmed_or_refused(api, field, pad_id, pad):
    auth, kind, _, _ = FIELDS[field]
    core = core_value(field)
    want_ok = expected_ok(field, pad)
    for where, sent in padded_values(core, pad):
        mode = "create/%s" % where
        over = {field: sent}
        r = api.post("/mail-servers", body_for(auth, **over))
        rep = check_answer(r, field, sent, core, mode)
        assert (rep is not None) == want_ok, "%s %s: %s" % (mode, field, describe(r))
        if rep is not None:
            assert api.fetch(rep["id"]) == rep
        api.wipe()  # the name is free again

        base = api.create(body_for(auth))
        before = api.fetch(base["id"])

        mode = "put/%s" % where
        full = body_for(auth, name=before["name"], **over) if field != "name" \
            else body_for(auth, **over)
        r = api.put("/mail-servers/%d" % base["id"], full)
        rep = check_answer(r, field, sent, core, mode)
        assert (rep is not None) == want_ok, "%s %s: %s" % (mode, field, describe(r))
        if rep is None:
            assert api.fetch(base["id"]) == before, "%s %s: a refused PUT changed the row" \
                % (mode, field)
        else:
            assert api.fetch(base["id"]) == rep
        before = api.fetch(base["id"])

        mode = "patch/%s" % where
        r = api.patch("/mail-servers/%d" % base["id"], over)
        rep = check_answer(r, field, sent, core, mode)
        assert (rep is not None) == want_ok, "%s %s: %s" % (mode, field, describe(r))
        if rep is None:
            assert api.fetch(base["id"]) == before, "%s %s: a refused PATCH changed the row" \
                % (mode, field)
        else:
            assert api.fetch(base["id"]) == rep
        api.wipe()


def test_a_padded_name_is_the_same_name(api):
    """The name is unique without regard to case after trimming: a padded copy
    of a taken name is a 409, not a second server."""
    first = api.create(basic_body(name="Office relay"))
    r = api.post("/mail-servers", basic_body(name="\u3000 office RELAY\u00a0"))
    assert r.status_code == 409, describe(r)
    assert [s["id"] for s in api.list_all()] == [first["id"]]


def test_a_space_inside_an_email_is_refused(api):
    for value in ("con\u00a0sole@example.com", "\u3000console@example.com",
                  "console@example.com\u2003"):
        r = api.post("/mail-servers", basic_body(sender_email=value))
        validation(r, "sender_email")


def test_padded_secrets_reach_the_provider_byte_for_byte(api, provider):
    """client_id is text (trimmed); the client secret and the refresh token are
    secrets: the stand-in accepts only the exact bytes it registered."""
    pad = " \u00a0\u3000 "
    provider.client_secret = pad + provider.client_secret + pad
    provider.reset(provider.client_id, provider.client_secret)
    rt = provider.seed(pad + secret("rt") + pad)
    body = server_body(provider, client_id=pad * 100 + provider.client_id + pad * 100,
                       refresh_token=rt, access_token=pad + secret("at"))
    rep = api.create(body)
    assert rep["client_id"] == provider.client_id
    r = refresh(api, rep["id"])
    assert r.status_code == 200, describe(r)
    assert r.json()["oauth2_status"] == "connected"
    assert provider.stats()["refresh_calls"] == 1
