"""Total memory of llmtap under hostile bursts (issue 11), against a local TLS upstream.

    cargo build --release && python3 benches/burst.py target/release/llmtap [SECONDS] [CLIENTS]
    BURST_MODE=bombs python3 benches/burst.py target/release/llmtap 20 20

Mode `bombs` (BURST_MODE=bombs): each client instead asks for a streamed answer that the
upstream sends as a gzip decompression bomb (one SSE event whose data line decodes to
256 MiB, about 250 KB on the wire), read to the end by the client.

Mode `images` (BURST_MODE=images): each client asks for a streamed answer whose one event
carries a 30 MB string (a fetched document or an image, over the 512 KiB event cap), then
the cumulative `message_delta` usage (output 420). Reports how many call lines carry that
usage: the event's facts must survive its size (issue 12).

Burst: CLIENTS clients (default 4) send 30 MB `/v1/messages` request bodies made of many
small JSON values (`{"messages":[{"role":"user","content":"a"},...]}`) through llmtap for
SECONDS (default 20), then stop. Prints llmtap's peak VmRSS during the burst, its VmRSS
30 s after, the calls sent and recorded, and the worst delay between a call's end at the
client and its call line on llmtap's stdout. The upstream is a Python TLS server on
127.0.0.1 that reads each body and answers a small Messages JSON; llmtap reaches it through
--resolve and --upstream-ca, as in the tests.
"""

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HOST = "api.anthropic.com"
ANSWER = json.dumps({
    "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
    "usage": {"input_tokens": 10, "output_tokens": 1},
}).encode()


def rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def make_pki(directory):
    """A CA and a leaf for HOST signed by it (webpki refuses a self-signed CA as a leaf)."""
    p = lambda name: os.path.join(directory, name)
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", p("ca.key"), "-out", p("up-ca.pem"), "-days", "2",
        "-subj", "/CN=burst test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", p("up.key"), "-out", p("up.csr"), "-subj", f"/CN={HOST}")
    with open(p("ext"), "w", encoding="ascii") as f:
        f.write(f"subjectAltName=DNS:{HOST}\nbasicConstraints=CA:FALSE\n")
    run("openssl", "x509", "-req", "-in", p("up.csr"), "-CA", p("up-ca.pem"), "-CAkey",
        p("ca.key"), "-CAcreateserial", "-out", p("up.pem"), "-days", "2", "-extfile", p("ext"))
    return p("up.key"), p("up.pem"), p("up-ca.pem")


BOMB = None


def bomb():
    """gzip of an SSE event whose data line is 256 MiB of 'a' (built once, ~250 KB)."""
    global BOMB
    if BOMB is None:
        import gzip, io
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as z:
            z.write(b"event: content_block_delta\ndata: ")
            chunk = b"a" * (1 << 20)
            for _ in range(256):
                z.write(chunk)
            z.write(b"\n\n")
        BOMB = out.getvalue()
    return BOMB


IMAGES = None


def image_stream():
    """An Anthropic stream whose second event holds a 30 MB string (built once)."""
    global IMAGES
    if IMAGES is None:
        ev = lambda name, data: b"event: %s\ndata: %s\n\n" % (name, json.dumps(data).encode())
        big = ev(b"content_block_start", {"type": "content_block_start", "index": 0,
                 "content_block": {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_1",
                                   "content": {"type": "web_fetch_result", "content": {
                                       "type": "document", "source": {
                                           "type": "text", "data": "@"}}}}})
        big = big.replace(b'"@"', b'"' + b"A" * (30 << 20) + b'"')
        IMAGES = b"".join([
            ev(b"message_start", {"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant",
                "model": "claude-sonnet-4-5", "content": [],
                "usage": {"input_tokens": 10, "output_tokens": 1}}}),
            big,
            ev(b"content_block_stop", {"type": "content_block_stop", "index": 0}),
            ev(b"message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                  "usage": {"input_tokens": 175000, "output_tokens": 420}}),
            ev(b"message_stop", {"type": "message_stop"}),
        ])
    return IMAGES


def upstream(key, crt):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)

    def serve(conn):
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
            f = tls.makefile("rb")
            while True:
                length = 0
                line = f.readline()
                if not line:
                    return
                while line not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    line = f.readline()
                while length:
                    length -= len(f.read(min(length, 1 << 20)))
                if os.environ.get("BURST_MODE") == "images":
                    body = image_stream()
                    tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                b"content-length: %d\r\n\r\n" % len(body) + body)
                    continue
                if os.environ.get("BURST_MODE") == "bombs":
                    body = bomb()
                    tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                b"content-encoding: gzip\r\ncontent-length: %d\r\n\r\n"
                                % len(body) + body)
                    continue
                tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                            b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER))
        except (OSError, ValueError):
            pass

    def accept():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return srv.getsockname()[1]


def body_30mb():
    item = b'{"role":"user","content":"a"},'
    n = (30 << 20) // len(item)
    return b'{"model":"claude-sonnet-4-5","max_tokens":1,"messages":[' + item * (n - 1) + \
        b'{"role":"user","content":"a"}]}'


def client(proxy, ca, body, stop, ends, failures):
    ctx = ssl.create_default_context(cafile=ca)
    while not stop.is_set():
        s = socket.create_connection(proxy)
        s.sendall(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += s.recv(1)
        tls = ctx.wrap_socket(s, server_hostname=HOST)
        tls.sendall(f"POST /v1/messages HTTP/1.1\r\nHost: {HOST}\r\ncontent-type: "
                    f"application/json\r\nx-api-key: sk-ant-bench\r\ncontent-length: "
                    f"{len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
        data = bytearray()
        while True:
            try:
                chunk = tls.recv(65536)
            except (ssl.SSLEOFError, ConnectionResetError):
                chunk = b""  # closed without close_notify after the answer
            if not chunk:
                break
            data += chunk
        if data.startswith(b"HTTP/1.1 200"):
            ends.append(time.time())
        else:
            failures.append(bytes(data[:80]))
        tls.close()


def main():
    binary = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 20
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    work = tempfile.mkdtemp()
    key, crt, up_ca = make_pki(work)
    port = upstream(key, crt)
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--calls", "json", *os.environ.get("LLMTAP_ARGS", "").split(),
         "--ca-dir", os.path.join(work, "llmtap"), "--upstream-ca", up_ca, "--resolve", f"{HOST}:443:127.0.0.1:{port}"],
        env={"PATH": os.environ["PATH"], "HOME": work},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proxy = admin = None
    for line in proc.stderr:
        m = re.search(r"proxy\s+http://([\d.]+):(\d+)", line)
        if m:
            proxy = (m.group(1), int(m.group(2)))
        m = re.search(r"metrics\s+http://([\d.:]+)/metrics", line)
        if m:
            admin = m.group(1)
            break
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    lines, with_usage = [], []

    def read_lines():
        for line in proc.stdout:
            lines.append(time.time())
            if '"output":420' in line:
                with_usage.append(1)

    threading.Thread(target=read_lines, daemon=True).start()
    bombs = os.environ.get("BURST_MODE") == "bombs"
    images = os.environ.get("BURST_MODE") == "images"
    if images:
        image_stream()
        body = b'{"model":"claude-sonnet-4-5","max_tokens":1,"stream":true,"messages":[]}'
    elif bombs:
        bomb()
        body = b'{"model":"claude-sonnet-4-5","max_tokens":1,"stream":true,"messages":[]}'
    else:
        body = body_30mb()
    base = rss_kib(proc.pid)
    stop, ends, failures = threading.Event(), [], []
    threads = [threading.Thread(target=client, args=(proxy, os.path.join(work, "llmtap", "ca.pem"),
                                                     body, stop, ends, failures)) for _ in range(clients)]
    for t in threads:
        t.start()
    peak, t0 = base, time.time()
    while time.time() - t0 < seconds:
        peak = max(peak, rss_kib(proc.pid))
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    while time.time() - t0 < seconds + 30:
        peak = max(peak, rss_kib(proc.pid)) if time.time() - t0 < seconds + 2 else peak
        time.sleep(0.5)
    after = rss_kib(proc.pid)
    import urllib.request
    metrics = urllib.request.urlopen(f"http://{admin}/metrics").read().decode()
    held = [l for l in metrics.splitlines() if l.startswith(("llmtap_observe", "llmtap_records_dropped"))]
    sent = len(ends)
    recorded = len(lines)
    lag = max((l - e for e, l in zip(sorted(ends), sorted(lines))), default=0)
    proc.terminate()
    proc.wait()
    print(f"clients={clients} seconds={seconds:.0f} "
          f"{'gzip bombs (256 MiB decoded each)' if bombs else '30 MB event then usage' if images else 'body=30MB'}")
    print(f"rss start {base / 1024:.0f} MB, peak {peak / 1024:.0f} MB, "
          f"30 s after {after / 1024:.0f} MB")
    print("\n".join(held))
    print(f"calls answered 200 {sent} (other answers {len(failures)}), recorded {recorded}, "
          f"worst record lag {lag:.2f} s")
    if images:
        print(f"call lines with the usage that follows the 30 MB event: {len(with_usage)}")


if __name__ == "__main__":
    main()
