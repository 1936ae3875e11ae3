"""The API's documentation (docs/api.md#api-documentation): the OpenAPI
document served without a token as YAML (/api/v1/openapi.yaml) and as JSON
(/api/v1/openapi.json), the same content, this build's, with their media
types and cache headers; and the page /api/docs/, opened in headless Chromium
(tests/browser/render_docs.js, as the user nobody in Chromium's sandbox),
which must show every operation's summary from openapi/openapi.yaml while
asking nothing of any other origin, under a Content-Security-Policy that
allows this origin alone. Two pages made here to fail (the document's URL
broken, a file from another origin) show that the browser check can fail.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml

import mailapi
from mailapi import BASE_URL, REPO, SPEC_FILE, describe

YAML_PATH = "/api/v1/openapi.yaml"
JSON_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/docs/"
RENDER = REPO / "tests" / "browser" / "render_docs.js"
# How long the page may take to render in the browser (seconds); a busy
# machine running the sanitizer build next to it needs some.
RENDER_SECONDS = 60
# Sources the documentation page's policy may name, per directive.
ALLOWED_SOURCES = {"'self'", "'none'"}
ALLOWED_EXTRA = {"img-src": {"data:"}}


class JsonSchemaLoader(yaml.SafeLoader):
    """YAML as OpenAPI 3.1 reads it (YAML 1.2's JSON schema): a date or a
    timestamp stays a string, as it is in the JSON form."""


JsonSchemaLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text):
    return yaml.load(text, Loader=JsonSchemaLoader)


def source_document():
    return load_yaml(SPEC_FILE.read_text(encoding="utf-8"))


def summaries(doc):
    """operationId -> summary of every operation of the document."""
    out = {}
    for item in doc["paths"].values():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                out[op["operationId"]] = op["summary"]
    return out


# ---------------------------------------------------------------- the document


def test_yaml_and_json_are_the_same_document_without_a_token(anon):
    y = anon.get(YAML_PATH)
    assert y.status_code == 200, describe(y)
    j = anon.get(JSON_PATH)
    assert j.status_code == 200, describe(j)
    assert y.headers["Content-Type"] == "application/yaml", describe(y)
    assert j.headers["Content-Type"] == "application/json", describe(j)
    from_yaml = load_yaml(y.content.decode("utf-8"))
    from_json = json.loads(j.content.decode("utf-8"))
    assert from_yaml == from_json, "the YAML and JSON documents differ"
    # This build's document, byte for byte as kept in the source.
    assert y.content == SPEC_FILE.read_bytes(), "the served YAML is not openapi/openapi.yaml"
    assert from_json == source_document()
    # They describe themselves, needing no token.
    for path in ("/openapi.yaml", "/openapi.json"):
        assert from_json["paths"][path]["get"]["security"] == []


def test_a_token_is_not_looked_at(api):
    """A bad token changes nothing (the service, which would refuse it,
    never sees the request); a good one neither."""
    for token in ("not-a-jwt", mailapi.mint_token()):
        r = requests.get(BASE_URL + JSON_PATH, headers={"Authorization": "Bearer " + token},
                         timeout=10)
        assert r.status_code == 200, describe(r)
        assert "WWW-Authenticate" not in r.headers


def test_cache_headers_head_and_revalidation(anon):
    for path in (YAML_PATH, JSON_PATH):
        r = anon.get(path)
        assert r.status_code == 200, describe(r)
        etag = r.headers.get("ETag", "")
        # Weak (W/) when nginx compressed the answer (requests asks for gzip).
        assert re.fullmatch(r'(W/)?"[0-9a-f]+-[0-9a-f]+"', etag), describe(r)
        assert r.headers.get("Cache-Control") == "no-cache", describe(r)
        assert r.headers.get("Last-Modified"), describe(r)
        assert r.headers.get("X-Content-Type-Options") == "nosniff"
        head = anon.request("HEAD", path)
        assert head.status_code == 200, describe(head)
        assert head.content == b""
        for h in ("Content-Type", "ETag", "Cache-Control", "Content-Length"):
            assert head.headers.get(h) == r.headers.get(h), h
        again = anon.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304, describe(again)
        assert again.content == b""
        assert again.headers.get("ETag", "").removeprefix("W/") == etag.removeprefix("W/")
        changed = anon.get(path, headers={"If-None-Match": '"0-0"'})
        assert changed.status_code == 200, describe(changed)


def test_gzip_when_asked(anon):
    r = requests.get(BASE_URL + JSON_PATH, headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert r.status_code == 200
    assert r.headers.get("Content-Encoding") == "gzip", r.headers
    assert r.json() == source_document()


def test_other_methods_are_refused(anon):
    for path in (YAML_PATH, JSON_PATH, DOCS_PATH):
        for method in ("POST", "PUT", "DELETE"):
            r = requests.request(method, BASE_URL + path, data=b"{}", timeout=10,
                                 headers={"Content-Type": "application/json"})
            assert r.status_code == 405, describe(r)
            assert r.headers.get("Allow") == "GET, HEAD", describe(r)
            assert r.headers.get("Content-Type") == "application/problem+json"


# ---------------------------------------------------------------- the page


def csp_directives(value):
    out = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            assert words[0] not in out, "directive %s twice" % words[0]
            out[words[0]] = words[1:]
    return out


def test_page_headers_and_policy(anon):
    r = anon.get(DOCS_PATH)
    assert r.status_code == 200, describe(r)
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"swagger-ui-bundle.js" in r.content
    assert r.headers.get("Cache-Control") == "no-cache"
    assert r.headers.get("ETag")
    policies = r.raw.headers.getlist("Content-Security-Policy")
    assert len(policies) == 1, policies
    d = csp_directives(policies[0])
    assert d.get("default-src") == ["'none'"], d
    assert d.get("frame-ancestors") == ["'none'"], d
    assert d.get("base-uri") == ["'none'"], d
    assert d.get("form-action") == ["'none'"], d
    for name in ("script-src", "style-src", "connect-src"):
        assert d.get(name) == ["'self'"], (name, d)
    for name, sources in d.items():
        bad = set(sources) - ALLOWED_SOURCES - ALLOWED_EXTRA.get(name, set())
        assert not bad, "%s allows %s" % (name, sorted(bad))
    # The page's files carry the same policy; the API's answers keep theirs.
    js = anon.get("/api/docs/docs.js")
    assert js.status_code == 200, describe(js)
    assert js.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert js.headers["Content-Security-Policy"] == policies[0]
    doc = anon.get(JSON_PATH)
    assert doc.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_page_without_slash_redirects(anon):
    r = requests.get(BASE_URL + "/api/docs", allow_redirects=False, timeout=10)
    assert r.status_code == 301, describe(r)
    assert r.headers["Location"] == "/api/docs/"
    missing = anon.get("/api/docs/nothing.js")
    assert missing.status_code == 404, describe(missing)


def render(*urls, seconds=RENDER_SECONDS):
    """What tests/browser/render_docs.js reports for each of urls (one
    browser, a tab each, all at once): {url: report}."""
    node = shutil.which("node")
    assert node, "node is not installed (scripts/install-deps.sh)"
    assert (REPO / "tests" / "browser" / "node_modules" / "puppeteer-core").is_dir(), \
        "puppeteer-core is not installed: run 'make test-tools'"
    assert Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists(), \
        "chromium is not installed (scripts/install-deps.sh)"
    p = subprocess.run([node, str(RENDER), str(seconds)] + list(urls), capture_output=True,
                       timeout=2 * seconds + 60, cwd="/")
    assert p.returncode == 0, "render_docs.js failed: %s" % p.stderr.decode("utf-8", "replace")[-2000:]
    return json.loads(p.stdout)["pages"]


def same_origin(url, base):
    if url.startswith("data:"):
        return True
    u, b = urlsplit(url), urlsplit(base)
    return (u.scheme, u.netloc) == (b.scheme, b.netloc)


# Three copies of the page (as `make docs` built it) made to fail, served
# from 127.0.0.1 by a server of this test, with the page's own policy unless
# said otherwise: the checks below must see each failure.
OFFSITE = "http://192.0.2.1/pixel.png"


def missing_document(d):
    js = (d / "docs.js").read_text()
    assert '"/api/v1/openapi.json"' in js
    (d / "docs.js").write_text(js.replace('"/api/v1/openapi.json"', '"/api/v1/missing.json"'))


def offsite_image(d):
    html = (d / "index.html").read_text()
    (d / "index.html").write_text(html.replace("</body>", '<img src="%s" alt=""></body>' % OFFSITE))


class _Handler(http.server.SimpleHTTPRequestHandler):
    policy = None

    def end_headers(self):
        if self.policy:
            self.send_header("Content-Security-Policy", self.policy)
        super().end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The reports of the real page and of the broken copies, rendered at
    once: {"real" | "missing_document" | "offsite_with_policy" |
    "offsite_without_policy": report}."""
    policy = requests.get(BASE_URL + DOCS_PATH, timeout=10).headers["Content-Security-Policy"]
    servers, urls = [], {"real": BASE_URL + DOCS_PATH}
    for name, edit, with_policy in (("missing_document", missing_document, True),
                                    ("offsite_with_policy", offsite_image, True),
                                    ("offsite_without_policy", offsite_image, False)):
        d = tmp_path_factory.mktemp(name) / "page"
        shutil.copytree(REPO / "build" / "api-docs" / "ui", d)
        edit(d)
        handler = type("H", (_Handler,), {"policy": policy if with_policy else None,
                                          "directory": str(d)})
        srv = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), lambda *a, h=handler, dd=str(d), **kw: h(*a, directory=dd, **kw))
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        urls[name] = "http://127.0.0.1:%d/index.html" % srv.server_address[1]
    try:
        reports = render(*urls.values())
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()
    return {name: reports[url] for name, url in urls.items()}


def test_page_renders_every_operation_from_this_origin_alone(pages):
    report = pages["real"]
    assert not report["errors"], report["errors"]
    assert not report["csp_violations"], report["csp_violations"]
    assert not report["http_errors"], report["http_errors"]
    assert not report["offsite"], report["offsite"]
    assert all(same_origin(u, BASE_URL) for u in report["requests"]), report["requests"]
    assert BASE_URL + JSON_PATH in report["requests"], report["requests"]
    want = summaries(source_document())
    shown = report["summaries"]
    missing = sorted(op for op, s in want.items() if s not in shown)
    assert not missing, "not rendered: %s" % missing
    assert len(shown) == len(want), shown


# ------------------------------------------------ the browser check can fail


def test_check_fails_when_the_document_is_not_found(pages):
    report = pages["missing_document"]
    assert report["summaries"] == []
    assert any(e["url"].endswith("/api/v1/missing.json") for e in report["http_errors"]), report
    assert report["errors"], report


def test_policy_refuses_a_file_from_another_origin(pages):
    report = pages["offsite_with_policy"]
    assert {"directive": "img-src", "blocked": OFFSITE} in report["csp_violations"], report


def test_check_sees_a_request_to_another_origin(pages):
    """Without the policy the request is made: the browser driver refuses
    it before it leaves, and reports it."""
    report = pages["offsite_without_policy"]
    assert OFFSITE in report["offsite"], report
