#!/usr/bin/env python3
"""Checks the wiring of the compose stack, offline, from its resolved configuration.

    docker-compose -f deploy/compose/docker-compose.yml --profile agent config \
        | python3 deploy/scripts/check_compose.py -

`docker-compose config` proves the file is valid Compose; this checks what it cannot:
every bind-mounted file exists; llmtap listens beyond loopback only with an auth file;
Prometheus scrapes llmtap's admin port and loads the mounted alerts; the collector
receives what llmtap sends and exports to the Jaeger service; Grafana's provisioning
points at the mounted dashboards and the services' URLs; the example agent's proxy
credentials are admitted by auth.example (hash and all) and its CA variables point into
the shared CA volume. Exit 1 on any failure. Needs PyYAML.
"""

from __future__ import annotations

import hashlib
import re
import sys
import urllib.parse
from pathlib import Path

import yaml

COMPOSE_DIR = Path(__file__).resolve().parents[1] / "compose"
AUTH_LINE = re.compile(r"^([^:\s]+):sha256:([0-9a-f]{64})((?:\s+[a-z]+=\S+)+)\s*$")


def mounts(svc: dict) -> list[dict]:
    """Volumes of a service as dicts {type, source, target}, from short or long syntax."""
    out = []
    for v in svc.get("volumes", []):
        if isinstance(v, str):
            parts = v.split(":")
            src, dst = parts[0], parts[1]
            kind = "bind" if src.startswith(("/", ".")) else "volume"
            out.append({"type": kind, "source": src, "target": dst})
        else:
            out.append(v)
    return out


def host_file(svc: dict, target: str) -> Path | None:
    """The host path bind-mounted at (or above) `target` in the service."""
    for m in mounts(svc):
        if m["type"] != "bind":
            continue
        if target == m["target"]:
            return Path(m["source"])
        if target.startswith(m["target"].rstrip("/") + "/"):
            return Path(m["source"]) / target[len(m["target"].rstrip("/")) + 1:]
    return None


def env(svc: dict) -> dict[str, str]:
    e = svc.get("environment") or {}
    if isinstance(e, list):
        return dict(x.split("=", 1) for x in e)
    return {k: "" if v is None else str(v) for k, v in e.items()}


def main() -> int:
    src = sys.stdin.read() if len(sys.argv) < 2 or sys.argv[1] == "-" else Path(sys.argv[1]).read_text()
    cfg = yaml.safe_load(src)
    services = cfg["services"]
    failures: list[str] = []
    passed = 0

    def that(ok: bool, what: str) -> None:
        nonlocal passed
        if ok:
            passed += 1
        else:
            failures.append(what)

    for name in ("llmtap", "otel-collector", "jaeger", "prometheus", "grafana", "agent"):
        that(name in services, f"service {name}")
    if failures:
        print("\n".join(f"FAIL {f}" for f in failures))
        return 1

    for name, svc in services.items():
        for m in mounts(svc):
            if m["type"] == "bind":
                that(Path(m["source"]).exists(), f"{name}: bind mount source {m['source']} exists")
        for p in svc.get("ports", []):
            published = p if isinstance(p, str) else f"{p.get('host_ip', '')}:{p.get('published')}"
            that(str(published).startswith("127.0.0.1:"), f"{name}: port {p} published on 127.0.0.1 only")

    # llmtap
    lt = services["llmtap"]
    le = env(lt)
    cmd = lt.get("command") or []
    listen = le.get("LLMTAP_LISTEN", "")
    admin_port = le.get("LLMTAP_ADMIN", ":").rsplit(":", 1)[1]
    proxy_port = listen.rsplit(":", 1)[-1]
    auth_target = cmd[cmd.index("--auth-file") + 1] if "--auth-file" in cmd else None
    if not listen.startswith("127."):
        that(auth_target is not None, "llmtap listens beyond loopback, so it runs with --auth-file")
    auth_file = host_file(lt, auth_target) if auth_target else None
    that(auth_file is not None and auth_file.is_file(), "the auth file is mounted into llmtap")
    entries: dict[str, tuple[str, dict[str, str]]] = {}
    if auth_file and auth_file.is_file():
        for i, line in enumerate(auth_file.read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = AUTH_LINE.match(line)
            that(m is not None, f"auth file line {i} is NAME:sha256:<64 hex> team=... user=...")
            if m:
                attrs = dict(kv.split("=", 1) for kv in m.group(3).split())
                that(set(attrs) == {"team", "user"}, f"auth file line {i} names team and user")
                entries[m.group(1)] = (m.group(2), attrs)
        that(len(entries) >= 2, "auth file admits two example clients")
    ca_dir = le.get("LLMTAP_CA_DIR", "")
    ca_volume = next((m["source"] for m in mounts(lt) if m["target"] == ca_dir and m["type"] == "volume"), None)
    that(ca_volume is not None, "llmtap's CA directory is a named volume")
    otlp = urllib.parse.urlsplit(le.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""))
    that(otlp.hostname in services, "OTEL_EXPORTER_OTLP_ENDPOINT names a service of the stack")

    # collector
    col = services["otel-collector"]
    col_cfg_path = next((host_file(col, a.split("=", 1)[1]) for a in col.get("command", [])
                         if a.startswith("--config=")), None)
    that(col_cfg_path is not None and col_cfg_path.is_file(), "collector config is mounted")
    if col_cfg_path and col_cfg_path.is_file():
        cc = yaml.safe_load(col_cfg_path.read_text())
        protocols = cc["receivers"]["otlp"]["protocols"]
        proto = le.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        want = "http" if proto.startswith("http") else "grpc"
        port = protocols.get(want, {}).get("endpoint", "").rsplit(":", 1)[-1]
        that(str(otlp.port) == port, f"collector's OTLP {want} receiver is on llmtap's endpoint port {otlp.port}")
        that(all(p.get("endpoint", "").startswith("0.0.0.0:") for p in protocols.values()),
             "collector receivers listen on all interfaces")
        pipe = cc["service"]["pipelines"]["traces"]
        that("otlp" in pipe["receivers"], "traces pipeline receives OTLP")
        for ex in pipe["exporters"]:
            ep = cc["exporters"][ex].get("endpoint", "")
            that(ep.split(":")[0] in services, f"exporter {ex} sends to a service of the stack ({ep})")
            that(ep.rsplit(":", 1)[-1] == "4317", f"exporter {ex} uses Jaeger's OTLP gRPC port")

    # prometheus
    pr = services["prometheus"]
    cfg_arg = next((a.split("=", 1)[1] for a in pr.get("command", []) if a.startswith("--config.file=")), "")
    prom_cfg = host_file(pr, cfg_arg)
    that(prom_cfg is not None and prom_cfg.is_file(), "prometheus config is mounted")
    if prom_cfg and prom_cfg.is_file():
        pc = yaml.safe_load(prom_cfg.read_text())
        targets = [t for job in pc["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
        that(f"llmtap:{admin_port}" in targets, "prometheus scrapes llmtap's admin port")
        for rf in pc.get("rule_files", []):
            target = str(Path(cfg_arg).parent / rf)
            f = host_file(pr, target)
            that(f is not None and f.is_file(), f"rule file {rf} is mounted next to the config")

    # grafana
    gf = services["grafana"]
    prov = host_file(gf, "/etc/grafana/provisioning")
    that(prov is not None and prov.is_dir(), "grafana provisioning is mounted")
    if prov and prov.is_dir():
        ds = yaml.safe_load((prov / "datasources" / "datasources.yml").read_text())["datasources"]
        types = {d["type"]: d for d in ds}
        that({"prometheus", "jaeger"} <= set(types), "grafana has Prometheus and Jaeger datasources")
        for d in ds:
            u = urllib.parse.urlsplit(d["url"])
            that(u.hostname in services, f"datasource {d['name']} points at a service ({d['url']})")
        for f in (prov / "dashboards").glob("*.yml"):
            for p in yaml.safe_load(f.read_text())["providers"]:
                path = p["options"]["path"]
                folder = host_file(gf, path)
                that(folder is not None and any(folder.glob("*.json")),
                     f"dashboard provider {p['name']} reads mounted dashboards at {path}")
        home = env(gf).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
        if home:
            hf = host_file(gf, home)
            that(hf is not None and hf.is_file(), "grafana home dashboard exists")

    # agent
    ag = services["agent"]
    ae = env(ag)
    that("agent" in (ag.get("profiles") or []), "agent is behind a profile")
    proxy = urllib.parse.urlsplit(ae.get("HTTPS_PROXY", ""))
    that(proxy.hostname == "llmtap" and str(proxy.port) == proxy_port, "agent HTTPS_PROXY is llmtap's proxy port")
    user, secret = urllib.parse.unquote(proxy.username or ""), urllib.parse.unquote(proxy.password or "")
    that(user in entries, f"agent's proxy user {user!r} is in the auth file")
    if user in entries:
        that(hashlib.sha256(secret.encode()).hexdigest() == entries[user][0],
             "agent's proxy secret matches its sha256 in the auth file")
    ag_ca = next((m["target"] for m in mounts(ag) if m["source"] == ca_volume), None)
    that(ag_ca is not None, "agent mounts llmtap's CA volume")
    for var, file in (("SSL_CERT_FILE", "bundle.pem"), ("REQUESTS_CA_BUNDLE", "bundle.pem"),
                      ("NODE_EXTRA_CA_CERTS", "ca.pem")):
        that(ae.get(var) == f"{ag_ca}/{file}", f"agent {var} is {file} on the CA volume")
    dep = ag.get("depends_on") or {}
    that(isinstance(dep, dict) and dep.get("llmtap", {}).get("condition") == "service_healthy",
         "agent waits for llmtap to be healthy")
    script = host_file(ag, ag.get("working_dir", "/") + "/agent.py")
    that(script is not None and script.is_file(), "agent script is mounted")

    for f in failures:
        print(f"FAIL {f}")
    print(f"check_compose: {len(services)} services: {passed} checks passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
