"""Headless Chromium helpers for llmtap UI tests (Selenium + Debian chromium/chromium-driver).

    from browser import start_chrome, requests_made, foreign_requests, csp_violations, \
        console_errors, screenshot_full, blocked_requests

    d = start_chrome()                      # headless, no background networking, perf log on
    d.get(f"http://127.0.0.1:{port}/")
    assert foreign_requests(d, f"http://127.0.0.1:{port}") == []
    assert csp_violations(d) == [] and console_errors(d) == []
    screenshot_full(d, "page.png")
    d.quit()                                # also stops the sentinel proxy, removes the temp profile

Everything here is verified against chromium 156.0.8078.114 (Debian bookworm-security) and
selenium 4.51.0; see FINDINGS.md.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROME_BINARY = os.environ.get("CHROME_BINARY", "/usr/lib/chromium/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")

# Flags verified to leave Chromium silent (no request to any non-loopback host over 240 s).
# chromedriver itself adds: --disable-background-networking --disable-client-side-phishing-detection
# --disable-default-apps --disable-hang-monitor --disable-popup-blocking --disable-prompt-on-repost
# --disable-sync --enable-automation --no-first-run --no-service-autorun --password-store=basic
# --use-mock-keychain --remote-debugging-port=0 --test-type=webdriver (and merges --disable-features).
QUIET_ARGS = [
    "--headless=new",
    "--no-sandbox",                      # required when running as root
    "--disable-dev-shm-usage",           # containers often have a tiny /dev/shm
    "--disable-gpu",
    "--force-device-scale-factor=1",
    "--hide-scrollbars",
    "--mute-audio",
    "--disable-background-networking",
    "--disable-component-update",        # else: update.googleapis.com component check at ~60 s
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-component-extensions-with-background-pages",
    "--metrics-recording-only",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--no-pings",
    "--disable-search-engine-choice-screen",
    "--safebrowsing-disable-auto-update",
    "--password-store=basic",
    "--use-mock-keychain",
    # else: POST update.googleapis.com on-demand install of the on-device-model manifest
    # component (appid ceofaddefefcbblgcgnibnonglccbfja), which ignores --disable-component-update
    "--optimization-guide-manifest-override=/nonexistent",
    # else: POST https://accounts.google.com/ListAccounts at start-up and with backoff
    # (0.5 s, 1.5 s, 4 s, 12 s, 35 s, ~110 s); no flag or pref disables it, so point Gaia at a
    # closed loopback port
    "--gaia-url=http://127.0.0.1:9",
    # ONE --disable-features switch only: Chromium keeps the last one given
    # (chromedriver merges its own IgnoreDuplicateNavs,Prewarm into it).
    "--disable-features=" + ",".join([
        "NetworkTimeServiceQuerying",    # else: GET http://clients2.google.com/time/1/current
        "Translate", "OptimizationHints", "OptimizationHintsFetching", "OptimizationGuideModelDownloading",
        "MediaRouter", "DialMediaRouteProvider", "CertificateTransparencyComponentUpdater",
        "AutofillServerCommunication", "InterestFeedContentSuggestions", "PrivacySandboxSettings4",
        "SafeBrowsing", "SpareRendererForSitePerProcess",
    ]),
]

# Profile prefs. The startup URL pref matters: without it the first tab is
# chrome://new-tab-page-third-party/, which loads https://start.duckduckgo.com/ (Debian's
# default search engine) before the test navigates anywhere.
QUIET_PREFS = {
    "session.restore_on_startup": 4,
    "session.startup_urls": ["about:blank"],
    "net.network_prediction_options": 2,
    "search.suggest_enabled": False,
    "signin.allowed": False,
    "safebrowsing.enabled": False,
    "translate.enabled": False,
    "credentials_enable_service": False,
}

# Injected before any page script (CDP Page.addScriptToEvaluateOnNewDocument is not subject
# to the page's CSP): records securitypolicyviolation events and uncaught errors per document.
_COLLECTOR_JS = r"""
(() => {
  if (window.__llmtapProbe) return;
  window.__llmtapProbe = {csp: [], errors: []};
  document.addEventListener('securitypolicyviolation', e => window.__llmtapProbe.csp.push({
    directive: e.effectiveDirective || e.violatedDirective, blockedURI: e.blockedURI,
    sourceFile: e.sourceFile, line: e.lineNumber, sample: e.sample, disposition: e.disposition}));
  window.addEventListener('error', e => window.__llmtapProbe.errors.push(
    String(e.message || (e.target && (e.target.src || e.target.href)) || e)), true);
  window.addEventListener('unhandledrejection', e => window.__llmtapProbe.errors.push(
    'unhandledrejection: ' + String(e.reason)));
})();
"""

LOCAL_SCHEMES = ("data:", "blob:", "about:", "chrome:", "chrome-error:", "devtools:")


class Sentinel:
    """A do-nothing HTTP proxy on 127.0.0.1 that records every request it receives.

    Chromium is started with --proxy-server pointing here, so any request to a host that is not
    loopback (loopback is bypassed by default) lands here, is answered 403 and recorded, instead
    of resolving DNS or leaving the machine."""

    def __init__(self) -> None:
        self.hits: list[tuple[float, str]] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._t0 = time.monotonic()
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            line = data.split(b"\r\n", 1)[0].decode("latin1")
            self.hits.append((round(time.monotonic() - self._t0, 2), line))
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._sock.close()


def start_chrome(width: int = 1400, height: int = 1000, *, sentinel: bool = True,
                 netlog: str | None = None, extra_args: list[str] | tuple = (),
                 binary: str | None = None) -> webdriver.Chrome:
    """Start headless Chromium via chromedriver with everything needed for the UI tests.

    width x height is the viewport (window.innerWidth/innerHeight), not the window.

    sentinel: route non-loopback traffic to an in-process recording proxy (see blocked_requests).
    netlog: path for Chromium's own --log-net-log (every request the browser process makes,
            including background ones the page never sees)."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary or CHROME_BINARY
    for a in QUIET_ARGS:
        opts.add_argument(a)
    opts.add_argument(f"--window-size={width},{height}")
    udd = tempfile.mkdtemp(prefix="llmtap-chrome-")
    opts.add_argument(f"--user-data-dir={udd}")
    sent = Sentinel() if sentinel else None
    if sent:
        opts.add_argument(f"--proxy-server=http://127.0.0.1:{sent.port}")
    if netlog:
        opts.add_argument(f"--log-net-log={netlog}")
    for a in extra_args:
        opts.add_argument(a)
    opts.add_experimental_option("prefs", QUIET_PREFS)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    opts.add_experimental_option("perfLoggingPrefs", {"enableNetwork": True, "enablePage": False})
    # An explicit driver path makes Selenium skip Selenium Manager (which would try the network).
    service = Service(executable_path=CHROMEDRIVER)
    try:
        d = webdriver.Chrome(options=opts, service=service)
    except Exception:
        if sent:
            sent.close()
        shutil.rmtree(udd, ignore_errors=True)
        raise
    d.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _COLLECTOR_JS})
    # --headless=new keeps a simulated browser frame: --window-size=1400,1000 gives a 1400x857
    # viewport. Grow the window by the frame so the *viewport* is width x height.
    dw, dh = d.execute_script("return [outerWidth - innerWidth, outerHeight - innerHeight]")
    if dw or dh:
        d.set_window_size(width + dw, height + dh)
    d._llmtap = {"sentinel": sent, "udd": udd, "perf": [], "console": []}
    orig_quit = d.quit

    def quit_and_clean() -> None:
        try:
            orig_quit()
        finally:
            if sent:
                sent.close()
            shutil.rmtree(udd, ignore_errors=True)

    d.quit = quit_and_clean
    return d


def _drain(driver) -> None:
    st = driver._llmtap
    for e in driver.get_log("performance"):   # get_log empties chromedriver's buffer
        st["perf"].append(json.loads(e["message"])["message"])
    st["console"].extend(driver.get_log("browser"))


def network_events(driver) -> list[dict]:
    """All CDP Network.* events seen so far (accumulated across calls and navigations)."""
    _drain(driver)
    return list(driver._llmtap["perf"])


def requests_made(driver) -> list[str]:
    """Every URL the page(s) requested so far, in order (documents, scripts, styles, images,
    fetch/XHR, EventSource, favicon, WebSocket), including requests later blocked by CSP."""
    urls = []
    for m in network_events(driver):
        if m["method"] == "Network.requestWillBeSent":
            urls.append(m["params"]["request"]["url"])
        elif m["method"] == "Network.webSocketCreated":
            urls.append(m["params"]["url"])
    return urls


def foreign_requests(driver, allowed_origin: str) -> list[str]:
    """URLs requested whose origin is not allowed_origin (e.g. 'http://127.0.0.1:8123'),
    ignoring data:/blob:/about: URLs."""
    want = urlsplit(allowed_origin)
    bad = []
    for u in requests_made(driver):
        if u.startswith(LOCAL_SCHEMES):
            continue
        p = urlsplit(u)
        scheme = {"ws": "http", "wss": "https"}.get(p.scheme, p.scheme)
        if (scheme, p.hostname, p.port) != (want.scheme, want.hostname, want.port):
            bad.append(u)
    return bad


def failed_requests(driver) -> list[dict]:
    """Network.loadingFailed events (blockedReason 'csp' for requests CSP refused)."""
    by_id = {}
    out = []
    for m in network_events(driver):
        if m["method"] == "Network.requestWillBeSent":
            by_id[m["params"]["requestId"]] = m["params"]["request"]["url"]
        elif m["method"] == "Network.loadingFailed":
            p = m["params"]
            out.append({"url": by_id.get(p["requestId"]), "error": p.get("errorText"),
                        "blockedReason": p.get("blockedReason"), "canceled": p.get("canceled")})
    return out


def console_entries(driver) -> list[dict]:
    """Browser console log (accumulated): dicts with level, message, source, timestamp."""
    _drain(driver)
    return list(driver._llmtap["console"])


def console_errors(driver) -> list[str]:
    """SEVERE console entries: uncaught JS errors, failed loads (incl. a 404 favicon), CSP refusals."""
    return [e["message"] for e in console_entries(driver) if e["level"] == "SEVERE"]


def page_probe(driver) -> dict:
    """What the injected collector saw in the *current* document: {'csp': [...], 'errors': [...]}."""
    return driver.execute_script("return window.__llmtapProbe || {csp: [], errors: []}")


def csp_violations(driver) -> list[str]:
    """CSP violations: from the console log (all documents so far) plus securitypolicyviolation
    events of the current document. Empty list == no violation."""
    out = [e["message"] for e in console_entries(driver)
           if "Content Security Policy" in e["message"]]
    for v in page_probe(driver)["csp"]:
        out.append("securitypolicyviolation: %s blocked %s (%s:%s)" % (
            v["directive"], v["blockedURI"], v["sourceFile"], v["line"]))
    return out


def blocked_requests(driver) -> list[str]:
    """Request lines that reached the sentinel proxy, i.e. any attempt (by the page or by the
    browser itself) to reach a non-loopback host. Empty list == nothing tried to leave."""
    sent = driver._llmtap["sentinel"]
    return [line for _, line in sent.hits] if sent else []


def screenshot_full(driver, path: str) -> tuple[int, int]:
    """Full-page PNG (beyond the viewport) via CDP Page.captureScreenshot. Returns (w, h) in CSS px."""
    m = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = m.get("cssContentSize") or m["contentSize"]
    w = max(int(size["width"]), driver.execute_script("return window.innerWidth"))
    h = int(size["height"])
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True, "fromSurface": True,
        "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}})
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    return w, h


def wait_for(driver, js_condition: str, timeout: float = 5.0, poll: float = 0.02):
    """Poll a JS expression until truthy; returns its value (raises TimeoutError)."""
    end = time.monotonic() + timeout
    while True:
        v = driver.execute_script("return (" + js_condition + ")")
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(js_condition)
        time.sleep(poll)
