"""Drives llmtap's web UI in headless Chromium (Selenium) for tests/ui.rs.

Protocol on stdin/stdout, one line each way, so that the Rust test makes the calls (it knows
their records) and this script only looks:
  -> "ready"                      the live list is open
  <- "call ID"                    a call finished; it must appear without a reload
  -> "seen ID EPOCH_MS"           it did, pushed into the open page at EPOCH_MS
  <- "session SID ID1 ID2"        two calls of one session exist
  -> "result {json}"              what each page showed, and what the browser did
Screenshots go to $LLMTAP_UI_SHOTS/{calls,call,session,overview}.png.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from browser import (blocked_requests, console_errors, csp_violations,  # noqa: E402
                     foreign_requests, screenshot_full, start_chrome, wait_for)

admin = os.environ["LLMTAP_UI_ADMIN"].rstrip("/")
shots = os.environ["LLMTAP_UI_SHOTS"]
os.makedirs(shots, exist_ok=True)


def say(*parts):
    print(*parts, flush=True)


def text(d, css):
    found = d.find_elements("css selector", css)
    return found[0].text if found else None


d = start_chrome()
result = {"foreign": [], "csp": [], "errors": []}


def collect():
    result["foreign"] += foreign_requests(d, admin)
    result["csp"] += csp_violations(d)
    result["errors"] += console_errors(d)


try:
    d.get(admin + "/")
    wait_for(d, "document.querySelector('tbody#calls') !== null", timeout=10)
    # The live stream is open once htmx's SSE extension has connected it.
    wait_for(d, "(() => { const t = document.querySelector('tbody#calls');"
                " const s = t && t['htmx-internal-data'] && t['htmx-internal-data'].sseEventSource;"
                " return !!s && s.readyState === 1; })()", timeout=10)
    # When each row arrives, by the page's clock (the machine's: the test compares it with the
    # call's end); and a marker a reload would lose.
    d.execute_script("""
        window.__notReloaded = true; window.__rowAt = {};
        new MutationObserver(ms => ms.forEach(m => m.addedNodes.forEach(n => {
          if (n.id) window.__rowAt[n.id] = Date.now(); })))
          .observe(document.querySelector('tbody#calls'), {childList: true});""")
    say("ready")
    line = sys.stdin.readline().split()
    assert line[0] == "call", line
    call_id = line[1]
    wait_for(d, f"document.getElementById('call-{call_id}') !== null", timeout=10, poll=0.02)
    row_at = d.execute_script(f"return window.__rowAt['call-{call_id}'] || null;")
    result["not_reloaded"] = d.execute_script("return window.__notReloaded === true;")
    result["row"] = text(d, f"#call-{call_id}")
    say("seen", call_id, str(row_at))
    screenshot_full(d, os.path.join(shots, "calls.png"))
    collect()

    # The history writes in batches (200 ms): the page may 404 for that long.
    deadline = time.monotonic() + 10
    while True:
        d.get(f"{admin}/calls/{call_id}")
        if d.find_elements("css selector", "#cost") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    result["call"] = {
        "title": text(d, "h1"),
        "cost": text(d, "#cost"),
        "tokens": {k: text(d, f"#tokens-{k}") for k in
                   ["input", "output", "cache_read", "cache_write_5m", "cache_write_1h"]},
        "ttft": text(d, "#ttft"),
        "system": text(d, "#system"),
        "tools": text(d, "#tools"),
        "no_content": text(d, "#no-content"),
    }
    screenshot_full(d, os.path.join(shots, "call.png"))
    collect()

    line = sys.stdin.readline().split()
    assert line[0] == "session", line
    sid = line[1]
    d.get(f"{admin}/sessions/{sid}")
    wait_for(d, "document.getElementById('session-calls') !== null", timeout=10)
    links = d.find_elements("css selector", "#session-calls a")
    result["session"] = {
        "calls": [a.get_attribute("href").rsplit("/", 1)[-1] for a in links],
        "bars": len(d.find_elements("css selector", "svg.waterfall rect")),
        "tool_bars": len(d.find_elements("css selector", "svg.waterfall .tool rect")),
    }
    screenshot_full(d, os.path.join(shots, "session.png"))
    collect()

    d.get(f"{admin}/overview")
    wait_for(d, "document.querySelector('svg.chart') !== null", timeout=10)
    result["overview_rects"] = len(d.find_elements("css selector", "svg.chart rect"))
    screenshot_full(d, os.path.join(shots, "overview.png"))
    collect()
    # Anything the browser tried to send elsewhere reached the recording proxy instead.
    result["blocked"] = blocked_requests(d)
finally:
    d.quit()
say("result", json.dumps(result))
