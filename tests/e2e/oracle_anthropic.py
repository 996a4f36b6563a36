"""The `anthropic` SDK as an oracle for llmtap's Anthropic stream parser (tests/sdk_oracle.rs).

Configured only by the environment that `llmtap env` printed. ORACLE_PLAN is a JSON array of
{"tag", "label", "case", "header", "model"}: for each entry this streams one message through
`client.messages.stream(...)` and one through `client.beta.messages.stream(...)` (the beta
types are the ones that know `mcp_tool_use`), with `<header>: <case>` to pick the fake
upstream's fixture (or real-traffic case) and `x-llmtap-user: <tag>.m` / `<tag>.b` so that
the test can find llmtap's call line for it. Prints one JSON line per call with what the SDK
accumulated, in the SDK's own terms: the mapping onto llmtap's fields is the test's job.
"""

import json
import os

import anthropic

client = anthropic.Anthropic(
    api_key=os.environ["FAKE_ANTHROPIC_KEY"], max_retries=0, timeout=30
)
TOOL_BLOCKS = ("tool_use", "server_tool_use", "mcp_tool_use")


def usage_of(u):
    cache_creation = u.cache_creation
    details = getattr(u, "output_tokens_details", None)
    return {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
        "cache_read_input_tokens": u.cache_read_input_tokens,
        "cache_creation": None
        if cache_creation is None
        else {
            "ephemeral_5m_input_tokens": cache_creation.ephemeral_5m_input_tokens,
            "ephemeral_1h_input_tokens": cache_creation.ephemeral_1h_input_tokens,
        },
        "output_tokens": u.output_tokens,
        "thinking_tokens": None if details is None else details.thinking_tokens,
        # Compaction: one entry per sampling step (beta usage only).
        "iterations": [
            {
                "input_tokens": i.input_tokens,
                "output_tokens": i.output_tokens,
                "cache_read_input_tokens": getattr(i, "cache_read_input_tokens", None),
                "cache_creation_input_tokens": getattr(i, "cache_creation_input_tokens", None),
            }
            for i in (getattr(u, "iterations", None) or [])
        ],
    }


def message_of(m):
    return {
        "id": m.id,
        "model": m.model,
        "stop_reason": m.stop_reason,
        "usage": usage_of(m.usage),
        "block_types": [b.type for b in m.content],
        "tools": [b.name for b in m.content if b.type in TOOL_BLOCKS],
    }


def run(api, item):
    tag = f"{item['tag']}.{api[0]}"
    messages = client.beta.messages if api == "beta" else client.messages
    report = {"tag": tag, "label": item["label"], "api": api, "sdk": anthropic.__version__}
    stream = None
    try:
        with messages.stream(
            model=item["model"],
            max_tokens=1024,
            messages=[{"role": "user", "content": "Say hi."}],
            extra_headers={item["header"]: item["case"], "x-llmtap-user": tag},
        ) as stream:
            delta_iterations = None
            for event in stream:
                # The plain API's accumulated usage drops compaction `iterations`; the
                # event's own usage object keeps what the wire sent.
                if event.type == "message_delta":
                    dumped = event.usage.model_dump() if event.usage is not None else {}
                    delta_iterations = dumped.get("iterations") or delta_iterations
            report["message"] = message_of(stream.get_final_message())
            if delta_iterations and not report["message"]["usage"]["iterations"]:
                report["message"]["usage"]["iterations"] = [
                    {k: i.get(k) for k in ("input_tokens", "output_tokens",
                                           "cache_read_input_tokens",
                                           "cache_creation_input_tokens")}
                    for i in delta_iterations
                ]
            report["raised"] = None
    except anthropic.APIError as e:
        # A mid-stream `error` event: the SDK raises it (anthropic/_streaming.py); what it had
        # accumulated until then is still its snapshot.
        snapshot = stream._current_snapshot_or_none() if stream is not None else None
        report["message"] = None if snapshot is None else message_of(snapshot)
        report["raised"] = {
            "class": type(e).__name__,
            "status": getattr(e, "status_code", None),
            "body": e.body,
        }
    return report


for item in json.loads(os.environ["ORACLE_PLAN"]):
    for api in ("messages", "beta"):
        print(json.dumps(run(api, item)), flush=True)
