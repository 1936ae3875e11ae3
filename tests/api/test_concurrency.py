"""Concurrent clients (docs/api.md#the-default-server and #concurrency-etag-and-if-match).

Each thread has its own requests.Session (its own connections). Every response
still goes through the suite's checker; failures are collected and asserted
in the main thread.
"""

import random
import threading

import requests

from mailapi import Client, basic_body, describe, etag_of, mint_token

THREADS = 8
PER_THREAD = 25


def run_threads(n, work):
    """Run work(i, client) in n threads at once; return per-thread results and errors."""
    token = mint_token()
    barrier = threading.Barrier(n)
    results, errors = [None] * n, []
    lock = threading.Lock()

    def runner(i):
        client = Client(token=token, session=requests.Session())
        try:
            barrier.wait(timeout=30)
            results[i] = work(i, client)
        except Exception as e:  # noqa: BLE001 - reported in the main thread
            with lock:
                errors.append("thread %d: %s: %s" % (i, e.__class__.__name__, e))
        finally:
            client.session.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread is still running"
    assert not errors, "\n".join(errors[:5])
    return results


def defaults(api):
    return [s["id"] for s in api.list_all() if s["is_default"]]


def test_moving_the_default_concurrently(api):
    ids = [api.create(basic_body(name="concurrent %d" % i, is_default=(i == 0)))["id"]
           for i in range(5)]

    def work(i, client):
        rng = random.Random(i)
        statuses = []
        for n in range(PER_THREAD):
            sid = rng.choice(ids)
            kind = n % 5
            if kind == 0:
                r = client.put("/mail-servers/%d" % sid,
                               basic_body(name="concurrent %d" % ids.index(sid),
                                          is_default=True))
            elif kind == 1:
                r = client.get("/mail-servers/default")
            elif kind == 2:
                r = client.get("/mail-servers", params={"sort": "-is_default", "limit": 5})
                if r.status_code == 200:
                    marked = [s for s in r.json()["items"] if s["is_default"]]
                    assert len(marked) <= 1, "a list showed %d defaults" % len(marked)
            else:
                r = client.patch("/mail-servers/%d" % sid, {"is_default": True})
            statuses.append(r.status_code)
        return statuses

    results = run_threads(THREADS, work)
    statuses = [s for res in results for s in res]
    assert len(statuses) == THREADS * PER_THREAD
    assert not [s for s in statuses if s >= 500], sorted(set(statuses))
    assert set(statuses) <= {200}, sorted(set(statuses))
    marked = defaults(api)
    assert len(marked) == 1, marked
    r = api.get("/mail-servers/default")
    assert r.status_code == 200 and r.json()["id"] == marked[0], describe(r)


def test_concurrent_creates_as_default(api):
    def work(i, client):
        out = []
        for n in range(5):
            r = client.post("/mail-servers", basic_body(name="t%d-%d" % (i, n),
                                                         is_default=True))
            out.append(r.status_code)
        return out

    statuses = [s for res in run_threads(THREADS, work) for s in res]
    assert statuses == [201] * len(statuses), sorted(set(statuses))
    assert len(api.list_all()) == THREADS * 5
    assert len(defaults(api)) == 1


def test_concurrent_creates_with_one_name(api):
    """Names are unique without regard to case: exactly one wins, the rest get 409."""
    def work(i, client):
        name = "Race Name" if i % 2 else "race name"
        return client.post("/mail-servers", basic_body(name=name)).status_code

    statuses = run_threads(THREADS, work)
    assert sorted(statuses) == [201] + [409] * (THREADS - 1), statuses
    assert len(api.list_all()) == 1


def test_concurrent_if_match(api):
    """Many editors holding the same ETag: exactly one write applies."""
    rep = api.create(basic_body())
    tag = etag_of(rep["version"])

    def work(i, client):
        r = client.patch("/mail-servers/%d" % rep["id"], {"sender_name": "editor %d" % i},
                         headers={"If-Match": tag})
        return r.status_code, r.json() if r.status_code == 200 else None

    results = run_threads(THREADS, work)
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] + [412] * (THREADS - 1), statuses
    winner = [body for s, body in results if s == 200][0]
    now = api.fetch(rep["id"])
    assert now["sender_name"] == winner["sender_name"]
    assert now["version"] == rep["version"] + 1


def test_concurrent_patches_each_bump_the_version(api):
    rep = api.create(basic_body())

    def work(i, client):
        out = []
        for n in range(10):
            r = client.patch("/mail-servers/%d" % rep["id"], {"port": 1000 + i * 10 + n})
            out.append(r.status_code)
        return out

    statuses = [s for res in run_threads(THREADS, work) for s in res]
    assert set(statuses) == {200}, sorted(set(statuses))
    assert api.fetch(rep["id"])["version"] == rep["version"] + THREADS * 10


def test_concurrent_deletes(api):
    ids = [api.create(basic_body())["id"] for _ in range(10)]

    def work(i, client):
        r = client.batch_delete(ids)
        assert r.status_code == 200, describe(r)
        return r.json()

    results = run_threads(THREADS, work)
    deleted = sorted(x for res in results for x in res["deleted"])
    assert deleted == sorted(ids)           # each deleted exactly once
    for res in results:
        assert sorted(res["deleted"] + res["not_found"]) == sorted(ids)
    assert api.list_all() == []
