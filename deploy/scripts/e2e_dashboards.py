#!/usr/bin/env python3
"""End to end: real llmtap, real traffic, real Prometheus scrape, every dashboard query.

    python3 deploy/scripts/e2e_dashboards.py --llmtap target/debug/llmtap [--keep DIR]

1. Makes a throwaway upstream CA (openssl) and starts a fake HTTPS upstream on loopback
   that answers from the golden fixtures (tests/fixtures/<dialect>/<case>.*), picked by
   the request header `x-fake-scenario: <dialect>/<case>`, with status NNN for `error_NNN`
   cases and a malformed SSE stream for `anthropic/malformed`.
2. Runs the llmtap binary in front of it (`--upstream-ca`, `--resolve` for the four API
   hosts, a small `--label-cap`), and Debian's `prometheus` scraping llmtap's admin port
   every second.
3. Sends every fixture case of every dialect through llmtap with several teams, users,
   clients (user-agents) and both billings, in two waves a few scrapes apart, plus one
   tunnel to a host llmtap does not intercept.
4. Asserts that every metric the dashboards query is exposed on /metrics, then runs every
   dashboard query (variables at All) and fails on any that errors or returns no data.
Standard library only; needs openssl, prometheus and the llmtap binary.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_dashboards as cd  # noqa: E402
import check_promql_live as live  # noqa: E402

FIXTURES = cd.ROOT / "tests" / "fixtures"
HOSTS = ["api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com",
         "cloudcode-pa.googleapis.com"]
MALFORMED = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_x",'
             b'"model":"claude-sonnet-4-6","usage":{"input_tokens":3}}}\n\n'
             b'event: content_block_delta\ndata: {"type":"content_block_delta",oops\n\n')
PEOPLE = [("team-a", "alice"), ("team-a", "bob"), ("team-b", "carol")]
AGENTS = {  # dialect -> user-agents (client label)
    "anthropic": ["claude-cli/2.1.197 (external, cli)", "Anthropic/Python 2.14.0"],
    "openai_chat": ["OpenAI/Python 3.57.0"],
    "openai_responses": ["codex_cli_rs/0.61.0 (Debian 12; x86_64)"],
    "gemini": ["GeminiCLI/0.61.0/gemini-2.5-pro (linux; x64)"],
}


def sh(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def make_pki(work: Path) -> None:
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    sh("openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
       "-subj", "/CN=llmtap e2e upstream CA", "-addext", "basicConstraints=critical,CA:TRUE",
       "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=work)
    sh("openssl", "req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=fake-upstream", cwd=work)
    sans = ",".join([f"DNS:{h}" for h in HOSTS] + ["DNS:localhost", "IP:127.0.0.1"])
    (work / "leaf.ext").write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n"
                                   "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n")
    sh("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
       "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext", cwd=work)


class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._reply(404, "application/json", b'{"error":"not found"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        scenario = self.headers.get("x-fake-scenario", "")
        if scenario == "anthropic/malformed":
            self._reply(200, "text/event-stream", MALFORMED)
            return
        dialect, _, case = scenario.partition("/")
        for ext, ctype in (("sse", "text/event-stream"), ("jsonarray", "application/json"),
                           ("json", "application/json")):
            f = FIXTURES / dialect / f"{case}.{ext}"
            if f.is_file() and re.fullmatch(r"[a-z0-9_]+", case):
                m = re.fullmatch(r"error_(\d{3})", case)
                self._reply(int(m.group(1)) if m else 200, ctype, f.read_bytes())
                return
        self._reply(500, "application/json", b'{"error":"no such scenario"}')

    def _reply(self, status: int, ctype: str, body: bytes) -> None:
        self.send_response(status)
        # The plan-window headers Anthropic sends on every subscription response.
        if status == 200 and self.headers.get("x-fake-scenario", "").startswith("anthropic/"):
            reset = str(int(time.time()) + 3 * 3600)
            for name, value in (("status", "allowed"), ("5h-utilization", "0.42"),
                                ("5h-reset", reset), ("7d-utilization", "0.85"),
                                ("7d-reset", reset)):
                self.send_header(f"anthropic-ratelimit-unified-{name}", value)
            self.send_header("anthropic-ratelimit-requests-remaining", "49")
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"e2e: {what} did not start:\n{log.read_text()[-3000:]}")


def cases() -> list[tuple[str, str, str, str, bytes]]:
    """(dialect, case, host, path, request body) for every fixture case."""
    out = []
    for d in sorted(p for p in FIXTURES.iterdir() if p.is_dir() and p.name in AGENTS):
        for req in sorted(d.glob("*.request.json")):
            case = req.name[: -len(".request.json")]
            exp = json.loads((d / f"{case}.expected.json").read_text())
            path = exp.get("path") if isinstance(exp, dict) else None
            host = {"anthropic": "api.anthropic.com", "gemini": "generativelanguage.googleapis.com"}.get(
                d.name, "api.openai.com")
            if d.name == "anthropic":
                path = "/v1/messages/count_tokens" if case == "count_tokens" else "/v1/messages"
            elif d.name == "openai_chat":
                path = "/v1/chat/completions"
            elif d.name == "openai_responses":
                path = "/v1/responses"
            elif path and path.startswith("/v1internal"):
                host = "cloudcode-pa.googleapis.com"
            if not path:
                continue
            out.append((d.name, case, host, path, req.read_bytes()))
    out.append(("anthropic", "malformed", "api.anthropic.com", "/v1/messages",
                (FIXTURES / "anthropic" / "stream_text.request.json").read_bytes()))
    return out


def call(proxy_port: int, ctx: ssl.SSLContext, host: str, path: str, body: bytes, headers: dict) -> int:
    conn = http.client.HTTPSConnection("127.0.0.1", proxy_port, context=ctx, timeout=30)
    conn.set_tunnel(host, 443)
    try:
        conn.request("POST", path, body=body, headers={"content-type": "application/json", **headers})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def traffic(proxy_port: int, ca: Path, upstream_port: int, upstream_ca: Path, wave: int) -> int:
    ctx = ssl.create_default_context(cafile=str(ca))
    n = 0
    for i, (dialect, case, host, path, body) in enumerate(cases()):
        team, user = PEOPLE[(i + wave) % len(PEOPLE)]
        agents = AGENTS[dialect]
        headers = {"user-agent": agents[(i + wave) % len(agents)], "x-llmtap-team": team,
                   "x-llmtap-user": user, "x-fake-scenario": f"{dialect}/{case}"}
        if dialect == "anthropic":
            if i % 2:
                headers["authorization"] = "Bearer sk-ant-oat01-e2e"  # subscription
            else:
                headers["x-api-key"] = "sk-ant-api03-e2e"
        elif dialect == "gemini":
            headers["x-goog-api-key"] = "e2e"
        else:
            headers["authorization"] = "Bearer sk-e2e"
        call(proxy_port, ctx, host, path, body, headers)
        n += 1
    # A tool round trip: the tool call's id comes back as a failed tool result a moment
    # later (tool time, tool errors).
    tool_use = json.loads((FIXTURES / "anthropic" / "stream_tool_use.request.json").read_text())
    call(proxy_port, ctx, "api.anthropic.com", "/v1/messages", json.dumps(tool_use).encode(),
         {"x-api-key": "sk-ant-api03-e2e", "x-fake-scenario": "anthropic/stream_tool_use"})
    time.sleep(0.2)
    tool_use["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9k",
                                           "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "is_error": True, "content": "boom",
                                      "tool_use_id": "toolu_01A09q90qw90lq917835lq9k"}]},
    ]
    call(proxy_port, ctx, "api.anthropic.com", "/v1/messages", json.dumps(tool_use).encode(),
         {"x-api-key": "sk-ant-api03-e2e", "x-fake-scenario": "anthropic/stream_text"})
    n += 2
    # A tunnel llmtap does not intercept: bytes relayed, never decrypted.
    raw = http.client.HTTPSConnection("127.0.0.1", proxy_port, timeout=10,
                                      context=ssl.create_default_context(cafile=str(upstream_ca)))
    raw.set_tunnel("localhost", upstream_port)
    raw.request("GET", "/")
    raw.getresponse().read()
    raw.close()
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llmtap", type=Path, required=True, help="the llmtap binary")
    ap.add_argument("--keep", type=Path, help="keep data and logs in this directory")
    args = ap.parse_args()
    for tool in ("openssl", "prometheus"):
        if not shutil.which(tool):
            print(f"e2e: {tool} not on PATH", file=sys.stderr)
            return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="llmtap-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    failures: list[str] = []
    try:
        make_pki(work)
        up_port = free_port()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", up_port), Upstream)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(work / "leaf.pem", work / "leaf.key")
        server.socket = sctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        proxy_port, admin_port, prom_port = free_port(), free_port(), free_port()
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work),
               "LLMTAP_LISTEN": f"127.0.0.1:{proxy_port}", "LLMTAP_ADMIN": f"127.0.0.1:{admin_port}",
               "LLMTAP_CA_DIR": str(work / "llmtap-ca"), "LLMTAP_DB": str(work / "llmtap.db"), "LLMTAP_UPSTREAM_CA": str(work / "ca.pem"),
               "LLMTAP_RESOLVE": ",".join(f"{h}:443:127.0.0.1:{up_port}" for h in HOSTS),
               "LLMTAP_LABEL_CAP": "6", "LLMTAP_CALLS": "json",
               # The blind tunnel below goes to the fake upstream on loopback, which the
               # destination policy refuses unless opened.
               "LLMTAP_ALLOW_DESTINATION": f"localhost:{up_port}"}
        llog = work / "llmtap.log"
        procs.append(subprocess.Popen([str(args.llmtap.resolve()), "run"], env=env, stdout=open(work / "calls.jsonl", "w"),
                                      stderr=open(llog, "w")))
        wait_http(f"http://127.0.0.1:{admin_port}/readyz", procs[-1], "llmtap", llog)

        (work / "prometheus.yml").write_text(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: llmtap\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{admin_port}']\n")
        plog = work / "prometheus.log"
        procs.append(subprocess.Popen(["prometheus", f"--config.file={work / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={work / 'tsdb'}",
                                       f"--web.listen-address=127.0.0.1:{prom_port}"],
                                      stdout=open(plog, "w"), stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{prom_port}"
        wait_http(base + "/-/ready", procs[-1], "prometheus", plog)

        ca = work / "llmtap-ca" / "ca.pem"
        sent = 0
        for wave in range(2):
            time.sleep(3)
            sent += traffic(proxy_port, ca, up_port, work / "ca.pem", wave)
        time.sleep(4)

        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=10) as r:
            exposition = r.read().decode()
        (work / "metrics.txt").write_text(exposition)
        exposed = set(re.findall(r"^(llmtap_[a-z0-9_]+)[{ ]", exposition, re.M))
        for metric in sorted(cd.METRICS):
            if metric not in exposed:
                failures.append(f"/metrics does not expose {metric}")
        for metric in sorted(exposed - set(cd.METRICS)):
            print(f"WARN /metrics exposes {metric}, which check_dashboards.py does not know")

        exprs: list[tuple[str, str]] = []
        for path in sorted((cd.ROOT / "dashboards").glob("*.json")):
            cd.check_dashboard(path, cd.Problems(), exprs)
        end = int(time.time())
        for key, expr in exprs:
            f = live.run_query(base, key, live.substitute(expr, {}), end - 600, end)
            if f:
                failures.append(f"{key}: {f}")
        for f in failures:
            print(f"FAIL {f}")
        print(f"e2e_dashboards: {sent} calls through llmtap, {len(exposed)} llmtap metrics exposed, "
              f"{len(exprs)} dashboard queries: {len(exprs) - sum(1 for f in failures if ':' in f.split(' ')[0])}"
              f" returned data, {len(failures)} failures")
        return 1 if failures else 0
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
