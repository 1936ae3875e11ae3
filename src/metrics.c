/*
 * metrics.c - the service's counters in shared memory and their Prometheus
 * text rendering (see metrics.h; docs/design.md, "Metrics").
 *
 * Layout: one struct shared_counters, mapped by the master before it forks
 * (so every worker process inherits the same pages), every member a C11
 * atomic updated with relaxed order: each counter is independent, and a
 * scrape needs no snapshot across them. Per route: a count per status and
 * a latency histogram (a count per bucket, not cumulative; the rendering
 * adds them up) with the sum in microseconds.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "arena.h"
#include "db.h"
#include "http.h"
#include "mailsrv_limits.h"
#include "router.h"

/* The statuses the service and nginx's pass-through answer; the last
 * entry counts any other. */
static const int statuses[] = {200, 201, 204, 303, 400, 401, 403, 404, 405, 409,
                               412, 413, 415, 422, 429, 500, 502, 503, 504};
#define NSTATUS       (sizeof(statuses) / sizeof(statuses[0]))
#define STATUS_OTHER  NSTATUS
#define NSTATUS_SLOTS (NSTATUS + 1)

/* Upper bounds of the latency buckets, in seconds: from a cached GET (a
 * millisecond) to the longest outbound call (30 s, docs/api.md#limits). */
static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                0.25,  0.5,    1,     2.5,  5,     10,   30};
static const char *const bound_text[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                                         "0.25",  "0.5",    "1",     "2.5",  "5",     "10",   "30"};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

/* Routes outside /api/v1, after the API's own. */
static const char *const extra_routes[] = {"/healthz", "/livez", "/readyz", "/metrics"};
#define NEXTRA (sizeof(extra_routes) / sizeof(extra_routes[0]))

static const char *const db_cause_names[DB_CAUSE__COUNT] = {
    [DB_CAUSE_NONE] = "other",
    [DB_CAUSE_UNAVAILABLE] = "unavailable",
    [DB_CAUSE_TIMEOUT] = "timeout",
    [DB_CAUSE_SERIALIZATION] = "serialization",
    [DB_CAUSE_UNIQUE] = "unique_violation",
    [DB_CAUSE_FOREIGN_KEY] = "foreign_key_violation",
    [DB_CAUSE_CHECK] = "check_violation",
    [DB_CAUSE_OTHER] = "other",
};

static const char *const kind_names[METRICS_OUTBOUND__COUNT] = {
    [METRICS_OAUTH2_TOKEN] = "oauth2_token",
    [METRICS_SMTP_TEST] = "smtp_test",
};
static const char *const outcome_names[METRICS_OUTCOME__COUNT] = {
    [METRICS_SUCCESS] = "success",
    [METRICS_FAILURE] = "failure",
};

struct route_counters {
	atomic_ullong status[NSTATUS_SLOTS];
	atomic_ullong bucket[NBOUNDS + 1]; /* the last: above every bound */
	atomic_ullong sum_us;
};

struct shared_counters {
	struct route_counters route[METRICS_MAX_ROUTES]; /* the last used: "other" */
	atomic_ullong db_errors[DB_CAUSE__COUNT];
	atomic_ullong db_reconnects;
	atomic_ullong db_reads_rerun;
	atomic_ullong outbound[METRICS_OUTBOUND__COUNT][METRICS_OUTCOME__COUNT];
	atomic_llong busy[METRICS_MAX_PROCESSES];
	/* per slot: FastCGI connections held open, and whether a process
	 * has started in it */
	atomic_llong connections[METRICS_MAX_PROCESSES];
	atomic_int started[METRICS_MAX_PROCESSES];
	atomic_ullong worker_restarts;
};

static struct shared_counters *shm;
static int my_slot;
/* The route labels: the API's templates, the extra routes, "other". */
static const char *route_names[METRICS_MAX_ROUTES];
static size_t nroutes;

int metrics_init(void)
{
	if (shm != NULL)
		return 0;
	if (router_nroutes + NEXTRA + 1 > METRICS_MAX_ROUTES)
		return -1;
	void *p =
	    mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	/* Fresh anonymous pages are zero: every atomic starts at 0. */
	nroutes = 0;
	for (size_t i = 0; i < router_nroutes; i++)
		route_names[nroutes++] = router_routes[i].template;
	for (size_t i = 0; i < NEXTRA; i++)
		route_names[nroutes++] = extra_routes[i];
	route_names[nroutes++] = "other";
	shm = p;
	return 0;
}

void metrics_free(void)
{
	if (shm != NULL)
		munmap(shm, sizeof(*shm));
	shm = NULL;
	nroutes = 0;
}

void metrics_set_slot(int slot)
{
	my_slot = slot >= 0 && slot < METRICS_MAX_PROCESSES ? slot : 0;
	/* A process that died in this slot never said its threads finished:
	 * it has been reaped before this one was started. */
	if (shm != NULL) {
		atomic_store_explicit(&shm->busy[my_slot], 0, memory_order_relaxed);
		atomic_store_explicit(&shm->connections[my_slot], 0, memory_order_relaxed);
		atomic_store_explicit(&shm->started[my_slot], 1, memory_order_relaxed);
	}
}

static size_t route_index(const char *t)
{
	if (t != NULL) {
		/* The router hands out the table's own pointers: compared first. */
		for (size_t i = 0; i + 1 < nroutes; i++)
			if (route_names[i] == t)
				return i;
		for (size_t i = 0; i + 1 < nroutes; i++)
			if (strcmp(route_names[i], t) == 0)
				return i;
	}
	return nroutes - 1;
}

static size_t status_index(int status)
{
	for (size_t i = 0; i < NSTATUS; i++)
		if (statuses[i] == status)
			return i;
	return STATUS_OTHER;
}

void metrics_request(const char *route_template, int status, double seconds)
{
	if (shm == NULL)
		return;
	struct route_counters *r = &shm->route[route_index(route_template)];
	atomic_fetch_add_explicit(&r->status[status_index(status)], 1, memory_order_relaxed);
	size_t b = 0;
	while (b < NBOUNDS && seconds > bounds[b])
		b++;
	atomic_fetch_add_explicit(&r->bucket[b], 1, memory_order_relaxed);
	unsigned long long us = seconds > 0 ? (unsigned long long)(seconds * 1e6 + 0.5) : 0;
	atomic_fetch_add_explicit(&r->sum_us, us, memory_order_relaxed);
}

void metrics_thread_busy(int delta)
{
	if (shm != NULL)
		atomic_fetch_add_explicit(&shm->busy[my_slot], delta, memory_order_relaxed);
}

void metrics_connections(int delta)
{
	if (shm != NULL)
		atomic_fetch_add_explicit(&shm->connections[my_slot], delta, memory_order_relaxed);
}

int metrics_other_process_lighter(int threads, int by)
{
	if (shm == NULL)
		return 0;
	long long mine = atomic_load_explicit(&shm->connections[my_slot], memory_order_relaxed);
	for (int i = 0; i < METRICS_MAX_PROCESSES; i++) {
		if (i == my_slot || !atomic_load_explicit(&shm->started[i], memory_order_relaxed))
			continue;
		if (atomic_load_explicit(&shm->connections[i], memory_order_relaxed) + by <= mine &&
		    atomic_load_explicit(&shm->busy[i], memory_order_relaxed) < threads)
			return 1;
	}
	return 0;
}

void metrics_worker_restarted(void)
{
	if (shm != NULL)
		atomic_fetch_add_explicit(&shm->worker_restarts, 1, memory_order_relaxed);
}

void metrics_db_error(int cause)
{
	if (shm == NULL)
		return;
	if (cause < 0 || cause >= DB_CAUSE__COUNT)
		cause = DB_CAUSE_OTHER;
	atomic_fetch_add_explicit(&shm->db_errors[cause], 1, memory_order_relaxed);
}

void metrics_db_reconnect(void)
{
	if (shm != NULL)
		atomic_fetch_add_explicit(&shm->db_reconnects, 1, memory_order_relaxed);
}

void metrics_db_read_rerun(void)
{
	if (shm != NULL)
		atomic_fetch_add_explicit(&shm->db_reads_rerun, 1, memory_order_relaxed);
}

void metrics_outbound(enum metrics_outbound_kind kind, enum metrics_outcome outcome)
{
	if (shm == NULL || (unsigned)kind >= METRICS_OUTBOUND__COUNT ||
	    (unsigned)outcome >= METRICS_OUTCOME__COUNT)
		return;
	atomic_fetch_add_explicit(&shm->outbound[kind][outcome], 1, memory_order_relaxed);
}

/* ---- the text format ---- */

struct out {
	char *buf;
	size_t len, cap;
	int overflow;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	if (o->overflow)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->overflow = 1;
		return;
	}
	o->len += (size_t)n;
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static unsigned long long get(atomic_ullong *v)
{
	return atomic_load_explicit(v, memory_order_relaxed);
}

static void render_requests(struct out *o)
{
	head(o, "mailsrv_http_requests_total", "counter",
	     "Requests answered by the service, by route template and status.");
	for (size_t r = 0; r < nroutes; r++)
		for (size_t s = 0; s < NSTATUS_SLOTS; s++) {
			unsigned long long v = get(&shm->route[r].status[s]);
			if (v == 0)
				continue;
			if (s == STATUS_OTHER)
				put(o,
				    "mailsrv_http_requests_total{route=\"%s\",status=\"other\"} "
				    "%llu\n",
				    route_names[r], v);
			else
				put(o,
				    "mailsrv_http_requests_total{route=\"%s\",status=\"%d\"} "
				    "%llu\n",
				    route_names[r], statuses[s], v);
		}
	head(o, "mailsrv_http_request_duration_seconds", "histogram",
	     "Time from taking a request to having written its answer, by route template.");
	for (size_t r = 0; r < nroutes; r++) {
		struct route_counters *rc = &shm->route[r];
		unsigned long long counts[NBOUNDS + 1], total = 0;
		for (size_t b = 0; b <= NBOUNDS; b++) {
			counts[b] = get(&rc->bucket[b]);
			total += counts[b];
		}
		if (total == 0)
			continue;
		unsigned long long cum = 0;
		for (size_t b = 0; b < NBOUNDS; b++) {
			cum += counts[b];
			put(o,
			    "mailsrv_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} "
			    "%llu\n",
			    route_names[r], bound_text[b], cum);
		}
		put(o,
		    "mailsrv_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
		    route_names[r], total);
		unsigned long long us = get(&rc->sum_us);
		put(o, "mailsrv_http_request_duration_seconds_sum{route=\"%s\"} %llu.%06llu\n",
		    route_names[r], us / 1000000, us % 1000000);
		put(o, "mailsrv_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		    route_names[r], total);
	}
}

static void render_db(struct out *o)
{
	head(o, "mailsrv_db_errors_total", "counter",
	     "Database statements and connection attempts that failed, by cause.");
	for (int c = DB_CAUSE_UNAVAILABLE; c < DB_CAUSE__COUNT; c++) {
		unsigned long long v = get(&shm->db_errors[c]);
		if (c == DB_CAUSE_OTHER)
			v += get(&shm->db_errors[DB_CAUSE_NONE]);
		put(o, "mailsrv_db_errors_total{cause=\"%s\"} %llu\n", db_cause_names[c], v);
	}
	head(o, "mailsrv_db_reconnects_total", "counter",
	     "New database connections made to replace one that was lost or closed.");
	put(o, "mailsrv_db_reconnects_total %llu\n", get(&shm->db_reconnects));
	head(o, "mailsrv_db_reads_rerun_total", "counter",
	     "Read-only statements run again on a new connection after the connection was lost.");
	put(o, "mailsrv_db_reads_rerun_total %llu\n", get(&shm->db_reads_rerun));
}

static void render_process(struct out *o)
{
	head(o, "mailsrv_outbound_calls_total", "counter",
	     "Outbound calls (OAuth 2.0 token endpoint, SMTP test sessions), by kind and outcome.");
	for (int k = 0; k < METRICS_OUTBOUND__COUNT; k++)
		for (int c = 0; c < METRICS_OUTCOME__COUNT; c++)
			put(o, "mailsrv_outbound_calls_total{kind=\"%s\",outcome=\"%s\"} %llu\n",
			    kind_names[k], outcome_names[c], get(&shm->outbound[k][c]));
	long long busy = 0;
	for (int i = 0; i < METRICS_MAX_PROCESSES; i++)
		busy += atomic_load_explicit(&shm->busy[i], memory_order_relaxed);
	head(o, "mailsrv_worker_threads_busy", "gauge",
	     "Worker threads serving a request now, over every worker process.");
	put(o, "mailsrv_worker_threads_busy %lld\n", busy < 0 ? 0 : busy);
	head(o, "mailsrv_worker_restarts_total", "counter",
	     "Worker processes the master started again after one ended.");
	put(o, "mailsrv_worker_restarts_total %llu\n", get(&shm->worker_restarts));
	head(o, "mailsrv_build_info", "gauge", "The service's version; always 1.");
	put(o, "mailsrv_build_info{version=\"%s\"} 1\n", MAILSRV_VERSION);
}

size_t metrics_render(char *buf, size_t cap)
{
	struct out o = {buf, 0, cap, 0};
	if (cap == 0)
		return (size_t)-1;
	buf[0] = '\0';
	if (shm == NULL)
		return 0;
	render_requests(&o);
	render_db(&o);
	render_process(&o);
	return o.overflow ? (size_t)-1 : o.len;
}

err_t metrics_handle(struct ctx *c)
{
	char *buf = arena_alloc(c->arena, METRICS_TEXT_MAX_BYTES);
	if (buf == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	size_t n = metrics_render(buf, METRICS_TEXT_MAX_BYTES);
	if (n == (size_t)-1)
		return http_reject(c, E_INTERNAL, "the metrics do not fit their buffer");
	c->resp->status = 200;
	c->resp->content_type = METRICS_CONTENT_TYPE;
	c->resp->body = buf;
	c->resp->body_len = n;
	return E_OK;
}
