/*
 * crypto.h - the only interface to OpenSSL.
 *
 * - randomness and base64url (JWT, OAuth state, PKCE);
 * - signature keys for bearer tokens: HMAC-SHA256 (HS256), RSA PKCS#1 v1.5
 *   SHA-256 (RS256) and ECDSA P-256 SHA-256 (ES256, JWS raw r||s form).
 *   The algorithm belongs to the key, fixed when it is loaded: a token never
 *   chooses it (libjwt's algorithm confusion, docs/design.md);
 * - stored secrets: AES-256-GCM with a keyring read from a key file. Each
 *   ciphertext names the key that made it (rotation) and is bound to its row
 *   and column through the associated data.
 */
#ifndef MAILSRV_CRYPTO_H
#define MAILSRV_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

struct arena;

/* Fill buf with n cryptographically random bytes. 0 on success, -1 on error. */
int crypto_random(void *buf, size_t n);

/* base64url without padding (RFC 4648 section 5). encode writes a NUL-
 * terminated string into the arena; decode refuses padding, whitespace and
 * any character outside the alphabet. 0 on success, -1 on bad input/NOMEM. */
char *base64url_encode(struct arena *a, const void *data, size_t len);
int base64url_decode(struct arena *a, const char *s, size_t len, unsigned char **out,
                     size_t *outlen);

/* SHA-256 of data into out[32]. */
int crypto_sha256(const void *data, size_t len, unsigned char out[32]);

/* Overwrite n bytes at p with zeros in a way the compiler cannot drop
 * (OPENSSL_cleanse): for memory that held a secret, before it is reused or
 * freed. p may be NULL when n is 0. */
void crypto_wipe(void *p, size_t n);

/* Constant-time equality of two equal-length buffers: 1 when equal. */
int crypto_equal(const void *a, const void *b, size_t len);

/* Add the PEM certificates of path to an OpenSSL SSL_CTX's trust store
 * (besides what is there). For outbound.c's libcurl SSL_CTX callback; the
 * context is void * so that no other file needs OpenSSL's headers. */
int crypto_ssl_ctx_add_ca_file(void *ssl_ctx, const char *path);

/* ---- signature keys ---- */
enum sig_alg { SIG_HS256, SIG_RS256, SIG_ES256 };

struct sig_key;

/* "HS256"/"RS256"/"ES256" (exact, case-sensitive) -> alg; -1 when unknown. */
int sig_alg_from_name(const char *name, enum sig_alg *out);
const char *sig_alg_name(enum sig_alg alg);

/*
 * Load a key file for alg. HS256: the file's bytes, trailing whitespace
 * (newlines) removed, at least 32 bytes. RS256/ES256: a PEM public key
 * (private_key = 0) or private key (private_key = 1, for the token tool);
 * the key's type must match alg (an RSA key for ES256 is refused).
 * An HS256 secret and a private key are secret key files: owner-only (mode
 * 0600 or 0400) and owned by the user that loads them (root may load any
 * user's); anything else is refused before it is read. A public key may be
 * readable by anyone.
 * On failure err holds a message naming the file, not its content.
 */
int sig_key_load(enum sig_alg alg, const char *path, int private_key, struct sig_key **out,
                 char *err, size_t errlen);
void sig_key_free(struct sig_key *k);
/* Write a new HS256 key file: 32 random bytes as 64 hex characters and a
 * newline (RFC 7518 section 3.2: a key of at least the hash size), mode
 * 0600. Fails when the file exists. */
int sig_key_generate_hmac(const char *path, char *err, size_t errlen);
enum sig_alg sig_key_alg(const struct sig_key *k);

/* Verify sig over data. 0 when valid, -1 otherwise (constant time for HMAC;
 * ES256 takes the 64-byte JWS r||s form). */
int sig_verify(const struct sig_key *k, const void *data, size_t len, const unsigned char *sig,
               size_t siglen);
/* Sign data (HS256 with the secret, RS256/ES256 with a private key). The
 * signature (JWS form) goes into the arena. 0 on success. */
int sig_sign(const struct sig_key *k, struct arena *a, const void *data, size_t len,
             unsigned char **sig, size_t *siglen);

/* ---- stored secrets ---- */
struct secret_keyring;

/*
 * Key file: one key per line, "<key id> <64 hex digits>"; the id is 1-16
 * characters [A-Za-z0-9_-]. The first line is the key that encrypts; every
 * line decrypts (rotation: add a new first line, keep the old ones until
 * re-encrypted). Blank lines and lines starting with '#' are skipped.
 * A secret key file: owner-only (mode 0600 or 0400) and owned by the user
 * that loads it (root may load any user's), else refused before it is read.
 */
int secret_keyring_load(const char *path, struct secret_keyring **out, char *err, size_t errlen);
void secret_keyring_free(struct secret_keyring *kr);
/* Write a new key file with one random key (mode 0600). Fails when the file
 * exists. */
int secret_keyring_generate(const char *path, char *err, size_t errlen);

/*
 * Encrypt plain with the first key. aad binds the ciphertext to its place,
 * e.g. "mail_server:42:password". Output (into the arena):
 *   0x01 | id length (1 byte) | id | 12-byte nonce | ciphertext | 16-byte tag
 */
int secret_encrypt(const struct secret_keyring *kr, struct arena *a, const char *aad,
                   const void *plain, size_t plain_len, unsigned char **out, size_t *outlen);
/* Decrypt; -1 when the key id is unknown, the format is bad or the tag does
 * not verify (a ciphertext moved to another row or column). The plaintext
 * is NUL-terminated in the arena. */
int secret_decrypt(const struct secret_keyring *kr, struct arena *a, const char *aad,
                   const unsigned char *blob, size_t blob_len, char **plain, size_t *plain_len);

/* The id of the key that made a ciphertext (the header secret_encrypt
 * writes), NUL-terminated into id[KEY_ID_MAX + 1]; -1 when blob is not in
 * that format. Reads the header only: nothing is decrypted. */
int secret_key_id(const unsigned char *blob, size_t blob_len, char *id, size_t idsize);
/* The keyring's keys: how many, and the id of key i (0 is the one that
 * encrypts), for the rotation's report (mailsrv-tool rewrap). */
size_t secret_keyring_size(const struct secret_keyring *kr);
const char *secret_keyring_key_id(const struct secret_keyring *kr, size_t i);

#endif
