"""Create, read, replace, merge-patch and delete (docs/api.md#endpoints)."""

import pytest

from mailapi import (API, DROP, READ_ONLY_FIELDS, basic_body, describe, etag_of,
                     oauth_body, parse_ts, problem, same_except, secret,
                     unset, validation)

SECRET_FIELDS = ("password", "secret_key", "access_token", "refresh_token")


def no_secret_keys(rep):
    return not any(k in rep for k in SECRET_FIELDS)


def test_healthz_needs_no_token(anon):
    r = anon.get("/healthz")
    assert r.status_code == 200, describe(r)
    assert r.json() == {"status": "ok"}


def test_healthz_ignores_a_bad_token(client_for):
    r = client_for("not-a-token").get("/healthz")
    assert r.status_code == 200, describe(r)


def test_create_basic(api):
    body = basic_body(name="Office relay", server="smtp.example.com", port=587,
                      sender_name="Security Console", sender_email="console@example.com",
                      username="console")
    r = api.post("/mail-servers", body)
    assert r.status_code == 201, describe(r)
    rep = r.json()
    assert isinstance(rep["id"], int) and rep["id"] >= 1
    assert r.headers["Location"].endswith("%s/mail-servers/%d" % (API, rep["id"]))
    assert r.headers["ETag"] == etag_of(1)
    assert rep["version"] == 1
    for k in ("name", "server", "port", "sender_name", "sender_email", "is_default",
              "enable_ssl", "auth_type", "username"):
        assert rep[k] == body[k], k
    assert rep["password_set"] is True
    assert no_secret_keys(rep)
    assert rep["client_id"] is None and rep["authorization_url"] is None
    assert rep["token_url"] is None and rep["scope"] is None
    assert rep["oauth2_status"] is None and rep["oauth2_last_error"] is None
    assert rep["secret_key_set"] is False and rep["access_token_set"] is False
    assert rep["refresh_token_set"] is False and rep["access_token_expires_at"] is None
    assert parse_ts(rep["updated_at"]) >= parse_ts(rep["created_at"])

    g = api.get("/mail-servers/%d" % rep["id"])
    assert g.status_code == 200, describe(g)
    assert g.json() == rep
    assert g.headers["ETag"] == etag_of(1)


def test_create_oauth2(api):
    body = oauth_body()
    rep = api.create(body)
    for k in ("client_id", "authorization_url", "token_url", "scope", "auth_type"):
        assert rep[k] == body[k], k
    assert rep["username"] is None and rep["password_set"] is False
    assert rep["secret_key_set"] is True
    assert rep["access_token_set"] is False and rep["refresh_token_set"] is False
    assert rep["access_token_expires_at"] is None
    assert rep["oauth2_status"] == "not_connected"
    assert rep["oauth2_last_refreshed_at"] is None and rep["oauth2_last_error"] is None
    assert no_secret_keys(rep)
    assert api.fetch(rep["id"]) == rep


def test_create_oauth2_with_tokens_entered_by_hand(api):
    rep = api.create(oauth_body(access_token=secret("at"), refresh_token=secret("rt")))
    assert rep["access_token_set"] is True and rep["refresh_token_set"] is True
    # "An access token entered by hand has no known expiry"
    assert rep["access_token_expires_at"] is None
    assert no_secret_keys(rep)


def test_create_defaults(api):
    rep = api.create(basic_body(is_default=DROP, enable_ssl=DROP, username=DROP,
                                password=DROP))
    assert rep["is_default"] is False
    assert rep["enable_ssl"] is True
    assert unset(rep["username"])
    assert rep["password_set"] is False


def test_create_without_login(api):
    rep = api.create(basic_body(username="", password=""))
    assert unset(rep["username"]) and rep["password_set"] is False


def test_ids_are_distinct(api):
    ids = {api.create(basic_body())["id"] for _ in range(3)}
    assert len(ids) == 3


def test_get_unknown_id(api):
    created = api.create(basic_body())
    r = api.get("/mail-servers/%d" % (created["id"] + 1000))
    problem(r, 404, "not-found")


def test_put_replaces(api):
    old = api.create(basic_body(enable_ssl=False, port=25))
    body = basic_body(name="Replaced", server="mail.example.org", port=465,
                      sender_name="Other sender", sender_email="other@example.org",
                      enable_ssl=True, username="other")
    r = api.put("/mail-servers/%d" % old["id"], body)
    assert r.status_code == 200, describe(r)
    rep = r.json()
    for k in ("name", "server", "port", "sender_name", "sender_email", "enable_ssl",
              "username"):
        assert rep[k] == body[k], k
    assert rep["id"] == old["id"]
    assert rep["version"] == 2 and r.headers["ETag"] == etag_of(2)
    assert rep["created_at"] == old["created_at"]
    assert parse_ts(rep["updated_at"]) >= parse_ts(old["updated_at"])
    assert rep["password_set"] is True
    assert api.fetch(old["id"]) == rep


def test_put_omitted_optional_fields_take_their_defaults(api):
    old = api.create(basic_body(enable_ssl=False, username="someone"))
    rep = api.replace(old["id"], basic_body(name=old["name"], enable_ssl=DROP,
                                            is_default=DROP, username=DROP))
    assert rep["enable_ssl"] is True
    assert rep["is_default"] is False
    assert unset(rep["username"])


def test_put_representation_back_basic(api):
    """A GET representation can be PUT back as it is (read-only and other-type fields)."""
    old = api.create(basic_body())
    rep = api.fetch(old["id"])
    rep["name"] = "Renamed by PUT"
    new = api.replace(old["id"], rep)
    assert new["name"] == "Renamed by PUT"
    assert new["password_set"] is True          # omitted secret: kept
    assert new["version"] == old["version"] + 1
    assert new["created_at"] == old["created_at"]
    assert same_except(new, old, "name", "version", "updated_at")


def test_put_representation_back_oauth2(api):
    old = api.create(oauth_body(access_token=secret("at"), refresh_token=secret("rt")))
    rep = api.fetch(old["id"])
    rep["sender_name"] = "Sender by PUT"
    new = api.replace(old["id"], rep)
    assert new["sender_name"] == "Sender by PUT"
    assert new["secret_key_set"] and new["access_token_set"] and new["refresh_token_set"]
    assert same_except(new, old, "sender_name", "version", "updated_at")


def test_put_unknown_id(api):
    r = api.put("/mail-servers/987654321", basic_body())
    problem(r, 404, "not-found")
    assert api.snapshot() == {}


def test_patch_changes_only_what_it_names(api):
    old = api.create(basic_body())
    r = api.patch("/mail-servers/%d" % old["id"], {"sender_name": "Only this"})
    assert r.status_code == 200, describe(r)
    new = r.json()
    assert new["sender_name"] == "Only this"
    assert new["version"] == 2 and r.headers["ETag"] == etag_of(2)
    assert same_except(new, old, "sender_name", "version", "updated_at")
    assert api.fetch(old["id"]) == new


@pytest.mark.parametrize("ctype", ["application/merge-patch+json", "application/json",
                                   "application/merge-patch+json; charset=utf-8",
                                   "application/json; charset=utf-8"])
def test_patch_media_types(api, ctype):
    old = api.create(basic_body())
    new = api.update(old["id"], {"sender_name": "Patched"}, content_type=ctype)
    assert new["sender_name"] == "Patched"


def test_patch_several_fields(api):
    old = api.create(basic_body())
    new = api.update(old["id"], {"name": "Several", "server": "10.0.0.25", "port": 25,
                                 "password": secret("pw"), "enable_ssl": False})
    assert (new["name"], new["server"], new["port"], new["enable_ssl"]) == \
        ("Several", "10.0.0.25", 25, False)
    assert new["version"] == old["version"] + 1


def test_patch_null_removes_username(api):
    old = api.create(basic_body(username="console"))
    new = api.update(old["id"], {"username": None})
    assert unset(new["username"])
    assert new["password_set"] is True


def test_patch_null_removes_scope(api):
    old = api.create(oauth_body(scope="openid offline_access"))
    new = api.update(old["id"], {"scope": None})
    assert unset(new["scope"])
    assert new["secret_key_set"] is True


@pytest.mark.parametrize("field", ["name", "server", "port", "sender_name", "sender_email",
                                   "auth_type"])
def test_patch_null_for_required_field(api, field):
    old = api.create(basic_body())
    r = api.patch("/mail-servers/%d" % old["id"], {field: None})
    validation(r, field)
    assert api.fetch(old["id"]) == old


def test_patch_null_for_required_oauth2_field(api):
    old = api.create(oauth_body())
    for field in ("client_id", "authorization_url", "token_url"):
        r = api.patch("/mail-servers/%d" % old["id"], {field: None})
        validation(r, field)
    assert api.fetch(old["id"]) == old


def test_patch_unknown_id(api):
    r = api.patch("/mail-servers/987654321", {"port": 25})
    problem(r, 404, "not-found")


def test_patch_read_only_fields_only(api):
    old = api.create(basic_body())
    r = api.patch("/mail-servers/%d" % old["id"], {"id": old["id"] + 5, "version": 42,
                                                   "password_set": False})
    assert r.status_code == 200, describe(r)
    new = api.fetch(old["id"])
    assert same_except(new, old, "version", "updated_at")
    assert new["password_set"] is True


def test_empty_patch_changes_nothing(api):
    old = api.create(basic_body())
    r = api.patch("/mail-servers/%d" % old["id"], {})
    assert r.status_code == 200, describe(r)
    assert same_except(r.json(), old, "version", "updated_at")


def test_delete(api):
    keep = api.create(basic_body())
    gone = api.create(basic_body())
    r = api.delete("/mail-servers/%d" % gone["id"])
    assert r.status_code == 204, describe(r)
    assert r.content == b""
    problem(api.get("/mail-servers/%d" % gone["id"]), 404, "not-found")
    problem(api.delete("/mail-servers/%d" % gone["id"]), 404, "not-found")
    problem(api.put("/mail-servers/%d" % gone["id"], basic_body()), 404, "not-found")
    problem(api.patch("/mail-servers/%d" % gone["id"], {"port": 25}), 404, "not-found")
    assert list(api.snapshot()) == [keep["id"]]


def test_deleted_name_can_be_reused(api):
    gone = api.create(basic_body(name="Reusable"))
    assert api.delete("/mail-servers/%d" % gone["id"]).status_code == 204
    again = api.create(basic_body(name="REUSABLE"))
    assert again["id"] != gone["id"]


BAD_IDS = ["0", "-1", "abc", "1.5", "1e3", "0x10", "9223372036854775807",
           "9223372036854775808", "99999999999999999999999999999999"]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("sid", BAD_IDS)
def test_ids_that_name_no_server(api, method, sid):
    """An id that is not a positive integer (or names nothing) is a 404, never 400/500."""
    existing = api.create(basic_body())
    before = api.snapshot()
    path = "/mail-servers/" + sid
    if method == "GET":
        r = api.get(path)
    elif method == "DELETE":
        r = api.delete(path)
    elif method == "PUT":
        r = api.put(path, basic_body())
    else:
        r = api.patch(path, {"port": 25})
    problem(r, 404, "not-found")
    assert api.snapshot() == before
    assert existing["id"] in before


def test_unknown_path_is_a_problem(api):
    problem(api.get("/mail-servers/1/nothing"), 404, "not-found")
    problem(api.get("/nothing"), 404, "not-found")


TEXTS = [
    "O'Brien \"quoted\" name",
    "back\\slash \\\\ double \\n not-a-newline",
    "Robert'); DROP TABLE mail_server;--",
    "1 OR 1=1; SELECT * FROM pg_user",
    "emoji \U0001F4E7\U0001F600 and \u2709",
    "Zo\u00eb \u65e5\u672c\u8a9e \u0639\u0631\u0628\u064a",
    "percent % underscore _ star *",
    "<script>alert('x')</script> &amp;",
    "{\"json\": [1, 2]}",
    "inner  spaces\u00a0and\u3000wide ones",
]


@pytest.mark.parametrize("text", TEXTS)
def test_text_is_stored_exactly(api, text):
    body = basic_body(name=text, sender_name=text, username=text)
    rep = api.create(body)
    got = api.fetch(rep["id"])
    assert got["name"] == text
    assert got["sender_name"] == text
    assert got["username"] == text
    listed = api.list_all()
    assert [s["name"] for s in listed] == [text]
    # and it survives an update of another field
    again = api.update(rep["id"], {"port": 2525})
    assert (again["name"], again["sender_name"], again["username"]) == (text, text, text)


def test_text_is_stored_without_spaces_at_its_ends(api):
    text = " \u00a0 surrounding spaces\u3000 "
    rep = api.create(basic_body(name=text, sender_name=text, username=text))
    got = api.fetch(rep["id"])
    assert (got["name"], got["sender_name"], got["username"]) == ("surrounding spaces",) * 3
    assert got == rep


def test_oauth2_text_is_stored_exactly(api):
    scope = "openid offline_access https://outlook.office.com/SMTP.Send"
    url = "https://login.example.com/t/oauth2/v2.0/token?x=1&y=%20z&r=a%2Fb&s=~_.-"
    rep = api.create(oauth_body(client_id="id with 'quotes' and \\ and \U0001F600",
                                scope=scope, token_url=url))
    got = api.fetch(rep["id"])
    assert got["client_id"] == "id with 'quotes' and \\ and \U0001F600"
    assert got["scope"] == scope and got["token_url"] == url


def test_unique_name_is_per_server(api):
    """Renaming a server to a different case of its own name is not a conflict."""
    rep = api.create(basic_body(name="Case Test"))
    new = api.update(rep["id"], {"name": "CASE TEST"})
    assert new["name"] == "CASE TEST"


def test_name_taken_on_create(api):
    first = api.create(basic_body(name="Taken"))
    for name in ("Taken", "taken", "TAKEN", "tAkEn"):
        r = api.post("/mail-servers", basic_body(name=name))
        problem(r, 409, "conflict")
    assert list(api.snapshot()) == [first["id"]]


def test_name_taken_non_ascii_case(api):
    api.create(basic_body(name="\u00c4rger Stra\u00dfe \u00c9t\u00e9"))
    r = api.post("/mail-servers", basic_body(name="\u00e4rger stra\u00dfe \u00e9t\u00e9"))
    problem(r, 409, "conflict")


def test_name_taken_on_put_and_patch(api):
    a = api.create(basic_body(name="Alpha"))
    b = api.create(basic_body(name="Beta"))
    problem(api.put("/mail-servers/%d" % b["id"], basic_body(name="ALPHA")), 409, "conflict")
    problem(api.patch("/mail-servers/%d" % b["id"], {"name": "alpha"}), 409, "conflict")
    assert api.fetch(a["id"]) == a
    assert api.fetch(b["id"]) == b


def test_name_conflict_with_other_errors_changes_nothing(api):
    api.create(basic_body(name="Gamma"))
    r = api.post("/mail-servers", basic_body(name="gamma", is_default=True))
    problem(r, 409, "conflict")
    assert len(api.snapshot()) == 1
    problem(api.get("/mail-servers/default"), 404, "not-found")


def test_response_never_has_secret_keys(api):
    a = api.create(basic_body())
    o = api.create(oauth_body(access_token=secret("at"), refresh_token=secret("rt")))
    reps = [a, o, api.fetch(a["id"]), api.fetch(o["id"])] + api.list_all()
    reps.append(api.update(o["id"], {"scope": "x"}))
    assert all(no_secret_keys(rep) for rep in reps)


def test_read_only_fields_ignored_on_create(api):
    body = basic_body(password=DROP)
    body.update({
        "id": 424242, "version": 99, "created_at": "1999-01-01T00:00:00Z",
        "updated_at": "1999-01-01T00:00:00Z", "password_set": True, "secret_key_set": True,
        "access_token_set": True, "refresh_token_set": True,
        "access_token_expires_at": "2999-01-01T00:00:00Z", "oauth2_status": "connected",
        "oauth2_last_refreshed_at": "1999-01-01T00:00:00Z",
        "oauth2_last_error": {"code": "invalid_grant", "description": None},
    })
    rep = api.create(body)
    assert rep["id"] != 424242
    assert rep["version"] == 1
    assert not rep["created_at"].startswith("1999")
    assert not rep["updated_at"].startswith("1999")
    assert rep["password_set"] is False and rep["secret_key_set"] is False
    assert rep["access_token_set"] is False and rep["refresh_token_set"] is False
    assert rep["access_token_expires_at"] is None and rep["oauth2_status"] is None
    assert rep["oauth2_last_refreshed_at"] is None and rep["oauth2_last_error"] is None
    problem(api.get("/mail-servers/424242"), 404, "not-found")


def test_read_only_fields_ignored_on_update(api):
    old = api.create(oauth_body())
    body = oauth_body(name=old["name"], secret_key=DROP)
    for k in READ_ONLY_FIELDS:
        body[k] = old[k]
    body.update({"id": old["id"] + 77, "version": 1000, "oauth2_status": "connected",
                 "access_token_set": True, "secret_key_set": False})
    new = api.replace(old["id"], body)
    assert new["id"] == old["id"] and new["version"] == old["version"] + 1
    assert new["oauth2_status"] == old["oauth2_status"]
    assert new["access_token_set"] is False and new["secret_key_set"] is True
    problem(api.get("/mail-servers/%d" % (old["id"] + 77)), 404, "not-found")


def test_unique_names_across_auth_types(api):
    api.create(basic_body(name="Shared"))
    problem(api.post("/mail-servers", oauth_body(name="shared")), 409, "conflict")
