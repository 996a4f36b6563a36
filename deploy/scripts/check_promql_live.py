#!/usr/bin/env python3
"""Runs every dashboard query against a real Prometheus holding llmtap-shaped data.

    python3 deploy/scripts/check_promql_live.py [--keep DIR]
    python3 deploy/scripts/check_promql_live.py --url http://127.0.0.1:9090

Writes two hours of synthetic llmtap series (every metric, three teams, three providers,
five clients, two agents, every outcome and token type, tool executions, plan windows; the
label sets of src/telemetry/names.rs), backfills them
with `promtool tsdb create-blocks-from openmetrics`, starts Debian's `prometheus` on a
free loopback port, then evaluates each panel query and each variable query of
dashboards/*.json (Grafana variables substituted) at the end of the data. Fails when a
query errors or returns no data (e.g. a label typo, or a division whose two sides no
longer match). This proves the dashboards against llmtap's metric contract. With --url it
runs the same queries against a Prometheus that scraped a real llmtap (the end-to-end
check): there, a query over a labelled counter that the traffic never incremented (parse
errors, label overflow, ...) has no series, and is reported.
Standard library only; needs `promtool` and `prometheus` on PATH.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_dashboards as cd  # noqa: E402

STEP = 30  # seconds between samples
SPAN = 2 * 3600
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0]
TARGET = {"job": "llmtap", "instance": "llmtap:9464"}
SUBST = {"__rate_interval": "2m", "__interval": "30s", "__range": "1h"}
# Each query runs twice: with every variable at All (.*), then with one value selected.
SELECTIONS = [{}, {"team": "team-a", "user": "alice", "model": "claude-sonnet-4-5", "client": "claude-code"}]

ROUTES = [  # provider, model, client
    ("anthropic", "claude-sonnet-4-5", "claude-code"),
    ("anthropic", "claude-opus-4-1", "anthropic-sdk-python"),
    ("openai", "gpt-5", "codex"),
    ("openai", "gpt-5-mini", "openai-python"),
    ("gcp.gemini", "gemini-2.5-pro", "gemini-cli"),
]
PEOPLE = [("team-a", "alice"), ("team-a", "bob"), ("team-b", "carol")]
OUTCOMES = {"ok": 0.85, "client_error": 0.03, "upstream_error": 0.04, "rate_limited": 0.04,
            "cancelled": 0.03, "proxy_error": 0.01}
TOOLS = ["Bash", "Edit", "Read", "shell", "apply_patch", "read_file"]
AGENTS = ["main", "general-purpose"]  # the session's own loop and one subagent
TOOL_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0]
CONTEXT_BUCKETS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
RETRY_REASONS = ["rate_limited", "overloaded", "server_error", "stream_truncated"]
PLAN_WINDOWS = {"anthropic": [("5h", 5 * 3600), ("7d", 7 * 86400)],  # window, length in seconds
                "openai": [("5h", 5 * 3600), ("7d", 7 * 86400)]}


def labels(d: dict) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted({**d, **TARGET}.items())) + "}"


def fmt(v: float) -> str:
    return repr(float(v))


def synth(start: int) -> str:
    rnd = random.Random(8)
    times = list(range(start, start + SPAN + 1, STEP))
    families: dict[str, tuple[str, dict[str, list[tuple[int, float]]]]] = {}

    def series(family: str, typ: str, name: str, lbl: dict) -> list[tuple[int, float]]:
        fam = families.setdefault(family, (typ, {}))[1]
        return fam.setdefault(name + labels(lbl), [])

    counters: dict[tuple, float] = {}

    def inc(family: str, lbl: dict, by: float, t: int) -> None:
        key = (family, tuple(sorted(lbl.items())))
        counters[key] = counters.get(key, 0.0) + by
        series(family, "counter", family + "_total", lbl).append((t, counters[key]))

    hist: dict[tuple, list[float]] = {}

    def observe(family: str, lbl: dict, values: list[float], t: int, buckets: list[float] = BUCKETS) -> None:
        key = (family, tuple(sorted(lbl.items())))
        h = hist.setdefault(key, [0.0] * (len(buckets) + 3))  # buckets..., +Inf, count, sum
        for v in values:
            for i, b in enumerate(buckets):
                if v <= b:
                    h[i] += 1
            h[len(buckets)] += 1
            h[len(buckets) + 1] += 1
            h[len(buckets) + 2] += v
        for i, b in enumerate(buckets + [math.inf]):
            le = "+Inf" if b == math.inf else repr(b)
            series(family, "histogram", family + "_bucket", {**lbl, "le": le}).append((t, h[i]))
        series(family, "histogram", family + "_count", lbl).append((t, h[len(buckets) + 1]))
        series(family, "histogram", family + "_sum", lbl).append((t, h[len(buckets) + 2]))

    plan_used: dict[tuple, float] = {}

    for t in times:
        in_flight = 0
        for r, (provider, model, client) in enumerate(ROUTES):
            for p, (team, user) in enumerate(PEOPLE):
                agent = AGENTS[(r + p) % len(AGENTS)]
                base = {"provider": provider, "model": model, "team": team, "user": user, "client": client,
                        "agent": agent}
                for outcome, share in OUTCOMES.items():
                    inc("llmtap_requests", {**base, "outcome": outcome}, rnd.random() * 2 * share, t)
                inp = rnd.randint(2000, 40000)
                cache_read = int(inp * rnd.uniform(0.3, 0.9))
                out = rnd.randint(50, 2000)
                toks = {"input": inp, "output": out, "cache_read": cache_read,
                        "cache_write_5m": rnd.randint(0, 2000), "cache_write_1h": rnd.randint(0, 500),
                        "reasoning": rnd.randint(0, out)}
                for typ, n in toks.items():
                    inc("llmtap_tokens", {**base, "type": typ}, n, t)
                for billing in ("api", "subscription"):
                    inc("llmtap_cost_usd", {**base, "billing": billing}, rnd.uniform(0.001, 0.05), t)
                in_flight += rnd.randint(0, 2)
            rl = {"provider": provider, "model": model, "client": client}
            observe("llmtap_time_to_first_token_seconds", rl,
                    [rnd.lognormvariate(0, 0.8) for _ in range(3)], t)
            observe("llmtap_request_duration_seconds", rl,
                    [rnd.lognormvariate(1.5, 0.9) for _ in range(3)], t)
            pm = {"provider": provider, "model": model}
            for tool in TOOLS[:3] if provider == "anthropic" else TOOLS[3:]:
                inc("llmtap_tool_calls", {**pm, "tool": tool}, rnd.randint(0, 3), t)
            observe("llmtap_context_utilization_ratio", pm, [rnd.uniform(0.05, 1.0) for _ in range(3)], t,
                    CONTEXT_BUCKETS)
            for agent in AGENTS:
                pma = {**pm, "agent": agent}
                inc("llmtap_compactions", pma, rnd.random() < 0.02, t)
                broke = rnd.random() < 0.05
                inc("llmtap_cache_breaks", pma, broke, t)
                inc("llmtap_cache_break_cost_usd", pma, broke * rnd.uniform(0.001, 0.05), t)
            for reason in RETRY_REASONS:
                inc("llmtap_retries", {**pm, "reason": reason}, rnd.random() < 0.05, t)
            inc("llmtap_usage_missing", pm, rnd.random() < 0.1, t)
            inc("llmtap_cost_unknown", pm, rnd.random() < 0.05, t)
        for provider, tools in (("anthropic", TOOLS[:3]), ("openai", TOOLS[3:])):
            for tool in tools:
                pt = {"provider": provider, "tool": tool}
                observe("llmtap_tool_duration_seconds", pt,
                        [rnd.lognormvariate(1, 1.5) for _ in range(rnd.randint(0, 3))], t, TOOL_BUCKETS)
                inc("llmtap_tool_errors", pt, rnd.random() < 0.1, t)
        for team, user in PEOPLE:
            for provider, windows in PLAN_WINDOWS.items():
                who = {"provider": provider, "team": team, "user": user}
                for window, length in windows:
                    key = (provider, team, user, window)
                    used = plan_used[key] = min(1.0, plan_used.get(key, rnd.uniform(0, 0.5)) + rnd.uniform(0, 0.004))
                    series("llmtap_ratelimit_utilization_ratio", "gauge", "llmtap_ratelimit_utilization_ratio",
                           {**who, "window": window}).append((t, used))
                    series("llmtap_ratelimit_reset_timestamp_seconds", "gauge",
                           "llmtap_ratelimit_reset_timestamp_seconds",
                           {**who, "window": window}).append((t, (t // length + 1) * length))
            # API-key limits: a reset per resource (window = the resource's name) and what remains.
            who = {"provider": "anthropic", "team": team, "user": user}
            for resource in ("requests", "tokens"):
                series("llmtap_ratelimit_reset_timestamp_seconds", "gauge", "llmtap_ratelimit_reset_timestamp_seconds",
                       {**who, "window": resource}).append((t, (t // 60 + 1) * 60))
                series("llmtap_ratelimit_remaining", "gauge", "llmtap_ratelimit_remaining",
                       {**who, "resource": resource}).append((t, rnd.randint(0, 50)))
        inc("llmtap_tool_calls_unmatched", {"reason": "expired"}, rnd.random() < 0.02, t)
        for provider in ("anthropic", "openai", "gcp.gemini"):
            inc("llmtap_errors", {"provider": provider, "error_type": "overloaded_error"}, rnd.random() < 0.2, t)
            inc("llmtap_parse_errors", {"provider": provider, "kind": "sse"}, rnd.random() < 0.05, t)
        series("llmtap_in_flight_calls", "gauge", "llmtap_in_flight_calls", {}).append((t, in_flight))
        series("llmtap_build_info", "gauge", "llmtap_build_info", {"version": "0.1.0"}).append((t, 1))
        for name in ("llmtap_spans_dropped", "llmtap_records_dropped"):
            inc(name, {}, rnd.random() < 0.05, t)
        for signal in ("traces", "metrics"):
            inc("llmtap_otlp_export_failures", {"signal": signal}, rnd.random() < 0.05, t)
        for label in ("model", "tool"):
            inc("llmtap_label_overflow", {"label": label}, rnd.random() < 0.05, t)
        for intercepted in ("true", "false"):
            inc("llmtap_tunnels", {"intercepted": intercepted}, rnd.randint(0, 5), t)

    lines = []
    for family, (typ, fam) in families.items():
        lines.append(f"# TYPE {family} {typ}")
        for key, samples in fam.items():
            lines.extend(f"{key} {fmt(v)} {ts}" for ts, v in samples)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def substitute(expr: str, selection: dict[str, str]) -> str:
    def repl(m):
        name = m.group(1) or m.group(2)
        return SUBST.get(name) or selection.get(name, ".*")

    return cd.VAR_REF.sub(repl, expr)


def run_query(base: str, key: str, expr: str, start: int, end: int) -> str | None:
    """None when the query returns data, else what went wrong."""
    if ":var:" in key:
        label = key.rsplit(":", 1)[1]
        q = urllib.parse.urlencode({"match[]": expr, "start": start, "end": end})
        try:
            res = get(f"{base}/api/v1/label/{label}/values?{q}")
        except urllib.error.URLError as e:
            return str(e)[:300]
        if res.get("status") != "success" or not res.get("data"):
            return f"label_values({expr}, {label}) is empty"
        return None
    q = urllib.parse.urlencode({"query": expr, "time": end})
    try:
        res = get(f"{base}/api/v1/query?{q}")
    except urllib.error.HTTPError as e:
        return e.read().decode()[:300]
    except urllib.error.URLError as e:
        return str(e)[:300]
    result = res.get("data", {}).get("result", [])
    if not result:
        return f"no data for {expr}"
    values = [float(s["value"][1]) for s in result] if isinstance(result[0], dict) else []
    if values and all(math.isnan(v) for v in values):
        return f"only NaN for {expr}"
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", type=Path, help="keep the data and logs in this directory")
    ap.add_argument("--url", help="query this running Prometheus (e.g. one that scraped a real llmtap) "
                    "instead of starting one on synthetic data; variables at All only")
    args = ap.parse_args()
    if args.url:
        problems = cd.Problems()
        exprs: list[tuple[str, str]] = []
        for path in sorted((cd.ROOT / "dashboards").glob("*.json")):
            cd.check_dashboard(path, problems, exprs)
        end = int(time.time())
        failures = [f"{key}: {f}" for key, expr in exprs
                    if (f := run_query(args.url.rstrip("/"), key, substitute(expr, {}), end - 3600, end))]
        for f in failures:
            print(f"FAIL {f}")
        print(f"check_promql_live: {len(exprs)} queries against {args.url}: "
              f"{len(exprs) - len(failures)} returned data, {len(failures)} failed")
        return 1 if failures else 0
    for tool in ("promtool", "prometheus"):
        if not shutil.which(tool):
            print(f"check_promql_live: {tool} not on PATH (apt-get install prometheus)", file=sys.stderr)
            return 2

    problems = cd.Problems()
    exprs: list[tuple[str, str]] = []
    for path in sorted((cd.ROOT / "dashboards").glob("*.json")):
        cd.check_dashboard(path, problems, exprs)

    work = args.keep or Path(tempfile.mkdtemp(prefix="llmtap-promql-"))
    work.mkdir(parents=True, exist_ok=True)
    end = (int(time.time()) - 600) // STEP * STEP
    start = end - SPAN
    (work / "data.om").write_text(synth(start))
    tsdb = work / "tsdb"
    shutil.rmtree(tsdb, ignore_errors=True)
    r = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=4h",
                        str(work / "data.om"), str(tsdb)], capture_output=True, text=True)
    if r.returncode:
        print(r.stdout + r.stderr, file=sys.stderr)
        return 1
    (work / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    port = free_port()
    log = open(work / "prometheus.log", "w")
    prom = subprocess.Popen(["prometheus", f"--config.file={work / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tsdb}", f"--web.listen-address=127.0.0.1:{port}",
                             "--storage.tsdb.retention.time=30d"],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    failures: list[str] = []
    try:
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or prom.poll() is not None:
                print((work / "prometheus.log").read_text()[-3000:], file=sys.stderr)
                print("check_promql_live: prometheus did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        for selection in SELECTIONS:
            for key, expr in exprs:
                failure = run_query(base, key, substitute(expr, selection), start, end)
                if failure:
                    chosen = ", ".join(f"{k}={v}" for k, v in selection.items()) or "all"
                    failures.append(f"{key} [{chosen}]: {failure}")
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=10)
        except subprocess.TimeoutExpired:
            prom.kill()
        log.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for f in failures:
        print(f"FAIL {f}")
    total = len(exprs) * len(SELECTIONS)
    print(f"check_promql_live: {len(exprs)} queries x {len(SELECTIONS)} variable selections against "
          f"Prometheus with synthetic llmtap data: {total - len(failures)} returned data, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
