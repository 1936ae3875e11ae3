#!/usr/bin/env python3
"""summarize.py - turn bench/run.sh's raw measurements into the summary.

  summarize.py RAW.jsonl META_JSON MEMORY_JSON OUT.json OUT.txt

Each raw line is one measurement: {"round", "kind", "c", "result": {...}}.
Per kind and concurrency the summary gives min, median and max over the
rounds of requests per second, p50 and p99 latency and errors, and the ratio
of each round's figure to that round's combined ceiling
1 / (1/nginx + 1/pgbench) at the same concurrency:
  get, post, patch, mix  -> nginx `return 200` with pgbench ms_get
  list                   -> nginx with pgbench ms_list_name_asc (no q)
  listq                  -> nginx with pgbench ms_list_name_asc (with q)
and, for list, a second ratio (ratio_pool) to nginx with pgbench list run
with as many clients as the service has database connections (the pool),
whatever the concurrency: pgbench with 64 backends on two cores is slower
than the service's 8 connections running the same statement.

The peer (bench/peer/: the same reads on Node, Fastify and pg behind the
same nginx) is measured as peer_get and peer_list; get and list get a third
ratio, "service/peer": each round's service figure over that round's peer
figure at the same concurrency (min, median, max over the rounds).
"""
import json
import statistics
import sys

MIB = 1024 * 1024
# The service's targets (medians, c = 64; docs/performance.md, "Figures").
TARGET_C = 64
TARGET_GET_RATIO = 0.40
TARGET_GET_P99_MS = 15.0
TARGET_LIST_RATIO = 0.70
TARGET_RSS_MIB = 16.0
# GET by id against the peer: the median of the per-round ratios, at every
# concurrency measured.
TARGET_PEER_RATIO = 2.0
PEER_OF = {"get": "peer_get", "list": "peer_list"}

CEILING_OF = {
    "get": "ref_pg_get", "post": "ref_pg_get", "patch": "ref_pg_get", "mix": "ref_pg_get",
    "list": "ref_pg_list", "listq": "ref_pg_listq",
    "peer_get": "ref_pg_get", "peer_list": "ref_pg_list",
}
ORDER = ["ref_http", "ref_pg_get", "ref_pg_list", "ref_pg_listq", "ref_pg_list_pool",
         "ceiling_get", "ceiling_list", "ceiling_listq", "ceiling_list_pool",
         "get", "peer_get", "list", "peer_list", "listq", "post", "patch", "mix"]
LABEL = {
    "ref_http": "nginx return 200",
    "ref_pg_get": "pgbench ms_get",
    "ref_pg_list": "pgbench list",
    "ref_pg_listq": "pgbench list q",
    "ref_pg_list_pool": "pgbench list pool",
    "ceiling_get": "ceiling (get)",
    "ceiling_list": "ceiling (list)",
    "ceiling_listq": "ceiling (list q)",
    "ceiling_list_pool": "ceiling list pool",
    "get": "GET by id",
    "peer_get": "peer GET by id",
    "peer_list": "peer GET list",
    "list": "GET list",
    "listq": "GET list q",
    "post": "POST",
    "patch": "PATCH",
    "mix": "mix 90/10",
}


def rps(res):
    d = res["duration_us"] / 1e6
    return res["requests"] / d if d > 0 else 0.0


def errors(res):
    return sum(res.get("errors", {}).values())


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def combined(a, b):
    return 1.0 / (1.0 / a + 1.0 / b) if a and b else None


def main():
    raw_path, meta, memory, out_json, out_txt = sys.argv[1:6]
    meta = json.loads(meta)
    memory = json.loads(memory)
    rows = [json.loads(line) for line in open(raw_path) if line.strip()]

    # per[(kind, c)][round] = result
    per = {}
    for r in rows:
        per.setdefault((r["kind"], r["c"]), {})[r["round"]] = r["result"]
    conns = sorted({c for (_, c) in per})
    rounds = sorted({r["round"] for r in rows})

    figures = {}
    for c in conns:
        # Each round's ceilings.
        ceil = {}
        for rnd in rounds:
            http = per.get(("ref_http", c), {}).get(rnd)
            for ck, pk in (("ceiling_get", "ref_pg_get"), ("ceiling_list", "ref_pg_list"),
                           ("ceiling_listq", "ref_pg_listq"),
                           ("ceiling_list_pool", "ref_pg_list_pool")):
                pg = per.get((pk, c), {}).get(rnd)
                if http and pg:
                    ceil.setdefault(ck, {})[rnd] = combined(rps(http), rps(pg))
        for kind in ORDER:
            if kind.startswith("ceiling_"):
                if kind in ceil:
                    figures.setdefault(str(c), {})[kind] = {
                        "rps": stats(list(ceil[kind].values())), "rounds": len(ceil[kind])}
                continue
            results = per.get((kind, c))
            if not results:
                continue
            f = {
                "rps": stats([rps(x) for x in results.values()]),
                "errors": stats([errors(x) for x in results.values()]),
                "errors_total": sum(errors(x) for x in results.values()),
                "requests_total": sum(x["requests"] for x in results.values()),
                "rounds": len(results),
            }
            lat = [x.get("latency_us", {}) for x in results.values()]
            for p in ("p50", "p99", "mean"):
                s = stats([l[p] / 1000.0 for l in lat if p in l])
                if s is not None:
                    f[p + "_ms"] = s
            ck = CEILING_OF.get(kind)
            if ck is not None:
                cname = "ceiling_" + {"ref_pg_get": "get", "ref_pg_list": "list",
                                      "ref_pg_listq": "listq"}[ck]
                ratios = [rps(results[rnd]) / ceil[cname][rnd]
                          for rnd in results if rnd in ceil.get(cname, {})]
                f["ratio"] = stats(ratios)
                f["ratio_to"] = cname
            if kind == "list" and "ceiling_list_pool" in ceil:
                f["ratio_pool"] = stats([rps(results[rnd]) / ceil["ceiling_list_pool"][rnd]
                                         for rnd in results if rnd in ceil["ceiling_list_pool"]])
            peer = per.get((PEER_OF.get(kind), c), {})
            peer_ratios = [rps(results[rnd]) / rps(peer[rnd]) for rnd in results
                           if rnd in peer and rps(peer[rnd]) > 0]
            if peer_ratios:
                f["ratio_peer"] = stats(peer_ratios)
            figures.setdefault(str(c), {})[kind] = f

    workers = memory.get("workers", [])
    rss = [w.get("VmRSS", 0) * 1024 / MIB for w in workers]
    checks = []

    def fig(kind, key="median", what="rps"):
        f = figures.get(str(TARGET_C), {}).get(kind, {})
        return (f.get(what) or {}).get(key)

    g_ratio, g_p99 = fig("get", what="ratio"), fig("get", what="p99_ms")
    g_err = figures.get(str(TARGET_C), {}).get("get", {}).get("errors_total")
    l_ratio = fig("list", what="ratio")
    if g_ratio is not None:
        checks.append({"what": "GET by id, c=64: ratio to the combined ceiling",
                       "value": g_ratio, "target": ">= %.2f" % TARGET_GET_RATIO,
                       "ok": g_ratio >= TARGET_GET_RATIO})
    if g_p99 is not None:
        checks.append({"what": "GET by id, c=64: p99 latency (ms)", "value": g_p99,
                       "target": "<= %.0f" % TARGET_GET_P99_MS, "ok": g_p99 <= TARGET_GET_P99_MS})
    if g_err is not None:
        checks.append({"what": "GET by id, c=64: errors (all rounds)", "value": g_err,
                       "target": "0", "ok": g_err == 0})
    if l_ratio is not None:
        checks.append({"what": "list, c=64: ratio to its own combined ceiling",
                       "value": l_ratio, "target": ">= %.2f" % TARGET_LIST_RATIO,
                       "ok": l_ratio >= TARGET_LIST_RATIO})
    for c in conns:
        rp = figures.get(str(c), {}).get("get", {}).get("ratio_peer")
        if rp is not None:
            checks.append({"what": "GET by id, c=%d: service/peer (median of rounds)" % c,
                           "value": rp["median"], "target": ">= %.1f" % TARGET_PEER_RATIO,
                           "ok": rp["median"] >= TARGET_PEER_RATIO})
    if rss:
        checks.append({"what": "worker resident memory after the run (MiB, largest)",
                       "value": max(rss), "target": "<= %.0f" % TARGET_RSS_MIB,
                       "ok": max(rss) <= TARGET_RSS_MIB})

    summary = {"meta": meta, "figures": figures, "memory": memory, "checks": checks}
    with open(out_json, "w") as fh:
        json.dump(summary, fh, indent=2, sort_keys=True)
        fh.write("\n")

    lines = []
    lines.append("mailsrv benchmark, %s, %d round(s) of %ss (warm-up %ss), wrk -t%s, "
                 "%s processes x %s threads, nginx worker_processes %s, %s CPUs%s" % (
                     meta.get("started"), meta.get("rounds"), meta.get("duration_s"),
                     meta.get("warmup_s"), meta.get("wrk_threads"), meta.get("processes"),
                     meta.get("threads"), meta.get("nginx_workers"), meta.get("cpus"),
                     " (QUICK: smoke run)" if meta.get("quick") else ""))
    lines.append("service binary %s; 1,000 servers; list q=%s" % (
        meta.get("mailsrv_bin"), meta.get("q")))
    lines.append("figures: min / median / max over the rounds; ratio = figure / "
                 "(1 / (1/nginx + 1/pgbench)) of the same round and concurrency")
    for c in conns:
        lines.append("")
        lines.append("c = %d" % c)
        lines.append("  %-18s %8s %8s %8s   %-17s %7s %7s %6s" % (
            "", "req/s", "min", "max", "ratio med (min-max)", "p50 ms", "p99 ms", "errors"))
        for kind in ORDER:
            f = figures.get(str(c), {}).get(kind)
            if f is None:
                continue
            r = f["rps"]
            ratio = ""
            if f.get("ratio"):
                ratio = "%.3f (%.3f-%.3f)" % (f["ratio"]["median"], f["ratio"]["min"],
                                              f["ratio"]["max"])
            p50 = "%.2f" % f["p50_ms"]["median"] if "p50_ms" in f else (
                "%.2f" % f["mean_ms"]["median"] + "*" if "mean_ms" in f else "")
            p99 = "%.2f" % f["p99_ms"]["median"] if "p99_ms" in f else ""
            err = "%d" % f["errors_total"] if "errors_total" in f else ""
            lines.append("  %-18s %8.0f %8.0f %8.0f   %-19s %7s %7s %6s" % (
                LABEL[kind], r["median"], r["min"], r["max"], ratio, p50, p99, err))
            if f.get("ratio_pool"):
                rp = f["ratio_pool"]
                lines.append("  %-18s %8s %8s %8s   %-19s" % (
                    "  vs list pool", "", "", "",
                    "%.3f (%.3f-%.3f)" % (rp["median"], rp["min"], rp["max"])))
            if f.get("ratio_peer"):
                rp = f["ratio_peer"]
                lines.append("  %-18s %8s %8s %8s   %-19s" % (
                    "  service/peer", "", "", "",
                    "%.3f (%.3f-%.3f)" % (rp["median"], rp["min"], rp["max"])))
    lines.append("")
    lines.append("  (* pgbench: mean latency, not p50. post, patch and mix are given as ratios to "
                 "the GET ceiling; list and list q to their own. \"list pool\": pgbench list "
                 "with %s clients, the service's database connections, at every c; \"vs list "
                 "pool\": the list's ratio to that ceiling. \"service/peer\": the service's figure over "
                 "the peer's (bench/peer/, Node + Fastify + pg behind the same nginx) in the same "
                 "round.)" % meta.get("pool", "?"))
    lines.append("")
    lines.append("worker processes after the run (master pid %s, %.1f MiB):" % (
        memory.get("master", {}).get("pid"), memory.get("master", {}).get("VmRSS", 0) / 1024))
    for w in workers:
        lines.append("  pid %-8s VmRSS %5.1f MiB  (anon %5.1f, file %5.1f; peak %5.1f; %s threads)" % (
            w.get("pid"), w.get("VmRSS", 0) / 1024, w.get("RssAnon", 0) / 1024,
            w.get("RssFile", 0) / 1024, w.get("VmHWM", 0) / 1024, w.get("Threads", "?")))
    for i, peer in enumerate(memory.get("peer", [])):
        lines.append("  %-12s %-7s VmRSS %5.1f MiB  (anon %5.1f, file %5.1f; peak %5.1f; %s threads)" % (
            "peer primary" if i == 0 else "peer worker", peer.get("pid"), peer.get("VmRSS", 0) / 1024,
            peer.get("RssAnon", 0) / 1024, peer.get("RssFile", 0) / 1024,
            peer.get("VmHWM", 0) / 1024, peer.get("Threads", "?")))
    lines.append("")
    lines.append("targets (c = %d, medians; service/peer at each c):" % TARGET_C)
    for ch in checks:
        v = ch["value"]
        lines.append("  %-4s %-55s %8s  (target %s)" % (
            "ok" if ch["ok"] else "MISS", ch["what"],
            ("%.3f" % v) if isinstance(v, float) else str(v), ch["target"]))
    lines.append("")
    lines.append("elapsed %ss; commit %s; %s; %s; %s" % (
        meta.get("elapsed_s"), meta.get("commit"), meta.get("nginx"), meta.get("postgres"),
        meta.get("wrk")))
    with open(out_txt, "w") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
