"""The `google-genai` SDK as an oracle for llmtap's Gemini stream parser (tests/sdk_oracle.rs).

Configured only by the environment that `llmtap env` printed. ORACLE_PLAN is a JSON array of
{"tag", "label", "case", "header", "model", "transport", "path", "body"}: for each entry this
makes one streamed call, with `<header>: <case>` to pick the fake upstream's fixture (or
real-traffic case) and
`x-llmtap-user: <tag>` so that the test can find llmtap's call line for it, and prints one
JSON line with every chunk as the SDK typed it (`GenerateContentResponse`). The SDK does not
accumulate a stream; the test picks what it needs from the chunks.

`transport`:
- "sdk": `client.models.generate_content_stream(...)`, the SDK end to end. It always asks for
  `?alt=sse` (google/genai/models.py, `_generate_content_stream`).
- "raw_json_array": the streamed JSON array (no `alt=sse`), which the SDK never requests and
  cannot read (its stream reader takes `data:` lines, and brace-balanced raw lines only for
  error bodies). httpx2 (the SDK's own HTTP library) posts `body` (compact) to `path`,
  `json.loads` reads the array, and each element goes through the SDK's own per-chunk
  conversion. Not an SDK oracle of the transport.
- "raw_code_assist": Gemini Code Assist (`cloudcode-pa.googleapis.com/v1internal:…`), which
  the SDK has no client for. httpx2 posts `body`, the SDK's own SSE reader
  (`HttpResponse.segments`) splits the stream, each chunk is unwrapped from `response` as
  Gemini CLI's `code_assist/converter.ts` does, then typed by the SDK. Not an SDK oracle of the
  transport either.
"""

import json
import os

import httpx2
from google import genai
from google.genai import _api_client, models, types

KEY = os.environ["FAKE_GEMINI_KEY"]
client = genai.Client(api_key=KEY)


def typed(element):
    """The SDK's conversion of one streamed chunk (models.py, `_generate_content_stream`)."""
    return types.GenerateContentResponse._from_response(
        response=models._GenerateContentResponse_from_mldev(element, None, None), kwargs={}
    )


def chunk_of(c):
    um = c.usage_metadata
    usage = None
    if um is not None:
        usage = {
            k: getattr(um, k)
            for k in (
                "prompt_token_count",
                "candidates_token_count",
                "cached_content_token_count",
                "thoughts_token_count",
                "tool_use_prompt_token_count",
            )
        }
    candidates = []
    for cand in c.candidates or []:
        parts = (cand.content.parts if cand.content is not None else None) or []
        calls = []
        for p in parts:
            if p.function_call is not None:
                calls.append({"kind": "function_call", "name": p.function_call.name})
            elif p.executable_code is not None:
                calls.append({"kind": "executable_code", "name": None})
        candidates.append(
            {
                "index": cand.index,
                "finish_reason": enum(cand.finish_reason),
                "calls": calls,
            }
        )
    feedback = c.prompt_feedback
    return {
        "response_id": c.response_id,
        "model_version": c.model_version,
        "usage": usage,
        "block_reason": None if feedback is None else enum(feedback.block_reason),
        "candidates": candidates,
    }


def enum(value):
    return None if value is None else getattr(value, "value", value)


def via_sdk(item, headers):
    config = types.GenerateContentConfig(
        http_options=types.HttpOptions(
            headers=headers, retry_options=types.HttpRetryOptions(attempts=1)
        )
    )
    return [
        chunk_of(c)
        for c in client.models.generate_content_stream(
            model=item["model"], contents="Say hi.", config=config
        )
    ]


def raw(item, headers, host):
    body = json.dumps(item["body"], separators=(",", ":"), ensure_ascii=False).encode()
    headers = {**headers, "content-type": "application/json", "x-goog-api-key": KEY}
    with httpx2.Client(timeout=30) as http:
        with http.stream("POST", f"https://{host}{item['path']}", content=body,
                         headers=headers) as response:
            response.raise_for_status()
            if item["transport"] == "raw_json_array":
                response.read()
                elements = json.loads(response.text)
            else:
                segments = _api_client.HttpResponse(response.headers, response).segments()
                elements = [s.get("response", {}) for s in segments]
    return [chunk_of(typed(e)) for e in elements]


for item in json.loads(os.environ["ORACLE_PLAN"]):
    headers = {item["header"]: item["case"], "x-llmtap-user": item["tag"]}
    report = {"tag": item["tag"], "label": item["label"], "transport": item["transport"],
              "sdk": genai.__version__}
    try:
        if item["transport"] == "sdk":
            report["chunks"] = via_sdk(item, headers)
        elif item["transport"] == "raw_json_array":
            report["chunks"] = raw(item, headers, "generativelanguage.googleapis.com")
        else:
            report["chunks"] = raw(item, headers, "cloudcode-pa.googleapis.com")
        report["raised"] = None
    except Exception as e:  # noqa: BLE001 - reported, and the test decides
        report["chunks"] = None
        report["raised"] = {"class": type(e).__name__, "message": str(e)[:500]}
    print(json.dumps(report), flush=True)
