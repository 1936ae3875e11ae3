"""Listing (docs/api.md#listing-and-search): q, sort, limit, offset and their bad values."""

import pytest

from mailapi import (LIMIT_DEFAULT, LIMIT_MAX, OFFSET_MAX, Q_MAX, basic_body, describe,
                     oauth_body, parse_ts, problem)


def page(api, **params):
    r = api.get("/mail-servers", params=params)
    assert r.status_code == 200, describe(r)
    return r.json()


def ids(items):
    return [s["id"] for s in items]


def test_empty_list(api):
    assert page(api) == {"items": [], "total": 0, "limit": LIMIT_DEFAULT, "offset": 0}


def test_default_limit_and_order(api):
    created = [api.create(basic_body(name="n%03d" % i)) for i in range(LIMIT_DEFAULT + 5)]
    body = page(api)
    assert body["total"] == LIMIT_DEFAULT + 5
    assert body["limit"] == LIMIT_DEFAULT and body["offset"] == 0
    assert ids(body["items"]) == ids(created[:LIMIT_DEFAULT])   # by name
    rest = page(api, offset=LIMIT_DEFAULT)
    assert ids(rest["items"]) == ids(created[LIMIT_DEFAULT:])
    big = page(api, limit=LIMIT_MAX)
    assert ids(big["items"]) == ids(created) and big["limit"] == LIMIT_MAX


def test_paging(api):
    created = [api.create(basic_body(name="p%d" % i)) for i in range(7)]
    seen = []
    for offset in range(0, 9, 3):
        body = page(api, limit=3, offset=offset)
        assert body["total"] == 7 and body["limit"] == 3 and body["offset"] == offset
        seen += ids(body["items"])
    assert seen == ids(created)
    assert ids(page(api, limit=1, offset=6)["items"]) == [created[6]["id"]]


@pytest.mark.parametrize("offset", [7, 8, 1000, OFFSET_MAX])
def test_offset_past_the_end(api, offset):
    for i in range(7):
        api.create(basic_body(name="e%d" % i))
    body = page(api, offset=offset)
    assert body["items"] == [] and body["total"] == 7 and body["offset"] == offset


@pytest.mark.parametrize("limit", ["0", "-1", str(LIMIT_MAX + 1), "1000000000000000000000",
                                   "abc", "1.5", "", "1e2", "0x10", " 5", "5 ", "+5", "5abc"])
def test_bad_limit(api, limit):
    problem(api.get("/mail-servers", params={"limit": limit}), 400, "bad-request")


@pytest.mark.parametrize("offset", ["-1", "abc", "1.5", "", str(OFFSET_MAX + 1),
                                    "99999999999999999999999", "1e2", " 1", "+1"])
def test_bad_offset(api, offset):
    problem(api.get("/mail-servers", params={"offset": offset}), 400, "bad-request")


@pytest.mark.parametrize("sort", ["bogus", "", "-", "--name", "name,port", "password",
                                  "secret_key", "username", "name desc", "-bogus", "NAME",
                                  "name\u0000"])
def test_bad_sort(api, sort):
    problem(api.get("/mail-servers", params={"sort": sort}), 400, "bad-request")


@pytest.mark.parametrize("raw_q", ["x" * (Q_MAX + 1), "%00", "a%00b", "%01", "a%0Ab", "%7F",
                                   "%FF", "%C0%AF", "%ED%A0%80", "%E2%82"])
def test_bad_q(api, raw_q):
    q = raw_q
    if not raw_q.startswith("x"):
        r = api.get("/mail-servers?q=" + raw_q)
    else:
        r = api.get("/mail-servers", params={"q": q})
    problem(r, 400, "bad-request")


def test_q_at_its_limit(api):
    api.create(basic_body(name="z" * 100))
    body = page(api, q="z" * Q_MAX)
    assert body["total"] == 0
    body = page(api, q="Z" * 100)
    assert body["total"] == 1


@pytest.fixture
def searchable(api):
    return {
        "name": api.create(basic_body(name="Alpha Relay", server="smtp.one.example",
                                      sender_name="Mailer", sender_email="a@one.example")),
        "server": api.create(basic_body(name="Second", server="relay-BRAVO.example.net",
                                        sender_name="Mailer", sender_email="b@two.example")),
        "sender_name": api.create(basic_body(name="Third", server="smtp.three.example",
                                             sender_name="Charlie Notices",
                                             sender_email="c@three.example")),
        "sender_email": api.create(oauth_body(name="Fourth", server="smtp.four.example",
                                              sender_name="Mailer",
                                              sender_email="delta.notices@four.example")),
        "none": api.create(basic_body(name="Fifth", server="smtp.five.example",
                                      sender_name="Mailer", sender_email="e@five.example",
                                      username="alphabravocharliedelta")),
    }


@pytest.mark.parametrize("q,field", [("alpha", "name"), ("ALPHA", "name"), ("pha rel", "name"),
                                     ("bravo", "server"), ("Bravo", "server"),
                                     ("charlie", "sender_name"), ("CHARLIE NOT", "sender_name"),
                                     ("delta.notices", "sender_email"),
                                     ("DELTA.NOTICES@FOUR", "sender_email")])
def test_q_searches_four_fields(api, searchable, q, field):
    body = page(api, q=q)
    assert ids(body["items"]) == [searchable[field]["id"]]
    assert body["total"] == 1


def test_q_does_not_search_other_fields(api, searchable):
    assert page(api, q="alphabravocharliedelta")["total"] == 0      # username
    assert page(api, q="0f4c1c1e")["total"] == 0                    # client_id
    assert page(api, q="login.example.com")["total"] == 0           # token_url


def test_q_matching_several(api, searchable):
    body = page(api, q="example")
    assert body["total"] == 5
    body = page(api, q="notices", limit=1)
    assert body["total"] == 2 and len(body["items"]) == 1


def test_empty_q_is_no_filter(api, searchable):
    assert page(api, q="")["total"] == 5


@pytest.mark.parametrize("q,names", [
    ("%", ["100% relay"]), ("_", ["under_score"]), ("\\", ["back\\slash"]),
    ("'", ["O'Brien"]), ("\"", ["say \"hi\""]), ("*", []), ("\U0001F4E7", ["mail \U0001F4E7"]),
    ("\u00e9t\u00e9", ["\u00e9t\u00e9 relay"]), ("a%", []), ("%%", []),
])
def test_q_special_characters_are_literal(api, q, names):
    for n in ["100% relay", "under_score", "underscore", "back\\slash", "O'Brien",
              "say \"hi\"", "mail \U0001F4E7", "\u00e9t\u00e9 relay", "plain"]:
        api.create(basic_body(name=n))
    body = page(api, q=q)
    assert sorted(s["name"] for s in body["items"]) == sorted(names)
    assert body["total"] == len(names)


def test_q_with_sort_and_paging(api, searchable):
    body = page(api, q="mailer", sort="-name", limit=2, offset=1)
    expected = sorted([searchable[k] for k in ("name", "server", "sender_email", "none")],
                      key=lambda s: s["name"], reverse=True)
    assert body["total"] == 4
    assert ids(body["items"]) == ids(expected[1:3])


# ---------------------------------------------------------------- sort

SORT_KEYS = ["name", "server", "port", "sender_name", "sender_email", "is_default",
             "created_at", "updated_at"]


@pytest.fixture
def sortable(api):
    """Servers whose values tie and differ on every key, in an order unlike their ids.

    Values differ only in letters at the same positions, so any collation
    orders them as Python does."""
    rows = [
        ("srv-d", "mx-b.example.com", 587, "sender-b", "s-c@example.com"),
        ("srv-b", "mx-a.example.com", 25, "sender-a", "s-a@example.com"),
        ("srv-e", "mx-b.example.com", 465, "sender-c", "s-b@example.com"),
        ("srv-a", "mx-c.example.com", 25, "sender-b", "s-c@example.com"),
        ("srv-c", "mx-a.example.com", 587, "sender-a", "s-a@example.com"),
        ("srv-f", "mx-c.example.com", 2525, "sender-c", "s-b@example.com"),
    ]
    created = []
    for i, (name, server, port, sname, email) in enumerate(rows):
        created.append(api.create(basic_body(name=name, server=server, port=port,
                                             sender_name=sname, sender_email=email,
                                             is_default=(i == 2))))
    # update in another order, so updated_at differs from created_at's order
    for i in (3, 0, 5):
        api.update(created[i]["id"], {"enable_ssl": False})
    items = api.list_all()
    # The true order of the timestamps is the order of the events (the
    # representation may show them with less precision than they are stored).
    events = {
        "created_at": [c["id"] for c in created],
        "updated_at": [created[i]["id"] for i in (1, 2, 4, 3, 0, 5)],
    }
    return items, events


def expected_order(sortable, key, desc):
    items, events = sortable
    if key in events:
        order = events[key]
        return [s for i in (reversed(order) if desc else order)
                for s in items if s["id"] == i]
    # ties by id ascending in either direction: sort by id, then stable by key
    by_id = sorted(items, key=lambda s: s["id"])
    return sorted(by_id, key=lambda s: s[key], reverse=desc)


@pytest.mark.parametrize("desc", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("key", SORT_KEYS)
def test_sort(api, sortable, key, desc):
    body = page(api, sort=("-" if desc else "") + key)
    assert body["total"] == len(sortable[0])
    want = expected_order(sortable, key, desc)
    assert ids(body["items"]) == ids(want), [s[key] for s in body["items"]]
    if key in ("created_at", "updated_at"):
        shown = [parse_ts(s[key]) for s in body["items"]]
        assert shown == sorted(shown, reverse=desc)


def test_sort_default_is_name(api, sortable):
    assert ids(page(api)["items"]) == ids(page(api, sort="name")["items"])


def test_false_sorts_before_true(api, sortable):
    asc = [s["is_default"] for s in page(api, sort="is_default")["items"]]
    assert asc == sorted(asc) and asc[-1] is True and asc[0] is False
    desc = [s["is_default"] for s in page(api, sort="-is_default")["items"]]
    assert desc[0] is True and desc[1:] == [False] * (len(desc) - 1)


def test_ties_by_id_ascending(api):
    created = [api.create(basic_body(name="tie-%s" % c, port=25)) for c in "dcba"]
    for sort in ("port", "-port", "server", "-server", "is_default", "-is_default"):
        assert ids(page(api, sort=sort)["items"]) == ids(created), sort


def test_sorted_paging_is_stable(api, sortable):
    for key in ("port", "-port", "server", "-sender_email"):
        whole = ids(page(api, sort=key)["items"])
        pieces = []
        for offset in range(0, len(whole), 2):
            pieces += ids(page(api, sort=key, limit=2, offset=offset)["items"])
        assert pieces == whole, key


def test_text_sorts_without_regard_to_case(api):
    created = {n: api.create(basic_body(name=n, server="%s.example.com" % n.lower()))["id"]
               for n in ("b", "A", "C", "d")}
    want = [created[n] for n in ("A", "b", "C", "d")]
    assert ids(page(api, sort="name")["items"]) == want
    assert ids(page(api, sort="-name")["items"]) == want[::-1]
    assert ids(page(api, sort="server")["items"]) == want
