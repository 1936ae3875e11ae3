'use strict';
// server.js - the benchmark's peer (docs/performance.md, "The peer"): the
// two read endpoints of the service written the way a Node user would write
// them, on Fastify 4, @fastify/jwt and pg, so that `make bench` can set the
// service beside a common stack doing the same work behind the same nginx.
//
//   GET /api/v1/mail-servers/:id                      one server, with its ETag
//   GET /api/v1/mail-servers?limit=&offset=&sort=     a page, with the total
//
// The representation is the service's (docs/api.md#a-mail-server): the same
// fields in the same order, secrets only as *_set booleans. The bearer token
// is checked by the service's rules (docs/api.md#who-may-call): HS256 with the
// same key file, exp required, 30 s leeway, the lifetime bound, sub, and the
// administrator role.
//
// Environment (bench/run.sh sets it):
//   PEER_HOST, PEER_PORT       where to listen (127.0.0.1:28083)
//   PEER_PROCESSES             processes (node:cluster), as the service's worker processes
//   PEER_POOL                  database connections in all (the service's processes x
//                              threads), shared out among the processes
//   PEER_JWT_KEY_FILE          the HS256 key (MAILSRV_JWT_KEY_FILE)
//   MAILSRV_JWT_ISSUER, MAILSRV_JWT_AUDIENCE, MAILSRV_JWT_MAX_TTL  as for the service
//   PGHOST, PGPORT, PGDATABASE, PGUSER  the database (libpq's variables, which pg reads)

const cluster = require('node:cluster');
const fs = require('node:fs');

// One process per core, as Node is run in production (node:cluster): the
// primary only forks and stops the workers, which share the listening port.
const PROCESSES = Math.max(1, Number(process.env.PEER_PROCESSES || 1));
if (cluster.isPrimary && PROCESSES > 1) {
  for (let i = 0; i < PROCESSES; i++) cluster.fork();
  let stopping = false;
  cluster.on('exit', (worker, code) => {
    if (stopping) return;
    console.error(`peer: worker ${worker.process.pid} exited (${code}); stopping`);
    process.exitCode = 1;
    stopAll();
  });
  const stopAll = () => {
    stopping = true;
    for (const w of Object.values(cluster.workers)) w.kill('SIGTERM');
  };
  process.on('SIGTERM', stopAll);
  process.on('SIGINT', stopAll);
  return;
}
const Fastify = require('fastify');
const pg = require('pg');

const LEEWAY_S = 30;
const MAX_TTL_S = Number(process.env.MAILSRV_JWT_MAX_TTL || 86400);
const LIST_LIMIT_MAX = 200;

// bigint columns (id, version, the total) as numbers: every value here is
// far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

const pool = new pg.Pool({ max: Math.max(1, Math.floor(Number(process.env.PEER_POOL || 8) / PROCESSES)) });

// The key file holds the secret's bytes; trailing white space is not part of
// it (as for the service).
const key = fs.readFileSync(process.env.PEER_JWT_KEY_FILE).toString('latin1').replace(/[\r\n\t ]+$/, '');

const app = Fastify({ logger: { level: 'warn' } });

// cache: verified tokens are remembered (fast-jwt's cache checks exp and nbf
// again on every hit), as the service remembers them (docs/performance.md).
const verify = {
  algorithms: ['HS256'], requiredClaims: ['exp', 'sub'], clockTolerance: LEEWAY_S * 1000, cache: true,
};
if (process.env.MAILSRV_JWT_ISSUER) verify.allowedIss = process.env.MAILSRV_JWT_ISSUER;
if (process.env.MAILSRV_JWT_AUDIENCE) verify.allowedAud = process.env.MAILSRV_JWT_AUDIENCE;
app.register(require('@fastify/jwt'), { secret: Buffer.from(key, 'latin1'), verify });

function problem(reply, status, slug, title, detail) {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: `/problems/${slug}`, title, status, detail });
}

app.addHook('onRequest', async (request, reply) => {
  reply.header('Cache-Control', 'no-store');
  let claims;
  try {
    claims = await request.jwtVerify();
  } catch (err) {
    reply.header('WWW-Authenticate', 'Bearer');
    return problem(reply, 401, 'unauthorized', 'Unauthorized', 'the bearer token is missing or not valid');
  }
  const now = Math.floor(Date.now() / 1000);
  const lifetime = Number.isInteger(claims.iat) ? claims.exp - claims.iat : claims.exp - now - LEEWAY_S;
  if (!Number.isInteger(claims.exp) || lifetime > MAX_TTL_S ||
      typeof claims.sub !== 'string' || claims.sub.trim() === '') {
    reply.header('WWW-Authenticate', 'Bearer');
    return problem(reply, 401, 'unauthorized', 'Unauthorized', 'the bearer token is missing or not valid');
  }
  if (!Array.isArray(claims.roles) || !claims.roles.includes('administrator')) {
    return problem(reply, 403, 'forbidden', 'Forbidden', 'the administrator role is required');
  }
});

const COLUMNS = `id, name, server, port, sender_name, sender_email, is_default, enable_ssl,
  auth_type, username, password_enc IS NOT NULL AS password_set, client_id,
  authorization_url, token_url, scope, secret_key_enc IS NOT NULL AS secret_key_set,
  access_token_enc IS NOT NULL AS access_token_set,
  refresh_token_enc IS NOT NULL AS refresh_token_set, access_token_expires_at,
  oauth2_status, oauth2_last_refreshed_at, oauth2_last_error_code,
  oauth2_last_error_description, created_at, updated_at, version, last_test_at,
  last_test_ok, last_test_stage, last_test_error_code`;

const time = (t) => (t === null ? null : t.toISOString());

// One row as the API represents it (docs/api.md#a-mail-server).
function represent(r) {
  const oauth = r.auth_type === 'oauth2';
  return {
    id: r.id,
    name: r.name,
    server: r.server,
    port: r.port,
    sender_name: r.sender_name,
    sender_email: r.sender_email,
    is_default: r.is_default,
    enable_ssl: r.enable_ssl,
    auth_type: oauth ? 'oauth2' : 'basic',
    username: oauth ? null : r.username,
    password_set: r.password_set,
    client_id: r.client_id,
    authorization_url: r.authorization_url,
    token_url: r.token_url,
    scope: r.scope,
    secret_key_set: r.secret_key_set,
    access_token_set: r.access_token_set,
    refresh_token_set: r.refresh_token_set,
    access_token_expires_at: time(r.access_token_expires_at),
    oauth2_status: oauth ? r.oauth2_status : null,
    oauth2_last_refreshed_at: oauth ? time(r.oauth2_last_refreshed_at) : null,
    oauth2_last_error: oauth && r.oauth2_last_error_code !== null
      ? { code: r.oauth2_last_error_code, description: r.oauth2_last_error_description }
      : null,
    created_at: time(r.created_at),
    updated_at: time(r.updated_at),
    version: r.version,
    last_test: r.last_test_at !== null
      ? { at: time(r.last_test_at), ok: r.last_test_ok, stage: r.last_test_stage,
          error_code: r.last_test_error_code }
      : null,
  };
}

app.get('/api/v1/mail-servers/:id', {
  schema: { params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } } } },
}, async (request, reply) => {
  const { rows } = await pool.query({
    name: 'ms_get', text: `SELECT ${COLUMNS} FROM mail_server WHERE id = $1`, values: [request.params.id],
  });
  if (rows.length === 0) return problem(reply, 404, 'not-found', 'Not found', 'no mail server has this id');
  reply.header('ETag', `"${rows[0].version}"`);
  return represent(rows[0]);
});

// The sort keys as the service orders them (the name without regard to case).
const SORT = {
  name: 'lower(name)', server: 'lower(server)', port: 'port', sender_name: 'lower(sender_name)',
  sender_email: 'lower(sender_email)', is_default: 'is_default', created_at: 'created_at',
  updated_at: 'updated_at',
};

app.get('/api/v1/mail-servers', {
  schema: {
    querystring: {
      type: 'object',
      properties: {
        limit: { type: 'integer', minimum: 1, maximum: LIST_LIMIT_MAX, default: 50 },
        offset: { type: 'integer', minimum: 0, default: 0 },
        sort: { type: 'string', pattern: `^-?(${Object.keys(SORT).join('|')})$`, default: 'name' },
      },
    },
  },
}, async (request) => {
  const { limit, offset, sort } = request.query;
  const desc = sort.startsWith('-');
  const key = SORT[desc ? sort.slice(1) : sort];
  const { rows } = await pool.query({
    name: `ms_list_${sort}`,
    text: `SELECT ${COLUMNS}, (SELECT count(*) FROM mail_server) AS total FROM mail_server
           ORDER BY ${key} ${desc ? 'DESC' : 'ASC'}, id ASC LIMIT $1 OFFSET $2`,
    values: [limit, offset],
  });
  return {
    items: rows.map(represent),
    total: rows.length > 0 ? rows[0].total : (await pool.query('SELECT count(*) AS total FROM mail_server')).rows[0].total,
    limit,
    offset,
  };
});

app.setErrorHandler((err, request, reply) => {
  if (err.validation) return problem(reply, 400, 'bad-request', 'Bad request', err.message);
  request.log.error(err);
  return problem(reply, 500, 'internal', 'Internal server error', 'the request could not be served');
});

const stop = async () => {
  await app.close();
  await pool.end();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

app.listen({ host: process.env.PEER_HOST || '127.0.0.1', port: Number(process.env.PEER_PORT || 28083) })
  .catch((err) => {
    app.log.error(err);
    process.exit(1);
  });
