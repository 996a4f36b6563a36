#!/usr/bin/env python3
"""Checks the rendered Kubernetes example (`kubectl kustomize deploy/k8s`), offline.

    kubectl kustomize deploy/k8s | python3 deploy/scripts/check_k8s.py [--k8s-version 1.29.0 ...] -

1. Schema: every built-in resource validates strictly (unknown fields rejected) against
   the Kubernetes OpenAPI schemas that the `kubernetes-validate` package ships, for each
   version given (default: 1.29.0, the first with native sidecars, and the newest).
   The ServiceMonitor (a CRD) is checked against the fields of monitoring.coreos.com/v1.
2. Wiring, which no schema sees: selectors match labels, named ports exist, probes hit
   llmtap's admin port, the proxy stays on loopback, the downward API reads labels the pod
   has, the CA Secret reaches both containers (the key only llmtap), the CA variables
   point at mounted files, and the hardening (non-root, read-only root, no capabilities,
   seccomp, resources) holds for every container.
Exit 1 on any failure. Needs PyYAML and kubernetes-validate (pip).
"""

from __future__ import annotations

import argparse
import sys

import yaml

try:
    import kubernetes_validate
except ImportError:  # pragma: no cover
    print("check_k8s: pip install kubernetes-validate", file=sys.stderr)
    sys.exit(2)

# monitoring.coreos.com/v1 ServiceMonitor fields used or commonly set (CRD schema subset).
SERVICEMONITOR_SPEC = {"endpoints", "selector", "namespaceSelector", "jobLabel", "targetLabels",
                       "podTargetLabels", "sampleLimit", "targetLimit", "labelLimit",
                       "attachMetadata", "scrapeProtocols", "fallbackScrapeProtocol",
                       "scrapeClass", "bodySizeLimit", "labelNameLengthLimit",
                       "labelValueLengthLimit", "keepDroppedTargets", "selectorMechanism",
                       "serviceDiscoveryRole", "nativeHistogramBucketLimit",
                       "nativeHistogramMinBucketFactor", "scrapeClassicHistograms",
                       "convertClassicHistogramsToNHCB"}
SERVICEMONITOR_ENDPOINT = {"port", "targetPort", "path", "scheme", "params", "interval",
                           "scrapeTimeout", "tlsConfig", "bearerTokenFile", "bearerTokenSecret",
                           "authorization", "honorLabels", "honorTimestamps", "trackTimestampsStaleness",
                           "basicAuth", "oauth2", "metricRelabelings", "relabelings", "proxyUrl",
                           "noProxy", "proxyFromEnvironment", "proxyConnectHeader",
                           "followRedirects", "enableHttp2", "filterRunning", "scrapeProtocols"}
CA_VARS = ("NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE",
           "CODEX_CA_CERTIFICATE")


class Check:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passed = 0

    def that(self, ok: bool, what: str) -> None:
        if ok:
            self.passed += 1
        else:
            self.failures.append(what)


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def mounted_file(container: dict, volumes: dict[str, dict], path: str) -> bool:
    """Does `path` resolve to a Secret/ConfigMap item mounted into the container?"""
    for m in container.get("volumeMounts", []):
        vol = volumes.get(m["name"], {})
        source = vol.get("secret") or vol.get("configMap")
        if not source:
            continue
        if m.get("subPath") and m["mountPath"] == path:
            return True
        prefix = m["mountPath"].rstrip("/") + "/"
        if path.startswith(prefix) and not m.get("subPath"):
            rel = path[len(prefix):]
            items = source.get("items")
            if items is None or any(i["path"] == rel for i in items):
                return True
    return False


def check_pod_security(c: Check, pod: dict, containers: list[dict]) -> None:
    psc = pod.get("securityContext", {})
    c.that(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot")
    c.that(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "pod seccompProfile RuntimeDefault")
    for ct in containers:
        name = ct["name"]
        sc = ct.get("securityContext", {})
        c.that(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem")
        c.that(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation false")
        c.that(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities drop ALL")
        c.that(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{name}: runAsNonRoot")
        res = ct.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                c.that(r in res.get(kind, {}), f"{name}: resources.{kind}.{r}")


def check_wiring(c: Check, docs: list[dict]) -> None:
    by_kind: dict[str, list[dict]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    deps = by_kind.get("Deployment", [])
    c.that(len(deps) == 1, "exactly one Deployment")
    if not deps:
        return
    dep = deps[0]
    tmpl = dep["spec"]["template"]
    pod = tmpl["spec"]
    labels = tmpl["metadata"].get("labels", {})
    sel = dep["spec"]["selector"]["matchLabels"]
    c.that(all(labels.get(k) == v for k, v in sel.items()), "Deployment selector matches its pod labels")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}

    sidecars = [x for x in pod.get("initContainers", []) if x.get("restartPolicy") == "Always"]
    llmtap = next((x for x in sidecars + pod.get("containers", []) if x["name"] == "llmtap"), None)
    c.that(llmtap is not None, "an llmtap container")
    c.that(bool(sidecars) and sidecars[0]["name"] == "llmtap",
           "llmtap is a native sidecar (initContainer, restartPolicy Always)")
    agents = [x for x in pod.get("containers", []) if x["name"] != "llmtap"]
    c.that(len(agents) >= 1, "an agent container")
    if llmtap is None or not agents:
        return
    agent = agents[0]
    check_pod_security(c, pod, [llmtap] + agents)

    lenv = env_of(llmtap)
    listen = lenv.get("LLMTAP_LISTEN", {}).get("value", "")
    c.that(listen.startswith("127.0.0.1:"), "llmtap proxy listens on loopback (no auth file needed)")
    proxy_port = listen.rsplit(":", 1)[-1]
    admin = lenv.get("LLMTAP_ADMIN", {}).get("value", "")
    admin_port = int(admin.rsplit(":", 1)[-1]) if admin else -1
    c.that(admin.startswith("0.0.0.0:"), "llmtap admin listens on the pod IP (probes, Prometheus)")
    ports = {p.get("name"): p["containerPort"] for p in llmtap.get("ports", [])}
    c.that(ports.get("admin") == admin_port, "container port 'admin' is LLMTAP_ADMIN's port")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/readyz")):
        get = llmtap.get(probe, {}).get("httpGet", {})
        c.that(get.get("path") == path and get.get("port") in ("admin", admin_port),
               f"llmtap {probe} GET {path} on the admin port")
    for var, label in (("LLMTAP_TEAM", "team"), ("LLMTAP_USER", "user")):
        ref = lenv.get(var, {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        c.that(ref == f"metadata.labels['{label}']", f"{var} from the pod label '{label}' (downward API)")
        c.that(label in labels, f"pod template has the label '{label}'")
    ca_dir = lenv.get("LLMTAP_CA_DIR", {}).get("value", "")
    for f in ("ca.pem", "ca-key.pem"):
        c.that(mounted_file(llmtap, volumes, f"{ca_dir}/{f}"), f"llmtap has {ca_dir}/{f} from the Secret")
    c.that(any(m["mountPath"] == ca_dir and "emptyDir" in volumes.get(m["name"], {})
               for m in llmtap.get("volumeMounts", [])), "llmtap's CA dir is writable (emptyDir) for bundle.pem")
    cms = {d["metadata"]["name"] for d in by_kind.get("ConfigMap", [])}
    refs = [e["configMapRef"]["name"] for e in llmtap.get("envFrom", []) if "configMapRef" in e]
    c.that(bool(refs) and all(r in cms for r in refs), "llmtap envFrom a ConfigMap of this kustomization")
    otlp = next((d for d in by_kind.get("ConfigMap", []) if d["metadata"]["name"] in refs), {})
    c.that("OTEL_EXPORTER_OTLP_ENDPOINT" in otlp.get("data", {}), "the ConfigMap sets OTEL_EXPORTER_OTLP_ENDPOINT")

    aenv = env_of(agent)
    c.that(aenv.get("HTTPS_PROXY", {}).get("value") == f"http://127.0.0.1:{proxy_port}",
           "agent HTTPS_PROXY points at llmtap's loopback port")
    for var in CA_VARS:
        path = aenv.get(var, {}).get("value", "")
        c.that(bool(path) and mounted_file(agent, volumes, path), f"agent {var} is a file mounted from the Secret")
    c.that(aenv.get("NODE_EXTRA_CA_CERTS", {}).get("value", "").endswith("/ca.pem"),
           "NODE_EXTRA_CA_CERTS is the CA alone (it adds to the roots)")
    for var in CA_VARS[1:]:
        c.that(aenv.get(var, {}).get("value", "").endswith("/bundle.pem"),
               f"{var} is the bundle (it replaces the roots)")
    secret_names = {v["secret"]["secretName"] for v in volumes.values() if "secret" in v}
    c.that(secret_names == {"llmtap-ca"}, "the CA comes from the Secret llmtap-ca")
    for m in agent.get("volumeMounts", []):
        src = volumes.get(m["name"], {}).get("secret")
        if src:
            items = src.get("items")
            c.that(items is not None and all(i["key"] != "ca-key.pem" for i in items),
                   "the agent never gets the CA key")

    svcs = by_kind.get("Service", [])
    c.that(len(svcs) == 1, "one Service")
    for svc in svcs:
        ssel = svc["spec"]["selector"]
        c.that(all(labels.get(k) == v for k, v in ssel.items()), "Service selects the agent pods")
        for p in svc["spec"]["ports"]:
            tp = p.get("targetPort")
            c.that(tp in ports or tp == admin_port, f"Service port {p.get('name')} targets the admin port")
    ann = tmpl["metadata"].get("annotations", {})
    c.that(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == str(admin_port)
           and ann.get("prometheus.io/path") == "/metrics", "pod prometheus.io scrape annotations")

    sms = by_kind.get("ServiceMonitor", [])
    c.that(len(sms) == 1, "one ServiceMonitor")
    for sm in sms:
        c.that(sm.get("apiVersion") == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
        spec = sm.get("spec", {})
        c.that(set(spec) <= SERVICEMONITOR_SPEC, f"ServiceMonitor spec fields {sorted(set(spec) - SERVICEMONITOR_SPEC)}")
        msel = spec.get("selector", {}).get("matchLabels", {})
        c.that(any(all(s["metadata"].get("labels", {}).get(k) == v for k, v in msel.items()) for s in svcs),
               "ServiceMonitor selects the Service")
        svc_ports = {p.get("name") for s in svcs for p in s["spec"]["ports"]}
        for ep in spec.get("endpoints", []):
            c.that(set(ep) <= SERVICEMONITOR_ENDPOINT,
                   f"ServiceMonitor endpoint fields {sorted(set(ep) - SERVICEMONITOR_ENDPOINT)}")
            c.that(ep.get("port") in svc_ports, "ServiceMonitor endpoint port is a Service port name")
            c.that(ep.get("path", "/metrics") == "/metrics", "ServiceMonitor scrapes /metrics")
            c.that(ep.get("honorLabels") is True, "ServiceMonitor honorLabels (llmtap's team/user win)")
        c.that("team" not in spec.get("podTargetLabels", []) and "user" not in spec.get("podTargetLabels", []),
               "no podTargetLabels team/user (they would rename llmtap's labels)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", help="rendered manifests, - for stdin")
    ap.add_argument("--k8s-version", action="append", help="Kubernetes version(s) to validate against")
    args = ap.parse_args()
    text = sys.stdin.read() if args.file == "-" else open(args.file).read()
    docs = [d for d in yaml.safe_load_all(text) if d]
    versions = args.k8s_version or ["1.29.0", kubernetes_validate.latest_version()]
    c = Check()
    for d in docs:
        name = f"{d.get('kind')}/{d.get('metadata', {}).get('name')}"
        if d.get("apiVersion", "").startswith("monitoring.coreos.com/"):
            continue
        for v in versions:
            try:
                kubernetes_validate.validate(d, v, strict=True)
                c.that(True, "")
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                c.that(False, f"{name} against Kubernetes {v}: {path}: {e.message}")
            except kubernetes_validate.SchemaNotFoundError as e:
                c.that(False, f"{name} against Kubernetes {v}: no schema ({e})")
    check_wiring(c, docs)
    for f in c.failures:
        print(f"FAIL {f}")
    print(f"check_k8s: {len(docs)} resources, schema versions {', '.join(versions)}: "
          f"{c.passed} checks passed, {len(c.failures)} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
