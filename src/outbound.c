/*
 * outbound.c - outbound HTTPS calls and the outbound address policy (see
 * outbound.h). The only file that includes libcurl.
 *
 * The address check runs in CURLOPT_OPENSOCKETFUNCTION on the address that
 * curl is about to connect to, after name resolution: a check of the URL's
 * text misses 2130706433, 0x7f.1, [::ffff:127.0.0.1] and names that resolve
 * to loopback (docs/design.md, "libcurl 7.88.1"). A fresh easy handle per call means no
 * connection, DNS cache or TLS session is ever shared between calls.
 */
#include "outbound.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "arena.h"
#include "crypto.h"
#include "validate.h"
#include "json.h"

/* ---- the policy ---- */

static void set_err(char *err, size_t errlen, const char *what, const char *entry, size_t n)
{
	/* The entry is an operator's setting, not a secret: name it. */
	snprintf(err, errlen, "invalid MAILSRV_OUTBOUND_ALLOW entry \"%.*s\": %s",
	         (int)(n > 64 ? 64 : n), entry, what);
}

/* "a.b.c.d", "a.b.c.d/n", "v6", "v6/n" (strict: inet_pton). */
static int parse_net(const char *s, size_t n, struct outbound_net *out)
{
	char buf[64];
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *slash = strchr(buf, '/');
	long prefix = -1;
	if (slash != NULL) {
		*slash = '\0';
		const char *p = slash + 1;
		if (*p == '\0' || strlen(p) > 3)
			return -1;
		prefix = 0;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			prefix = prefix * 10 + (*p - '0');
		}
	}
	memset(out, 0, sizeof(*out));
	struct in_addr v4;
	struct in6_addr v6;
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		if (prefix > 32)
			return -1;
		out->addr[10] = out->addr[11] = 0xff;
		memcpy(out->addr + 12, &v4, 4);
		out->prefix = (unsigned)(prefix < 0 ? 128 : prefix + 96);
	} else if (inet_pton(AF_INET6, buf, &v6) == 1) {
		if (prefix > 128)
			return -1;
		memcpy(out->addr, &v6, 16);
		out->prefix = (unsigned)(prefix < 0 ? 128 : prefix);
	} else {
		return -1;
	}
	/* Host bits are ignored: 127.0.0.1/8 means 127.0.0.0/8. */
	for (unsigned bit = out->prefix; bit < 128; bit++)
		out->addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
	return 0;
}

int outbound_policy_init(struct outbound_policy *p, const char *allow_csv, int deny_private,
                         char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->deny_private = deny_private != 0;
	if (allow_csv == NULL)
		return 0;
	const char *s = allow_csv;
	while (*s != '\0') {
		const char *end = strchr(s, ',');
		size_t n = end ? (size_t)(end - s) : strlen(s);
		const char *e = s;
		size_t en = n;
		while (en > 0 && (*e == ' ' || *e == '\t')) {
			e++;
			en--;
		}
		while (en > 0 && (e[en - 1] == ' ' || e[en - 1] == '\t'))
			en--;
		if (en > 0) {
			if (p->nallow == OUTBOUND_ALLOW_MAX) {
				snprintf(err, errlen,
				         "MAILSRV_OUTBOUND_ALLOW has more than %d entries",
				         OUTBOUND_ALLOW_MAX);
				return -1;
			}
			if (parse_net(e, en, &p->allow[p->nallow]) != 0) {
				set_err(err, errlen,
				        "expected an IPv4 or IPv6 address, optionally /prefix", e,
				        en);
				return -1;
			}
			p->nallow++;
		}
		if (end == NULL)
			break;
		s = end + 1;
	}
	return 0;
}

static int in_net(const unsigned char a[16], const unsigned char net[16], unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;
	if (memcmp(a, net, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	unsigned char mask = (unsigned char)(0xff00u >> rest);
	return (a[full] & mask) == (net[full] & mask);
}

static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

/* IPv6 forms that carry an IPv4 address become ::ffff:a.b.c.d. */
static void normalize(const unsigned char in[16], unsigned char out[16])
{
	memcpy(out, in, 16);
	static const unsigned char zero12[12] = {0};
	int compat = memcmp(in, zero12, 12) == 0 &&
	             /* :: and ::1 are IPv6's own, not IPv4-compatible */
	             !(in[12] == 0 && in[13] == 0 && in[14] == 0 && in[15] <= 1);
	if (compat || memcmp(in, nat64, 12) == 0) {
		memcpy(out, v4mapped, 12);
		memcpy(out + 12, in + 12, 4);
	}
}

/* Why the address class is refused, before the allow-list; NULL: public. */
static const char *classify(const struct outbound_policy *p, const unsigned char a[16])
{
	if (memcmp(a, v4mapped, 12) == 0) {
		const unsigned char *v4 = a + 12;
		if (v4[0] == 127)
			return "loopback";
		if (v4[0] == 169 && v4[1] == 254)
			return "link-local";
		if (v4[0] == 0)
			return "unspecified"; /* 0/8: "this host on this network" */
		if (p->deny_private && (v4[0] == 10 || (v4[0] == 172 && (v4[1] & 0xf0) == 16) ||
		                        (v4[0] == 192 && v4[1] == 168)))
			return "private";
		return NULL;
	}
	static const unsigned char zero15[15] = {0};
	if (memcmp(a, zero15, 15) == 0 && a[15] == 0)
		return "unspecified";
	if (memcmp(a, zero15, 15) == 0 && a[15] == 1)
		return "loopback";
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80)
		return "link-local";
	if (p->deny_private && (a[0] & 0xfe) == 0xfc)
		return "private";
	return NULL;
}

const char *outbound_check_addr16(const struct outbound_policy *p, const unsigned char in[16])
{
	unsigned char a[16];
	normalize(in, a);
	const char *why = classify(p, a);
	if (why == NULL)
		return NULL;
	for (size_t i = 0; i < p->nallow; i++)
		if (in_net(a, p->allow[i].addr, p->allow[i].prefix))
			return NULL;
	return why;
}

const char *outbound_check_addr(const struct outbound_policy *p, const struct sockaddr *sa,
                                size_t salen)
{
	unsigned char a[16];
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
		memcpy(a, v4mapped, 12);
		memcpy(a + 12, &s4->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
		memcpy(a, &s6->sin6_addr, 16);
	} else {
		return "unsupported address family";
	}
	return outbound_check_addr16(p, a);
}

const char *outbound_url_refused(const struct outbound_policy *p, const char *url, size_t len)
{
	static const char scheme[] = "https://";
	if (len < sizeof(scheme) - 1 || strncasecmp(url, scheme, sizeof(scheme) - 1) != 0)
		return NULL; /* not for us to judge: validation refuses it */
	const char *host = url + sizeof(scheme) - 1;
	size_t rest = len - (sizeof(scheme) - 1);
	size_t alen = 0;
	while (alen < rest && host[alen] != '/' && host[alen] != '?' && host[alen] != '#')
		alen++;
	char buf[80];
	unsigned char a[16];
	if (alen > 0 && host[0] == '[') {
		const char *close = memchr(host, ']', alen);
		size_t hl = close ? (size_t)(close - host) - 1 : 0;
		if (close == NULL || hl == 0 || hl >= sizeof(buf))
			return NULL;
		memcpy(buf, host + 1, hl);
		buf[hl] = '\0';
		if (inet_pton(AF_INET6, buf, a) != 1)
			return NULL;
		return outbound_check_addr16(p, a);
	}
	const char *colon = memchr(host, ':', alen);
	size_t hl = colon ? (size_t)(colon - host) : alen;
	if (hl == 0 || hl >= sizeof(buf))
		return NULL;
	memcpy(buf, host, hl);
	buf[hl] = '\0';
	/* inet_aton takes what libcurl's URL parser normalizes (RFC 3986 does
	 * not, but both do): 127.1, 0x7f.0.0.1, 017700000001, 2130706433. */
	struct in_addr v4;
	if (inet_aton(buf, &v4) == 0)
		return NULL;
	memcpy(a, v4mapped, 12);
	memcpy(a + 12, &v4, 4);
	return outbound_check_addr16(p, a);
}

/* ---- calls ---- */

int outbound_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

struct call {
	const struct outbound_policy *policy;
	const char *ca_file;
	int ca_failed;
	unsigned opened;  /* sockets the policy admitted */
	unsigned refused; /* addresses the policy refused */
	const char *refused_why;
	char *body; /* OUTBOUND_MAX_RESPONSE_BYTES + 1, in the arena */
	size_t len;
	int too_large;
};

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *sa)
{
	struct call *call = clientp;
	if (purpose != CURLSOCKTYPE_IPCXN) {
		call->refused++;
		call->refused_why = "unsupported socket type";
		return CURL_SOCKET_BAD;
	}
	const char *why = outbound_check_addr(call->policy, &sa->addr, (size_t)sa->addrlen);
	if (why != NULL) {
		call->refused++;
		call->refused_why = why;
		return CURL_SOCKET_BAD;
	}
	call->opened++;
	return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
}

/* Returning less than given aborts the transfer (CURLE_WRITE_ERROR): the
 * cap holds for chunked bodies too (docs/design.md, "libcurl 7.88.1"). */
static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct call *call = userdata;
	size_t n = size * nmemb;
	if (n > OUTBOUND_MAX_RESPONSE_BYTES - call->len) {
		call->too_large = 1;
		return 0;
	}
	memcpy(call->body + call->len, ptr, n);
	call->len += n;
	return n;
}

static CURLcode on_ssl_ctx(CURL *curl, void *ssl_ctx, void *userdata)
{
	(void)curl;
	struct call *call = userdata;
	if (call->ca_file != NULL && crypto_ssl_ctx_add_ca_file(ssl_ctx, call->ca_file) != 0) {
		call->ca_failed = 1;
		return CURLE_SSL_CACERT_BADFILE;
	}
	return CURLE_OK;
}

/* The setopt calls; 0 when every one was taken. */
static int configure(CURL *h, const struct outbound_request *rq, struct call *call,
                     struct curl_slist *headers, char *errbuf)
{
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(h, opt, val);                                        \
	} while (0)
	SET(CURLOPT_URL, rq->url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	/* No redirect is followed (FOLLOWLOCATION 0, MAXREDIRS 0); this 7.88
	 * refuses an empty list here, so the redirect list is https alone. */
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_MAXREDIRS, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	SET(CURLOPT_FORBID_REUSE, 1L);
	SET(CURLOPT_FRESH_CONNECT, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, (long)OUTBOUND_CONNECT_TIMEOUT_MS);
	SET(CURLOPT_TIMEOUT_MS, (long)OUTBOUND_TOTAL_TIMEOUT_MS);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_USERAGENT, "mailsrv");
	SET(CURLOPT_HTTPHEADER, headers);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, rq->form);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->form_len);
	SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
	SET(CURLOPT_OPENSOCKETDATA, call);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, call);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	if (rq->ca_file != NULL) {
		SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		SET(CURLOPT_SSL_CTX_DATA, call);
	}
#undef SET
	return rc == CURLE_OK ? 0 : -1;
}

static err_t fail(struct outbound_result *res, err_t e, const char *code, const char *reason)
{
	res->code = code;
	res->reason = reason;
	return e;
}

/* Map a failed transfer to our error. */
static err_t transfer_failed(struct arena *a, CURLcode rc, const struct call *call,
                             const char *errbuf, struct outbound_result *res)
{
	const char *msg = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
	const char *reason = arena_strdup(a, msg);
	if (reason == NULL)
		reason = "(out of memory)";
	if (call->too_large)
		return fail(res, E_OAUTH2_PROVIDER, "invalid_response",
		            arena_printf(a, "the response is larger than %d bytes",
		                         OUTBOUND_MAX_RESPONSE_BYTES));
	if (call->refused > 0 && call->opened == 0)
		return fail(res, E_DESTINATION_REFUSED, "destination_refused",
		            arena_printf(a, "the outbound policy refuses the address (%s)",
		                         call->refused_why));
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		return fail(res, E_DESTINATION_REFUSED, "destination_refused", reason);
	case CURLE_OPERATION_TIMEDOUT:
		return fail(res, E_UPSTREAM_TIMEOUT, "timeout", reason);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		return fail(res, E_UPSTREAM_UNREACHABLE, "tls_failed", reason);
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return fail(res, E_UPSTREAM_UNREACHABLE, "unreachable", reason);
	case CURLE_OUT_OF_MEMORY:
		return fail(res, E_INTERNAL, "internal", reason);
	default:
		/* A malformed HTTP answer, a broken chunked encoding, ... */
		return fail(res, E_OAUTH2_PROVIDER, "invalid_response", reason);
	}
}

err_t outbound_post_form_json(struct arena *a, const struct outbound_request *rq,
                              struct json_value **root, struct outbound_result *res)
{
	memset(res, 0, sizeof(*res));
	*root = NULL;
	struct call call;
	memset(&call, 0, sizeof(call));
	call.policy = rq->policy;
	call.ca_file = rq->ca_file;
	call.body = arena_alloc(a, OUTBOUND_MAX_RESPONSE_BYTES + 1);
	if (call.body == NULL)
		return fail(res, E_INTERNAL, "internal", "out of memory");

	char errbuf[CURL_ERROR_SIZE];
	errbuf[0] = '\0';
	err_t e = E_OK;
	struct curl_slist *headers = NULL, *tmp;
	CURL *h = curl_easy_init();
	if (h == NULL)
		return fail(res, E_INTERNAL, "internal", "could not create a libcurl handle");
	/* Expect: 100-continue would add a round trip for nothing. */
	static const char *const hdrs[] = {"Accept: application/json",
	                                   "Content-Type: application/x-www-form-urlencoded",
	                                   "Expect:"};
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		if ((tmp = curl_slist_append(headers, hdrs[i])) == NULL) {
			e = fail(res, E_INTERNAL, "internal", "out of memory");
			goto out;
		}
		headers = tmp;
	}
	if (configure(h, rq, &call, headers, errbuf) != 0) {
		e = fail(res, E_INTERNAL, "internal", "libcurl refused an option");
		goto out;
	}
	CURLcode rc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	res->status = status;
	if (rc != CURLE_OK) {
		e = transfer_failed(a, rc, &call, errbuf, res);
		goto out;
	}
	/* RFC 6749: 200 for tokens, 400 (and 401 for client authentication)
	 * for errors. A redirect is never followed: it is a wrong answer. */
	if (status != 200 && status != 400 && status != 401) {
		e = fail(res, E_OAUTH2_PROVIDER, "invalid_response",
		         arena_printf(a, "the token endpoint answered HTTP %ld", status));
		goto out;
	}
	const char *ctype = NULL;
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
	if (!text_media_type_is(ctype, "application/json")) {
		e = fail(res, E_OAUTH2_PROVIDER, "invalid_response",
		         arena_printf(a,
		                      "the token endpoint answered HTTP %ld with a body that is"
		                      " not application/json",
		                      status));
		goto out;
	}
	call.body[call.len] = '\0';
	char msg[96];
	struct json_value *v;
	enum json_status js = json_parse(a, call.body, call.len, &v, msg, sizeof(msg));
	if (js == JSON_ERR_NOMEM) {
		e = fail(res, E_INTERNAL, "internal", "out of memory");
		goto out;
	}
	if (js != JSON_OK || v->type != JSON_OBJECT) {
		e = fail(res, E_OAUTH2_PROVIDER, "invalid_response",
		         arena_printf(a,
		                      "the token endpoint answered HTTP %ld with JSON that is not"
		                      " a valid object (%s)",
		                      status, js != JSON_OK ? msg : "not an object"));
		goto out;
	}
	*root = v;
out:
	curl_easy_cleanup(h);
	curl_slist_free_all(headers);
	if (res->reason == NULL && e != E_OK)
		res->reason = "(no reason)";
	return e;
}
