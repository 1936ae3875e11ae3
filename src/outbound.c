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
#include <time.h>

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

/* Cloud instance metadata services that are not link-local: Alibaba
 * Cloud's 100.100.100.200 (inside the shared address space) and AWS's IPv6
 * fd00:ec2::254 (inside fc00::/7, refused even when private addresses are
 * not). They hand out the instance's credentials to whoever asks. */
static const unsigned char metadata_v4[4] = {100, 100, 100, 200};
static const unsigned char metadata_v6[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0,    0,
                                              0,    0,    0,    0,    0, 0, 0x02, 0x54};

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
		if (memcmp(v4, metadata_v4, 4) == 0)
			return "cloud metadata";
		/* 100.64/10, RFC 6598: carrier-grade NAT, the provider's side */
		if (v4[0] == 100 && (v4[1] & 0xc0) == 64)
			return "shared address space";
		if ((v4[0] & 0xf0) == 224)
			return "multicast"; /* 224/4, RFC 5771 */
		if (v4[0] == 255 && v4[1] == 255 && v4[2] == 255 && v4[3] == 255)
			return "broadcast"; /* RFC 919 */
		if ((v4[0] & 0xf0) == 240)
			return "reserved"; /* 240/4, RFC 1112 section 4 */
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
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0)
		return "site-local"; /* fec0::/10, deprecated by RFC 3879 */
	if (a[0] == 0xff)
		return "multicast"; /* ff00::/8 */
	if (memcmp(a, metadata_v6, 16) == 0)
		return "cloud metadata";
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
	/* The host as libcurl's parser reads it, the parser of the call:
	 * 2130706433, 0x7f.1 and 127.1 come out as 127.0.0.1. */
	if (memchr(url, '\0', len) != NULL)
		return NULL; /* not for us to judge: validation refuses it */
	char *text = strndup(url, len);
	CURLU *h = curl_url();
	char *scheme = NULL, *host = NULL;
	const char *why = NULL;
	if (text != NULL && h != NULL && curl_url_set(h, CURLUPART_URL, text, 0) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    strcmp(scheme, "https") == 0 &&
	    curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		unsigned char a[16];
		char buf[INET6_ADDRSTRLEN + 2];
		size_t hl = strlen(host);
		struct in_addr v4;
		if (hl > 2 && hl < sizeof(buf) && host[0] == '[' && host[hl - 1] == ']') {
			memcpy(buf, host + 1, hl - 2);
			buf[hl - 2] = '\0';
			if (inet_pton(AF_INET6, buf, a) == 1)
				why = outbound_check_addr16(p, a);
		} else if (inet_aton(host, &v4) != 0) {
			memcpy(a, v4mapped, 12);
			memcpy(a + 12, &v4, 4);
			why = outbound_check_addr16(p, a);
		}
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(h);
	free(text);
	return why;
}

/* ---- URLs: libcurl's parser, the one the calls use ---- */

/* The message for a URL libcurl's parser refused. */
static const char *url_error(CURLUcode rc)
{
	switch (rc) {
	case CURLUE_BAD_SCHEME:
	case CURLUE_UNSUPPORTED_SCHEME:
	case CURLUE_BAD_SLASHES:
		return "must be an https:// URL";
	case CURLUE_NO_HOST:
		return "must name a host";
	case CURLUE_BAD_HOSTNAME:
	case CURLUE_BAD_IPV6:
		return "must name a valid host";
	case CURLUE_BAD_PORT_NUMBER:
		return "port must be 1-65535";
	case CURLUE_BAD_LOGIN:
	case CURLUE_BAD_USER:
	case CURLUE_BAD_PASSWORD:
		return "must not contain a user name or password";
	case CURLUE_OUT_OF_MEMORY:
		return "is too long to process";
	default:
		return "is not a valid URL";
	}
}

/* A part of h copied into the arena (NULL when absent). *nomem on failure. */
static const char *url_part(struct arena *a, CURLU *h, CURLUPart part, unsigned flags, int *nomem)
{
	char *v = NULL;
	if (curl_url_get(h, part, &v, flags) != CURLUE_OK || v == NULL)
		return NULL;
	const char *copy = arena_strdup(a, v);
	curl_free(v);
	if (copy == NULL)
		*nomem = 1;
	return copy;
}

const char *outbound_url_normalize(struct arena *a, const char *url, size_t len,
                                   struct outbound_url *out)
{
	memset(out, 0, sizeof(*out));
	out->port = -1;
	if (memchr(url, '\0', len) != NULL)
		return "must not contain control characters";
	char *text = arena_strndup(a, url, len);
	CURLU *h = curl_url();
	if (text == NULL || h == NULL) {
		curl_url_cleanup(h);
		return "is too long to process";
	}
	/* No flag: a scheme is required, only schemes libcurl supports, no
	 * spaces; the path's dot segments are removed. */
	CURLUcode rc = curl_url_set(h, CURLUPART_URL, text, 0);
	if (rc != CURLUE_OK) {
		curl_url_cleanup(h);
		return url_error(rc);
	}
	int nomem = 0;
	const char *why = NULL;
	out->scheme = url_part(a, h, CURLUPART_SCHEME, 0, &nomem);
	const char *host = url_part(a, h, CURLUPART_HOST, 0, &nomem);
	const char *port = url_part(a, h, CURLUPART_PORT, 0, &nomem);
	out->userinfo = url_part(a, h, CURLUPART_USER, 0, &nomem) != NULL ||
	                url_part(a, h, CURLUPART_PASSWORD, 0, &nomem) != NULL ||
	                url_part(a, h, CURLUPART_OPTIONS, 0, &nomem) != NULL;
	out->fragment = url_part(a, h, CURLUPART_FRAGMENT, 0, &nomem) != NULL;
	out->zone = url_part(a, h, CURLUPART_ZONEID, 0, &nomem) != NULL;
	if (host == NULL || host[0] == '\0') {
		why = nomem ? "is too long to process" : "must name a host";
		goto done;
	}
	/* Host names compare without regard to case (RFC 3986 section 3.2.2):
	 * stored in lower case. libcurl has decoded any percent-escapes in it;
	 * a name that is not ASCII then must be given in its xn-- form. */
	char *lower = arena_strdup(a, host);
	if (lower == NULL) {
		why = "is too long to process";
		goto done;
	}
	for (char *p = lower; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f) {
			why = "must name a valid host (a name that is not ASCII in its xn-- form)";
			goto done;
		}
		if (c >= 'A' && c <= 'Z')
			*p = (char)(c - 'A' + 'a');
	}
	if (strcmp(lower, host) != 0 &&
	    (rc = curl_url_set(h, CURLUPART_HOST, lower, 0)) != CURLUE_OK) {
		why = url_error(rc);
		goto done;
	}
	out->host = lower;
	/* libcurl admits 0-65535, leading zeros read as decimal */
	out->port = port != NULL ? strtol(port, NULL, 10) : -1;
	/* The scheme's default port is left out (https://h:443/ is https://h/). */
	out->url = url_part(a, h, CURLUPART_URL, CURLU_NO_DEFAULT_PORT, &nomem);
	out->path = url_part(a, h, CURLUPART_PATH, 0, &nomem);
	out->query = url_part(a, h, CURLUPART_QUERY, 0, &nomem);
	if (nomem || out->url == NULL || out->path == NULL || out->scheme == NULL)
		why = nomem ? "is too long to process" : "is not a valid URL";
done:
	curl_url_cleanup(h);
	return why;
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

/* ---- SMTP sessions (the connection test) ----
 *
 * The stages come from the conversation itself: CURLOPT_DEBUGFUNCTION sees
 * every command libcurl sends (CURLINFO_HEADER_OUT) and every reply line
 * (CURLINFO_HEADER_IN), so each stage has its server's reply code and a
 * time. Resolve, connect and TLS from the first byte are timed by libcurl
 * (CURLINFO_*_TIME_T). The callback looks at the first word of a command
 * and the code of a reply, nothing else: it never copies a line, and from
 * AUTH until the server's final answer to it it does not even look at what
 * is sent (the SASL exchange carries the credentials, base64-encoded).
 *
 * Without a recipient the session is EHLO, login, NOOP, QUIT: libcurl runs
 * a custom command with CURLOPT_NOBODY, and closes the connection with QUIT
 * since it may not be reused (CURLOPT_CONNECT_ONLY would log in too, but
 * drops the connection without QUIT).
 */

static const char *const smtp_stage_names[SMTP_STAGE__COUNT] = {
    [SMTP_STAGE_RESOLVE] = "resolve", [SMTP_STAGE_CONNECT] = "connect",
    [SMTP_STAGE_TLS] = "tls",         [SMTP_STAGE_EHLO] = "ehlo",
    [SMTP_STAGE_AUTH] = "auth",       [SMTP_STAGE_MAIL_FROM] = "mail_from",
    [SMTP_STAGE_RCPT_TO] = "rcpt_to", [SMTP_STAGE_DATA] = "data",
};

const char *outbound_smtp_stage_name(enum smtp_stage s)
{
	return (unsigned)s < SMTP_STAGE__COUNT ? smtp_stage_names[s] : "unknown";
}

/* What the conversation is at, from the last command sent. */
enum smtp_phase {
	PH_GREETING,
	PH_EHLO,
	PH_STARTTLS,
	PH_EHLO_TLS, /* EHLO again over TLS: still the tls stage */
	PH_AUTH,
	PH_MAIL,
	PH_RCPT,
	PH_DATA,
	PH_NOOP,
	PH_QUIT,
};

/* A stage of the conversation (ehlo onwards) as it is seen. */
struct smtp_seen {
	enum smtp_stage stage;
	int ok;
	int reply_code;
	long long end_us; /* 0: no final answer yet */
};

struct smtp_call {
	struct call net; /* the address policy and the CA file (callbacks above) */
	const struct outbound_smtp_request *rq;
	struct timespec t0;
	enum smtp_phase phase;
	struct smtp_seen seen[SMTP_STAGE__COUNT];
	size_t nseen;
	int open;              /* seen[nseen - 1] waits for its final answer */
	long long first_io_us; /* first byte from or to the server */
	int starttls_sent;
	int auth_ok;  /* the server accepted the login */
	int no_login; /* a login was due but the server offered none */
	size_t sent;  /* bytes of the message given to libcurl */
};

static long long smtp_elapsed_us(const struct smtp_call *c)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(now.tv_sec - c->t0.tv_sec) * 1000000 +
	       (now.tv_nsec - c->t0.tv_nsec) / 1000;
}

static void smtp_begin(struct smtp_call *c, enum smtp_stage stage)
{
	if (c->nseen == SMTP_STAGE__COUNT)
		return; /* every stage happens once; a repeat keeps the last slot */
	c->seen[c->nseen].stage = stage;
	c->seen[c->nseen].ok = 0;
	c->seen[c->nseen].reply_code = 0;
	c->seen[c->nseen].end_us = 0;
	c->nseen++;
	c->open = 1;
}

static void smtp_end(struct smtp_call *c, int ok, long long now)
{
	if (c->nseen == 0 || !c->open)
		return;
	c->seen[c->nseen - 1].ok = ok;
	c->seen[c->nseen - 1].end_us = now;
	c->open = 0;
}

/* The first word of a command line, without regard to case. */
static int smtp_is(const char *d, size_t n, const char *word)
{
	size_t l = strlen(word);
	return n >= l && strncasecmp(d, word, l) == 0 &&
	       (n == l || d[l] == ' ' || d[l] == ':' || d[l] == '\r' || d[l] == '\n');
}

/* The commands that open a phase (EHLO and STARTTLS, which depend on what
 * came before, are handled apart); `begins`: and a stage of the result. */
static const struct {
	const char *word;
	enum smtp_phase phase;
	int begins;
	enum smtp_stage stage;
} smtp_commands[] = {
    {"AUTH", PH_AUTH, 1, SMTP_STAGE_AUTH},
    {"MAIL", PH_MAIL, 1, SMTP_STAGE_MAIL_FROM},
    {"RCPT", PH_RCPT, 1, SMTP_STAGE_RCPT_TO},
    {"DATA", PH_DATA, 1, SMTP_STAGE_DATA},
    {"NOOP", PH_NOOP, 0, 0},
    {"QUIT", PH_QUIT, 0, 0},
};

static void smtp_on_command(struct smtp_call *c, const char *d, size_t n)
{
	/* SASL responses: credentials. Not looked at (see above). */
	if (c->phase == PH_AUTH && c->open)
		return;
	if (smtp_is(d, n, "EHLO") || smtp_is(d, n, "HELO")) {
		if (c->starttls_sent) {
			c->phase = PH_EHLO_TLS;
		} else if (c->phase == PH_EHLO && c->nseen > 0) {
			/* HELO after a refused EHLO: the same stage goes on */
			c->open = 1;
		} else {
			c->phase = PH_EHLO;
			smtp_begin(c, SMTP_STAGE_EHLO);
		}
	} else if (smtp_is(d, n, "STARTTLS")) {
		c->starttls_sent = 1;
		c->phase = PH_STARTTLS;
		smtp_begin(c, SMTP_STAGE_TLS);
	} else {
		for (size_t i = 0; i < sizeof(smtp_commands) / sizeof(smtp_commands[0]); i++) {
			if (!smtp_is(d, n, smtp_commands[i].word))
				continue;
			c->phase = smtp_commands[i].phase;
			if (smtp_commands[i].begins)
				smtp_begin(c, smtp_commands[i].stage);
			break;
		}
	}
}

static void smtp_on_reply(struct smtp_call *c, const char *d, size_t n, long long now)
{
	if (n < 3 || d[0] < '2' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' ||
	    d[2] > '9')
		return;
	int code = (d[0] - '0') * 100 + (d[1] - '0') * 10 + (d[2] - '0');
	/* RFC 5321 section 4.2.1: "xyz-" continues, "xyz " or "xyz" ends. */
	if (n > 3 && d[3] == '-')
		return;
	if (c->phase == PH_GREETING) {
		/* A refused greeting (554) fails the session before EHLO. */
		if (code != 220) {
			smtp_begin(c, SMTP_STAGE_EHLO);
			c->seen[c->nseen - 1].reply_code = code;
			smtp_end(c, 0, now);
		}
		return;
	}
	if (c->nseen == 0 || !c->open)
		return;
	struct smtp_seen *s = &c->seen[c->nseen - 1];
	switch (c->phase) {
	case PH_STARTTLS:
		/* 220: the handshake follows; the stage ends with the answer to
		 * EHLO over TLS. */
		s->reply_code = code;
		if (code != 220)
			smtp_end(c, 0, now);
		break;
	case PH_EHLO_TLS:
		if (code / 100 != 2)
			s->reply_code = code;
		smtp_end(c, code / 100 == 2, now);
		break;
	case PH_AUTH:
		s->reply_code = code;
		if (code / 100 == 3)
			break; /* a SASL challenge */
		c->auth_ok = code / 100 == 2;
		smtp_end(c, c->auth_ok, now);
		break;
	case PH_DATA:
		s->reply_code = code;
		if (code != 354)
			smtp_end(c, code / 100 == 2, now);
		break;
	case PH_EHLO:
	case PH_MAIL:
	case PH_RCPT:
		s->reply_code = code;
		smtp_end(c, code / 100 == 2, now);
		break;
	default:
		break;
	}
}

static int smtp_on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *userp)
{
	(void)h;
	struct smtp_call *c = userp;
	switch (type) {
	case CURLINFO_HEADER_IN:
		if (c->first_io_us == 0)
			c->first_io_us = smtp_elapsed_us(c);
		smtp_on_reply(c, data, size, smtp_elapsed_us(c));
		break;
	case CURLINFO_HEADER_OUT:
		smtp_on_command(c, data, size);
		break;
	case CURLINFO_SSL_DATA_IN:
	case CURLINFO_SSL_DATA_OUT:
		/* TLS from the first byte: the handshake's first record means
		 * the TCP connection stands (CONNECT_TIME_T stays 0 when the
		 * handshake then fails). Contents never looked at. */
		if (c->first_io_us == 0)
			c->first_io_us = smtp_elapsed_us(c);
		break;
	default:
		/* CURLINFO_TEXT, the message itself: not looked at */
		break;
	}
	return 0;
}

/* Right before MAIL FROM (or NOOP), after EHLO and the login: a login was
 * due but the server offered none (no AUTH in its EHLO answer, which many
 * servers do before TLS). libcurl would carry on without one; stop. */
static int smtp_on_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                          int local_port)
{
	(void)primary_ip;
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	struct smtp_call *c = clientp;
	if (c->rq->username != NULL && !c->auth_ok) {
		c->no_login = 1;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

static size_t smtp_on_read(char *buf, size_t size, size_t nitems, void *userp)
{
	struct smtp_call *c = userp;
	size_t room = size * nitems, left = c->rq->message_len - c->sent;
	size_t n = left < room ? left : room;
	memcpy(buf, c->rq->message + c->sent, n);
	c->sent += n;
	return n;
}

static int smtp_port_allowed(int port)
{
	/* Below 1024 only the mail ports: a test must not become a probe of
	 * other privileged services (ssh, http, ...) on the network. */
	return port >= 1024 || port == 25 || port == 465 || port == 587;
}

static void smtp_add(struct outbound_smtp_result *res, enum smtp_stage stage, int ok, long long us,
                     int reply_code)
{
	if (res->nstages == SMTP_STAGE__COUNT)
		return;
	struct outbound_smtp_stage *s = &res->stages[res->nstages++];
	s->stage = stage;
	s->ok = ok;
	s->duration_ms = us <= 0 ? 0 : (long)((us + 500) / 1000);
	s->reply_code = reply_code;
	res->stage = stage;
}

/* The failed stage: the last one, or a new one of this kind that lasted
 * us (from the end of the last one to the failure). */
static void smtp_fail_at(struct outbound_smtp_result *res, enum smtp_stage stage, long long us)
{
	if (res->nstages > 0 && res->stages[res->nstages - 1].stage == stage)
		res->stages[res->nstages - 1].ok = 0;
	else
		smtp_add(res, stage, 0, us, 0);
}

/* OpenSSL's X509_V_ERR_* values (stable ABI numbers) that libcurl reports
 * in CURLINFO_SSL_VERIFYRESULT; OpenSSL itself is crypto.c's. */
#define X509_NOT_YET_VALID 9
#define X509_EXPIRED       10
#define X509_UNSPECIFIED   1 /* libcurl's mark for a host name mismatch */
#define X509_HOST_MISMATCH 62

static const char *smtp_tls_code(CURLcode rc, long verify, int handshake_done)
{
	if (rc != CURLE_PEER_FAILED_VERIFICATION)
		return "tls_failed";
	if (verify == X509_EXPIRED || verify == X509_NOT_YET_VALID)
		return "certificate_expired";
	/* The host name is checked after a complete handshake (which a
	 * certificate chain failure never reaches). */
	if (handshake_done &&
	    (verify == 0 || verify == X509_UNSPECIFIED || verify == X509_HOST_MISMATCH))
		return "certificate_name_mismatch";
	return "certificate_untrusted";
}

/* Text of a certificate field, printable ASCII (OpenSSL escapes the rest),
 * "CN = x, O = y" written "CN=x, O=y", at most 255 bytes. */
static const char *smtp_cert_text(struct arena *a, const char *s)
{
	size_t n = strlen(s);
	char *out = arena_alloc(a, n + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n && o < 255; i++) {
		if (strncmp(s + i, " = ", 3) == 0) {
			out[o++] = '=';
			i += 2;
			continue;
		}
		unsigned char ch = (unsigned char)s[i];
		out[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	out[o] = '\0';
	return out;
}

static void smtp_read_cert(struct arena *a, CURL *h, struct outbound_smtp_result *res)
{
	struct curl_certinfo *ci = NULL;
	if (curl_easy_getinfo(h, CURLINFO_CERTINFO, &ci) != CURLE_OK || ci == NULL ||
	    ci->num_of_certs < 1)
		return;
	res->has_tls = 1;
	for (struct curl_slist *l = ci->certinfo[0]; l != NULL; l = l->next) {
		const char *d = l->data;
		if (strncmp(d, "Subject:", 8) == 0) {
			res->tls.subject = smtp_cert_text(a, d + 8);
		} else if (strncmp(d, "Issuer:", 7) == 0) {
			res->tls.issuer = smtp_cert_text(a, d + 7);
		} else if (strncmp(d, "Expire date:", 12) == 0) {
			/* "Nov 29 10:45:54 2036 GMT" (C locale: the service never
			 * calls setlocale) */
			struct tm tm;
			memset(&tm, 0, sizeof(tm));
			const char *end = strptime(d + 12, "%b %d %H:%M:%S %Y", &tm);
			if (end != NULL)
				res->tls.not_after = (long long)timegm(&tm);
		}
	}
}

/* libcurl's timers of a session, in microseconds from its start. */
struct smtp_times {
	long long lookup, connect, appconnect;
	long verify; /* CURLINFO_SSL_VERIFYRESULT */
};

/* The stages before the conversation: resolve, connect and, for TLS from
 * the first byte, the handshake. 1 when they all went through (*prev: when
 * the last ended), 0 with res->error_code set otherwise. */
static int smtp_network_stages(struct smtp_call *c, CURLcode rc, long long end_us,
                               const struct smtp_times *t, struct arena *a,
                               struct outbound_smtp_result *res, long long *prev)
{
	long long connected = t->connect > 0 ? t->connect : c->first_io_us;
	int resolved = t->lookup > 0 || connected > 0 || c->net.opened > 0 || c->net.refused > 0;
	smtp_add(res, SMTP_STAGE_RESOLVE, resolved, resolved ? t->lookup : end_us, 0);
	if (!resolved) {
		res->error_code = rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "resolve_failed";
		return 0;
	}
	smtp_add(res, SMTP_STAGE_CONNECT, connected > 0,
	         (connected > 0 ? connected : end_us) - t->lookup, 0);
	if (connected <= 0) {
		if (c->net.refused > 0 && c->net.opened == 0) {
			res->error_code = "destination_refused";
			res->reason = arena_printf(
			    a, "the outbound policy refuses the address (%s)", c->net.refused_why);
		} else {
			res->error_code =
			    rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "connect_refused";
		}
		return 0;
	}
	*prev = connected;
	if (c->rq->security == SMTP_IMPLICIT_TLS) {
		int ok = t->appconnect > 0;
		smtp_add(res, SMTP_STAGE_TLS, ok, (ok ? t->appconnect : end_us) - *prev, 0);
		if (!ok) {
			res->error_code = rc == CURLE_OPERATION_TIMEDOUT
			                      ? "timeout"
			                      : smtp_tls_code(rc, t->verify, res->has_tls);
			return 0;
		}
		*prev = t->appconnect;
	}
	return 1;
}

/* The code of a stage the server refused with a 4xx or 5xx reply. */
static const char *smtp_refused_code(enum smtp_stage at)
{
	switch (at) {
	case SMTP_STAGE_MAIL_FROM:
		return "sender_refused";
	case SMTP_STAGE_RCPT_TO:
		return "recipient_refused";
	case SMTP_STAGE_DATA:
		return "message_refused";
	case SMTP_STAGE_AUTH:
		return "auth_failed";
	case SMTP_STAGE_TLS:
		return "tls_required";
	default:
		return "unexpected_reply";
	}
}

/* A conversation that failed at stage `at`: the failed stage, and the code
 * from libcurl's verdict or the server's reply. */
static void smtp_conversation_failed(CURLcode rc, long long took, enum smtp_stage at, long verify,
                                     struct outbound_smtp_result *res)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		smtp_fail_at(res, at, took);
		res->error_code = "timeout";
		return;
	case CURLE_USE_SSL_FAILED:
		smtp_fail_at(res, SMTP_STAGE_TLS, took);
		res->error_code = "tls_required";
		return;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CRL_BADFILE:
		smtp_fail_at(res, SMTP_STAGE_TLS, took);
		res->error_code = smtp_tls_code(rc, verify, res->has_tls);
		return;
	case CURLE_LOGIN_DENIED:
		/* Refused, or no mechanism in common (no AUTH stage then). */
		smtp_fail_at(res, SMTP_STAGE_AUTH, took);
		res->error_code = "auth_failed";
		return;
	case CURLE_OUT_OF_MEMORY:
		smtp_fail_at(res, at, took);
		res->error_code = "internal";
		return;
	default:
		break;
	}
	const struct outbound_smtp_stage *last =
	    res->nstages > 0 ? &res->stages[res->nstages - 1] : NULL;
	smtp_fail_at(res, at, took);
	if (last != NULL && last->stage == at && last->reply_code >= 400)
		res->error_code = smtp_refused_code(at);
	else
		res->error_code =
		    rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING
		        ? "connection_closed"
		        : "unexpected_reply";
}

static void smtp_assemble(struct smtp_call *c, CURL *h, CURLcode rc, long long end_us,
                          const char *errbuf, struct arena *a, struct outbound_smtp_result *res)
{
	curl_off_t nl = 0, ct = 0, ac = 0;
	long verify = 0;
	curl_easy_getinfo(h, CURLINFO_NAMELOOKUP_TIME_T, &nl);
	curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &ct);
	curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &ac);
	curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &verify);
	smtp_read_cert(a, h, res);
	res->total_ms = (long)((end_us + 500) / 1000);
	res->reason = arena_strdup(a, errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
	if (res->reason == NULL)
		res->reason = "(out of memory)";

	const struct smtp_times t = {(long long)nl, (long long)ct, (long long)ac, verify};
	long long prev = 0;
	if (!smtp_network_stages(c, rc, end_us, &t, a, res, &prev))
		return;
	for (size_t i = 0; i < c->nseen; i++) {
		const struct smtp_seen *s = &c->seen[i];
		long long end = s->end_us > 0 ? s->end_us : end_us;
		smtp_add(res, s->stage, s->end_us > 0 && s->ok, end - prev, s->reply_code);
		prev = end;
	}

	int all_ok = 1;
	for (size_t i = 0; i < res->nstages; i++)
		all_ok = all_ok && res->stages[i].ok;
	/* A NOOP or QUIT that went wrong after everything else went right does
	 * not fail the test. */
	if ((rc == CURLE_OK || c->phase == PH_NOOP || c->phase == PH_QUIT) && all_ok &&
	    !c->no_login && c->nseen > 0) {
		res->ok = 1;
		res->error_code = NULL;
		return;
	}
	if (c->no_login) {
		smtp_add(res, SMTP_STAGE_AUTH, 0, 0, 0);
		res->error_code = "auth_failed";
		res->login_not_offered = 1;
		res->reason = "the server offers no login (no AUTH in its EHLO answer)";
		return;
	}
	/* Connected but no stage of the conversation: the greeting never came. */
	enum smtp_stage at = c->nseen > 0 && res->nstages > 0 ? res->stages[res->nstages - 1].stage
	                                                      : SMTP_STAGE_EHLO;
	smtp_conversation_failed(rc, end_us - prev, at, verify, res);
}

static int smtp_configure(CURL *h, const struct outbound_smtp_request *rq, struct smtp_call *c,
                          const char *url, const char *from, struct curl_slist *rcpt, char *errbuf)
{
	CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
	do {                                                                                       \
		if (rc == CURLE_OK)                                                                \
			rc = curl_easy_setopt(h, opt, val);                                        \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
	/* Connection reuse in SMTP with STARTTLS has advisories against this
	 * libcurl: a fresh connection, closed after the test. */
	SET(CURLOPT_FORBID_REUSE, 1L);
	SET(CURLOPT_FRESH_CONNECT, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, rq->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, rq->timeout_ms);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_CERTINFO, 1L);
	/* ALL, never TRY: with TRY a server that refuses STARTTLS would get the
	 * login in clear text. */
	SET(CURLOPT_USE_SSL, (long)(rq->security == SMTP_PLAIN ? CURLUSESSL_NONE : CURLUSESSL_ALL));
	SET(CURLOPT_VERBOSE, 1L); /* feeds the debug callback, nothing is printed */
	SET(CURLOPT_DEBUGFUNCTION, smtp_on_debug);
	SET(CURLOPT_DEBUGDATA, c);
	SET(CURLOPT_PREREQFUNCTION, smtp_on_prereq);
	SET(CURLOPT_PREREQDATA, c);
	SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
	SET(CURLOPT_OPENSOCKETDATA, &c->net);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	if (rq->ca_file != NULL) {
		SET(CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
		SET(CURLOPT_SSL_CTX_DATA, &c->net);
	}
	if (rq->username != NULL) {
		SET(CURLOPT_USERNAME, rq->username);
		if (rq->bearer != NULL) {
			/* XOAUTH2 even when OAUTHBEARER is offered too (libcurl
			 * would prefer that); no CURLOPT_HTTPAUTH, which would make
			 * this libcurl ignore the AUTH= option. */
			SET(CURLOPT_LOGIN_OPTIONS, "AUTH=XOAUTH2");
			SET(CURLOPT_XOAUTH2_BEARER, rq->bearer);
		} else {
			SET(CURLOPT_PASSWORD, rq->password != NULL ? rq->password : "");
		}
	}
	if (rcpt != NULL) {
		SET(CURLOPT_MAIL_FROM, from);
		SET(CURLOPT_MAIL_RCPT, rcpt);
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, smtp_on_read);
		SET(CURLOPT_READDATA, c);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->message_len);
	} else {
		SET(CURLOPT_CUSTOMREQUEST, "NOOP");
		SET(CURLOPT_NOBODY, 1L);
	}
#undef SET
	return rc == CURLE_OK ? 0 : -1;
}

/* An address for MAIL FROM / RCPT TO: "<addr>", NULL when it holds
 * anything that could end or extend the command (validation already
 * refuses those; this is the last line of defence). */
static char *smtp_path(struct arena *a, const char *addr)
{
	if (addr == NULL || addr[0] == '\0' || strpbrk(addr, "<> \t\r\n") != NULL)
		return NULL;
	return arena_printf(a, "<%s>", addr);
}

err_t outbound_smtp_session(struct arena *a, const struct outbound_smtp_request *rq,
                            struct outbound_smtp_result *res)
{
	memset(res, 0, sizeof(*res));
	if (!smtp_port_allowed(rq->port)) {
		smtp_add(res, SMTP_STAGE_CONNECT, 0, 0, 0);
		res->error_code = "destination_refused";
		res->reason = "ports below 1024 other than 25, 465 and 587 are refused";
		return E_OK;
	}
	if (rq->host == NULL || rq->host[0] == '\0' || strpbrk(rq->host, "/?#@[] \t\r\n") != NULL)
		return E_INTERNAL; /* validation lets no such host through */
	int v6 = strchr(rq->host, ':') != NULL;
	char *url =
	    arena_printf(a, "%s://%s%s%s:%d/", rq->security == SMTP_IMPLICIT_TLS ? "smtps" : "smtp",
	                 v6 ? "[" : "", rq->host, v6 ? "]" : "", rq->port);
	char *from = NULL, *to = NULL;
	if (rq->rcpt != NULL) {
		from = smtp_path(a, rq->mail_from);
		to = smtp_path(a, rq->rcpt);
		if (from == NULL || to == NULL || rq->message == NULL)
			return E_INTERNAL;
	}
	if (url == NULL)
		return E_INTERNAL;

	struct smtp_call c;
	memset(&c, 0, sizeof(c));
	c.net.policy = rq->policy;
	c.net.ca_file = rq->ca_file;
	c.rq = rq;
	c.phase = PH_GREETING;
	char errbuf[CURL_ERROR_SIZE];
	errbuf[0] = '\0';
	err_t e = E_OK;
	struct curl_slist *rcpt = NULL;
	CURL *h = curl_easy_init();
	if (h == NULL)
		return E_INTERNAL;
	if (to != NULL && (rcpt = curl_slist_append(NULL, to)) == NULL) {
		e = E_INTERNAL;
		goto out;
	}
	if (smtp_configure(h, rq, &c, url, from, rcpt, errbuf) != 0) {
		e = E_INTERNAL;
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &c.t0);
	CURLcode rc = curl_easy_perform(h);
	smtp_assemble(&c, h, rc, smtp_elapsed_us(&c), errbuf, a, res);
out:
	curl_easy_cleanup(h);
	curl_slist_free_all(rcpt);
	return e;
}
