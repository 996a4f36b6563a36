#!/usr/bin/env python3
"""Generates llmtap's Grafana dashboards (dashboards/*.json) from one description.

The JSON files are committed; this script is their source. Edit it, then run

    python3 deploy/scripts/build_dashboards.py            # rewrite dashboards/*.json
    python3 deploy/scripts/build_dashboards.py --check    # exit 1 if a file is stale

Standard library only. Metric names and labels are those of src/telemetry/names.rs (ARCHITECTURE.md, "Names");
deploy/scripts/check_dashboards.py verifies them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "dashboards"

DS = {"type": "prometheus", "uid": "${datasource}"}

# Label filters. Calls, tokens and cost carry team/user/model/client (and agent); the latency
# histograms carry provider/model/client only; tool calls, usage_missing, context fill,
# compactions, cache breaks and retries carry model; the plan (rate limit) gauges carry
# team/user but no model or client; tool executions carry provider/tool only (unfiltered).
F_ALL = 'team=~"$team", user=~"$user", model=~"$model", client=~"$client"'
F_MC = 'model=~"$model", client=~"$client"'
F_M = 'model=~"$model"'
F_TU = 'team=~"$team", user=~"$user"'
RI = "$__rate_interval"

REQ = "llmtap_requests_total"
TOK = "llmtap_tokens_total"
COST = "llmtap_cost_usd_total"
TTFT = "llmtap_time_to_first_token_seconds_bucket"
DUR = "llmtap_request_duration_seconds_bucket"
TOOL_DUR = "llmtap_tool_duration_seconds_bucket"
CTX = "llmtap_context_utilization_ratio_bucket"
PLAN_UTIL = "llmtap_ratelimit_utilization_ratio"
PLAN_RESET = "llmtap_ratelimit_reset_timestamp_seconds"
# Share of a plan window at which the dashboards draw their threshold line and
# deploy/prometheus/alerts.yml (LLMTapPlanWindowNearlyUsed) warns.
PLAN_WARN = 0.8
# Outcomes that count as errors on the dashboards: everything but ok and cancelled (a
# cancelled call is the user pressing Esc, not a failure).
ERR = 'outcome!~"ok|cancelled"'


class Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping rows."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {
                "id": self._id(),
                "type": "row",
                "title": title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def add(self, panel: dict, w: int, h: int) -> None:
        if self.x + w > 24:
            self._newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def _newline(self) -> None:
        if self.x:
            self.y += self.row_h
        self.x = 0
        self.row_h = 0

    def _id(self) -> int:
        i = self.next_id
        self.next_id += 1
        return i


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False, fmt: str = "time_series") -> dict:
    t = {
        "datasource": DS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "format": fmt,
    }
    return t


def targets(*specs: tuple[str, str], instant: bool = False, fmt: str = "time_series") -> list[dict]:
    return [
        target(expr, legend, chr(ord("A") + i), instant, fmt) for i, (expr, legend) in enumerate(specs)
    ]


def timeseries(title: str, desc: str, unit: str, tgts: list[dict], stack: bool = False,
               legend_calcs: list[str] | None = None, decimals: int | None = None,
               max_: float | None = None, line_at: float | None = None) -> dict:
    defaults: dict = {
        "unit": unit,
        "min": 0,
        "color": {"mode": "palette-classic"},
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 20 if stack else 0,
            "showPoints": "never",
            "spanNulls": False,
            "stacking": {"mode": "normal" if stack else "none", "group": "A"},
            "axisSoftMin": 0,
        },
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    if max_ is not None:
        defaults["max"] = max_
    if line_at is not None:
        # A dashed threshold line (green below, red from line_at); series keep their colours.
        defaults["thresholds"] = {"mode": "absolute",
                                  "steps": [{"color": "green", "value": None}, {"color": "red", "value": line_at}]}
        defaults["custom"]["thresholdsStyle"] = {"mode": "dashed"}
    return {
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": legend_calcs if legend_calcs is not None else ["mean", "max"],
                "sortBy": "Mean",
                "sortDesc": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": tgts,
    }


def stat(title: str, desc: str, unit: str, expr: str, decimals: int | None = None,
         thresholds: list[tuple[float | None, str]] | None = None) -> dict:
    steps = [{"color": c, "value": v} for v, c in (thresholds or [(None, "blue")])]
    defaults: dict = {
        "unit": unit,
        "color": {"mode": "thresholds"},
        "thresholds": {"mode": "absolute", "steps": steps},
    }
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat",
        "title": title,
        "description": desc,
        "datasource": DS,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "justifyMode": "auto",
            "textMode": "value",
            "orientation": "auto",
        },
        "targets": [target(expr, instant=True)],
    }


def bargauge(title: str, desc: str, unit: str, expr: str, legend: str) -> dict:
    return {
        "type": "bargauge",
        "title": title,
        "description": desc,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "color": {"mode": "continuous-BlYlRd"},
                "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None}]},
            },
            "overrides": [],
        },
        "options": {
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "auto",
            "sizing": "auto",
            "minVizHeight": 16,
            "maxVizHeight": 300,
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        "targets": [target(expr, legend, instant=True)],
    }


def table(title: str, desc: str, unit: str, specs: list[tuple[str, str, str]], by: list[str],
          sort_col: str) -> dict:
    """An instant table: one column per (expr, column name, unit), joined on `by` labels."""
    tgts = [target(expr, "", chr(ord("A") + i), instant=True, fmt="table")
            for i, (expr, _, _) in enumerate(specs)]
    rename = {f"Value #{chr(ord('A') + i)}": name for i, (_, name, _) in enumerate(specs)}
    order = {label: i for i, label in enumerate(by)}
    order.update({f"Value #{chr(ord('A') + i)}": len(by) + i for i in range(len(specs))})
    overrides = [
        {"matcher": {"id": "byName", "options": name},
         "properties": [{"id": "unit", "value": col_unit}]}
        for _, name, col_unit in specs
    ]
    return {
        "type": "table",
        "title": title,
        "description": desc,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {"unit": unit, "custom": {"align": "auto", "cellOptions": {"type": "auto"}}},
            "overrides": overrides,
        },
        "options": {"showHeader": True, "cellHeight": "sm", "sortBy": [{"displayName": sort_col, "desc": True}]},
        "transformations": [
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "indexByName": order,
                    "renameByName": rename,
                },
            },
        ],
        "targets": tgts,
    }


def variables(extra_doc: str) -> list[dict]:
    def query_var(name: str, label: str, query: str, desc: str) -> dict:
        return {
            "name": name,
            "label": label,
            "description": desc,
            "type": "query",
            "datasource": DS,
            "definition": query,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2,
            "regex": "",
            "sort": 1,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [],
            "hide": 0,
        }

    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "regex": "",
            "current": {},
            "options": [],
            "refresh": 1,
            "hide": 0,
            "includeAll": False,
            "multi": False,
        },
        query_var("team", "Team", f"label_values({REQ}, team)",
                  "Team from the proxy credentials, x-llmtap-team or --team."),
        query_var("user", "User", f'label_values({REQ}{{team=~"$team"}}, user)',
                  "User from the proxy credentials, x-llmtap-user or --user."),
        query_var("model", "Model", f'label_values({REQ}{{team=~"$team", user=~"$user"}}, model)',
                  "Response model (else request model)."),
        query_var("client", "Client", f'label_values({REQ}{{team=~"$team", user=~"$user"}}, client)',
                  "Agent detected from user-agent (claude-code, codex, gemini-cli, ...). " + extra_doc),
    ]


def dashboard(uid: str, title: str, desc: str, panels: list[dict], var_doc: str, other: str) -> dict:
    return {
        "__comment": "Generated by deploy/scripts/build_dashboards.py; edit that, not this file.",
        "id": None,
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": ["llmtap", "llm"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "weekStart": "",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [
            {
                "title": other,
                "type": "dashboards",
                "tags": ["llmtap"],
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": variables(var_doc)},
        "panels": panels,
    }


def team_cost() -> dict:
    L = Layout()
    cost = f"{COST}{{{F_ALL}}}"
    req = f"{REQ}{{{F_ALL}}}"

    def tok(t: str) -> str:
        return f'{TOK}{{{F_ALL}, type="{t}"}}'

    L.row("Overview (selected time range)")
    L.add(stat("Total cost", "API-equivalent cost of all calls in the time range, from llmtap's price "
               "table (subscription traffic priced at API rates).", "currencyUSD",
               f"sum(increase({cost}[$__range])) or vector(0)", decimals=2), 4, 4)
    L.add(stat("Calls", "LLM calls recorded in the time range, every outcome.", "short",
               f"round(sum(increase({req}[$__range]))) or vector(0)", decimals=0), 4, 4)
    L.add(stat("Cost per call", "Average cost of one call in the time range (total cost / calls).",
               "currencyUSD",
               f"sum(increase({cost}[$__range])) / sum(increase({req}[$__range]))", decimals=4), 4, 4)
    L.add(stat("Cache hit ratio", "Share of prompt tokens read from the provider's prompt cache "
               "(cache_read / input; input includes cached tokens).", "percentunit",
               f'sum(increase({tok("cache_read")}[$__range])) / sum(increase({tok("input")}[$__range]))',
               decimals=1,
               thresholds=[(None, "red"), (0.5, "orange"), (0.8, "green")]), 4, 4)
    L.add(stat("Subscription share of cost", "Share of the cost that came from subscription (OAuth) "
               "traffic, priced at API-equivalent rates: what the subscription saved or would cost "
               "on the API.", "percentunit",
               f'(sum(increase({COST}{{{F_ALL}, billing="subscription"}}[$__range])) or vector(0))'
               f" / sum(increase({cost}[$__range]))", decimals=1), 4, 4)
    L.add(stat("Calls without a price", "Calls whose model is not in the price table or whose "
               "usage was missing: their cost is not in the totals. Filtered by model only.", "short",
               f"round(sum(increase(llmtap_cost_unknown_total{{{F_M}}}[$__range]))) or vector(0)",
               decimals=0, thresholds=[(None, "green"), (1, "orange")]), 4, 4)

    L.row("Cost over time")
    for by, what in (("team", "team"), ("user", "user"), ("model", "model"), ("client", "client")):
        L.add(timeseries(f"Cost per hour by {what}",
                         f"Spend rate by {what}, in USD per hour, stacked: the top line is the total.",
                         "currencyUSD",
                         targets((f"sum by ({by}) (rate({cost}[{RI}])) * 3600", f"{{{{{by}}}}}")),
                         stack=True), 12, 8)
    L.add(timeseries("Cost per hour by billing",
                     "api: API-key traffic. subscription: OAuth (Claude Max/Pro, ChatGPT) traffic "
                     "priced at API-equivalent rates.", "currencyUSD",
                     targets((f"sum by (billing) (rate({cost}[{RI}])) * 3600", "{{billing}}")),
                     stack=True), 12, 8)
    L.add(timeseries("Cost per call by model",
                     "Average cost of one call, per model: cost rate / call rate.", "currencyUSD",
                     targets((f"sum by (model) (rate({cost}[{RI}])) / sum by (model) (rate({req}[{RI}]))",
                              "{{model}}")), decimals=4), 12, 8)

    L.row("Tokens and prompt cache")
    L.add(timeseries("Tokens per minute by type",
                     "input is every prompt token (cached included); cache_read, cache_write_5m and "
                     "cache_write_1h are parts of input; reasoning is part of output. Not stacked, "
                     "since the types overlap.", "short",
                     targets((f"sum by (type) (rate({TOK}{{{F_ALL}}}[{RI}])) * 60", "{{type}}"))), 12, 8)
    L.add(timeseries("Tokens per minute by model",
                     "Prompt (input) and generated (output) tokens per model.", "short",
                     targets((f"sum by (model) (rate({tok('input')}[{RI}])) * 60", "{{model}} input"),
                             (f"sum by (model) (rate({tok('output')}[{RI}])) * 60", "{{model}} output"))),
          12, 8)
    L.add(timeseries("Cache hit ratio by model",
                     "cache_read / input per model. Low values on long agent sessions mean the "
                     "prompt prefix keeps changing.", "percentunit",
                     targets((f'sum by (model) (rate({tok("cache_read")}[{RI}]))'
                              f' / sum by (model) (rate({tok("input")}[{RI}]))', "{{model}}")),
                     decimals=1, max_=1), 12, 8)
    L.add(timeseries("Cache writes: 5m vs 1h TTL",
                     "Prompt tokens written to the cache per minute, by TTL. 1h writes cost more "
                     "(2x input vs 1.25x for 5m on Anthropic) and pay off only when reused after 5 minutes.",
                     "short",
                     targets((f'sum by (type) (rate({TOK}{{{F_ALL}, type=~"cache_write_5m|cache_write_1h"}}[{RI}])) * 60',
                              "{{type}}")), stack=True), 12, 8)

    L.row("Cost by agent (main session vs subagents)")
    L.add(timeseries("Cost per hour by agent",
                     "Spend rate by agent: main is the session's own loop, other values are subagents "
                     "(named from the Task call's subagent_type), stacked: the top line is the total.",
                     "currencyUSD",
                     targets((f"sum by (agent) (rate({cost}[{RI}])) * 3600", "{{agent}}")),
                     stack=True), 16, 8)
    L.add(bargauge("Cost by agent", "Cost per agent (main and each subagent) in the time range.",
                   "currencyUSD", f"topk(10, sum by (agent) (increase({cost}[$__range])))", "{{agent}}"),
          8, 8)

    plan = f"{PLAN_UTIL}{{{F_TU}}}"
    L.row("Subscription plan windows (filtered by team and user only)")
    L.add(timeseries("Plan utilization by user",
                     "Share of each subscription window (Claude 5h / 7d, Codex primary / secondary) "
                     "used, as the provider's response headers last reported it, per team, user and "
                     f"window. The dashed line is {PLAN_WARN:.0%}, where the LLMTapPlanWindowNearlyUsed "
                     "alert warns. These gauges carry provider, team, user and window: Model and Client "
                     "do not apply.", "percentunit",
                     targets((f"max by (provider, team, user, window) ({plan})",
                              "{{team}} / {{user}} {{provider}} {{window}}")),
                     decimals=1, max_=1, line_at=PLAN_WARN), 14, 9)
    L.add(table("Plan windows now",
                "Per team, user and window: the share used and the time until the window resets "
                "(reset time minus now; 0 when the reset has passed and no call has reported the "
                "new window yet). Windows only, not the API's per-minute limits.", "short",
                [(f"max by (provider, team, user, window) ({plan})", "Used", "percentunit"),
                 (f"clamp_min(min by (provider, team, user, window) ({PLAN_RESET}{{{F_TU}}}) - time(), 0)"
                  f" and on (provider, team, user, window) {plan}", "Resets in", "s")],
                ["provider", "team", "user", "window"], "Used"), 10, 9)

    L.row("Top spenders (selected time range)")
    L.add(bargauge("Top 10 users by cost", "Users who spent the most in the time range.", "currencyUSD",
                   f"topk(10, sum by (team, user) (increase({cost}[$__range])))", "{{team}} / {{user}}"),
          8, 10)
    L.add(bargauge("Top 10 models by cost", "Models that cost the most in the time range.", "currencyUSD",
                   f"topk(10, sum by (model) (increase({cost}[$__range])))", "{{model}}"), 8, 10)
    L.add(bargauge("Cost by client", "Cost per agent (claude-code, codex, gemini-cli, SDKs) in the "
                   "time range.", "currencyUSD",
                   f"topk(10, sum by (client) (increase({cost}[$__range])))", "{{client}}"), 8, 10)
    L.add(table("Spend by team and user",
                "Cost, calls and tokens per team and user in the time range; sort by any column.",
                "short",
                [(f"sum by (team, user) (increase({cost}[$__range]))", "Cost", "currencyUSD"),
                 (f"round(sum by (team, user) (increase({req}[$__range])))", "Calls", "short"),
                 (f"sum by (team, user) (increase({cost}[$__range])) / sum by (team, user) (increase({req}[$__range]))",
                  "Cost per call", "currencyUSD"),
                 (f'sum by (team, user) (increase({tok("input")}[$__range]))', "Input tokens", "short"),
                 (f'sum by (team, user) (increase({tok("output")}[$__range]))', "Output tokens", "short"),
                 (f'sum by (team, user) (increase({tok("cache_read")}[$__range])) / sum by (team, user) (increase({tok("input")}[$__range]))',
                  "Cache hit ratio", "percentunit")],
                ["team", "user"], "Cost"), 24, 10)

    return dashboard(
        "llmtap-team-cost", "llmtap / Team cost",
        "What AI coding agents cost, by team, user, model and client, from llmtap's metrics.",
        L.panels, "", "llmtap dashboards")


def agent_performance() -> dict:
    L = Layout()
    req = f"{REQ}{{{F_ALL}}}"

    def q(quantile: str, metric: str, by: str) -> tuple[str, str]:
        return (f"histogram_quantile({quantile}, sum by (le, {by}) (rate({metric}{{{F_MC}}}[{RI}])))",
                f"{{{{{by}}}}} p{quantile[2:].ljust(2, '0')}")

    L.row("Overview")
    L.add(stat("Calls per second", "LLM calls per second over the last 5 minutes, every outcome.",
               "reqps", f"sum(rate({req}[5m])) or vector(0)", decimals=2), 4, 4)
    L.add(stat("Error rate", "Share of calls in the time range that did not end ok (client_error, "
               "upstream_error, rate_limited, proxy_error; cancelled calls are not errors).",
               "percentunit",
               f"(sum(increase({REQ}{{{F_ALL}, {ERR}}}[$__range])) or vector(0)) / sum(increase({req}[$__range]))",
               decimals=2, thresholds=[(None, "green"), (0.02, "orange"), (0.1, "red")]), 4, 4)
    L.add(stat("TTFT p95", "95th percentile time to first token in the time range (streaming calls). "
               "Filtered by model and client only.", "s",
               f"histogram_quantile(0.95, sum by (le) (rate({TTFT}{{{F_MC}}}[$__range])))", decimals=2), 4, 4)
    L.add(stat("Duration p95", "95th percentile call duration in the time range. Filtered by model "
               "and client only.", "s",
               f"histogram_quantile(0.95, sum by (le) (rate({DUR}{{{F_MC}}}[$__range])))", decimals=2), 4, 4)
    L.add(stat("In-flight calls", "Calls in progress now, across llmtap instances.", "short",
               "sum(llmtap_in_flight_calls)", decimals=0), 4, 4)
    L.add(stat("Tool calls", "Tool calls the models made in the time range. Filtered by model only.",
               "short", f"round(sum(increase(llmtap_tool_calls_total{{{F_M}}}[$__range]))) or vector(0)",
               decimals=0), 4, 4)

    L.row("Latency (filtered by model and client; these histograms carry no team or user)")
    L.add(timeseries("Time to first token by model (p50 / p95 / p99)",
                     "From the request reaching llmtap to the first generated token (text, thinking or "
                     "tool-argument delta), streaming calls only.", "s",
                     targets(q("0.5", TTFT, "model"), q("0.95", TTFT, "model"), q("0.99", TTFT, "model")),
                     legend_calcs=["mean", "max"]), 12, 9)
    L.add(timeseries("Time to first token by client (p50 / p95 / p99)",
                     "Time to first token per agent: compare the same model across clients.", "s",
                     targets(q("0.5", TTFT, "client"), q("0.95", TTFT, "client"), q("0.99", TTFT, "client"))),
          12, 9)
    L.add(timeseries("Call duration by model (p50 / p95 / p99)",
                     "From the request reaching llmtap to the end of the response.", "s",
                     targets(q("0.5", DUR, "model"), q("0.95", DUR, "model"), q("0.99", DUR, "model"))), 12, 9)
    L.add(timeseries("Call duration by client (p50 / p95 / p99)",
                     "Call duration per agent.", "s",
                     targets(q("0.5", DUR, "client"), q("0.95", DUR, "client"), q("0.99", DUR, "client"))),
          12, 9)

    L.row("Calls and errors")
    L.add(timeseries("Calls per second by outcome",
                     "ok, client_error (4xx), upstream_error (5xx, resets), rate_limited (429 and "
                     "overloaded), cancelled (client went away), proxy_error (llmtap could not reach "
                     "the upstream).", "reqps",
                     targets((f"sum by (outcome) (rate({req}[{RI}]))", "{{outcome}}")), stack=True), 12, 8)
    L.add(timeseries("Error rate by provider",
                     "Share of calls per provider that did not end ok (cancelled excluded).", "percentunit",
                     targets((f"sum by (provider) (rate({REQ}{{{F_ALL}, {ERR}}}[{RI}]) or rate({req}[{RI}]) * 0)"
                              f" / sum by (provider) (rate({req}[{RI}]))", "{{provider}}")),
                     decimals=1, max_=1), 12, 8)
    L.add(timeseries("Share of calls by failed outcome",
                     "Each non-ok outcome as a share of all calls.", "percentunit",
                     targets((f'sum by (outcome) (rate({REQ}{{{F_ALL}, outcome!="ok"}}[{RI}]))'
                              f" / ignoring (outcome) group_left sum(rate({req}[{RI}]))", "{{outcome}}")),
                     stack=True, decimals=1), 12, 8)
    L.add(timeseries("Calls per second by client",
                     "Call rate per agent.", "reqps",
                     targets((f"sum by (client) (rate({req}[{RI}]))", "{{client}}")), stack=True), 12, 8)
    L.add(timeseries("API errors by type",
                     "Errors reported by the provider (error type from the body or the mid-stream error "
                     "event, e.g. overloaded_error, rate_limit_error), per minute. Not filtered: "
                     "this metric carries provider and error_type only.", "opm",
                     targets(("sum by (provider, error_type) (rate(llmtap_errors_total[$__rate_interval])) * 60",
                              "{{provider}} {{error_type}}"))), 12, 8)
    L.add(timeseries("Calls without usage",
                     "Calls whose response carried no token usage (e.g. OpenAI Chat streams without "
                     "stream_options.include_usage), per minute: their tokens and cost are unknown.",
                     "opm",
                     targets((f"sum by (provider, model) (rate(llmtap_usage_missing_total{{{F_M}}}[{RI}])) * 60",
                              "{{provider}} {{model}}"))), 12, 8)

    L.row("Tools and load")
    L.add(timeseries("Tool calls per minute by tool",
                     "Tool calls made by the models (Bash, Edit, Read, function calls ...). Filtered by "
                     "model only.", "opm",
                     targets((f"sum by (tool) (rate(llmtap_tool_calls_total{{{F_M}}}[{RI}])) * 60", "{{tool}}")),
                     stack=True), 12, 9)
    L.add(bargauge("Top 15 tools", "Most called tools in the time range.", "short",
                   f"topk(15, sum by (tool) (increase(llmtap_tool_calls_total{{{F_M}}}[$__range])))", "{{tool}}"),
          6, 9)
    L.add(timeseries("In-flight calls", "LLM calls in progress per llmtap instance.", "short",
                     targets(("sum by (instance) (llmtap_in_flight_calls)", "{{instance}}")),
                     legend_calcs=["mean", "max"], decimals=0), 6, 9)

    L.row("Agent loop (tool executions not filtered; context, compactions, cache breaks and "
          "retries by model only)")
    L.add(timeseries("Tool execution time by tool (p50 / p95)",
                     "Time the agent took to run a tool: from the end of the response that asked for "
                     "the call to the arrival of the request carrying its result (so it includes the "
                     "user approving it). Not filtered: this histogram carries provider and tool only.",
                     "s",
                     targets((f"histogram_quantile(0.5, sum by (le, tool) (rate({TOOL_DUR}[{RI}])))",
                              "{{tool}} p50"),
                             (f"histogram_quantile(0.95, sum by (le, tool) (rate({TOOL_DUR}[{RI}])))",
                              "{{tool}} p95"))), 12, 9)
    L.add(timeseries("Tool errors per minute by tool",
                     "Tool results marked as failed (Anthropic is_error, Bedrock status error), per "
                     "minute. Not filtered: provider and tool only.", "opm",
                     targets(("sum by (tool) (rate(llmtap_tool_errors_total[$__rate_interval])) * 60",
                              "{{tool}}")), stack=True), 6, 9)
    L.add(bargauge("Tool error share by tool", "Failed executions / executions per tool in the "
                   "time range. Not filtered.", "percentunit",
                   "topk(15, sum by (tool) (increase(llmtap_tool_errors_total[$__range]))"
                   " / sum by (tool) (increase(llmtap_tool_duration_seconds_count[$__range])))", "{{tool}}"),
          6, 9)
    L.add(timeseries("Calls per second by agent",
                     "Call rate of the main loop and of each subagent (named from the Task call's "
                     "subagent_type). Follows every variable.", "reqps",
                     targets((f"sum by (agent) (rate({req}[{RI}]))", "{{agent}}")), stack=True), 8, 8)
    L.add(timeseries("Context fill by model (p50 / p95)",
                     "Prompt (input) tokens / the model's context window, per call. Near 1 the agent "
                     "is about to compact or fail. Filtered by model only.", "percentunit",
                     targets((f"histogram_quantile(0.5, sum by (le, model) (rate({CTX}{{{F_M}}}[{RI}])))",
                              "{{model}} p50"),
                             (f"histogram_quantile(0.95, sum by (le, model) (rate({CTX}{{{F_M}}}[{RI}])))",
                              "{{model}} p95")), decimals=1, max_=1), 8, 8)
    L.add(timeseries("Retries per minute by reason",
                     "Calls that resend a request which failed in the last 10 minutes, by why the "
                     "first one failed (rate_limited, overloaded, server_error, stream_truncated, "
                     "cancelled, upstream_error, timeout). Filtered by model only.", "opm",
                     targets((f"sum by (reason) (rate(llmtap_retries_total{{{F_M}}}[{RI}])) * 60", "{{reason}}")),
                     stack=True), 8, 8)
    L.add(timeseries("Compactions per hour by model and agent",
                     "Conversations compacted (input dropped by more than half from one call to the "
                     "next, or a compaction request). Filtered by model only.", "short",
                     targets((f"sum by (model, agent) (rate(llmtap_compactions_total{{{F_M}}}[{RI}])) * 3600",
                              "{{model}} {{agent}}")), stack=True), 8, 8)
    L.add(timeseries("Cache breaks per hour by model and agent",
                     "Calls that read less of the prompt cache than the previous call of the thread "
                     "left alive (prefix changed or cache evicted). Filtered by model only.", "short",
                     targets((f"sum by (model, agent) (rate(llmtap_cache_breaks_total{{{F_M}}}[{RI}])) * 3600",
                              "{{model}} {{agent}}")), stack=True), 8, 8)
    L.add(timeseries("Cache break cost per hour by model",
                     "What the breaks cost: the broken prefix billed as a cache write (at the TTL it "
                     "was written with) instead of a cache read, in USD per hour. Filtered by model only.",
                     "currencyUSD",
                     targets((f"sum by (model) (rate(llmtap_cache_break_cost_usd_total{{{F_M}}}[{RI}])) * 3600",
                              "{{model}}")), stack=True), 8, 8)

    L.row("llmtap health (not filtered)")
    L.add(stat("Parse errors", "Calls whose response llmtap could not parse in the time range: traffic "
               "still passed, but those calls lack facts. Non-zero usually means an API changed.",
               "short", "round(sum(increase(llmtap_parse_errors_total[$__range]))) or vector(0)",
               decimals=0, thresholds=[(None, "green"), (1, "red")]), 4, 4)
    L.add(stat("Spans dropped", "Spans lost because the export queue was full in the time range.",
               "short", "round(sum(increase(llmtap_spans_dropped_total[$__range]))) or vector(0)",
               decimals=0, thresholds=[(None, "green"), (1, "red")]), 4, 4)
    L.add(stat("OTLP export failures", "Failed span exports (collector down, refused or slow) in the "
               "time range.", "short",
               "round(sum(increase(llmtap_otlp_export_failures_total[$__range]))) or vector(0)",
               decimals=0, thresholds=[(None, "green"), (1, "red")]), 4, 4)
    L.add(stat("Records dropped", "Finished calls lost because the telemetry queue was full in the "
               "time range.", "short",
               "round(sum(increase(llmtap_records_dropped_total[$__range]))) or vector(0)",
               decimals=0, thresholds=[(None, "green"), (1, "red")]), 4, 4)
    L.add(stat("Label overflows", "Label values (model, tool, team, user) that hit their cap and were "
               "recorded as 'other' in the time range.", "short",
               "round(sum(increase(llmtap_label_overflow_total[$__range]))) or vector(0)",
               decimals=0, thresholds=[(None, "green"), (1, "orange")]), 4, 4)
    L.add(stat("llmtap instances", "llmtap processes reporting now.", "short",
               "count(llmtap_build_info) or vector(0)", decimals=0,
               thresholds=[(None, "red"), (1, "green")]), 4, 4)
    L.add(timeseries("Parse errors by provider and kind", "Parse errors per minute.", "opm",
                     targets(("sum by (provider, kind) (rate(llmtap_parse_errors_total[$__rate_interval])) * 60",
                              "{{provider}} {{kind}}"))), 8, 8)
    L.add(timeseries("Telemetry loss", "Spans dropped, OTLP export failures and call records dropped, "
                     "per minute.", "opm",
                     targets(("sum(rate(llmtap_spans_dropped_total[$__rate_interval])) * 60", "spans dropped"),
                             ("sum(rate(llmtap_otlp_export_failures_total[$__rate_interval])) * 60",
                              "OTLP export failures"),
                             ("sum(rate(llmtap_records_dropped_total[$__rate_interval])) * 60", "records dropped"))),
          8, 8)
    L.add(timeseries("Label overflow by label", "Values recorded as 'other' per minute, by capped label.",
                     "opm",
                     targets(("sum by (label) (rate(llmtap_label_overflow_total[$__rate_interval])) * 60",
                              "{{label}}"))), 8, 8)
    L.add(timeseries("CONNECT tunnels per minute",
                     "Tunnels opened through llmtap: intercepted=true were decrypted (LLM hosts), "
                     "false were relayed untouched.", "opm",
                     targets(("sum by (intercepted) (rate(llmtap_tunnels_total[$__rate_interval])) * 60",
                              "intercepted={{intercepted}}")), stack=True), 12, 8)
    L.add(table("llmtap versions", "Version of each llmtap instance.", "short",
                [("count by (instance, version) (llmtap_build_info)", "Instances", "short")],
                ["instance", "version"], "Instances"), 12, 8)

    return dashboard(
        "llmtap-agent-performance", "llmtap / Agent performance",
        "How fast and how reliably AI coding agents' LLM calls run, and whether llmtap itself is healthy.",
        L.panels, "Latency panels filter by model and client only.", "llmtap dashboards")


def render(d: dict) -> str:
    return json.dumps(d, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if a committed file differs")
    args = ap.parse_args()
    stale = []
    for name, build in (("team-cost.json", team_cost), ("agent-performance.json", agent_performance)):
        text = render(build())
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("stale (run deploy/scripts/build_dashboards.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
