#!/usr/bin/env python3
"""Encodes the readable source of an event-stream fixture into its wire bytes.

Usage: scripts/eventstream.py tests/fixtures/bedrock_*/*.eventstream.jsonl
Writes <case>.eventstream beside each <case>.eventstream.jsonl. One line per message:
  {"headers": [[name, string value], ...], "payload": <JSON>}   payload = that JSON, or
  {"headers": [...], "chunk": <JSON>, "p": "..."}               payload = {"bytes": base64
                                                                of the chunk's JSON, "p": ...}
JSON is written compact with sorted keys and UTF-8 as is (what serde_json writes). The
framing is AWS event stream: prelude (total length, headers length, CRC32 of the 8 bytes),
string headers (name length u8, name, type 7, value length u16, value), payload, CRC32 of
everything before it. tests/fixtures.rs re-encodes every source with smithy-rs's encoder and
compares the bytes with the .eventstream file.
"""
import base64
import json
import struct
import sys
import zlib


def compact(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def message(headers, payload):
    raw = b"".join(
        struct.pack(">B", len(n.encode())) + n.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
        for n, v in headers
    )
    total = 12 + len(raw) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + raw + payload
    return body + struct.pack(">I", zlib.crc32(body))


def main(paths):
    for path in paths:
        out = b""
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = json.loads(line)
                if "chunk" in m:
                    inner = base64.b64encode(compact(m["chunk"])).decode()
                    payload = compact({"bytes": inner, "p": m["p"]})
                else:
                    payload = compact(m["payload"]) if "payload" in m else b""
                out += message(m["headers"], payload)
        with open(path.removesuffix(".jsonl"), "wb") as f:
            f.write(out)


if __name__ == "__main__":
    main(sys.argv[1:])
