"""Resident memory of the llmtap binary: at start, with N idle intercepted TLS tunnels held
open, and after closing them. Run against a release build:

    cargo build --release && python3 benches/memory.py target/release/llmtap 1000

Tunnels go to api.anthropic.com through CONNECT and complete the TLS handshake with llmtap's
leaf (nothing reaches any upstream: no request is sent). Prints VmRSS of the llmtap process.
"""

import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def main() -> None:
    binary, count = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    home = tempfile.mkdtemp()
    env = {"PATH": os.environ["PATH"], "HOME": home}
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    proxy = None
    for line in proc.stderr:
        m = re.search(r"proxy\s+http://([\d.]+):(\d+)", line)
        if m:
            proxy = (m.group(1), int(m.group(2)))
        if "CODEX_CA_CERTIFICATE" in line:
            break
    # Keep draining llmtap's stderr: a pipe nobody reads would fill up.
    import threading
    log = []
    threading.Thread(target=lambda: log.extend(proc.stderr), daemon=True).start()
    ctx = ssl.create_default_context(cafile=os.path.join(home, ".llmtap", "ca.pem"))
    time.sleep(0.5)
    print(f"llmtap started:                  {rss_kib(proc.pid):>8} KiB")
    held = []
    for _ in range(count):
        s = socket.create_connection(proxy)
        s.sendall(b"CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n\r\n")
        reply = b""
        while not reply.endswith(b"\r\n\r\n"):
            reply += s.recv(1)
        held.append(ctx.wrap_socket(s, server_hostname="api.anthropic.com"))
    time.sleep(0.5)
    with_tunnels = rss_kib(proc.pid)
    print(f"{count} idle TLS tunnels open:     {with_tunnels:>8} KiB")
    for s in held:
        s.close()
    time.sleep(1.0)
    print(f"tunnels closed:                  {rss_kib(proc.pid):>8} KiB")
    proc.terminate()
    proc.wait(timeout=10)
    kinds = {}
    for line in log:
        key = re.sub(r"^\S+\s+", "", line.strip())[:90]
        kinds[key] = kinds.get(key, 0) + 1
    for key, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:3]:
        print(f"stderr x{n}: {key}")


if __name__ == "__main__":
    main()
