"""The secret rules (docs/api.md#secrets), seen through the *_set flags.

Omitted keeps, null and "" clear, a string replaces; switching auth_type clears
the other type's fields; a change of destination clears the secrets bound to it
unless the same request sends them again. (That no secret is ever returned is
checked by test_zz_secrets.py over the whole session.)
"""

import pytest

from mailapi import DROP, basic_body, oauth_body, secret, unset, validation

OAUTH_SECRETS = ("secret_key", "access_token", "refresh_token")


def flags(rep):
    return {k: rep[k + "_set"] for k in ("password",) + OAUTH_SECRETS}


def full_oauth(**over):
    return oauth_body(access_token=secret("at"), refresh_token=secret("rt"), **over)


# ---------------------------------------------------------------- basic


def test_omitted_password_is_kept_on_patch(api):
    rep = api.create(basic_body())
    assert api.update(rep["id"], {"name": "Renamed", "username": "other"})["password_set"]


def test_omitted_password_is_kept_on_put(api):
    rep = api.create(basic_body())
    new = api.replace(rep["id"], basic_body(name="Renamed", password=DROP))
    assert new["password_set"] is True


@pytest.mark.parametrize("value", [None, ""], ids=["null", "empty"])
def test_password_cleared(api, value):
    rep = api.create(basic_body())
    assert api.update(rep["id"], {"password": value})["password_set"] is False
    rep = api.create(basic_body())
    new = api.replace(rep["id"], basic_body(name=rep["name"], password=value))
    assert new["password_set"] is False


def test_password_set_and_replaced(api):
    rep = api.create(basic_body(password=DROP))
    assert rep["password_set"] is False
    assert api.update(rep["id"], {"password": secret("pw")})["password_set"] is True
    assert api.update(rep["id"], {"password": secret("pw")})["password_set"] is True


@pytest.mark.parametrize("change", [{"server": "smtp2.example.com"}, {"port": 465},
                                    {"server": "192.0.2.10", "port": 2525}],
                         ids=["server", "port", "both"])
def test_destination_change_clears_password(api, change):
    rep = api.create(basic_body(server="smtp.example.com", port=587))
    new = api.update(rep["id"], change)
    assert new["password_set"] is False
    assert api.fetch(rep["id"])["password_set"] is False


def test_destination_change_clears_password_on_put(api):
    rep = api.create(basic_body(server="smtp.example.com"))
    new = api.replace(rep["id"], basic_body(name=rep["name"], server="smtp2.example.com",
                                            password=DROP))
    assert new["password_set"] is False


def test_destination_change_with_password_resent(api):
    rep = api.create(basic_body(server="smtp.example.com", port=587))
    new = api.update(rep["id"], {"server": "smtp2.example.com", "password": secret("pw")})
    assert new["password_set"] is True
    new = api.replace(rep["id"], basic_body(name=rep["name"], port=25))
    assert new["password_set"] is True


def test_same_destination_keeps_password(api):
    rep = api.create(basic_body(server="smtp.example.com", port=587))
    new = api.update(rep["id"], {"server": "smtp.example.com", "port": 587})
    assert new["password_set"] is True
    new = api.replace(rep["id"], basic_body(name=rep["name"], server="smtp.example.com",
                                            port=587, password=DROP))
    assert new["password_set"] is True


@pytest.mark.parametrize("change", [{"name": "Other name"}, {"enable_ssl": False},
                                    {"username": "another"}, {"sender_name": "X"},
                                    {"sender_email": "x@example.org"}, {"is_default": True}],
                         ids=["name", "enable_ssl", "username", "sender_name", "sender_email",
                              "is_default"])
def test_other_changes_keep_password(api, change):
    rep = api.create(basic_body())
    assert api.update(rep["id"], change)["password_set"] is True


# ---------------------------------------------------------------- oauth2


def test_oauth2_omitted_secrets_are_kept(api):
    rep = api.create(full_oauth())
    assert flags(rep) == {"password": False, "secret_key": True, "access_token": True,
                          "refresh_token": True}
    new = api.update(rep["id"], {"name": "Renamed", "scope": "openid"})
    assert flags(new) == flags(rep)
    new = api.replace(rep["id"], oauth_body(name="Again", secret_key=DROP))
    assert flags(new) == flags(rep)


@pytest.mark.parametrize("field", OAUTH_SECRETS)
@pytest.mark.parametrize("value", [None, ""], ids=["null", "empty"])
def test_oauth2_secret_cleared(api, field, value):
    """After creation a secret_key is no longer required: null or "" clears it."""
    rep = api.create(full_oauth())
    new = api.update(rep["id"], {field: value})
    want = dict(flags(rep), **{field: False})
    assert flags(new) == want
    assert flags(api.fetch(rep["id"])) == want


@pytest.mark.parametrize("field", OAUTH_SECRETS)
def test_oauth2_secret_replaced(api, field):
    rep = api.create(oauth_body())
    new = api.update(rep["id"], {field: secret(field[:2])})
    assert new[field + "_set"] is True


@pytest.mark.parametrize("change", [
    {"token_url": "https://login.example.com/other/oauth2/v2.0/token"},
    {"authorization_url": "https://login.example.com/other/oauth2/v2.0/authorize"},
    {"client_id": "another-client"},
], ids=["token_url", "authorization_url", "client_id"])
def test_oauth2_destination_change_clears_secrets(api, change):
    rep = api.create(full_oauth())
    new = api.update(rep["id"], change)
    assert flags(new) == {"password": False, "secret_key": False, "access_token": False,
                          "refresh_token": False}
    assert flags(api.fetch(rep["id"])) == flags(new)


def test_oauth2_destination_change_on_put(api):
    rep = api.create(full_oauth())
    body = oauth_body(name=rep["name"], secret_key=DROP,
                      token_url="https://login.example.com/x/token")
    new = api.replace(rep["id"], body)
    assert not any(flags(new).values())


@pytest.mark.parametrize("resent", [("secret_key",), ("access_token", "refresh_token"),
                                    OAUTH_SECRETS],
                         ids=["secret_key", "tokens", "all"])
def test_oauth2_destination_change_with_secrets_resent(api, resent):
    rep = api.create(full_oauth())
    change = {"token_url": "https://login.example.com/moved/token"}
    for f in resent:
        change[f] = secret(f[:2])
    new = api.update(rep["id"], change)
    for f in OAUTH_SECRETS:
        assert new[f + "_set"] is (f in resent), f


@pytest.mark.parametrize("change", [{"scope": "openid"}, {"server": "smtp.other.example"},
                                    {"port": 465}, {"name": "N"},
                                    {"sender_email": "y@example.org"}],
                         ids=["scope", "server", "port", "name", "sender_email"])
def test_oauth2_other_changes_keep_secrets(api, change):
    rep = api.create(full_oauth())
    assert flags(api.update(rep["id"], change)) == flags(rep)


def test_oauth2_same_destination_keeps_secrets(api):
    rep = api.create(full_oauth())
    new = api.update(rep["id"], {"token_url": rep["token_url"], "client_id": rep["client_id"],
                                 "authorization_url": rep["authorization_url"]})
    assert flags(new) == flags(rep)


# ---------------------------------------------------------------- switching


def test_switch_basic_to_oauth2_clears_basic_fields(api):
    rep = api.create(basic_body(username="console"))
    new = api.update(rep["id"], {
        "auth_type": "oauth2", "client_id": "client", "secret_key": secret("sk"),
        "authorization_url": "https://login.example.com/authorize",
        "token_url": "https://login.example.com/token"})
    assert new["auth_type"] == "oauth2"
    assert new["username"] is None and new["password_set"] is False
    assert new["secret_key_set"] is True and new["oauth2_status"] == "not_connected"
    # and back: the basic fields do not reappear
    back = api.update(rep["id"], {"auth_type": "basic"})
    assert unset(back["username"]) and back["password_set"] is False


def test_switch_oauth2_to_basic_clears_oauth2_fields(api):
    rep = api.create(full_oauth())
    new = api.update(rep["id"], {"auth_type": "basic", "username": "u",
                                 "password": secret("pw")})
    assert new["auth_type"] == "basic" and new["username"] == "u"
    assert new["password_set"] is True
    for k in ("client_id", "authorization_url", "token_url", "scope", "oauth2_status",
              "oauth2_last_refreshed_at", "oauth2_last_error", "access_token_expires_at"):
        assert new[k] is None, k
    assert not (new["secret_key_set"] or new["access_token_set"] or new["refresh_token_set"])
    # switching back needs a new secret_key: the old one is gone
    again = {"auth_type": "oauth2", "client_id": rep["client_id"],
             "authorization_url": rep["authorization_url"], "token_url": rep["token_url"]}
    validation(api.patch("/mail-servers/%d" % rep["id"], again), "secret_key")


def test_switch_by_put(api):
    rep = api.create(full_oauth())
    new = api.replace(rep["id"], basic_body(name=rep["name"], password=DROP))
    assert new["auth_type"] == "basic"
    assert not any(flags(new).values())
    assert new["client_id"] is None and new["oauth2_status"] is None


def test_switch_with_get_representation_fields(api):
    """Switching by sending the other type's fields back as null is accepted."""
    rep = api.create(basic_body())
    body = api.fetch(rep["id"])
    body.update({"auth_type": "oauth2", "username": None, "client_id": "c",
                 "secret_key": secret("sk"),
                 "authorization_url": "https://login.example.com/authorize",
                 "token_url": "https://login.example.com/token"})
    new = api.replace(rep["id"], body)
    assert new["auth_type"] == "oauth2" and new["password_set"] is False
