"""GET /metrics: the Prometheus text format, read with the Prometheus Python
client's parser (Debian's python3-prometheus-client). The counters are the
whole service's, kept in shared memory the worker processes inherit
(docs/design.md, "Metrics"): the requests a test makes are counted exactly,
whichever of the stack's worker processes serves them and whichever serves
the scrape, and a worker killed with SIGKILL takes no count with it.

nginx serves /metrics only to the allowed addresses (loopback on the
stack); the refusal is tested on a second nginx rendered from the same
template with an allow list that leaves 127.0.0.1 out (as
test_nginx_limits.py does for its limits)."""

import os
import re
import signal
import time

import requests
from prometheus_client.parser import text_string_to_metric_families

import mailapi
from mailapi import API, BASE_URL, STACK_VAR, describe, problem
from oauth2_support import connect, console_outcome, create_server, provider, refresh
from smtp_support import basic_for, closed_port, login_server, result, run_saved, smtp
from test_nginx_limits import limited
from test_pg_outage import stack

assert provider and smtp and closed_port and limited  # fixtures, used by name

ROUTE_BY_ID = "/api/v1/mail-servers/{id}"
FAMILIES = {
    "mailsrv_http_requests": "counter",
    "mailsrv_http_request_duration_seconds": "histogram",
    "mailsrv_db_errors": "counter",
    "mailsrv_db_reconnects": "counter",
    "mailsrv_db_reads_rerun": "counter",
    "mailsrv_outbound_calls": "counter",
    "mailsrv_worker_threads_busy": "gauge",
    "mailsrv_worker_restarts": "counter",
    "mailsrv_build_info": "gauge",
}


def fetch_text(base=BASE_URL):
    # A connection of its own each time: nginx hands each request to
    # whichever worker process accepts it first.
    r = requests.get(base + "/metrics", timeout=10, headers={"Connection": "close"})
    assert r.status_code == 200, describe(r)
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), describe(r)
    return r.text


def scrape(base=BASE_URL):
    """{(sample name, frozenset of labels): value}, after the parser read it all."""
    families = list(text_string_to_metric_families(fetch_text(base)))
    types = {f.name: f.type for f in families}
    for name, kind in FAMILIES.items():
        assert types.get(name) == kind, (name, types)
    out = {}
    for f in families:
        assert f.documentation, f.name
        for s in f.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, key
            out[key] = s.value
    return out


def value(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0.0)


def requests_of(m, route, status):
    return value(m, "mailsrv_http_requests_total", route=route, status=str(status))


def get_by_id(sid, token):
    r = requests.get(BASE_URL + API + "/mail-servers/%s" % sid, timeout=10,
                     headers={"Authorization": "Bearer " + token, "Connection": "close"})
    return r.status_code


def test_the_text_parses_and_names_every_series(api):
    m = scrape()
    assert value(m, "mailsrv_build_info", version="1.0.0") == 1
    for kind in ("oauth2_token", "smtp_test"):
        for outcome in ("success", "failure"):
            assert ("mailsrv_outbound_calls_total",
                    frozenset({"kind": kind, "outcome": outcome}.items())) in m
    assert ("mailsrv_db_reads_rerun_total", frozenset()) in m
    assert value(m, "mailsrv_worker_threads_busy") >= 1  # this scrape's own thread
    # No raw path ever becomes a label: ids are never seen, only templates.
    routes = {dict(labels).get("route") for (_, labels) in m}
    assert all(r is None or r == "other" or r.startswith("/") for r in routes), routes
    assert not any(r and re.search(r"/[0-9]", r) for r in routes), routes


def test_requests_are_counted_by_route_template_and_status_across_processes(api):
    sid = api.create(mailapi.basic_body())["id"]
    token = mailapi.mint_token()
    before = scrape()
    n_ok, n_missing = 30, 7
    codes = [get_by_id(sid, token) for _ in range(n_ok)]
    codes += [get_by_id(999999999, token) for _ in range(n_missing)]
    assert codes == [200] * n_ok + [404] * n_missing
    # Several scrapes, each on its own connection (so through either
    # worker process): all see every request.
    for _ in range(6):
        after = scrape()
        assert requests_of(after, ROUTE_BY_ID, 200) - requests_of(before, ROUTE_BY_ID, 200) \
            == n_ok
        assert requests_of(after, ROUTE_BY_ID, 404) - requests_of(before, ROUTE_BY_ID, 404) \
            == n_missing
    # The histogram counted them too; its buckets add up.
    count = "mailsrv_http_request_duration_seconds_count"
    assert value(after, count, route=ROUTE_BY_ID) - value(before, count, route=ROUTE_BY_ID) \
        == n_ok + n_missing
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in after.items()
                     if k[0] == "mailsrv_http_request_duration_seconds_bucket"
                     and dict(k[1])["route"] == ROUTE_BY_ID)
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert buckets[-1] == (float("inf"), value(after, count, route=ROUTE_BY_ID))
    assert value(after, "mailsrv_http_request_duration_seconds_sum", route=ROUTE_BY_ID) > 0


def test_each_scrape_counts_the_one_before_whichever_process_serves_it(api):
    # /metrics counts itself once its answer is written: successive scrapes
    # see 1 more each time, which per-process counters could not show.
    seen = [requests_of(scrape(), "/metrics", 200) for _ in range(12)]
    assert [b - a for a, b in zip(seen, seen[1:])] == [1] * 11, seen


def test_unmatched_paths_are_other_not_their_path(api):
    token = mailapi.mint_token()
    before = scrape()
    for i in range(3):
        r = requests.get(BASE_URL + API + "/no-such-thing-%d" % i, timeout=10,
                         headers={"Authorization": "Bearer " + token})
        assert r.status_code == 404, describe(r)
    after = scrape()
    assert requests_of(after, "other", 404) - requests_of(before, "other", 404) == 3
    assert not any("no-such-thing" in str(k) for k in after)


def test_metrics_takes_get_and_head_only(api):
    r = requests.post(BASE_URL + "/metrics", timeout=10)
    mailapi.problem(r, 405, "method-not-allowed")
    assert r.headers["Allow"] == "GET, HEAD"
    r = requests.head(BASE_URL + "/metrics", timeout=10)
    assert r.status_code == 200 and r.content == b""


def test_an_address_not_allowed_gets_403_from_nginx(limited):
    base = limited(METRICS_ALLOW="192.0.2.7 10.0.0.0/8")
    r = requests.get(base + "/metrics", timeout=10)
    assert r.status_code == 403, describe(r)
    assert r.headers["Content-Type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 403 and body["type"] == "/problems/forbidden", body
    assert "mailsrv_" not in r.text
    # The same nginx serves the API as usual: only /metrics is closed.
    assert requests.get(base + "/healthz", timeout=10).status_code == 200


def test_an_allowed_address_reads_them_through_that_nginx(limited):
    base = limited(METRICS_ALLOW="192.0.2.7 127.0.0.1")
    assert "mailsrv_build_info" in fetch_text(base)


def master_pid():
    return int((STACK_VAR / "run" / "mailsrv.pid").read_text().split()[0])


def worker_pids(master):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = open("/proc/%s/stat" % d).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master and fields[0] != "Z":
            out.append(int(d))
    return sorted(out)


def test_a_killed_worker_loses_no_counts(api):
    sid = api.create(mailapi.basic_body())["id"]
    token = mailapi.mint_token()
    for _ in range(20):
        assert get_by_id(sid, token) == 200
    before = scrape()
    master = master_pid()
    workers = worker_pids(master)
    assert len(workers) >= 2, workers
    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while True:
        now = worker_pids(master)
        if len(now) == len(workers) and workers[0] not in now:
            break
        assert time.monotonic() < deadline, "no new worker process: %s" % now
        time.sleep(0.05)
    # Until the new process accepts, the other one serves.
    deadline = time.monotonic() + 15
    while True:
        try:
            after = scrape()
            break
        except (AssertionError, requests.RequestException):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    restarts = "mailsrv_worker_restarts_total"
    assert value(after, restarts) == value(before, restarts) + 1
    for key, v in before.items():
        if key[0].endswith(("_total", "_bucket", "_count", "_sum")):
            assert after.get(key, 0.0) >= v, (key, v, after.get(key))
    assert requests_of(after, ROUTE_BY_ID, 200) == requests_of(before, ROUTE_BY_ID, 200)
    # The dead process's threads are not counted busy for ever.
    assert value(after, "mailsrv_worker_threads_busy") <= 2
    assert get_by_id(sid, token) == 200
    later = scrape()
    assert requests_of(later, ROUTE_BY_ID, 200) == requests_of(before, ROUTE_BY_ID, 200) + 1


def outbound(m, kind, outcome):
    return value(m, "mailsrv_outbound_calls_total", kind=kind, outcome=outcome)


def test_smtp_tests_are_counted_by_outcome(api, smtp, closed_port):
    srv, pw = login_server(smtp)
    good = api.create(basic_for(srv, password=pw))
    bad = api.create(basic_for(closed_port, enable_ssl=False))
    before = scrape()
    assert result(run_saved(api, good["id"]))["ok"] is True
    assert result(run_saved(api, bad["id"]))["ok"] is False
    assert result(run_saved(api, bad["id"]))["ok"] is False
    after = scrape()
    assert outbound(after, "smtp_test", "success") - outbound(before, "smtp_test", "success") == 1
    assert outbound(after, "smtp_test", "failure") - outbound(before, "smtp_test", "failure") == 2
    route = "/api/v1/mail-servers/{id}/test"
    assert requests_of(after, route, 200) - requests_of(before, route, 200) == 3


def test_token_endpoint_calls_are_counted_by_outcome(api, provider):
    s = create_server(api, provider)
    before = scrape()
    assert console_outcome(connect(api, provider, s["id"]))["oauth2"] == "connected"
    mid = scrape()
    assert outbound(mid, "oauth2_token", "success") - outbound(before, "oauth2_token",
                                                              "success") == 1
    provider.mode("invalid_grant")
    problem(refresh(api, s["id"]), 502, "oauth2-provider-error")
    provider.mode("server_error")
    problem(refresh(api, s["id"]), 502, "oauth2-provider-error")
    provider.mode("normal")
    after = scrape()
    assert outbound(after, "oauth2_token", "failure") - outbound(mid, "oauth2_token",
                                                                "failure") == 2
    assert outbound(after, "oauth2_token", "success") == outbound(mid, "oauth2_token", "success")


def test_a_database_outage_is_counted(api):
    sid = api.create(mailapi.basic_body())["id"]
    token = mailapi.mint_token()
    before = scrape()
    stack("pg-stop", "fast")
    try:
        codes = [get_by_id(sid, token) for _ in range(6)]
        assert codes == [503] * 6, codes
        during = scrape()  # needs no database
    finally:
        stack("pg-start")
    deadline = time.monotonic() + 30
    while get_by_id(sid, token) != 200:
        assert time.monotonic() < deadline, "the service did not reach the database again"
        time.sleep(0.2)
    for _ in range(10):
        assert get_by_id(sid, token) == 200
    after = scrape()
    assert requests_of(during, ROUTE_BY_ID, 503) - requests_of(before, ROUTE_BY_ID, 503) == 6
    errors = "mailsrv_db_errors_total"
    assert value(during, errors, cause="unavailable") - value(before, errors,
                                                            cause="unavailable") >= 6
    assert value(after, "mailsrv_db_reconnects_total") > value(before,
                                                               "mailsrv_db_reconnects_total")
