"""Two hosts behind a front load balancer, as deploy/README.md ("Several
hosts") lays them out (layout.py): what the README claims of that layout,
shown on it.

1. The single default holds across hosts: concurrent moves through host a,
   host b and the front leave exactly one default, at every sampled instant
   and at the end, in PostgreSQL and through every entry point; the moves
   form one chain in the audit trail; the hosts took the client's address
   from the front's X-Forwarded-For.
2. No stickiness: an OAuth flow authorized through host a completes its
   callback through host b (the browser's cookie travels with the browser,
   not with the host), and fifty concurrent refreshes spread over both
   hosts make one call to the provider.
3. A host's service stopped (SIGTERM to its master) under a steady load of
   GETs through the front costs no failed GET (the front tries the other
   host on the stopped one's 503), and the host rejoins once started again.

Each test prints one "TWOHOSTS name: figures" line (support.report).
"""

import random
import threading
import time
from urllib.parse import parse_qs, urlsplit

import requests

import layout
import mailapi
from oauth_provider import StandIn
from support import (Api, Load, LogTail, PsqlSession, front_lines, host_lines, now, psql, report,
                     unique)


def entry_points(hosts):
    """host a, host b and the front; the front's client sends from
    127.0.0.2, so the hosts can tell it from the tests' 127.0.0.1."""
    return [Api("a", hosts.a.base, hosts.ca), Api("b", hosts.b.base, hosts.ca),
            Api("front", hosts.front.base, hosts.ca, source="127.0.0.2")]


# The count of defaults and the default's id, in one snapshot.
DEFAULT_ROWS = "SELECT count(*), coalesce(min(id), 0) FROM mail_server WHERE is_default"


def default_rows():
    n, sid = psql(DEFAULT_ROWS)[0]
    return int(n), int(sid)


# ---------------------------------------------------------------- 1


def test_concurrent_default_moves_through_both_hosts_keep_one_default(hosts):
    apis = entry_points(hosts)
    front = apis[2]
    names = {}
    for i in range(6):
        s = front.create(mailapi.basic_body(name=unique("default move %d" % i),
                                            is_default=(i == 0)))
        names[s["id"]] = s["name"]
    ids = sorted(names)
    first_event = int(psql("SELECT coalesce(max(id), 0) FROM audit_event")[0][0])
    front_log = LogTail(hosts.front.nginx.access_log)
    threads_n, per_thread = 9, 20
    done = threading.Event()
    moves, samples, db_samples, errors = [], [], [], []
    lock = threading.Lock()

    def mover(i):
        api = entry_points(hosts)[i % 3]
        rnd = random.Random(i)
        try:
            for n in range(per_thread):
                sid = rnd.choice(ids)
                if n % 2:
                    r = api.request("PATCH", "/mail-servers/%d" % sid, {"is_default": True},
                                    ctype="application/merge-patch+json")
                else:
                    r = api.request("PUT", "/mail-servers/%d" % sid,
                                    mailapi.basic_body(name=names[sid], is_default=True))
                with lock:
                    moves.append((api.name, r.request.method, r.status_code,
                                  r.headers.get("X-Request-Id")))
        except Exception as e:  # noqa: BLE001  (shown by the assertion below)
            with lock:
                errors.append("%s: %s" % (api.name, e.__class__.__name__))

    def db_sampler():
        # Snapshots of PostgreSQL as often as one psql answers.
        session = PsqlSession()
        try:
            while not done.is_set():
                n, sid = session.query(DEFAULT_ROWS)[0]
                db_samples.append((int(n), int(sid)))
        except Exception as e:  # noqa: BLE001  (shown by the assertion below)
            errors.append("database sampler: %s" % e.__class__.__name__)
        finally:
            session.close()

    def api_sampler():
        # What the entry points say meanwhile, in turn.
        k = 0
        try:
            while not done.is_set():
                api = apis[k % 3]
                k += 1
                r = api.get("/mail-servers/default")
                got = r.json().get("id") if r.status_code == 200 else None
                flag = r.json().get("is_default") if r.status_code == 200 else None
                lst = api.get("/mail-servers", params={"sort": "-is_default", "limit": 5})
                marked = ([x["id"] for x in lst.json()["items"] if x["is_default"]]
                          if lst.status_code == 200 else None)
                samples.append((api.name, r.status_code, got, flag, lst.status_code, marked))
        except Exception as e:  # noqa: BLE001
            errors.append("API sampler (%s): %s" % (api.name, e.__class__.__name__))

    samplers = [threading.Thread(target=db_sampler), threading.Thread(target=api_sampler)]
    workers = [threading.Thread(target=mover, args=(i,)) for i in range(threads_n)]
    for t in samplers:
        t.start()
    t0 = now()
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    elapsed = now() - t0
    done.set()
    for t in samplers:
        t.join(30)
    assert not any(t.is_alive() for t in workers + samplers), "a thread is still running"
    assert not errors, errors[:5]

    # Every move answered 200, through each of the three entry points.
    assert len(moves) == threads_n * per_thread
    bad = sorted({(m[0], m[1], m[2]) for m in moves if m[2] != 200})
    assert not bad, bad
    assert {m[0] for m in moves} == {"a", "b", "front"}
    # The front spread its share over both hosts.
    served = [ln.upstreams[-1] for ln in front_lines(front_log) if ln.method in ("PUT", "PATCH")]
    assert {hosts.a.addr, hosts.b.addr} <= set(served), served[:10]

    # Every sample: one default in PostgreSQL, and every entry point named one.
    assert len(db_samples) >= 20 and len(samples) >= 10, (len(db_samples), len(samples))
    wrong_db = [s for s in db_samples if s[0] != 1 or s[1] not in ids]
    assert not wrong_db, wrong_db[:5]
    moved_seen = len({s[1] for s in db_samples})
    wrong_get = [s for s in samples if s[1] != 200 or s[2] not in ids or s[3] is not True]
    assert not wrong_get, wrong_get[:5]
    wrong_list = [s for s in samples if s[4] != 200 or len(s[5]) != 1]
    assert not wrong_list, wrong_list[:5]

    # At the end: one default, the same in PostgreSQL and through a, b and the front.
    n, final = default_rows()
    assert n == 1 and final in ids, (n, final)
    for api in apis:
        r = api.get("/mail-servers/default")
        assert r.status_code == 200 and r.json()["id"] == final, (api.name, r.status_code)
        marked = [x["id"] for x in api.get("/mail-servers", params={"sort": "-is_default",
                                                                   "limit": 5}).json()["items"]
                  if x["is_default"]]
        assert marked == [final], (api.name, marked)

    # The moves form one chain in the audit trail: each took the mark from
    # the server the one before it gave it to, whichever host made it.
    chain = psql("SELECT details->>'from', details->>'to' FROM audit_event"
                 " WHERE id > %d AND action = 'mail_server.default_moved' ORDER BY id"
                 % first_event)
    assert chain, "no default_moved event"
    broken = [(i, prev, cur) for i, (prev, cur) in enumerate(zip(chain, chain[1:]))
              if cur[0] != prev[1]]
    assert not broken, broken[:5]
    assert int(chain[-1][1]) == final

    # The hosts took the client's address from the front's X-Forwarded-For
    # (REAL_IP_FROM): the front's client is 127.0.0.2, the direct ones 127.0.0.1.
    rid_via = {m[3]: m[0] for m in moves}
    rows = psql("SELECT request_id, client_address FROM audit_event WHERE id > %d"
                " AND action = 'mail_server.updated'" % first_event)
    seen = {"a": set(), "b": set(), "front": set()}
    for rid, addr in rows:
        if rid in rid_via:
            seen[rid_via[rid]].add(addr)
    assert seen == {"a": {"127.0.0.1"}, "b": {"127.0.0.1"}, "front": {"127.0.0.2"}}, seen

    # Each host worked with database connections of its own.
    conns = dict((r[0], int(r[1])) for r in psql(
        "SELECT application_name, count(*) FROM pg_stat_activity"
        " WHERE application_name IN ('%s', '%s') GROUP BY 1"
        % (hosts.a.service.app_name, hosts.b.service.app_name)))
    assert conns.get(hosts.a.service.app_name, 0) >= 1, conns
    assert conns.get(hosts.b.service.app_name, 0) >= 1, conns

    report("default_moves", moves=len(moves), threads=threads_n,
           failed=len([m for m in moves if m[2] != 200]), seconds="%.1f" % elapsed,
           db_samples=len(db_samples), db_samples_not_one=len(wrong_db),
           defaults_seen_in_samples=moved_seen, api_samples=len(samples),
           chain_events=len(chain),
           front_to_a=served.count(hosts.a.addr), front_to_b=served.count(hosts.b.addr),
           db_conns_a=conns[hosts.a.service.app_name],
           db_conns_b=conns[hosts.b.service.app_name])


# ---------------------------------------------------------------- 2


def outcome(resp):
    """The console URL's query of the callback's 303, as a dict."""
    assert resp.status_code == 303, "the callback answered %d" % resp.status_code
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}


def test_oauth_flow_across_hosts_and_one_refresh_for_fifty(hosts):
    ca_dir = layout.STACK_VAR / "test-ca"
    assert (ca_dir / "ca.pem").exists(), "the stack's test CA is missing (tests/oauth_ca.sh)"
    p = StandIn(ca_dir, mailapi.SECRET_PREFIX)
    try:
        client_id, client_secret = "client-%s" % unique("x")[-6:], mailapi.secret("sk")
        p.reset(client_id, client_secret)
        a, b, front = entry_points(hosts)
        s = front.create(mailapi.oauth_body(
            name=unique("two hosts oauth"), client_id=client_id, secret_key=client_secret,
            authorization_url=p.url("/authorize"), token_url=p.url("/token")))
        sid = s["id"]
        log_a, log_b = LogTail(hosts.a.nginx.access_log), LogTail(hosts.b.nginx.access_log)

        # The administrator's browser: one session, its cookies kept.
        browser = a.session
        r = a.request("POST", "/mail-servers/%d/oauth2/authorize" % sid)
        assert r.status_code == 200, "authorize through host a answered %d" % r.status_code
        cookies = [c for c in browser.cookies if c.name.startswith("mailsrv_oauth2_")]
        assert len(cookies) == 1 and cookies[0].secure, "no Secure flow cookie"
        at_provider = requests.get(r.json()["authorization_url"], verify=p.ca,
                                           allow_redirects=False, timeout=10)
        assert at_provider.status_code == 302
        back = urlsplit(at_provider.headers["Location"])
        # redirect_uri is the public URL (the front's), whichever host built it.
        assert "%s://%s%s" % (back.scheme, back.netloc, back.path) == \
            hosts.front.base + "/api/v1/oauth2/callback"
        callback_b = hosts.b.base + back.path + "?" + back.query

        # Through host b without the browser's cookie: refused, nothing called.
        stranger = requests.get(callback_b, verify=hosts.ca, allow_redirects=False,
                                        timeout=30)
        refused = outcome(stranger)
        assert refused.get("oauth2") == "error" and refused.get("error") == "invalid_state", \
            refused
        assert p.stats()["code_calls"] == 0
        # Through host b with it: connected.
        t0 = now()
        done = browser.get(callback_b, allow_redirects=False, timeout=30, verify=hosts.ca)
        callback_s = now() - t0
        assert outcome(done).get("oauth2") == "connected", outcome(done)
        st = p.stats()
        assert st["code_calls"] == 1 and st["pkce_verified"] == 1
        rep = front.fetch(sid)
        assert rep["oauth2_status"] == "connected" and rep["refresh_token_set"] is True
        time.sleep(0.3)  # nginx writes its access log line after the answer
        auth_a = [ln for ln in host_lines(log_a) if ln.uri.endswith("/oauth2/authorize")]
        cb_a = [ln for ln in host_lines(log_a) if ln.uri == "/api/v1/oauth2/callback"]
        cb_b = [ln for ln in host_lines(log_b) if ln.uri == "/api/v1/oauth2/callback"]
        assert [ln.status for ln in auth_a] == [200] and not cb_a, (auth_a, cb_a)
        assert [ln.status for ln in cb_b] == [303, 303], cb_b

        # Fifty concurrent refreshes, every other one through each host,
        # while the provider takes a second: one call to it.
        before = front.fetch(sid)
        calls = p.stats()["token_calls"]
        p.mode("slow", delay=1.0)
        n = 50
        barrier = threading.Barrier(n)
        results = [None] * n

        def go(i):
            api = Api("ab"[i % 2], (hosts.a, hosts.b)[i % 2].base, hosts.ca, token=a.token)
            barrier.wait()
            t = now()
            try:
                r = api.request("POST", "/mail-servers/%d/oauth2/refresh" % sid, timeout=90)
                results[i] = (api.name, r.status_code, r.json() if r.status_code == 200 else {},
                              now() - t)
            except Exception as e:  # noqa: BLE001
                results[i] = (api.name, e.__class__.__name__, {}, now() - t)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(n)]
        t0 = now()
        [t.start() for t in threads]
        [t.join(120) for t in threads]
        refresh_s = now() - t0
        assert all(r is not None for r in results), "a refresh did not finish"
        bad = [(r[0], r[1]) for r in results if r[1] != 200]
        assert not bad, bad[:5]
        provider_calls = p.stats()["token_calls"] - calls
        assert provider_calls == 1
        assert len({(r[2]["access_token_expires_at"], r[2]["oauth2_last_refreshed_at"])
                    for r in results}) == 1
        final = front.fetch(sid)
        assert final["version"] == before["version"] + 1
        assert final["access_token_expires_at"] == results[0][2]["access_token_expires_at"]
        locks = int(psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                         " AND classid = 1868657012 AND granted")[0][0])
        assert locks == 0
        time.sleep(0.3)
        ref_a = [ln for ln in host_lines(log_a) if ln.uri.endswith("/oauth2/refresh")]
        ref_b = [ln for ln in host_lines(log_b) if ln.uri.endswith("/oauth2/refresh")]
        assert [ln.status for ln in ref_a] == [200] * 25, ref_a
        assert [ln.status for ln in ref_b] == [200] * 25, ref_b
        report("oauth_across_hosts", authorize="a", callback="b",
               callback_without_cookie=refused.get("error"), callback_s="%.2f" % callback_s,
               refreshes=n, via_a=len(ref_a), via_b=len(ref_b), failed=len(bad),
               provider_calls=provider_calls, refresh_s="%.2f" % refresh_s,
               slowest_s="%.2f" % max(r[3] for r in results))
    finally:
        p.stop()


# ---------------------------------------------------------------- 3


def wait_for(pred, seconds, poll=0.02):
    deadline = now() + seconds
    while now() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(poll)
    return None


def test_a_host_stopped_under_load_costs_no_get_and_rejoins(hosts):
    a, b, front = entry_points(hosts)
    ids = [front.create(mailapi.basic_body(name=unique("load")))["id"] for _ in range(10)]
    flog = LogTail(hosts.front.nginx.access_log)
    alog = LogTail(hosts.a.nginx.access_log)
    with Load(hosts.front.base, hosts.ca, ids) as load:
        assert wait_for(lambda: load.count() >= 50, 20), "the load does not run"

        # Host a's service stops as systemd stops it: SIGTERM to its master.
        pid, t_term = hosts.a.service.terminate()
        assert hosts.a.service.wait_exit(pid), "host a's master did not exit after SIGTERM"
        drain_s = now() - t_term
        n_at_exit = load.count()
        assert wait_for(lambda: load.count() >= n_at_exit + 100, 20), "the load stalled"
        time.sleep(1.0)
        down_s = now() - t_term

        # Started again, host a rejoins: the front sends it requests again.
        t_start = now()
        alog.mark()
        rejoin_log = LogTail(hosts.front.nginx.access_log)
        hosts.a.service.start()
        t_ready = hosts.a.wait_ready()

        def served_by_a():
            return any(ln.upstreams == [hosts.a.addr] and ln.status == 200
                       for ln in front_lines(rejoin_log))
        # The front tries a host it took out again after FAIL_TIMEOUT (with
        # room for a busy machine).
        assert wait_for(served_by_a, layout.FAIL_TIMEOUT_S + 5), \
            "host a got no request through the front again"
        t_rejoin = now()
        time.sleep(0.3)
        a_again = [ln for ln in host_lines(alog) if ln.status == 200]
        assert a_again, "host a's access log shows no request since its start"

        # And it carries the load alone: host b stopped now costs nothing either.
        pid_b, t_term_b = hosts.b.service.terminate()
        assert hosts.b.service.wait_exit(pid_b), "host b's master did not exit after SIGTERM"
        time.sleep(0.3)
        alone = LogTail(hosts.front.nginx.access_log)
        n_b_gone = load.count()
        assert wait_for(lambda: load.count() >= n_b_gone + 100, 20), "the load stalled"
        served_alone = front_lines(alone)
        hosts.b.service.start()
        hosts.b.wait_ready()
    failures = load.failures()
    assert not failures, load.summary()
    assert load.count() >= 300, load.summary()
    assert served_alone and all(ln.upstreams[-1] == hosts.a.addr and ln.status == 200
                                for ln in served_alone), served_alone[:5]
    lines = front_lines(flog)
    retried = [ln for ln in lines if len(ln.upstreams) > 1]
    # The stops were seen and hidden: requests that met a stopped host's 503
    # were answered by the other one (a kept connection that a host closed
    # meanwhile is retried too, as an error, never as a failure).
    met_503 = [ln for ln in retried if ln.upstream_statuses[0] == "503"]
    assert met_503, "no request met a stopped host: %s" % retried[:5]
    assert all(ln.status == 200 and ln.upstream_statuses[-1] == "200" and
               ln.upstreams[0] != ln.upstreams[-1] for ln in retried), retried[:5]
    report("host_stop", requests=load.count(), failed=len(failures),
           retried_on_other_host=len(retried), met_503=len(met_503), drain_s="%.2f" % drain_s,
           a_down_s="%.1f" % down_s, a_start_to_ready_s="%.2f" % (t_ready - t_start),
           rejoin_after_ready_s="%.2f" % (t_rejoin - t_ready),
           a_requests_after_rejoin=len(a_again), b_stopped_requests_all_via_a=len(served_alone))
