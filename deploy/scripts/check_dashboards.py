#!/usr/bin/env python3
"""Checks llmtap's Grafana dashboards (and the PromQL of the alerting rules), offline.

    python3 deploy/scripts/check_dashboards.py [--rules-out FILE] [--alerts FILE]
                                               [--names src/telemetry/names.rs [--strict-names]]
                                               [DASHBOARD.json ...]

Asserts, for every dashboard (default: dashboards/*.json):
  - valid JSON, a uid and a title, schemaVersion >= 39;
  - a `datasource` variable of type datasource (prometheus) and multi-select, include-All
    query variables team, user, model and client fed by label_values();
  - every panel has a title; every non-row panel has a unit (fieldConfig.defaults.unit),
    uses the ${datasource} variable and has at least one query; ids unique, no overlap;
  - every PromQL expression (panel queries and variable queries) names only llmtap's
    metrics, only labels those metrics carry (plus instance/job), only known values of
    the enumerated labels (outcome, type, billing, intercepted), only defined variables,
    and only known PromQL functions.
With --rules-out, writes every expression as a recording rule (variables substituted) so
that `promtool check rules FILE` proves it parses. With --alerts, applies the same metric
and label checks to the rules file's expressions (needs PyYAML, which yamllint brings).
With --names, reports metric names that telemetry/names.rs does not spell yet (warning,
or failure with --strict-names). Standard library only (PyYAML optional). Exit 1 on failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

COMMON = {"provider", "model", "team", "user", "client"}
PLAN = {"provider", "team", "user"}
TARGET_LABELS = {"instance", "job"}

# Metric -> labels it carries (ARCHITECTURE.md "Names", src/telemetry/names.rs).
METRICS: dict[str, set[str]] = {
    "llmtap_requests_total": COMMON | {"agent", "outcome"},
    "llmtap_tokens_total": COMMON | {"agent", "type"},
    "llmtap_cost_usd_total": COMMON | {"agent", "billing"},
    "llmtap_cost_unknown_total": {"provider", "model"},
    "llmtap_tool_calls_total": {"provider", "model", "tool"},
    "llmtap_errors_total": {"provider", "error_type"},
    "llmtap_usage_missing_total": {"provider", "model"},
    "llmtap_parse_errors_total": {"provider", "kind"},
    "llmtap_in_flight_calls": set(),
    "llmtap_spans_dropped_total": set(),
    "llmtap_otlp_export_failures_total": {"signal"},
    "llmtap_records_dropped_total": set(),
    "llmtap_label_overflow_total": {"label"},
    "llmtap_tunnels_total": {"intercepted"},
    "llmtap_build_info": {"version"},
    # The agent loop (issue 15).
    "llmtap_tool_errors_total": {"provider", "tool"},
    "llmtap_tool_calls_unmatched_total": {"reason"},
    "llmtap_compactions_total": {"provider", "model", "agent"},
    "llmtap_cache_breaks_total": {"provider", "model", "agent"},
    "llmtap_cache_break_cost_usd_total": {"provider", "model", "agent"},
    "llmtap_retries_total": {"provider", "model", "reason"},
    "llmtap_ratelimit_utilization_ratio": PLAN | {"window"},
    "llmtap_ratelimit_remaining": PLAN | {"resource"},
    "llmtap_ratelimit_reset_timestamp_seconds": PLAN | {"window"},
}
HISTOGRAMS = {
    "llmtap_request_duration_seconds": {"provider", "model", "client"},
    "llmtap_time_to_first_token_seconds": {"provider", "model", "client"},
    "llmtap_tool_duration_seconds": {"provider", "tool"},
    "llmtap_context_utilization_ratio": {"provider", "model"},
}
for _h, _labels in HISTOGRAMS.items():
    METRICS[_h + "_bucket"] = _labels | {"le"}
    METRICS[_h + "_sum"] = set(_labels)
    METRICS[_h + "_count"] = set(_labels)

# Values of the enumerated labels.
ENUMS = {
    "outcome": {"ok", "client_error", "upstream_error", "rate_limited", "cancelled", "proxy_error"},
    "type": {"input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning"},
    "billing": {"api", "subscription"},
    "intercepted": {"true", "false"},
}

REQUIRED_VARS = ("team", "user", "model", "client")
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms",
                    "__range_ms", "__dashboard", "__name", "__org", "__user"}
# What each Grafana variable becomes when an expression is checked by promtool / Prometheus.
SUBSTITUTE = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}

FUNCTIONS = {
    # aggregations
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    # functions
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_quantile", "histogram_count", "histogram_sum", "histogram_fraction",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln",
    "log2", "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar",
    "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time", "label_values",
}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "atan2", "inf", "nan"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}

IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
VAR_REF = re.compile(r"\$(?:\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|([A-Za-z0-9_]+))")


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.warnings: list[str] = []

    def add(self, where: str, msg: str) -> None:
        item = f"{where}: {msg}"
        if item not in self.items:
            self.items.append(item)

    def warn(self, where: str, msg: str) -> None:
        self.warnings.append(f"{where}: {msg}")


def substitute(expr: str) -> str:
    """An expression with Grafana variables replaced, as Prometheus would receive it."""

    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        return SUBSTITUTE.get(name, ".*")

    return VAR_REF.sub(repl, expr)


def parse_matchers(body: str, where: str, problems: Problems) -> list[tuple[str, str, str]]:
    """`a="x", b=~"y|z"` -> [(a, =, x), (b, =~, y|z)]."""
    out = []
    pos = 0
    pattern = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
    while pos < len(body):
        if not body[pos:].strip():
            break
        m = pattern.match(body, pos)
        if not m:
            problems.add(where, f"cannot read label matchers {{{body}}}")
            return out
        out.append((m.group(1), m.group(2), m.group(3)))
        pos = m.end()
    return out


def check_expr(expr: str, where: str, problems: Problems, defined_vars: set[str],
               extra_metrics: dict[str, set[str]] | None = None) -> set[str]:
    """Checks one PromQL expression; returns the metric names it uses."""
    metrics_known = dict(METRICS)
    if extra_metrics:
        metrics_known.update(extra_metrics)
    for m in VAR_REF.finditer(expr):
        name = m.group(1) or m.group(2)
        if name not in defined_vars and name not in GRAFANA_BUILTINS:
            problems.add(where, f"undefined variable ${name}")
    used: set[str] = set()
    grouping: list[str] = []
    i, n = 0, len(expr)
    prev_ident = ""
    while i < n:
        c = expr[i]
        if c.isspace():
            i += 1
            continue
        if c in "\"'`":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" else 1
            i = j + 1
            prev_ident = ""
            continue
        if c == "[":
            j = expr.find("]", i)
            if j < 0:
                problems.add(where, "unclosed [")
                return used
            i = j + 1
            prev_ident = ""
            continue
        if c == "{":
            j = i + 1
            while j < n and expr[j] != "}":
                if expr[j] == '"':
                    j += 1
                    while j < n and expr[j] != '"':
                        j += 2 if expr[j] == "\\" else 1
                j += 1
            if prev_ident not in metrics_known:
                problems.add(where, "selector without one of llmtap's metric names: {" + expr[i + 1:j] + "}")
            else:
                labels = metrics_known[prev_ident] | TARGET_LABELS
                for label, op, value in parse_matchers(expr[i + 1:j], where, problems):
                    if label not in labels:
                        problems.add(where, f"{prev_ident} has no label '{label}'")
                    if label in ENUMS and "$" not in value:
                        values = value.split("|") if op in ("=~", "!~") else [value]
                        for v in values:
                            if v not in ENUMS[label] and not (op in ("=~", "!~") and v in (".*", ".+")):
                                problems.add(where, f"{label}=\"{v}\" is not a value llmtap exports")
            i = j + 1
            prev_ident = ""
            continue
        if c == "$":
            m = VAR_REF.match(expr, i)
            i = m.end() if m else i + 1
            prev_ident = ""
            continue
        if c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            j = i
            while j < n and (expr[j].isalnum() or expr[j] == "."):
                j += 1
            i = j
            prev_ident = ""
            continue
        m = IDENT.match(expr, i)
        if m:
            word = m.group(0)
            j = m.end()
            k = j
            while k < n and expr[k].isspace():
                k += 1
            nxt = expr[k] if k < n else ""
            lower = word.lower()
            if lower in LABEL_LIST_KEYWORDS:
                if nxt == "(":
                    close = expr.find(")", k)
                    if close < 0:
                        problems.add(where, "unclosed (")
                        return used
                    grouping += [s.strip() for s in expr[k + 1:close].split(",") if s.strip()]
                    i = close + 1
                else:
                    i = j
                prev_ident = ""
                continue
            if lower in KEYWORDS:
                i = j
                prev_ident = ""
                continue
            if (nxt == "(" or word in FUNCTIONS) and word not in metrics_known:
                if word not in FUNCTIONS:
                    problems.add(where, f"unknown function {word}()")
                i = j
                prev_ident = ""
                continue
            if word not in metrics_known:
                problems.add(where, f"'{word}' is not one of llmtap's metrics")
            else:
                used.add(word)
                for base in HISTOGRAMS:
                    if word == base:
                        problems.add(where, f"{word} is a histogram: query {word}_bucket/_sum/_count")
            i = j
            prev_ident = word
            continue
        i += 1
        prev_ident = ""
    union = set().union(*(metrics_known[m] for m in used)) if used else set()
    union |= TARGET_LABELS
    for label in grouping:
        if label not in union:
            problems.add(where, f"groups by '{label}', which none of {sorted(used)} carries")
    if "histogram_quantile" in expr:
        if not any(u.endswith("_bucket") for u in used):
            problems.add(where, "histogram_quantile over no _bucket series")
        if "le" not in grouping:
            problems.add(where, "histogram_quantile without 'le' in the grouping")
    return used


def iter_panels(panels: list[dict]):
    for p in panels:
        yield p
        yield from iter_panels(p.get("panels") or [])


def check_dashboard(path: Path, problems: Problems, exprs: list[tuple[str, str]]) -> set[str]:
    used: set[str] = set()
    try:
        d = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        problems.add(str(path), f"not valid JSON: {e}")
        return used
    name = path.name
    for key in ("uid", "title"):
        if not d.get(key):
            problems.add(name, f"no {key}")
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 39:
        problems.add(name, f"schemaVersion {d.get('schemaVersion')!r} < 39")

    variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
    defined = set(variables)
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.add(name, "no `datasource` variable of type datasource for prometheus")
    for var in REQUIRED_VARS:
        v = variables.get(var)
        where = f"{name} variable {var}"
        if not v:
            problems.add(name, f"no `{var}` variable")
            continue
        if v.get("type") != "query":
            problems.add(where, "is not a query variable")
        if not v.get("multi") or not v.get("includeAll"):
            problems.add(where, "must be multi-select with All")
        if v.get("allValue") != ".*":
            problems.add(where, "allValue must be .* (used with =~)")
        if (v.get("datasource") or {}).get("uid") != "${datasource}":
            problems.add(where, "does not use ${datasource}")
        q = v.get("query")
        qs = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_]+)\)\s*", qs or "")
        if not m or m.group(2) != var:
            problems.add(where, f"query must be label_values(..., {var}); got {qs!r}")
            continue
        used |= check_expr(m.group(1), where, problems, defined)
        sel = m.group(1)
        mm = IDENT.match(sel.strip())
        if mm and mm.group(0) in METRICS and var not in METRICS[mm.group(0)]:
            problems.add(where, f"{mm.group(0)} has no label {var}")
        exprs.append((f"{name}:var:{var}", sel))

    ids: set[int] = set()
    cells: dict[tuple[int, int], str] = {}
    for p in iter_panels(d.get("panels", [])):
        title = (p.get("title") or "").strip()
        where = f"{name} panel {p.get('id')} {title!r}"
        if not title:
            problems.add(where, "no title")
        pid = p.get("id")
        if pid in ids:
            problems.add(where, "duplicate id")
        ids.add(pid)
        g = p.get("gridPos") or {}
        for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
            for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
                if (x, y) in cells:
                    problems.add(where, f"overlaps panel {cells[(x, y)]}")
                    break
                cells[(x, y)] = title
            else:
                continue
            break
        if g.get("x", 0) + g.get("w", 0) > 24:
            problems.add(where, "wider than the grid")
        if p.get("type") == "row":
            continue
        unit = ((p.get("fieldConfig") or {}).get("defaults") or {}).get("unit")
        if not unit:
            problems.add(where, "no unit (fieldConfig.defaults.unit)")
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            problems.add(where, "panel datasource is not ${datasource}")
        targets = p.get("targets") or []
        if not targets:
            problems.add(where, "no queries")
        for t in targets:
            twhere = f"{where} query {t.get('refId')}"
            expr = t.get("expr")
            if not expr:
                problems.add(twhere, "no expr")
                continue
            if (t.get("datasource") or {}).get("uid") not in (None, "${datasource}"):
                problems.add(twhere, "query datasource is not ${datasource}")
            used |= check_expr(expr, twhere, problems, defined)
            exprs.append((f"{name}:{pid}:{t.get('refId')}", expr))
    return used


def check_alerts(path: Path, problems: Problems) -> set[str]:
    try:
        import yaml  # type: ignore
    except ImportError:
        problems.warn(str(path), "PyYAML missing: alert expressions not checked here")
        return set()
    used: set[str] = set()
    doc = yaml.safe_load(path.read_text())
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert") or rule.get("record")
            where = f"{path.name} {name}"
            used |= check_expr(rule["expr"], where, problems, set(),
                               extra_metrics={"up": set()})
            if "alert" in rule:
                ann = rule.get("annotations") or {}
                if not ann.get("summary") or not ann.get("description"):
                    problems.add(where, "needs summary and description annotations")
                if not (rule.get("labels") or {}).get("severity"):
                    problems.add(where, "needs a severity label")
    used.discard("up")
    return used


def rule_name(key: str) -> str:
    return "dashboard:" + re.sub(r"[^A-Za-z0-9_:]", "_", key)


def write_rules(exprs: list[tuple[str, str]], out: Path) -> None:
    lines = ["groups:", "  - name: dashboard-expressions", "    rules:"]
    for key, expr in exprs:
        lines.append(f"      - record: {rule_name(key)}")
        lines.append(f"        expr: {json.dumps(substitute(expr))}")
    out.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dashboards", nargs="*", type=Path)
    ap.add_argument("--rules-out", type=Path, help="write expressions as recording rules for promtool")
    ap.add_argument("--alerts", type=Path, help="also check this Prometheus rules file")
    ap.add_argument("--names", type=Path, help="telemetry/names.rs to cross-check metric names against")
    ap.add_argument("--strict-names", action="store_true", help="fail (not warn) on names missing there")
    args = ap.parse_args()
    paths = args.dashboards or sorted((ROOT / "dashboards").glob("*.json"))
    if not paths:
        print("no dashboards found", file=sys.stderr)
        return 1
    problems = Problems()
    exprs: list[tuple[str, str]] = []
    used: set[str] = set()
    panels = 0
    for path in paths:
        used |= check_dashboard(path, problems, exprs)
        panels += sum(1 for p in iter_panels(json.loads(path.read_text()).get("panels", []))
                      if p.get("type") != "row") if path.exists() else 0
    if args.alerts:
        used |= check_alerts(args.alerts, problems)
    if args.names:
        spelled = set(re.findall(r'"(llmtap_[a-z0-9_]+)"', args.names.read_text()))
        for metric in sorted(used):
            base = re.sub(r"_(bucket|sum|count)$", "", metric) if any(
                metric.startswith(h) for h in HISTOGRAMS) else metric
            if base not in spelled:
                msg = f"{base} is not spelled in {args.names} yet"
                (problems.add if args.strict_names else problems.warn)("names", msg)
    if args.rules_out:
        write_rules(exprs, args.rules_out)
    for w in problems.warnings:
        print(f"WARN {w}")
    for p in problems.items:
        print(f"FAIL {p}")
    status = "FAILED" if problems.items else "ok"
    print(f"check_dashboards: {len(paths)} dashboards, {panels} panels, {len(exprs)} expressions, "
          f"{len(used)} metrics used: {status}")
    return 1 if problems.items else 0


if __name__ == "__main__":
    sys.exit(main())
