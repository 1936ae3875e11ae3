"""authorization_url and token_url are read by libcurl's URL parser when they
are saved, and what is stored (and shown) is its normalized form, the URL
the service then calls (docs/api.md, "A mail server")."""

from urllib.parse import urlsplit

import pytest

from mailapi import describe, oauth_body, validation
from oauth2_support import connect, console_outcome, provider, server_body

assert provider  # a fixture, used by name

NORMALIZED = [
    ("HTTPS://Login.Example.COM/tenant/Token", "https://login.example.com/tenant/Token"),
    ("https://login.example.com:443/token", "https://login.example.com/token"),
    ("https://login.example.com:0443/token", "https://login.example.com/token"),
    ("https://login.example.com:08443/token", "https://login.example.com:8443/token"),
    ("https://login.example.com", "https://login.example.com/"),
    ("https://login.example.com?x=1", "https://login.example.com/?x=1"),
    ("https://login.example.com/a/./b/../token", "https://login.example.com/a/token"),
    ("https://log%69n.example.com/token", "https://login.example.com/token"),
    ("https://XN--BCHER-KVA.example/token", "https://xn--bcher-kva.example/token"),
    ("https://[2001:DB8::10]:443/token", "https://[2001:db8::10]/token"),
    ("https://192.0.2.10:443/token", "https://192.0.2.10/token"),
]

REFUSED = [
    ("https://a@login.example.com/token", "user"),
    ("https://:@login.example.com/token", "user"),
    ("https://login.example.com\\@evil.example/token", "user"),
    ("https://login.example.com\\evil.example/token", "host"),
    ("https:/login.example.com/token", "https"),
    ("https:\\\\login.example.com/token", "https"),
    ("https:///login.example.com/token", "host"),
    ("https://login.example.com%2fevil/", "host"),
    ("https://b%C3%BCcher.example/token", "host"),
    ("https://bücher.example/token", "ASCII"),
    ("https://login.example.com/a b", "spaces"),
    (" https://login.example.com/token", "spaces"),
    ("https://login.example.com/token\t", "control"),
    ("https://login.example.com:0/token", "port"),
    ("https://login.example.com/token#", "fragment"),
    ("https://[fe80::1%25eth0]/token", "IPv6"),
    # The address policy judges the host libcurl reads.
    ("https://[::ffff:127.0.0.2]/token", "loopback"),
    ("https://[::FFFF:7f00:2]/token", "loopback"),
    # IPv4 only as the dotted quad: parsers disagree on the other spellings.
    ("https://%31%32%37.0.0.1/token", "IPv4"),
    ("https://0x7f.0.0.1/token", "IPv4"),
    ("https://2130706433/token", "IPv4"),
    ("https://3221225994/token", "IPv4"),
    ("https://192.0.2.010/token", "IPv4"),
]


@pytest.mark.parametrize("given,stored", NORMALIZED, ids=[g for g, _ in NORMALIZED])
def test_the_normalized_url_is_stored(api, given, stored):
    rep = api.create(oauth_body(token_url=given, authorization_url=given))
    assert rep["token_url"] == stored and rep["authorization_url"] == stored, rep
    assert api.fetch(rep["id"])["token_url"] == stored
    # PATCH and PUT store the same form.
    rep = api.update(rep["id"], {"token_url": given + ("&y=2" if "?" in given else "?y=2")})
    assert rep["token_url"] == stored + ("&y=2" if "?" in stored else "?y=2"), rep
    body = oauth_body(token_url=given, authorization_url=given)
    body.pop("secret_key")
    rep = api.replace(rep["id"], body, headers={"If-Match": '"%d"' % rep["version"]})
    assert rep["token_url"] == stored and rep["authorization_url"] == stored, rep


@pytest.mark.parametrize("given,why", REFUSED, ids=[g for g, _ in REFUSED])
def test_a_url_read_two_ways_is_refused(api, given, why):
    before = api.snapshot()
    r = api.post("/mail-servers", oauth_body(token_url=given))
    validation(r, "token_url")
    msg = r.json()["errors"][0]["message"]
    assert why in msg, describe(r)
    assert api.snapshot() == before


def test_the_stored_url_is_the_one_called(api, provider):
    """A token URL in an unusual spelling is stored as libcurl reads it, and
    the flow reaches the provider at exactly that URL."""
    real = urlsplit(provider.url("/token"))
    assert real.hostname == "127.0.0.1"
    odd = "HTTPS://127.0.0.1:0%d/x/./../token" % real.port
    s = api.create(server_body(provider, token_url=odd))
    assert s["token_url"] == provider.url("/token"), s
    assert console_outcome(connect(api, provider, s["id"]))["oauth2"] == "connected"
    assert api.fetch(s["id"])["oauth2_status"] == "connected"

