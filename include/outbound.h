/*
 * outbound.h - the service's one client for outbound HTTPS calls (OAuth 2.0
 * token endpoints) and the outbound address policy (docs/api.md,
 * "Outbound calls"). Only src/outbound.c includes libcurl.
 *
 * Every call: HTTPS only, no redirect followed, no proxy or netrc, a fresh
 * connection, connect and total timeouts, the response capped while it is
 * read, and the address actually connected to checked against the policy
 * (so every spelling of loopback, and a name that resolves to one, is
 * caught). MAILSRV_CA_FILE is trusted besides the system's CA bundle.
 *
 * The policy refuses loopback (127/8, ::1), link-local (169.254/16,
 * fe80::/10), unspecified (0/8, ::), shared address space (100.64/10),
 * multicast (224/4, ff00::/8), reserved (240/4), broadcast
 * (255.255.255.255), site-local (fec0::/10) and the cloud metadata
 * addresses that are not link-local (100.100.100.200, fd00:ec2::254), and
 * with MAILSRV_OUTBOUND_DENY_PRIVATE=1 also private ones (10/8, 172.16/12,
 * 192.168/16, fc00::/7). IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
 * (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) forms count as their IPv4
 * address. MAILSRV_OUTBOUND_ALLOW admits addresses or CIDRs despite that.
 */
#ifndef MAILSRV_OUTBOUND_H
#define MAILSRV_OUTBOUND_H

#include <stddef.h>

#include "err.h"
#include "mailsrv_limits.h"

struct arena;
struct json_value;
struct sockaddr;

/* A network of the allow-list, IPv4 held as ::ffff:a.b.c.d (prefix + 96). */
struct outbound_net {
	unsigned char addr[16];
	unsigned prefix; /* 0-128 */
};

/* Read-only once the workers start (part of struct config). */
struct outbound_policy {
	struct outbound_net allow[OUTBOUND_ALLOW_MAX];
	size_t nallow;
	int deny_private;
};

/* Parse MAILSRV_OUTBOUND_ALLOW ("127.0.0.1/32, ::1", NULL or "" for none).
 * -1 with a message in err for a malformed entry or too many. */
int outbound_policy_init(struct outbound_policy *p, const char *allow_csv, int deny_private,
                         char *err, size_t errlen);

/* The verdict for one address: NULL when admitted, otherwise why it is
 * refused ("loopback", "link-local", "unspecified", "shared address space",
 * "multicast", "reserved", "broadcast", "site-local", "cloud metadata",
 * "private"). salen is the
 * size of the sockaddr_in or sockaddr_in6; other families are refused
 * ("unsupported address family"). */
const char *outbound_check_addr(const struct outbound_policy *p, const struct sockaddr *sa,
                                size_t salen);

/* The same for a 16-byte IPv6 address (IPv4 as ::ffff:a.b.c.d). */
const char *outbound_check_addr16(const struct outbound_policy *p, const unsigned char a[16]);

/*
 * Save-time check of an https URL: when its host, as libcurl's URL parser
 * reads it, is an IP literal (any spelling libcurl accepts, such as
 * 2130706433 or 0x7f.1, or a bracketed IPv6 address) that the policy
 * refuses, the reason (as above); NULL otherwise. Host names are checked
 * when they are resolved, at call time.
 */
const char *outbound_url_refused(const struct outbound_policy *p, const char *url, size_t len);

/* A URL as libcurl's URL API parses it (the parser of every call), and its
 * normalized form. Every string is in the arena. */
struct outbound_url {
	const char *url;    /* normalized: scheme and host in lower case,
	                     * percent-escapes of the host decoded, the
	                     * scheme's default port left out, dot segments
	                     * of the path removed, "/" for an empty path */
	const char *scheme; /* lower case */
	const char *host;   /* lower case; an IPv6 address in brackets */
	long port;          /* as written (0-65535), -1 when none */
	const char *path;   /* at least "/" */
	const char *query;  /* NULL when none */
	int userinfo;       /* a user name, password or login options */
	int fragment;       /* a non-empty fragment */
	int zone;           /* an IPv6 zone id */
};

/*
 * Parse url[0..len) with libcurl's URL API (curl_url_set without flags: a
 * scheme libcurl supports is required, spaces are refused) and fill *out.
 * NULL on success; otherwise why, as a client-safe message for a field
 * ("must be an https:// URL", "must name a valid host", ...). The rules of
 * an acceptable URL are the caller's (validate_https_url).
 */
const char *outbound_url_normalize(struct arena *a, const char *url, size_t len,
                                   struct outbound_url *out);

/* Once in main, before any thread or fork (curl_global_init). 0 on success. */
int outbound_global_init(void);

/* One POST of a form. */
struct outbound_request {
	const char *url;
	const char *form; /* application/x-www-form-urlencoded body */
	size_t form_len;
	const char *ca_file; /* MAILSRV_CA_FILE or NULL */
	const struct outbound_policy *policy;
};

/* What a call says beyond its err_t: for the log and for the stored last
 * error. Never holds response bytes. */
struct outbound_result {
	long status;        /* HTTP status, 0 when none was received */
	const char *code;   /* "timeout", "unreachable", "tls_failed",
	                     * "destination_refused", "invalid_response";
	                     * NULL on success */
	const char *reason; /* English, for logs: curl's message or ours */
};

/*
 * POST the form and read a JSON answer. E_OK when the status is 200, 400 or
 * 401 (RFC 6749 sections 5.1 and 5.2: success and error answers), the
 * Content-Type is application/json and the body is a JSON object within
 * the parser's limits; *root is then that object (in the arena). Otherwise:
 *   E_DESTINATION_REFUSED   the policy refused every address, or not https
 *   E_UPSTREAM_TIMEOUT      connect or total timeout
 *   E_UPSTREAM_UNREACHABLE  name not resolved, connection failed, TLS failed
 *   E_OAUTH2_PROVIDER       another status (a redirect included), another
 *                           Content-Type, a body over the cap, bad JSON
 *   E_INTERNAL              out of memory
 * with res->code and res->reason set.
 */
err_t outbound_post_form_json(struct arena *a, const struct outbound_request *rq,
                              struct json_value **root, struct outbound_result *res);

/* ---- SMTP: the connection test of a mail server ---- */

/* The stages of an SMTP session, named as the test result names them. */
enum smtp_stage {
	SMTP_STAGE_RESOLVE,
	SMTP_STAGE_CONNECT,
	SMTP_STAGE_TLS,
	SMTP_STAGE_EHLO,
	SMTP_STAGE_AUTH,
	SMTP_STAGE_MAIL_FROM,
	SMTP_STAGE_RCPT_TO,
	SMTP_STAGE_DATA,
	SMTP_STAGE__COUNT
};
/* "resolve", "connect", "tls", "ehlo", "auth", "mail_from", "rcpt_to", "data" */
const char *outbound_smtp_stage_name(enum smtp_stage s);

/* Port 465: TLS from the first byte (smtps); any other port with SSL
 * enabled: STARTTLS, required (a server that does not offer it never sees
 * credentials); PLAIN: no TLS at all. */
enum smtp_security { SMTP_PLAIN, SMTP_STARTTLS, SMTP_IMPLICIT_TLS };

struct outbound_smtp_request {
	const char *host; /* a validated host name or IP literal (no brackets) */
	int port;
	enum smtp_security security;
	/* Login: username with password (any mechanism the server offers but
	 * the OAuth ones), or XOAUTH2 as username with bearer; username NULL:
	 * no login. Never logged or stored. */
	const char *username;
	const char *password;
	const char *bearer;
	/* With rcpt: MAIL FROM, RCPT TO and DATA with message (CRLF lines,
	 * libcurl dot-stuffs it). Without: EHLO, login, NOOP, QUIT. */
	const char *mail_from;
	const char *rcpt;
	const char *message;
	size_t message_len;
	long connect_timeout_ms;
	long timeout_ms;
	const char *ca_file; /* MAILSRV_CA_FILE or NULL */
	const struct outbound_policy *policy;
};

struct outbound_smtp_stage {
	enum smtp_stage stage;
	int ok;
	long duration_ms;
	int reply_code; /* the server's last reply in this stage, 0: none */
};

/* The server's certificate, when a TLS handshake was completed (its
 * verification may still have failed: a wrong host name). Text from the
 * certificate, cleaned (no control characters, valid UTF-8, bounded). */
struct outbound_smtp_tls {
	const char *subject; /* "CN=smtp.example.com" */
	const char *issuer;
	long long not_after; /* seconds since the epoch, 0: unknown */
};

struct outbound_smtp_result {
	int ok;
	struct outbound_smtp_stage stages[SMTP_STAGE__COUNT];
	size_t nstages;
	enum smtp_stage stage; /* the last stage reached */
	/* NULL on success, else resolve_failed, connect_refused, timeout,
	 * tls_required, tls_failed, certificate_name_mismatch,
	 * certificate_expired, certificate_untrusted, auth_failed,
	 * sender_refused, recipient_refused, message_refused,
	 * destination_refused, connection_closed, unexpected_reply. */
	const char *error_code;
	const char *reason;    /* English for the log (libcurl's or ours), no secret */
	int login_not_offered; /* auth_failed: no AUTH in the server's EHLO answer */
	int has_tls;
	struct outbound_smtp_tls tls;
	long total_ms;
};

/*
 * One SMTP session on a fresh easy handle (no connection reuse, no proxy,
 * no netrc, smtp and smtps only), the address policy checked on the address
 * actually connected to, ports below 1024 other than 25, 465 and 587
 * refused before anything is sent. Certificates and host names verified
 * against the system's CA bundle plus ca_file. What happened is in *res:
 * E_OK whether or not the session succeeded; E_INTERNAL only when it could
 * not be attempted (out of memory, libcurl refused an option).
 */
err_t outbound_smtp_session(struct arena *a, const struct outbound_smtp_request *rq,
                            struct outbound_smtp_result *res);

#endif
