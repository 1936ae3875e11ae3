#!/usr/bin/env node
// render_docs.js - open pages in headless Chromium and report, as one JSON
// object on stdout, what each rendered and what it asked for. The API suite's
// test of the documentation page (tests/api/test_api_docs.py) reads it.
//
//   node tests/browser/render_docs.js SECONDS URL...
//
// {"seconds": how long it all took,
//  "pages": {URL: {"summaries": [text of every rendered operation summary],
//                  "text": the page's visible text,
//                  "requests": [every URL the page requested],
//                  "offsite": [those not on URL's own origin, which were refused],
//                  "csp_violations": [{"directive", "blocked"}],
//                  "errors": [uncaught page errors and console errors],
//                  "http_errors": [{"url", "status"}] answers of 400 and above},
//            ...}}
//
// The browser is Debian's chromium (CHROMIUM, default /usr/bin/chromium),
// started by chromium-unprivileged.sh (as nobody when we are root), with its
// sandbox, a profile of its own that is removed afterwards, and no background
// networking. One browser, a tab per URL, all at once. Every request to
// another origin than the tab's URL is aborted before it leaves, and
// reported. Each tab has SECONDS (at most 300) to render at least one
// operation and then to stop changing; exit 0 with the report even when
// nothing rendered (the test decides), exit 1 when the browser could not be
// driven at all.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const puppeteer = require("puppeteer-core");

async function renderOne(browser, url, deadline) {
  const origin = new URL(url).origin;
  const report = { summaries: [], text: "", requests: [], offsite: [], csp_violations: [],
                   errors: [], http_errors: [] };
  const left = () => Math.max(1000, deadline - Date.now());
  const page = await browser.newPage();
  await page.evaluateOnNewDocument(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push({ directive: e.violatedDirective, blocked: e.blockedURI });
    });
  });
  await page.setRequestInterception(true);
  page.on("request", (req) => {
    const u = req.url();
    report.requests.push(u);
    let same = u.startsWith("data:");
    try {
      same = same || new URL(u).origin === origin;
    } catch (e) {
      // not a URL: refused below
    }
    if (same) {
      req.continue();
    } else {
      report.offsite.push(u);
      req.abort("blockedbyclient");
    }
  });
  page.on("response", (res) => {
    if (res.status() >= 400) report.http_errors.push({ url: res.url(), status: res.status() });
  });
  page.on("pageerror", (err) => report.errors.push("page error: " + String(err.message || err)));
  page.on("console", (msg) => {
    if (msg.type() === "error") report.errors.push("console: " + msg.text());
  });

  await page.goto(url, { waitUntil: "load", timeout: left() });
  // At least one operation, then the same number for half a second.
  try {
    await page.waitForSelector(".opblock-summary-description", { timeout: left() });
    let last = -1;
    while (Date.now() < deadline) {
      const n = await page.$$eval(".opblock", (els) => els.length);
      if (n === last) break;
      last = n;
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (e) {
    report.errors.push("nothing rendered: " + String(e.message || e));
  }
  report.summaries = await page.$$eval(".opblock-summary-description",
                                       (els) => els.map((e) => e.textContent.trim()));
  report.text = await page.evaluate(() => (document.body ? document.body.innerText : ""));
  report.csp_violations = await page.evaluate(() => window.__cspViolations || []);
  await page.close();
  return report;
}

async function main() {
  const seconds = Number(process.argv[2]);
  const urls = process.argv.slice(3);
  if (!(seconds > 0 && seconds <= 300) || urls.length === 0) {
    console.error("usage: render_docs.js SECONDS URL...");
    process.exit(2);
  }
  const started = Date.now();
  // The profile: a directory the unprivileged browser owns.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "mailsrv-chromium-"));
  if (process.getuid() === 0) {
    fs.chmodSync(profile, 0o700);
    fs.chownSync(profile, 65534, 65534);
  }
  let browser;
  const out = { seconds: 0, pages: {} };
  try {
    browser = await puppeteer.launch({
      executablePath: path.join(__dirname, "chromium-unprivileged.sh"),
      headless: true,
      userDataDir: profile,
      env: { ...process.env, HOME: profile },
      args: ["--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-default-apps", "--no-first-run",
             "--disable-dev-shm-usage", "--no-proxy-server"],
      timeout: seconds * 1000,
    });
    // The tabs' time starts once the browser is up.
    const deadline = Date.now() + seconds * 1000;
    const reports = await Promise.all(urls.map((u) => renderOne(browser, u, deadline)));
    urls.forEach((u, i) => { out.pages[u] = reports[i]; });
  } finally {
    if (browser) await browser.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  out.seconds = (Date.now() - started) / 1000;
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  console.error("render_docs: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
