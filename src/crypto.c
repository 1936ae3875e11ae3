/*
 * crypto.c - the one file that talks to OpenSSL 3 (see crypto.h): random
 * bytes, base64url, SHA-256, the pinned bearer-token signature key (HS256,
 * RS256, ES256) and AES-256-GCM for secrets stored in the database.
 *
 * Only EVP-level APIs of OpenSSL 3.0 are used (no deprecated low-level
 * RSA/EC/HMAC_CTX calls). Algorithms are fetched once when a key is loaded:
 * implicit fetches on every call take a global lock in OpenSSL 3.0.
 *
 * Key material lives in malloc'd memory owned by struct sig_key and struct
 * secret_keyring and is wiped (OPENSSL_cleanse) when they are freed. Error
 * messages name the file and the problem, never key bytes.
 */
#include "crypto.h"

#include "arena.h"
#include "mailsrv_limits.h"
#include "validate.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

/* HS256: RFC 7518 section 3.2 requires a key of at least the hash size. */
#define HS256_MIN_KEY_BYTES 32
#define HS256_SIG_BYTES     32
/* RS256: RFC 7518 section 3.3 requires at least 2048-bit keys. */
#define RS256_MIN_BITS 2048
/* ES256: RFC 7518 section 3.4, r and s as 32-byte big-endian integers. */
#define ES256_COORD_BYTES 32
#define ES256_SIG_BYTES   (2 * ES256_COORD_BYTES)

/* Stored secrets: AES-256-GCM with the recommended 96-bit nonce and the full
 * 128-bit tag (NIST SP 800-38D sections 5.2.1.1 and 5.2.1.2). */
#define GCM_KEY_BYTES 32
/* HS256 key files we generate: 32 random bytes (RFC 7518 section 3.2). */
#define HMAC_KEY_FILE_BYTES 32
#define GCM_NONCE_BYTES     12
#define GCM_TAG_BYTES       16
#define SECRET_FORMAT_V1    0x01

/* ---------------------------------------------------------------------- */
/* helpers */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* How a key file that holds a secret must be kept, for the messages. */
#define SECRET_KEY_FILE_RULE                                                                       \
	"a secret key file must be owned by the user the service runs as, mode 0600 or 0400"

/*
 * The one rule for a file that holds a secret (the stored-secrets keyring,
 * an HS256 secret, a private signing key): owner-only, no permission bit for
 * its group or others, and owned by the user that loads it. Anyone else who
 * can read it can sign administrator tokens or decrypt every stored
 * password, and a file someone else owns may have been planted. root (the
 * operator's tools and tests) may load the service user's keys; the service
 * itself never runs as root (src/main.c). A public key (RS256/ES256
 * verification) is no secret and may be readable by anyone.
 */
static int check_secret_key_file(const char *path, const struct stat *st, char *err, size_t errlen)
{
	uid_t me = geteuid();
	if (st->st_uid != me && me != 0) {
		set_err(err, errlen, "\"%s\" is owned by uid %u, not by uid %u that loads it; %s",
		        path, (unsigned)st->st_uid, (unsigned)me, SECRET_KEY_FILE_RULE);
		return -1;
	}
	if ((st->st_mode & 077) != 0) {
		set_err(err, errlen, "\"%s\" is accessible by group or others (mode %04o); %s",
		        path, (unsigned)(st->st_mode & 07777), SECRET_KEY_FILE_RULE);
		return -1;
	}
	return 0;
}

/*
 * Read a whole small file into a malloc'd buffer (NUL-terminated, the NUL
 * not counted). The caller wipes and frees it. st receives the fstat of the
 * opened descriptor, so checks on it apply to the very file that was read.
 * secret: the file holds a secret key, kept by check_secret_key_file's
 * rule (checked before a byte is read).
 */
static int read_key_file(const char *path, int secret, unsigned char **buf, size_t *len,
                         struct stat *st, char *err, size_t errlen)
{
	int ret = -1;
	unsigned char *b = NULL;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		struct stat lst;
		if (e == EACCES && stat(path, &lst) == 0)
			/* say whose file it is: the usual cause is a key made by
			 * root for a service that runs as its own user */
			set_err(err, errlen,
			        "could not open \"%s\": %s (owned by uid %u, mode %04o; the "
			        "process runs as uid %u)%s%s",
			        path, strerror(e), (unsigned)lst.st_uid,
			        (unsigned)(lst.st_mode & 07777), (unsigned)geteuid(),
			        secret ? "; " : "", secret ? SECRET_KEY_FILE_RULE : "");
		else
			set_err(err, errlen, "could not open \"%s\": %s", path, strerror(e));
		goto out;
	}
	if (fstat(fd, st) != 0) {
		set_err(err, errlen, "could not stat \"%s\": %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st->st_mode)) {
		set_err(err, errlen, "\"%s\" is not a regular file", path);
		goto out;
	}
	if (secret && check_secret_key_file(path, st, err, errlen) != 0)
		goto out;
	b = malloc(KEY_FILE_MAX_BYTES + 1);
	if (b == NULL) {
		set_err(err, errlen, "out of memory reading \"%s\"", path);
		goto out;
	}
	for (;;) {
		if (n > KEY_FILE_MAX_BYTES) {
			set_err(err, errlen, "\"%s\" is larger than %d bytes", path,
			        KEY_FILE_MAX_BYTES);
			goto out;
		}
		ssize_t r = read(fd, b + n, KEY_FILE_MAX_BYTES + 1 - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			set_err(err, errlen, "could not read \"%s\": %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		/* n == MAX + 1 means the file is too big; the loop head says so */
	}
	b[n] = '\0';
	*buf = b;
	*len = n;
	b = NULL;
	ret = 0;
out:
	if (b != NULL) {
		OPENSSL_cleanse(b, KEY_FILE_MAX_BYTES + 1);
		free(b);
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static void free_key_file(unsigned char *buf)
{
	if (buf == NULL)
		return;
	OPENSSL_cleanse(buf, KEY_FILE_MAX_BYTES + 1);
	free(buf);
}

/* ---------------------------------------------------------------------- */
/* randomness, base64url, digests */

int crypto_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	/* RAND_bytes takes an int count */
	while (n > 0) {
		int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
		if (RAND_bytes(p, chunk) != 1) {
			ERR_clear_error();
			return -1;
		}
		p += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

/* RFC 4648 section 5: the URL- and filename-safe alphabet. */
static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *base64url_encode(struct arena *a, const void *data, size_t len)
{
	const unsigned char *in = data;
	if (a == NULL || (in == NULL && len != 0))
		return NULL;
	if (len > (SIZE_MAX - 4) / 4 * 3)
		return NULL;
	size_t outlen = len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
	char *out = arena_alloc(a, outlen + 1);
	if (out == NULL)
		return NULL;
	char *o = out;
	size_t i = 0;
	for (; i + 3 <= len; i += 3) {
		unsigned long v =
		    (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
		*o++ = b64url_alphabet[(v >> 18) & 63];
		*o++ = b64url_alphabet[(v >> 12) & 63];
		*o++ = b64url_alphabet[(v >> 6) & 63];
		*o++ = b64url_alphabet[v & 63];
	}
	/* no padding: RFC 7515 section 2 ("base64url encoding ... with all
	 * trailing '=' characters omitted") */
	if (len - i == 1) {
		unsigned long v = (unsigned long)in[i] << 16;
		*o++ = b64url_alphabet[(v >> 18) & 63];
		*o++ = b64url_alphabet[(v >> 12) & 63];
	} else if (len - i == 2) {
		unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;
		*o++ = b64url_alphabet[(v >> 18) & 63];
		*o++ = b64url_alphabet[(v >> 12) & 63];
		*o++ = b64url_alphabet[(v >> 6) & 63];
	}
	*o = '\0';
	return out;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict decoding: every character from the alphabet (no '=', whitespace,
 * '+' or '/'), no impossible length (4k+1), and the unused low bits of the
 * last character zero (RFC 4648 section 3.5): each byte string has exactly
 * one accepted encoding, so a token cannot be re-spelled.
 */
int base64url_decode(struct arena *a, const char *s, size_t len, unsigned char **out,
                     size_t *outlen)
{
	if (a == NULL || out == NULL || outlen == NULL || (s == NULL && len != 0))
		return -1;
	if (len % 4 == 1)
		return -1;
	size_t n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
	unsigned char *buf = arena_alloc(a, n + 1);
	if (buf == NULL)
		return -1;
	unsigned char *o = buf;
	unsigned long acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned long)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (unsigned char)(acc >> bits);
			acc &= (1UL << bits) - 1;
		}
	}
	/* leftover bits (2 or 4) must be zero for a canonical encoding */
	if (acc != 0)
		return -1;
	*o = '\0';
	*out = buf;
	*outlen = (size_t)(o - buf);
	return 0;
}

int crypto_sha256(const void *data, size_t len, unsigned char out[32])
{
	static const unsigned char empty[1];
	if (data == NULL) {
		if (len != 0)
			return -1;
		data = empty;
	}
	if (EVP_Digest(data, len, out, NULL, EVP_sha256(), NULL) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

void crypto_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

int crypto_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

/* ---------------------------------------------------------------------- */
/* outbound TLS */

/* MAILSRV_CA_FILE is trusted besides the system bundle that libcurl has
 * already loaded into this SSL_CTX's store (outbound.c calls this from
 * CURLOPT_SSL_CTX_FUNCTION). */
int crypto_ssl_ctx_add_ca_file(void *ssl_ctx, const char *path)
{
	X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)ssl_ctx);
	if (store == NULL || X509_STORE_load_file(store, path) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* signature keys */

struct sig_key {
	enum sig_alg alg;
	int has_private;   /* may sign (RS256/ES256); HS256 always may */
	EVP_MAC_CTX *hmac; /* HS256: keyed template, duplicated per use */
	EVP_PKEY *pkey;    /* RS256/ES256 */
	EVP_MD *sha256;    /* RS256/ES256: fetched once */
};

int sig_alg_from_name(const char *name, enum sig_alg *out)
{
	/* Exact match: libjwt matches without regard to case (docs/design.md, "libjwt (not used)");
	 * RFC 7515 section 4.1.1 makes "alg" a case-sensitive string. */
	if (name == NULL || out == NULL)
		return -1;
	if (strcmp(name, "HS256") == 0)
		*out = SIG_HS256;
	else if (strcmp(name, "RS256") == 0)
		*out = SIG_RS256;
	else if (strcmp(name, "ES256") == 0)
		*out = SIG_ES256;
	else
		return -1;
	return 0;
}

const char *sig_alg_name(enum sig_alg alg)
{
	switch (alg) {
	case SIG_HS256:
		return "HS256";
	case SIG_RS256:
		return "RS256";
	case SIG_ES256:
		return "ES256";
	}
	return "unknown";
}

enum sig_alg sig_key_alg(const struct sig_key *k)
{
	return k->alg;
}

void sig_key_free(struct sig_key *k)
{
	if (k == NULL)
		return;
	/* EVP_MAC_CTX_free and EVP_PKEY_free wipe the key material they hold */
	EVP_MAC_CTX_free(k->hmac);
	EVP_PKEY_free(k->pkey);
	EVP_MD_free(k->sha256);
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

/* Never prompt for a passphrase on a terminal: an encrypted private key is
 * refused rather than hanging the token tool or a worker. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int load_hs256(struct sig_key *k, const char *path, char *err, size_t errlen)
{
	int ret = -1;
	unsigned char *buf = NULL;
	size_t len = 0;
	struct stat st;
	EVP_MAC *mac = NULL;
	if (read_key_file(path, 1, &buf, &len, &st, err, errlen) != 0)
		goto out;
	/* trailing newlines from `echo > file` or an editor are not key bytes */
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
	                   buf[len - 1] == '\t'))
		len--;
	if (len < HS256_MIN_KEY_BYTES) {
		set_err(err, errlen, "\"%s\": an HS256 key must be at least %d bytes (has %zu)",
		        path, HS256_MIN_KEY_BYTES, len);
		goto out;
	}
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
	    OSSL_PARAM_construct_end(),
	};
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac != NULL)
		k->hmac = EVP_MAC_CTX_new(mac);
	if (k->hmac == NULL || EVP_MAC_init(k->hmac, buf, len, params) != 1) {
		set_err(err, errlen, "\"%s\": could not set up HMAC-SHA256", path);
		goto out;
	}
	ret = 0;
out:
	ERR_clear_error();
	EVP_MAC_free(mac);
	free_key_file(buf);
	return ret;
}

/* The key's type must be the algorithm's (RFC 8725 section 3.1: never let a
 * key be used with another algorithm than the one it was made for). */
static int check_pkey(enum sig_alg alg, EVP_PKEY *pkey, const char *path, char *err, size_t errlen)
{
	if (alg == SIG_RS256) {
		/* "RSA" only: an RSA-PSS restricted key is another algorithm */
		if (!EVP_PKEY_is_a(pkey, "RSA")) {
			set_err(err, errlen, "\"%s\": RS256 needs an RSA key", path);
			return -1;
		}
		int bits = EVP_PKEY_get_bits(pkey);
		if (bits < RS256_MIN_BITS) {
			set_err(err, errlen,
			        "\"%s\": RS256 needs an RSA key of at least %d "
			        "bits (has %d)",
			        path, RS256_MIN_BITS, bits);
			return -1;
		}
		return 0;
	}
	if (!EVP_PKEY_is_a(pkey, "EC")) {
		set_err(err, errlen, "\"%s\": ES256 needs an EC P-256 key", path);
		return -1;
	}
	char group[64];
	size_t glen = 0;
	/* fails for explicit curve parameters, which are refused too */
	if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1 ||
	    (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0 &&
	     strcmp(group, "secp256r1") != 0)) {
		set_err(err, errlen,
		        "\"%s\": ES256 needs a key on curve P-256 (RFC 7518 "
		        "section 3.4)",
		        path);
		return -1;
	}
	return 0;
}

static int load_pem(struct sig_key *k, const char *path, int private_key, char *err, size_t errlen)
{
	int ret = -1;
	unsigned char *buf = NULL;
	size_t len = 0;
	struct stat st;
	BIO *bio = NULL;
	/* a private key is a secret; a public key may be readable by anyone */
	if (read_key_file(path, private_key, &buf, &len, &st, err, errlen) != 0)
		goto out;
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio == NULL) {
		set_err(err, errlen, "out of memory reading \"%s\"", path);
		goto out;
	}
	if (private_key)
		k->pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	else
		k->pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	if (k->pkey == NULL) {
		set_err(err, errlen,
		        private_key ? "\"%s\" holds no unencrypted PEM private key"
		                    : "\"%s\" holds no PEM public key (\"BEGIN PUBLIC "
		                      "KEY\")",
		        path);
		goto out;
	}
	if (check_pkey(k->alg, k->pkey, path, err, errlen) != 0)
		goto out;
	k->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (k->sha256 == NULL) {
		set_err(err, errlen, "\"%s\": SHA-256 is not available", path);
		goto out;
	}
	k->has_private = private_key;
	ret = 0;
out:
	ERR_clear_error();
	BIO_free(bio);
	free_key_file(buf);
	return ret;
}

int sig_key_load(enum sig_alg alg, const char *path, int private_key, struct sig_key **out,
                 char *err, size_t errlen)
{
	int ret = -1;
	struct sig_key *k = NULL;
	if (path == NULL || out == NULL) {
		set_err(err, errlen, "no key file given");
		goto out;
	}
	if (alg != SIG_HS256 && alg != SIG_RS256 && alg != SIG_ES256) {
		set_err(err, errlen, "unknown signature algorithm");
		goto out;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		set_err(err, errlen, "out of memory loading \"%s\"", path);
		goto out;
	}
	k->alg = alg;
	if (alg == SIG_HS256) {
		if (load_hs256(k, path, err, errlen) != 0)
			goto out;
		k->has_private = 1;
	} else if (load_pem(k, path, private_key, err, errlen) != 0) {
		goto out;
	}
	*out = k;
	k = NULL;
	ret = 0;
out:
	sig_key_free(k);
	return ret;
}

/* HMAC-SHA256 of data into mac[32] with the key's template context. */
static int hs256_mac(const struct sig_key *k, const void *data, size_t len,
                     unsigned char mac[HS256_SIG_BYTES])
{
	int ret = -1;
	size_t maclen = 0;
	/* dup leaves the shared, already keyed template untouched: several
	 * worker threads verify with the same key at once */
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(k->hmac);
	if (ctx == NULL)
		goto out;
	if (len > 0 && EVP_MAC_update(ctx, data, len) != 1)
		goto out;
	if (EVP_MAC_final(ctx, mac, &maclen, HS256_SIG_BYTES) != 1 || maclen != HS256_SIG_BYTES)
		goto out;
	ret = 0;
out:
	ERR_clear_error();
	EVP_MAC_CTX_free(ctx);
	return ret;
}

/* JWS r||s (RFC 7518 section 3.4) -> DER ECDSA-Sig-Value for OpenSSL. */
static int es256_raw_to_der(const unsigned char *sig, unsigned char **der, int *derlen)
{
	int ret = -1;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = BN_bin2bn(sig, ES256_COORD_BYTES, NULL);
	BIGNUM *s = BN_bin2bn(sig + ES256_COORD_BYTES, ES256_COORD_BYTES, NULL);
	if (r == NULL || s == NULL)
		goto out;
	es = ECDSA_SIG_new();
	if (es == NULL || ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL; /* owned by es now */
	*der = NULL;
	*derlen = i2d_ECDSA_SIG(es, der);
	if (*derlen <= 0)
		goto out;
	ret = 0;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return ret;
}

int sig_verify(const struct sig_key *k, const void *data, size_t len, const unsigned char *sig,
               size_t siglen)
{
	int ret = -1;
	EVP_MD_CTX *mctx = NULL;
	unsigned char *der = NULL;
	static const unsigned char empty[1];
	if (k == NULL || sig == NULL || (data == NULL && len != 0))
		return -1;
	if (data == NULL)
		data = empty;
	if (k->alg == SIG_HS256) {
		unsigned char mac[HS256_SIG_BYTES];
		/* the length is public; only the bytes need constant time */
		if (siglen != HS256_SIG_BYTES)
			return -1;
		if (hs256_mac(k, data, len, mac) == 0 &&
		    CRYPTO_memcmp(mac, sig, HS256_SIG_BYTES) == 0)
			ret = 0;
		OPENSSL_cleanse(mac, sizeof(mac));
		return ret;
	}
	const unsigned char *vsig = sig;
	size_t vlen = siglen;
	if (k->alg == SIG_ES256) {
		/* JWS form only: DER or any other length is refused (RFC 7518
		 * section 3.4) */
		int derlen = 0;
		if (siglen != ES256_SIG_BYTES)
			goto out;
		if (es256_raw_to_der(sig, &der, &derlen) != 0)
			goto out;
		vsig = der;
		vlen = (size_t)derlen;
	} else if (siglen != (size_t)EVP_PKEY_get_size(k->pkey)) {
		/* RFC 8017 section 8.2.2 step 1: length must be the modulus's */
		goto out;
	}
	mctx = EVP_MD_CTX_new();
	if (mctx == NULL)
		goto out;
	EVP_PKEY_CTX *pctx = NULL;
	if (EVP_DigestVerifyInit(mctx, &pctx, k->sha256, NULL, k->pkey) != 1)
		goto out;
	if (k->alg == SIG_RS256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
		goto out;
	if (EVP_DigestVerify(mctx, vsig, vlen, data, len) != 1)
		goto out;
	ret = 0;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	EVP_MD_CTX_free(mctx);
	return ret;
}

/* DER ECDSA-Sig-Value -> JWS r||s, each left-padded to 32 bytes. */
static int es256_der_to_raw(const unsigned char *der, size_t derlen,
                            unsigned char raw[ES256_SIG_BYTES])
{
	int ret = -1;
	const unsigned char *p = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	if (es == NULL)
		goto out;
	const BIGNUM *r = ECDSA_SIG_get0_r(es);
	const BIGNUM *s = ECDSA_SIG_get0_s(es);
	if (BN_bn2binpad(r, raw, ES256_COORD_BYTES) != ES256_COORD_BYTES ||
	    BN_bn2binpad(s, raw + ES256_COORD_BYTES, ES256_COORD_BYTES) != ES256_COORD_BYTES)
		goto out;
	ret = 0;
out:
	ECDSA_SIG_free(es);
	return ret;
}

int sig_sign(const struct sig_key *k, struct arena *a, const void *data, size_t len,
             unsigned char **sig, size_t *siglen)
{
	int ret = -1;
	EVP_MD_CTX *mctx = NULL;
	unsigned char *der = NULL;
	static const unsigned char empty[1];
	if (k == NULL || a == NULL || sig == NULL || siglen == NULL || (data == NULL && len != 0))
		return -1;
	if (data == NULL)
		data = empty;
	if (k->alg == SIG_HS256) {
		unsigned char *mac = arena_alloc(a, HS256_SIG_BYTES);
		if (mac == NULL || hs256_mac(k, data, len, mac) != 0)
			return -1;
		*sig = mac;
		*siglen = HS256_SIG_BYTES;
		return 0;
	}
	if (!k->has_private)
		return -1; /* a public key cannot sign */
	mctx = EVP_MD_CTX_new();
	if (mctx == NULL)
		goto out;
	EVP_PKEY_CTX *pctx = NULL;
	if (EVP_DigestSignInit(mctx, &pctx, k->sha256, NULL, k->pkey) != 1)
		goto out;
	if (k->alg == SIG_RS256 && EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
		goto out;
	size_t dlen = 0;
	if (EVP_DigestSign(mctx, NULL, &dlen, data, len) != 1)
		goto out;
	der = OPENSSL_malloc(dlen);
	if (der == NULL)
		goto out;
	if (EVP_DigestSign(mctx, der, &dlen, data, len) != 1)
		goto out;
	if (k->alg == SIG_RS256) {
		unsigned char *s = arena_alloc(a, dlen);
		if (s == NULL)
			goto out;
		memcpy(s, der, dlen);
		*sig = s;
		*siglen = dlen;
	} else {
		unsigned char *s = arena_alloc(a, ES256_SIG_BYTES);
		if (s == NULL || es256_der_to_raw(der, dlen, s) != 0)
			goto out;
		*sig = s;
		*siglen = ES256_SIG_BYTES;
	}
	ret = 0;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	EVP_MD_CTX_free(mctx);
	return ret;
}

/* ---------------------------------------------------------------------- */
/* stored secrets */

struct ring_key {
	size_t idlen;
	char id[KEY_ID_MAX + 1];
	unsigned char key[GCM_KEY_BYTES];
};

struct secret_keyring {
	EVP_CIPHER *gcm; /* AES-256-GCM, fetched once */
	size_t n;        /* keys[0] encrypts; all of them decrypt */
	struct ring_key keys[KEYRING_MAX_KEYS];
};

void secret_keyring_free(struct secret_keyring *kr)
{
	if (kr == NULL)
		return;
	EVP_CIPHER_free(kr->gcm);
	OPENSSL_cleanse(kr, sizeof(*kr));
	free(kr);
}

static int is_id_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static const char bad_key_id[] =
    "the key id must be 1-" LIMIT_STR(KEY_ID_MAX) " characters of A-Z a-z 0-9 _ -, followed by a"
                                                  " space";

/* Parse one non-blank, non-comment line "<id> <64 hex>" into rk. Returns a
 * static description of the problem, or NULL. Never quotes the line: it may
 * hold key bytes. */
static const char *parse_key_line(const unsigned char *p, size_t n, struct ring_key *rk)
{
	size_t i = 0;
	while (i < n && is_id_char(p[i]))
		i++;
	if (i == 0 || i > KEY_ID_MAX || (i < n && p[i] != ' ' && p[i] != '\t'))
		return bad_key_id;
	memcpy(rk->id, p, i);
	rk->id[i] = '\0';
	rk->idlen = i;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	size_t start = i;
	while (i < n && text_hex_digit(p[i]) >= 0)
		i++;
	if (i < n)
		return "the key must be hexadecimal digits only";
	if (i - start != 2 * GCM_KEY_BYTES)
		return "the key must be 64 hexadecimal digits (32 bytes)";
	for (size_t k = 0; k < GCM_KEY_BYTES; k++)
		rk->key[k] = (unsigned char)(text_hex_digit(p[start + 2 * k]) << 4 |
		                             text_hex_digit(p[start + 2 * k + 1]));
	return NULL;
}

int secret_keyring_load(const char *path, struct secret_keyring **out, char *err, size_t errlen)
{
	int ret = -1;
	unsigned char *buf = NULL;
	size_t len = 0;
	struct stat st;
	struct secret_keyring *kr = NULL;
	if (path == NULL || out == NULL) {
		set_err(err, errlen, "no secret key file given");
		goto out;
	}
	/* the database holds what these keys decrypt */
	if (read_key_file(path, 1, &buf, &len, &st, err, errlen) != 0)
		goto out;
	kr = calloc(1, sizeof(*kr));
	if (kr == NULL) {
		set_err(err, errlen, "out of memory loading \"%s\"", path);
		goto out;
	}
	size_t pos = 0;
	unsigned lineno = 0;
	while (pos < len) {
		const unsigned char *line = buf + pos;
		const unsigned char *nl = memchr(line, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
		pos += n + (nl != NULL ? 1 : 0);
		lineno++;
		/* trim surrounding blanks and a CR from CRLF files */
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		while (n > 0 && (line[0] == ' ' || line[0] == '\t')) {
			line++;
			n--;
		}
		if (n == 0 || line[0] == '#')
			continue;
		if (memchr(line, '\0', n) != NULL) {
			set_err(err, errlen, "\"%s\" line %u: NUL byte", path, lineno);
			goto out;
		}
		if (kr->n == KEYRING_MAX_KEYS) {
			set_err(err, errlen, "\"%s\": more than %d keys", path, KEYRING_MAX_KEYS);
			goto out;
		}
		struct ring_key *rk = &kr->keys[kr->n];
		const char *why = parse_key_line(line, n, rk);
		if (why != NULL) {
			set_err(err, errlen, "\"%s\" line %u: %s", path, lineno, why);
			goto out;
		}
		for (size_t j = 0; j < kr->n; j++) {
			if (kr->keys[j].idlen == rk->idlen &&
			    memcmp(kr->keys[j].id, rk->id, rk->idlen) == 0) {
				/* two keys under one id: decryption would be
				 * ambiguous */
				set_err(err, errlen, "\"%s\" line %u: duplicate key id \"%s\"",
				        path, lineno, rk->id);
				goto out;
			}
		}
		kr->n++;
	}
	if (kr->n == 0) {
		set_err(err, errlen, "\"%s\" holds no key", path);
		goto out;
	}
	kr->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (kr->gcm == NULL) {
		ERR_clear_error();
		set_err(err, errlen, "AES-256-GCM is not available");
		goto out;
	}
	*out = kr;
	kr = NULL;
	ret = 0;
out:
	secret_keyring_free(kr);
	free_key_file(buf);
	return ret;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Lower-case hex of n bytes into out (2n characters, no NUL). */
static char *hex_encode(char *out, const unsigned char *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		*out++ = digits[in[i] >> 4];
		*out++ = digits[in[i] & 15];
	}
	return out;
}

/*
 * Create a key file holding content, mode 0600. O_EXCL: never overwrite
 * keys that may still decrypt stored data or verify tokens; O_NOFOLLOW:
 * never write through a planted symlink; a half-written file is removed.
 */
static int write_new_key_file(const char *path, const char *content, size_t len, char *err,
                              size_t errlen)
{
	int ret = -1;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		set_err(err, errlen, "could not create \"%s\": %s", path, strerror(errno));
		return -1;
	}
	/* umask can only remove bits; fchmod makes the mode exact anyway. */
	if (fchmod(fd, 0600) != 0 || write_all(fd, content, len) != 0 || fsync(fd) != 0) {
		set_err(err, errlen, "could not write \"%s\": %s", path, strerror(errno));
		goto out;
	}
	int fdc = fd;
	fd = -1;
	if (close(fdc) != 0) {
		set_err(err, errlen, "could not write \"%s\": %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (ret != 0)
		unlink(path);
	return ret;
}

int secret_keyring_generate(const char *path, char *err, size_t errlen)
{
	int ret = -1;
	unsigned char key[GCM_KEY_BYTES];
	unsigned char idb[4];
	/* "k" + 8 hex + ' ' + 64 hex + '\n' */
	char line[1 + 8 + 1 + 2 * GCM_KEY_BYTES + 1];
	if (path == NULL) {
		set_err(err, errlen, "no secret key file given");
		goto out;
	}
	if (crypto_random(key, sizeof(key)) != 0 || crypto_random(idb, sizeof(idb)) != 0) {
		set_err(err, errlen, "could not get random bytes");
		goto out;
	}
	char *o = line;
	*o++ = 'k';
	o = hex_encode(o, idb, sizeof(idb));
	*o++ = ' ';
	o = hex_encode(o, key, sizeof(key));
	*o++ = '\n';
	ret = write_new_key_file(path, line, (size_t)(o - line), err, errlen);
out:
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(line, sizeof(line));
	return ret;
}

int sig_key_generate_hmac(const char *path, char *err, size_t errlen)
{
	int ret = -1;
	unsigned char raw[HMAC_KEY_FILE_BYTES];
	char text[2 * HMAC_KEY_FILE_BYTES + 1];
	if (path == NULL) {
		set_err(err, errlen, "no key file given");
		goto out;
	}
	if (crypto_random(raw, sizeof(raw)) != 0) {
		set_err(err, errlen, "could not get random bytes");
		goto out;
	}
	char *o = hex_encode(text, raw, sizeof(raw));
	*o++ = '\n';
	ret = write_new_key_file(path, text, (size_t)(o - text), err, errlen);
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(text, sizeof(text));
	return ret;
}

/*
 * The associated data is the blob's header (format byte, id length, id)
 * followed by the caller's aad: the key id cannot be swapped (it is
 * authenticated) and the place binding ("mail_server:42:password") makes a
 * ciphertext moved to another row or column fail its tag. The header is
 * length-prefixed, so header || aad is unambiguous.
 */
static int gcm_aad(EVP_CIPHER_CTX *ctx, const unsigned char *hdr, size_t hdrlen, const char *aad)
{
	int outl = 0;
	size_t aadlen = strlen(aad);
	if (aadlen > INT_MAX)
		return -1;
	if (EVP_CipherUpdate(ctx, NULL, &outl, hdr, (int)hdrlen) != 1)
		return -1;
	if (aadlen > 0 &&
	    EVP_CipherUpdate(ctx, NULL, &outl, (const unsigned char *)aad, (int)aadlen) != 1)
		return -1;
	return 0;
}

int secret_encrypt(const struct secret_keyring *kr, struct arena *a, const char *aad,
                   const void *plain, size_t plain_len, unsigned char **out, size_t *outlen)
{
	int ret = -1;
	EVP_CIPHER_CTX *ctx = NULL;
	/* aad NULL would silently drop the row/column binding: refused */
	if (kr == NULL || a == NULL || aad == NULL || out == NULL || outlen == NULL ||
	    (plain == NULL && plain_len != 0) || kr->n == 0)
		return -1;
	const struct ring_key *rk = &kr->keys[0];
	size_t hdrlen = 2 + rk->idlen;
	if (plain_len > (size_t)INT_MAX - hdrlen - GCM_NONCE_BYTES - GCM_TAG_BYTES)
		return -1;
	size_t total = hdrlen + GCM_NONCE_BYTES + plain_len + GCM_TAG_BYTES;
	unsigned char *blob = arena_alloc(a, total);
	if (blob == NULL)
		return -1;
	blob[0] = SECRET_FORMAT_V1;
	blob[1] = (unsigned char)rk->idlen;
	memcpy(blob + 2, rk->id, rk->idlen);
	unsigned char *nonce = blob + hdrlen;
	unsigned char *ct = nonce + GCM_NONCE_BYTES;
	unsigned char *tag = ct + plain_len;
	/* a fresh random 96-bit nonce per encryption: never reused under one
	 * key as long as a key encrypts far fewer than 2^32 values (SP 800-38D
	 * section 8.3) */
	if (crypto_random(nonce, GCM_NONCE_BYTES) != 0)
		goto out;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto out;
	if (EVP_EncryptInit_ex(ctx, kr->gcm, NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_BYTES, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, rk->key, nonce) != 1)
		goto out;
	if (gcm_aad(ctx, blob, hdrlen, aad) != 0)
		goto out;
	int outl = 0;
	if (plain_len > 0 && EVP_EncryptUpdate(ctx, ct, &outl, plain, (int)plain_len) != 1)
		goto out;
	int finl = 0;
	if (EVP_EncryptFinal_ex(ctx, ct + outl, &finl) != 1 ||
	    (size_t)outl + (size_t)finl != plain_len)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, GCM_TAG_BYTES, tag) != 1)
		goto out;
	*out = blob;
	*outlen = total;
	ret = 0;
out:
	if (ret != 0)
		OPENSSL_cleanse(blob, total); /* may hold plaintext-derived bytes */
	ERR_clear_error();
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

int secret_decrypt(const struct secret_keyring *kr, struct arena *a, const char *aad,
                   const unsigned char *blob, size_t blob_len, char **plain, size_t *plain_len)
{
	int ret = -1;
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *pt = NULL;
	size_t ptlen = 0;
	if (kr == NULL || a == NULL || aad == NULL || blob == NULL || plain == NULL ||
	    plain_len == NULL)
		return -1;
	/* format: 0x01 | idlen | id | nonce(12) | ct | tag(16) */
	if (blob_len < 2 || blob[0] != SECRET_FORMAT_V1)
		return -1;
	size_t idlen = blob[1];
	if (idlen == 0 || idlen > KEY_ID_MAX ||
	    blob_len < 2 + idlen + GCM_NONCE_BYTES + GCM_TAG_BYTES)
		return -1;
	size_t hdrlen = 2 + idlen;
	ptlen = blob_len - hdrlen - GCM_NONCE_BYTES - GCM_TAG_BYTES;
	if (ptlen > (size_t)INT_MAX)
		return -1;
	const struct ring_key *rk = NULL;
	for (size_t i = 0; i < kr->n; i++) {
		if (kr->keys[i].idlen == idlen && memcmp(kr->keys[i].id, blob + 2, idlen) == 0) {
			rk = &kr->keys[i];
			break;
		}
	}
	if (rk == NULL)
		return -1; /* unknown key id: retired too early, or forged */
	const unsigned char *nonce = blob + hdrlen;
	const unsigned char *ct = nonce + GCM_NONCE_BYTES;
	const unsigned char *tag = ct + ptlen;
	pt = arena_alloc(a, ptlen + 1);
	if (pt == NULL)
		return -1;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto out;
	if (EVP_DecryptInit_ex(ctx, kr->gcm, NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, GCM_NONCE_BYTES, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, rk->key, nonce) != 1)
		goto out;
	if (gcm_aad(ctx, blob, hdrlen, aad) != 0)
		goto out;
	int outl = 0;
	if (ptlen > 0 && EVP_DecryptUpdate(ctx, pt, &outl, ct, (int)ptlen) != 1)
		goto out;
	/* the ctrl takes a non-const pointer but only reads the tag */
	unsigned char tagbuf[GCM_TAG_BYTES];
	memcpy(tagbuf, tag, GCM_TAG_BYTES);
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, GCM_TAG_BYTES, tagbuf) != 1)
		goto out;
	int finl = 0;
	/* the tag check: nothing decrypted is released before it passes */
	if (EVP_DecryptFinal_ex(ctx, pt + outl, &finl) != 1 || (size_t)outl + (size_t)finl != ptlen)
		goto out;
	pt[ptlen] = '\0';
	*plain = (char *)pt;
	*plain_len = ptlen;
	ret = 0;
out:
	if (ret != 0)
		OPENSSL_cleanse(pt, ptlen + 1);
	ERR_clear_error();
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

int secret_key_id(const unsigned char *blob, size_t blob_len, char *id, size_t idsize)
{
	if (blob == NULL || id == NULL || idsize == 0)
		return -1;
	id[0] = '\0';
	/* the same header checks as secret_decrypt */
	if (blob_len < 2 || blob[0] != SECRET_FORMAT_V1)
		return -1;
	size_t idlen = blob[1];
	if (idlen == 0 || idlen > KEY_ID_MAX || idlen >= idsize ||
	    blob_len < 2 + idlen + GCM_NONCE_BYTES + GCM_TAG_BYTES)
		return -1;
	for (size_t i = 0; i < idlen; i++)
		if (!is_id_char(blob[2 + i]))
			return -1;
	memcpy(id, blob + 2, idlen);
	id[idlen] = '\0';
	return 0;
}

size_t secret_keyring_size(const struct secret_keyring *kr)
{
	return kr != NULL ? kr->n : 0;
}

const char *secret_keyring_key_id(const struct secret_keyring *kr, size_t i)
{
	return kr != NULL && i < kr->n ? kr->keys[i].id : NULL;
}
