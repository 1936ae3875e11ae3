"""mailapi.py - the API test suite's client, response checker and helpers.

Every request of the suite goes through Client.request, which checks the
response against openapi/openapi.yaml (status documented for the operation,
media type, JSON body against the schema, declared required headers,
X-Request-Id) and records it, so that test_zz_secrets.py can scan every
response of the session for secrets.

Secrets and tokens never appear in test output: every message built here goes
through redact(), and tests compare booleans (`leaked = s in text`) instead of
showing bodies.
"""

import base64
import datetime
import hashlib
import hmac
import itertools
import json
import os
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
BASE_URL = os.environ.get("MAILSRV_TEST_URL", "http://127.0.0.1:18080").rstrip("/")
API = "/api/v1"
STACK_VAR = Path(os.environ.get("STACK_VAR") or (REPO / "var" / "test"))
JWT_KEY_FILE = Path(os.environ.get("MAILSRV_JWT_KEY_FILE")
                    or (STACK_VAR / "keys" / "jwt-hs256.key"))
TOOL = REPO / "build" / "mailsrv-tool"
SPEC_FILE = REPO / "openapi" / "openapi.yaml"
LOG_DIR = STACK_VAR / "log"

# Limits of docs/api.md#limits, as include/mailsrv_limits.h sets them.
MAX_BODY_BYTES = 64 * 1024
NAME_MAX = 100
HOST_MAX = 253
EMAIL_MAX = 254
USERNAME_MAX = 320
CLIENT_ID_MAX = 255
SCOPE_MAX = 1024
URL_MAX = 2048
SECRET_MAX = 8192
LIMIT_MAX = 200
LIMIT_DEFAULT = 50
OFFSET_MAX = 1000000000
Q_MAX = 200
BATCH_MAX = 500
JSON_MAX_DEPTH = 8

# ---------------------------------------------------------------- secrets

# Every secret the suite sends starts with this run-unique prefix, so one
# search finds any of them in responses and logs.
SECRET_PREFIX = "Zs" + uuid.uuid4().hex[:12] + "q-"
_secret_counter = itertools.count(1)
_tokens = set()
_tokens_lock = threading.Lock()


class Secret(str):
    """A secret string whose repr never shows it (pytest prints test arguments
    and assertion operands with repr); concatenation keeps it a Secret."""

    def __repr__(self):
        return "<secret %d chars>" % len(self)

    def __add__(self, other):
        return Secret(str.__add__(self, other))

    def __radd__(self, other):
        return Secret(str.__add__(other, self))


def secret(label="s"):
    """A distinctive secret value (found later by the leak scans)."""
    return Secret("%s%s-%d" % (SECRET_PREFIX, label, next(_secret_counter)))


def register_token(tok):
    with _tokens_lock:
        _tokens.add(tok)
    return tok


def known_tokens():
    with _tokens_lock:
        return set(_tokens)


def redact(text):
    """Text safe to print: no secret prefix, no token."""
    if not isinstance(text, str):
        text = repr(text)
    text = text.replace(SECRET_PREFIX, "<secret>")
    for tok in known_tokens():
        if tok:
            text = text.replace(tok, "<token>")
            sig = tok.rsplit(".", 1)[-1]
            if len(sig) >= 16:
                text = text.replace(sig, "<sig>")
    return text


# ---------------------------------------------------------------- tokens


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_key():
    """The test stack's HMAC key: the key file's bytes, trailing whitespace removed."""
    return JWT_KEY_FILE.read_bytes().rstrip()


def make_jwt(claims, *, header=None, key=None, alg="HS256", signature=None):
    """A compact JWS built here (for expired, forged and odd tokens)."""
    hdr = header if header is not None else {"alg": alg, "typ": "JWT"}
    h = b64url(json.dumps(hdr, separators=(",", ":")).encode())
    p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = ("%s.%s" % (h, p)).encode()
    if signature is not None:
        sig = signature
    elif alg.upper() == "NONE":
        sig = ""
    else:
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
                  "HS512": hashlib.sha512}[alg.upper()]
        sig = b64url(hmac.new(jwt_key() if key is None else key, signing_input,
                              digest).digest())
    return register_token("%s.%s.%s" % (h, p, sig))


def claims(sub="api-tests", roles=("administrator",), ttl=300, **extra):
    now = int(time.time())
    c = {"sub": sub, "roles": list(roles), "iat": now, "exp": now + ttl}
    c.update(extra)
    return c


_minted = {}
_minted_lock = threading.Lock()


def mint_token(sub="api-tests", roles="administrator", ttl=None):
    """A token from the project's own tool (build/mailsrv-tool token)."""
    key = (sub, roles, ttl)
    with _minted_lock:
        if key in _minted:
            return _minted[key]
    if not TOOL.exists():
        raise RuntimeError("%s is missing: build it first (make all)" % TOOL)
    cmd = [str(TOOL), "token", "--sub", sub, "--roles", roles]
    if ttl is not None:
        cmd += ["--ttl", str(ttl)]
    env = dict(os.environ, MAILSRV_JWT_KEY_FILE=str(JWT_KEY_FILE))
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        raise RuntimeError("mailsrv-tool token failed (exit %d): %s"
                           % (res.returncode, redact(res.stderr.strip()[-300:])))
    tok = register_token(lines[-1].strip())
    if tok.count(".") != 2:
        raise RuntimeError("mailsrv-tool token printed no token on its last line")
    with _minted_lock:
        _minted[key] = tok
    return tok


# ---------------------------------------------------------------- the spec


_RFC3339 = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def parse_ts(value):
    """An RFC 3339 timestamp as an aware datetime (ValueError if it is none)."""
    m = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise ValueError("not an RFC 3339 timestamp")
    frac = (m.group(3) or ".0")[1:7].ljust(6, "0")
    tz = "+00:00" if m.group(4) in ("Z", "z") else m.group(4)
    return datetime.datetime.fromisoformat("%sT%s.%s%s" % (m.group(1), m.group(2), frac, tz))


def _is_rfc3339(value):
    if isinstance(value, str):
        parse_ts(value)
    return True


class Spec:
    """openapi.yaml, with lookups of the operation and response for a request."""

    def __init__(self, path=SPEC_FILE):
        with open(path, encoding="utf-8") as f:
            self.doc = yaml.safe_load(f)
        self._lock = threading.Lock()
        self._validators = {}
        self.format_checker = jsonschema.FormatChecker(formats=())
        self.format_checker.checks("date-time", raises=ValueError)(_is_rfc3339)
        self.routes = []
        default_prefix = self.doc["servers"][0]["url"].rstrip("/")
        for tmpl, item in self.doc["paths"].items():
            servers = item.get("servers")
            prefix = servers[0]["url"].rstrip("/") if servers else default_prefix
            full = prefix + tmpl
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(full)) + "$"
            self.routes.append(("{" in tmpl, re.compile(rx), full, item))
        # Concrete paths win over templated ones (OpenAPI 3.1, Paths Object).
        self.routes.sort(key=lambda r: r[0])

    def deref(self, obj):
        while isinstance(obj, dict) and "$ref" in obj:
            ref = obj["$ref"]
            assert ref.startswith("#/"), ref
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            obj = node
        return obj

    def route(self, path):
        for _, rx, full, item in self.routes:
            if rx.match(path):
                return full, item
        return None, None

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            resolver = jsonschema.RefResolver(base_uri="", referrer=self.doc)
            v = jsonschema.Draft202012Validator(schema, resolver=resolver,
                                                format_checker=self.format_checker)
            self._validators[key] = v
        return v

    def errors(self, schema, instance):
        # RefResolver keeps a scope stack: one validation at a time.
        with self._lock:
            errs = sorted(self.validator(schema).iter_errors(instance),
                          key=lambda e: list(e.path))
            return ["%s: %s" % ("/".join(str(p) for p in e.path) or "(body)", e.message)
                    for e in errs[:5]]


_spec = None


def spec():
    global _spec
    if _spec is None:
        _spec = Spec()
    return _spec


# ---------------------------------------------------------------- recorder

_records = []
_records_lock = threading.Lock()


def record(method, path, resp):
    with _records_lock:
        _records.append({
            "method": method,
            "path": path,
            "status": resp.status_code,
            "headers": dict(resp.headers),
            "body": resp.content or b"",
        })


def recorded():
    with _records_lock:
        return list(_records)


# ---------------------------------------------------------------- checker


def media_type(resp):
    return resp.headers.get("Content-Type", "").split(";")[0].strip().lower()


def describe(resp):
    """Short, secret-free description of a response for assertion messages."""
    req = resp.request
    body = resp.content[:600].decode("utf-8", "replace") if resp.content else ""
    return redact("%s %s -> %d %s" % (req.method, urlsplit(req.url).path,
                                      resp.status_code, body))


def check_response(method, path, resp):
    """Check one response against openapi.yaml and the rules of docs/api.md."""
    problems = []
    method_l = method.lower()
    status = resp.status_code
    if not resp.headers.get("X-Request-Id", "").strip():
        problems.append("no X-Request-Id header")

    sp = spec()
    tmpl, item = sp.route(path)
    op = item.get(method_l) if item else None
    if op is not None:
        responses = op["responses"]
        response = (responses.get(str(status)) or responses.get("%dXX" % (status // 100))
                    or responses.get("default"))
        if response is None:
            problems.append("status %d is not documented for %s %s"
                            % (status, method.upper(), tmpl))
    elif item is not None and method_l in ("get", "post", "put", "patch", "delete"):
        # A method the path does not list: the 405 answer of docs/api.md
        # (authentication may be checked first, and an {id} that names
        # nothing may be a 404 first).
        response = sp.doc["components"]["responses"].get(
            {405: "MethodNotAllowed", 401: "Unauthorized", 404: "NotFound"}.get(status, ""))
        if response is None:
            problems.append("%s %s: a method the path does not list answered %d, "
                            "not 405" % (method.upper(), tmpl, status))
    else:
        response = None

    if status >= 400 and response is None:
        # Unknown path or undocumented status: still a problem document.
        response = {"description": "problem", "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    response = sp.deref(response) if response else None

    if method_l != "head" and response is not None:
        content = response.get("content") or {}
        if not content:
            if resp.content:
                problems.append("status %d must have no body" % status)
        else:
            mt = media_type(resp)
            if mt not in content:
                problems.append("Content-Type %r, expected one of %s"
                                % (resp.headers.get("Content-Type"), sorted(content)))
            else:
                try:
                    text = resp.content.decode("utf-8")
                    # YAML (the OpenAPI document, /api/v1/openapi.yaml) or JSON.
                    body = yaml.safe_load(text) if mt.endswith("yaml") else json.loads(text)
                except (ValueError, UnicodeDecodeError, yaml.YAMLError) as e:
                    problems.append("body is not %s (%s)" % ("YAML" if mt.endswith("yaml")
                                                             else "JSON", e.__class__.__name__))
                else:
                    problems += sp.errors(content[mt]["schema"], body)
                    if status >= 400 and isinstance(body, dict) and body.get("status") != status:
                        problems.append("problem status %r differs from HTTP %d"
                                        % (body.get("status"), status))
        for name, hdr in (response.get("headers") or {}).items():
            hdr = sp.deref(hdr)
            value = resp.headers.get(name)
            if value is None:
                if hdr.get("required"):
                    problems.append("no %s header" % name)
                continue
            hschema = hdr.get("schema", {})
            if hschema.get("type") == "integer":
                if not re.fullmatch(r"\d+", value.strip()):
                    problems.append("%s %r is not an integer" % (name, value))
                    continue
                value = int(value)
            problems += ["header %s: %s" % (name, e) for e in sp.errors(hschema, value)]
    elif status >= 400 and method_l != "head":
        if media_type(resp) != "application/problem+json":
            problems.append("error with Content-Type %r" % resp.headers.get("Content-Type"))

    # 503 is the answer (docs/api.md#errors) when the database or every worker is away;
    # 502 is accepted only where the operation lists it (the OAuth 2.0
    # endpoints' provider and network failures). Any other 5xx is a failure.
    documented_502 = status == 502 and op is not None and "502" in op["responses"]
    if status >= 500 and status != 503 and not documented_502:
        problems.append("server error %d" % status)
    assert not problems, redact("%s (%s)" % ("; ".join(problems), describe(resp)))


# ---------------------------------------------------------------- client

_NOTSET = object()


class Client:
    """An API client whose every response is checked and recorded."""

    def __init__(self, token=_NOTSET, session=None):
        self.token = mint_token() if token is _NOTSET else token
        self.session = session or requests.Session()

    def url(self, path):
        if (path.startswith("/api/") or path.startswith("/healthz") or path == "/"
                or path in ("/livez", "/readyz")):
            return path
        return API + path

    def request(self, method, path, *, json_body=_NOTSET, data=None, content_type=None,
                headers=None, params=None, token=_NOTSET, timeout=30):
        full = self.url(path)
        hdrs = {"Accept": "application/json, application/problem+json"}
        tok = self.token if token is _NOTSET else token
        if tok is not None:
            hdrs["Authorization"] = "Bearer " + tok
        if json_body is not _NOTSET:
            data = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            if content_type is None:
                content_type = "application/json"
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        if headers:
            for k, v in headers.items():
                if v is None:
                    hdrs.pop(k, None)
                else:
                    hdrs[k] = v
        resp = self.session.request(method, BASE_URL + full, data=data, headers=hdrs,
                                    params=params, timeout=timeout, allow_redirects=False)
        record(method, full, resp)
        check_response(method, urlsplit(resp.request.url).path, resp)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=_NOTSET, **kw):
        return self.request("POST", path, json_body=body, **kw)

    def put(self, path, body=_NOTSET, **kw):
        return self.request("PUT", path, json_body=body, **kw)

    def patch(self, path, body=_NOTSET, **kw):
        kw.setdefault("content_type", "application/merge-patch+json")
        return self.request("PATCH", path, json_body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- conveniences that assert success

    def create(self, body):
        r = self.post("/mail-servers", body)
        assert r.status_code == 201, describe(r)
        return r.json()

    def fetch(self, sid):
        r = self.get("/mail-servers/%d" % sid)
        assert r.status_code == 200, describe(r)
        return r.json()

    def update(self, sid, patch, **kw):
        r = self.patch("/mail-servers/%d" % sid, patch, **kw)
        assert r.status_code == 200, describe(r)
        return r.json()

    def replace(self, sid, body, **kw):
        r = self.put("/mail-servers/%d" % sid, body, **kw)
        assert r.status_code == 200, describe(r)
        return r.json()

    def list_all(self, **params):
        """Every server (all pages), in the order of `sort`."""
        items, offset = [], 0
        while True:
            p = dict(params, limit=LIMIT_MAX, offset=offset)
            r = self.get("/mail-servers", params=p)
            assert r.status_code == 200, describe(r)
            page = r.json()
            items += page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return items

    def snapshot(self):
        """All servers by id: to show that a refused request changed nothing."""
        return {s["id"]: s for s in self.list_all()}

    def batch_delete(self, ids, **kw):
        return self.post("/mail-servers/batch-delete", {"ids": list(ids)}, **kw)

    def wipe(self):
        for _ in range(50):
            ids = [s["id"] for s in self.list_all()]
            if not ids:
                return
            for i in range(0, len(ids), BATCH_MAX):
                r = self.batch_delete(ids[i:i + BATCH_MAX])
                assert r.status_code == 200, describe(r)
        raise AssertionError("could not delete every server")


# ---------------------------------------------------------------- bodies

_name_counter = itertools.count(1)


def unique_name(prefix="server"):
    return "%s %d" % (prefix, next(_name_counter))


def basic_body(**over):
    body = {
        "name": unique_name("basic"),
        "server": "smtp.example.com",
        "port": 587,
        "sender_name": "Security Console",
        "sender_email": "console@example.com",
        "is_default": False,
        "enable_ssl": True,
        "auth_type": "basic",
        "username": "console",
        "password": secret("pw"),
    }
    return _apply(body, over)


def oauth_body(**over):
    body = {
        "name": unique_name("oauth"),
        "server": "smtp.office365.com",
        "port": 587,
        "sender_name": "Security Console",
        "sender_email": "console@example.com",
        "is_default": False,
        "enable_ssl": True,
        "auth_type": "oauth2",
        "client_id": "0f4c1c1e-7d43-4e8f-9a59-0c7b5c0b8f10",
        "secret_key": secret("sk"),
        "authorization_url": "https://login.example.com/tenant/oauth2/v2.0/authorize",
        "token_url": "https://login.example.com/tenant/oauth2/v2.0/token",
        "scope": "https://outlook.office.com/SMTP.Send offline_access",
    }
    return _apply(body, over)


_DROP = object()
DROP = _DROP  # basic_body(username=DROP) leaves the field out


def _apply(body, over):
    for k, v in over.items():
        if v is _DROP:
            body.pop(k, None)
        else:
            body[k] = v
    return body


READ_ONLY_FIELDS = ("id", "created_at", "updated_at", "version", "password_set",
                    "secret_key_set", "access_token_set", "refresh_token_set",
                    "access_token_expires_at", "oauth2_status",
                    "oauth2_last_refreshed_at", "oauth2_last_error")


# ---------------------------------------------------------------- assertions


def problem(resp, status, slug):
    """Assert a problem response of this status and type; return its body."""
    assert resp.status_code == status, describe(resp)
    assert media_type(resp) == "application/problem+json", describe(resp)
    body = resp.json()
    assert body.get("type") == "/problems/" + slug, describe(resp)
    assert body.get("status") == status, describe(resp)
    return body


def base_field(field):
    """`ids[3]`, `ids.3`, `/ids/3` -> `ids`."""
    m = re.match(r"^/?([^\[\]./]*)", field or "")
    return m.group(1) if m else field


def validation(resp, *fields, exact=True):
    """Assert a 422 validation problem naming these fields; return the field set."""
    body = problem(resp, 422, "validation")
    got = {base_field(e.get("field")) for e in body.get("errors", [])}
    want = set(fields)
    if exact:
        assert got == want, redact("errors name %s, expected %s (%s)"
                                   % (sorted(got), sorted(want), describe(resp)))
    else:
        assert want <= got, redact("errors name %s, expected at least %s (%s)"
                                   % (sorted(got), sorted(want), describe(resp)))
    return got


def etag_of(version):
    return '"%d"' % version


def same_except(a, b, *fields):
    """Two representations equal apart from the given keys."""
    skip = set(fields)
    return {k: v for k, v in a.items() if k not in skip} == \
        {k: v for k, v in b.items() if k not in skip}


def unset(value):
    """A field that is not set: null, or "" for optional text."""
    return value is None or value == ""
