"""A real WebSocket client (the `websockets` library, permessage-deflate on by default)
talking to the Responses socket through llmtap, configured only by the environment that
`llmtap env` printed (HTTPS_PROXY for the proxy, SSL_CERT_FILE for trust).

argv[1]: a `.frames.jsonl` session file. Sends each client frame and reads the server frames
of that turn. Prints what it received and what was negotiated."""

import json
import sys

from websockets.sync.client import connect

turns = []
for line in open(sys.argv[1], encoding="utf-8"):
    if not line.strip():
        continue
    entry = json.loads(line)
    if entry["dir"] == "client":
        turns.append({"client": entry["frame"], "server": 0})
    else:
        turns[-1]["server"] += 1

received = []
with connect(
    "wss://api.openai.com/v1/responses",
    additional_headers={"openai-beta": "responses_websockets=2026-02-06",
                        "session-id": "ws-python-session"},
    user_agent_header="codex_exec/0.169.0 (Debian 12; x86_64) xterm",
    open_timeout=20,
) as ws:
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions")
    for turn in turns:
        ws.send(json.dumps(turn["client"]))
        got = [json.loads(ws.recv(timeout=20)) for _ in range(turn["server"])]
        received.append(got)

json.dump({"extensions": extensions, "received": received}, sys.stdout)
