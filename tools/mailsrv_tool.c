/*
 * mailsrv_tool.c - operator command line: make a bearer token (docs/api.md,
 * "Who may call"; `make token`), a key file for stored secrets, or an HS256 key.
 *
 *   mailsrv-tool token --sub NAME --roles a,b [--ttl SECONDS] [--key FILE]
 *                      [--alg HS256|RS256|ES256] [--iss X] [--aud Y]
 *   mailsrv-tool gen-secret-key PATH
 *   mailsrv-tool gen-hmac-key PATH
 *   mailsrv-tool audit-prune [--days N]
 *   mailsrv-tool rewrap [--batch N]
 *
 * Defaults come from the service's own settings (MAILSRV_JWT_KEY_FILE,
 * MAILSRV_JWT_ALG, MAILSRV_JWT_ISSUER, MAILSRV_JWT_AUDIENCE), so a token made
 * here passes the service's checks. The token is the last line of stdout and
 * the only secret this tool ever prints. Exit status: 0 ok, 1 error, 2 usage.
 *
 * audit-prune deletes the audit events older than MAILSRV_AUDIT_RETENTION_DAYS
 * (365; --days overrides) in batches of AUDIT_PRUNE_BATCH, each its own short
 * transaction, as the schema's owner: the service's role may not delete
 * events. It connects with MAILSRV_OWNER_DATABASE_URL (a libpq conninfo of a
 * role allowed to SET ROLE mailsrv_owner, e.g. the superuser over the unix
 * socket: "host=/var/run/postgresql dbname=mailsrv user=postgres").
 *
 * rewrap ends a key rotation (deploy/README.md, "Rotating the secrets
 * key"): it re-encrypts every stored secret under the first key of the
 * keyring MAILSRV_SECRET_KEY_FILE, connected as the service
 * (MAILSRV_DATABASE_URL, the service's role: it updates only secret columns
 * the service updates too), while the service runs. Pages of --batch rows
 * (REWRAP_BATCH_DEFAULT), each row rewritten in its own short transaction
 * only while it still holds what was read; rows changed meanwhile are done
 * again by another pass. Then it counts the stored secrets by the key that
 * encrypted them (decrypting each one) and prints, for every key, how many
 * still use it: a key with 0 may be removed from the keyring. Exit 1 when a
 * secret could not be decrypted or some are still left under an old key.
 * It prints counts and key ids only, never a secret.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "db_audit.h"
#include "db_rewrap.h"
#include "jwt.h"
#include "mailsrv_limits.h"

#define EXIT_USAGE    2
#define TTL_DEFAULT_S 3600L
/* A year: longer-lived bearer tokens are a standing credential. */
#define TTL_MAX_S (366L * 24 * 3600)

static void usage(void)
{
	fputs("usage: mailsrv-tool token --sub NAME --roles ROLE[,ROLE...] "
	      "[--ttl SECONDS] [--key FILE]\n"
	      "                          [--alg HS256|RS256|ES256] [--iss ISSUER] "
	      "[--aud AUDIENCE]\n"
	      "       mailsrv-tool gen-secret-key PATH\n"
	      "       mailsrv-tool gen-hmac-key PATH\n"
	      "       mailsrv-tool audit-prune [--days N]\n"
	      "       mailsrv-tool rewrap [--batch N]\n"
	      "token defaults: --key $MAILSRV_JWT_KEY_FILE, --alg $MAILSRV_JWT_ALG "
	      "(HS256),\n"
	      "  --iss $MAILSRV_JWT_ISSUER, --aud $MAILSRV_JWT_AUDIENCE, --ttl 3600\n"
	      "  (at most $MAILSRV_JWT_MAX_TTL, by default 86400)\n"
	      "  RS256/ES256 need the private key PEM.\n",
	      stderr);
}

/* An environment setting, with "" meaning unset. */
static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

static int parse_ttl(const char *s, long *out)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v <= 0 || v > TTL_MAX_S)
		return -1;
	*out = v;
	return 0;
}

static int cmd_token(int argc, char **argv)
{
	int ret = 1;
	const char *sub = NULL, *roles = NULL, *key_path = NULL, *alg_name = NULL;
	const char *iss = NULL, *aud = NULL, *ttl_s = NULL;
	int iss_set = 0, aud_set = 0;
	struct sig_key *key = NULL;
	struct arena *a = NULL;

	for (int i = 0; i < argc; i++) {
		const char *opt = argv[i];
		if (i + 1 >= argc) {
			fprintf(stderr, "mailsrv-tool token: %s needs a value\n", opt);
			usage();
			return EXIT_USAGE;
		}
		const char *val = argv[++i];
		if (strcmp(opt, "--sub") == 0) {
			sub = val;
		} else if (strcmp(opt, "--roles") == 0) {
			roles = val;
		} else if (strcmp(opt, "--ttl") == 0) {
			ttl_s = val;
		} else if (strcmp(opt, "--key") == 0) {
			key_path = val;
		} else if (strcmp(opt, "--alg") == 0) {
			alg_name = val;
		} else if (strcmp(opt, "--iss") == 0) {
			iss = val;
			iss_set = 1;
		} else if (strcmp(opt, "--aud") == 0) {
			aud = val;
			aud_set = 1;
		} else {
			fprintf(stderr, "mailsrv-tool token: unknown option \"%s\"\n", opt);
			usage();
			return EXIT_USAGE;
		}
	}
	if (sub == NULL || sub[0] == '\0' || roles == NULL) {
		fputs("mailsrv-tool token: --sub (not empty) and --roles are "
		      "required\n",
		      stderr);
		usage();
		return EXIT_USAGE;
	}
	long ttl = TTL_DEFAULT_S;
	if (ttl_s != NULL && parse_ttl(ttl_s, &ttl) != 0) {
		fprintf(stderr,
		        "mailsrv-tool token: --ttl must be a whole number of "
		        "seconds from 1 to %ld\n",
		        TTL_MAX_S);
		return EXIT_USAGE;
	}
	/* The service refuses a token that lives longer than its
	 * MAILSRV_JWT_MAX_TTL: say so now rather than at the first request. */
	long max_ttl = JWT_MAX_TTL_DEFAULT_S;
	if (env("MAILSRV_JWT_MAX_TTL") != NULL &&
	    parse_ttl(env("MAILSRV_JWT_MAX_TTL"), &max_ttl) != 0)
		max_ttl = JWT_MAX_TTL_DEFAULT_S; /* the service itself refuses to start */
	if (ttl > max_ttl) {
		fprintf(stderr,
		        "mailsrv-tool token: --ttl %ld is longer than the service accepts "
		        "(MAILSRV_JWT_MAX_TTL, %ld seconds)\n",
		        ttl, max_ttl);
		return EXIT_USAGE;
	}
	if (alg_name == NULL)
		alg_name = env("MAILSRV_JWT_ALG");
	if (alg_name == NULL)
		alg_name = "HS256";
	enum sig_alg alg;
	if (sig_alg_from_name(alg_name, &alg) != 0) {
		fputs("mailsrv-tool token: the algorithm must be HS256, RS256 or "
		      "ES256\n",
		      stderr);
		return EXIT_USAGE;
	}
	if (key_path == NULL)
		key_path = env("MAILSRV_JWT_KEY_FILE");
	if (key_path == NULL) {
		fputs("mailsrv-tool token: no key: give --key FILE or set "
		      "MAILSRV_JWT_KEY_FILE\n",
		      stderr);
		return EXIT_USAGE;
	}
	if (!iss_set)
		iss = env("MAILSRV_JWT_ISSUER");
	if (!aud_set)
		aud = env("MAILSRV_JWT_AUDIENCE");
	if (iss != NULL && iss[0] == '\0')
		iss = NULL;
	if (aud != NULL && aud[0] == '\0')
		aud = NULL;

	/* The message names the file, never its content. */
	char err[512];
	if (sig_key_load(alg, key_path, alg != SIG_HS256, &key, err, sizeof(err)) != 0) {
		fprintf(stderr, "mailsrv-tool token: %s\n", err);
		goto out;
	}
	a = arena_new(MAX_ARENA_BYTES);
	if (a == NULL) {
		fputs("mailsrv-tool token: out of memory\n", stderr);
		goto out;
	}
	char *tok = jwt_issue(key, a, sub, roles, ttl, time(NULL), iss, aud);
	if (tok == NULL) {
		fputs("mailsrv-tool token: could not make the token (a subject "
		      "or role that is not UTF-8, or a token over the size "
		      "limit)\n",
		      stderr);
		goto out;
	}
	if (printf("%s\n", tok) < 0 || fflush(stdout) != 0) {
		fputs("mailsrv-tool token: could not write the token\n", stderr);
		goto out;
	}
	ret = 0;
out:
	arena_free(a);
	sig_key_free(key);
	return ret;
}

static int cmd_gen_secret_key(int argc, char **argv)
{
	if (argc != 1) {
		usage();
		return EXIT_USAGE;
	}
	char err[512];
	if (secret_keyring_generate(argv[0], err, sizeof(err)) != 0) {
		fprintf(stderr, "mailsrv-tool gen-secret-key: %s\n", err);
		return 1;
	}
	return 0;
}

static int cmd_gen_hmac_key(int argc, char **argv)
{
	char err[512];
	if (argc != 1) {
		usage();
		return EXIT_USAGE;
	}
	if (sig_key_generate_hmac(argv[0], err, sizeof(err)) != 0) {
		fprintf(stderr, "mailsrv-tool gen-hmac-key: %s\n", err);
		return 1;
	}
	return 0;
}

static int cmd_audit_prune(int argc, char **argv)
{
	char err[256];
	int days;
	if (config_audit_retention_days(&days, err, sizeof(err)) != 0) {
		fprintf(stderr, "mailsrv-tool: %s\n", err);
		return 1;
	}
	for (int i = 0; i < argc; i++) {
		long v;
		char *end = NULL;
		if (strcmp(argv[i], "--days") != 0 || i + 1 >= argc) {
			usage();
			return EXIT_USAGE;
		}
		const char *s = argv[++i];
		errno = 0;
		v = strtol(s, &end, 10);
		if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0' || v < 1 ||
		    v > AUDIT_RETENTION_DAYS_MAX) {
			fprintf(stderr, "mailsrv-tool: --days must be an integer from 1 to %d\n",
			        AUDIT_RETENTION_DAYS_MAX);
			return EXIT_USAGE;
		}
		days = (int)v;
	}
	const char *url = env("MAILSRV_OWNER_DATABASE_URL");
	if (url == NULL) {
		fprintf(stderr, "mailsrv-tool: audit-prune needs MAILSRV_OWNER_DATABASE_URL\n");
		return 1;
	}
	/* The oldest first, by the index on at; each batch commits alone (the
	 * connection's lock and statement timeouts bound it), so no lock is
	 * held for long and the service's inserts never wait on it. */
	struct db *db = db_new(url);
	if (db == NULL) {
		fprintf(stderr, "mailsrv-tool: out of memory\n");
		return 1;
	}
	long total = 0, n = 0;
	err_t e = db_ensure(db);
	if (e == E_OK)
		e = db_audit_as_owner(db);
	while (e == E_OK && (e = db_audit_prune(db, days, AUDIT_PRUNE_BATCH, &n)) == E_OK && n > 0)
		total += n;
	if (e != E_OK)
		fprintf(stderr,
		        "mailsrv-tool: audit-prune: the database refused or failed (SQLSTATE %s);"
		        " is MAILSRV_OWNER_DATABASE_URL a role that may SET ROLE mailsrv_owner?\n",
		        db_sqlstate(db));
	db_free(db);
	printf("audit-prune: deleted %ld audit events older than %d days\n", total, days);
	return e == E_OK ? 0 : 1;
}

/* How many stored secrets use key id (0 when none). */
static long key_count(const struct rewrap_stats *st, const char *id)
{
	for (size_t i = 0; i < st->nkeys; i++)
		if (strcmp(st->keys[i].id, id) == 0)
			return st->keys[i].count;
	return 0;
}

static int cmd_rewrap(int argc, char **argv)
{
	int batch = REWRAP_BATCH_DEFAULT;
	for (int i = 0; i < argc; i++) {
		char *end = NULL;
		if (strcmp(argv[i], "--batch") != 0 || i + 1 >= argc) {
			usage();
			return EXIT_USAGE;
		}
		const char *s = argv[++i];
		errno = 0;
		long v = strtol(s, &end, 10);
		if (s[0] < '0' || s[0] > '9' || errno != 0 || *end != '\0' || v < 1 ||
		    v > REWRAP_BATCH_MAX) {
			fprintf(stderr, "mailsrv-tool: --batch must be an integer from 1 to %d\n",
			        REWRAP_BATCH_MAX);
			return EXIT_USAGE;
		}
		batch = (int)v;
	}
	const char *key_file = env("MAILSRV_SECRET_KEY_FILE");
	if (key_file == NULL) {
		fputs("mailsrv-tool: rewrap needs MAILSRV_SECRET_KEY_FILE (the keyring, the new "
		      "key first)\n",
		      stderr);
		return 1;
	}
	const char *url = env("MAILSRV_DATABASE_URL");
	if (url == NULL)
		url = "dbname=mailsrv"; /* the service's own default */
	char err[512];
	struct secret_keyring *kr = NULL;
	if (secret_keyring_load(key_file, &kr, err, sizeof(err)) != 0) {
		fprintf(stderr, "mailsrv-tool: %s\n", err);
		return 1;
	}
	struct db *db = db_new(url);
	static struct rewrap_stats st, count;
	long rewrote = 0, again = 0;
	int passes = 0, ret = 1;
	err_t e = db != NULL ? db_ensure(db) : E_INTERNAL;
	/* Passes until one finds no row changed under it: what it rewrote
	 * stays rewritten, what changed is read again. */
	while (e == E_OK && passes < REWRAP_MAX_PASSES) {
		memset(&st, 0, sizeof(st));
		e = db_rewrap_pass(db, kr, batch, 1, &st);
		passes++;
		rewrote += st.rewrote;
		again = st.again;
		if (e != E_OK || st.again == 0)
			break;
	}
	/* The report: every stored secret as it is now. */
	memset(&count, 0, sizeof(count));
	if (e == E_OK)
		e = db_rewrap_pass(db, kr, batch, 0, &count);
	if (e != E_OK) {
		fprintf(stderr,
		        "mailsrv-tool: rewrap: the database refused or failed (SQLSTATE %s); is "
		        "MAILSRV_DATABASE_URL the service's database and role?\n",
		        db != NULL ? db_sqlstate(db) : "");
		goto out;
	}
	const char *first = secret_keyring_key_id(kr, 0);
	printf("rewrap: rewrote %ld secrets under key \"%s\" in %d pass%s\n", rewrote, first,
	       passes, passes == 1 ? "" : "es");
	long left = 0;
	for (size_t i = 0; i < secret_keyring_size(kr); i++) {
		const char *id = secret_keyring_key_id(kr, i);
		long n = key_count(&count, id);
		if (i == 0)
			printf("rewrap: key \"%s\" (encrypts): %ld secrets\n", id, n);
		else
			printf("rewrap: key \"%s\": %ld secrets left%s\n", id, n,
			       n == 0 ? "; no stored secret uses it" : "");
		if (i > 0)
			left += n;
	}
	for (size_t i = 0; i < count.nkeys; i++) {
		if (count.keys[i].id[0] == '\0') {
			printf("rewrap: unreadable ciphertexts or other keys: %ld secrets\n",
			       count.keys[i].count);
			continue;
		}
		int known = 0;
		for (size_t k = 0; k < secret_keyring_size(kr); k++)
			known |= strcmp(secret_keyring_key_id(kr, k), count.keys[i].id) == 0;
		if (!known)
			printf("rewrap: key \"%s\" (not in the keyring): %ld secrets\n",
			       count.keys[i].id, count.keys[i].count);
	}
	if (count.keys[REWRAP_MAX_KEY_IDS].count > 0)
		printf("rewrap: unreadable ciphertexts or other keys: %ld secrets\n",
		       count.keys[REWRAP_MAX_KEY_IDS].count);
	if (count.unreadable > 0) {
		fprintf(stderr,
		        "mailsrv-tool: rewrap: %ld stored secrets cannot be decrypted with this "
		        "keyring (a key removed too early, or a damaged value)\n",
		        count.unreadable);
		goto out;
	}
	if (left > 0) {
		fprintf(stderr,
		        "mailsrv-tool: rewrap: %ld secrets still use an old key (%ld rows kept "
		        "changing during the last pass); run it again\n",
		        left, again);
		goto out;
	}
	printf("rewrap: every stored secret uses key \"%s\"; the other keys may be removed "
	       "from the keyring\n",
	       first);
	ret = 0;
out:
	fflush(stdout);
	db_free(db);
	secret_keyring_free(kr);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage();
		return EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "token") == 0)
		return cmd_token(argc - 2, argv + 2);
	if (strcmp(cmd, "gen-secret-key") == 0)
		return cmd_gen_secret_key(argc - 2, argv + 2);
	if (strcmp(cmd, "gen-hmac-key") == 0)
		return cmd_gen_hmac_key(argc - 2, argv + 2);
	if (strcmp(cmd, "audit-prune") == 0)
		return cmd_audit_prune(argc - 2, argv + 2);
	if (strcmp(cmd, "rewrap") == 0)
		return cmd_rewrap(argc - 2, argv + 2);
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
		usage();
		return 0;
	}
	fprintf(stderr, "mailsrv-tool: unknown command \"%s\"\n", cmd);
	usage();
	return EXIT_USAGE;
}
