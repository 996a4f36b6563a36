"""The `openai` SDK as an oracle for llmtap's Chat Completions and Responses stream parsers
(tests/sdk_oracle.rs).

Configured only by the environment that `llmtap env` printed. ORACLE_PLAN is a JSON array of
{"tag", "label", "dialect" ("openai_chat" | "openai_responses"), "case", "header", "model",
"include_usage"}: for each entry this streams one call with the SDK's own stream helper
(`client.chat.completions.stream` / `client.responses.stream`), with `<header>: <case>` to pick
the fake upstream's fixture (or real-traffic case) and `x-llmtap-user: <tag>` so that the test
can find llmtap's call line for it. Prints one JSON line per call with what the SDK
accumulated, in the SDK's own terms: the mapping onto llmtap's fields is the test's job.
"""

import json
import os

import openai

client = openai.OpenAI(api_key=os.environ["FAKE_OPENAI_KEY"], max_retries=0, timeout=30)


def chat_usage(u):
    if u is None:
        return None
    prompt = u.prompt_tokens_details
    completion = u.completion_tokens_details
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "cached_tokens": None if prompt is None else prompt.cached_tokens,
        "cache_write_tokens": None if prompt is None else prompt.cache_write_tokens,
        "reasoning_tokens": None if completion is None else completion.reasoning_tokens,
    }


def tool_name(call):
    if call.type == "function":
        return call.function.name
    custom = getattr(call, "custom", None)
    return None if custom is None else custom.name


def completion_of(c):
    return {
        "id": c.id,
        "model": c.model,
        "usage": chat_usage(c.usage),
        "choices": [
            {
                "index": ch.index,
                "finish_reason": ch.finish_reason,
                "tools": [tool_name(t) for t in (ch.message.tool_calls or [])],
            }
            for ch in sorted(c.choices, key=lambda ch: ch.index)
        ],
    }


def chat(item, headers):
    report = {}
    stream = None
    options = {"include_usage": True} if item.get("include_usage") else openai.omit
    try:
        with client.chat.completions.stream(
            model=item["model"],
            messages=[{"role": "user", "content": "Say hi."}],
            stream_options=options,
            extra_headers=headers,
        ) as stream:
            for _ in stream:
                pass
            report["completion"] = completion_of(stream.get_final_completion())
            report["raised"] = None
    except openai.APIError as e:
        snapshot = None
        if stream is not None:
            try:
                snapshot = completion_of(stream.current_completion_snapshot)
            except AssertionError:
                pass
        report["completion"] = snapshot
        report["raised"] = {"class": type(e).__name__, "body": e.body}
    return report


def responses_usage(u):
    if u is None:
        return None
    details_in = getattr(u, "input_tokens_details", None)
    details_out = getattr(u, "output_tokens_details", None)
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_tokens": getattr(details_in, "cached_tokens", None),
        "cache_write_tokens": getattr(details_in, "cache_write_tokens", None),
        "reasoning_tokens": getattr(details_out, "reasoning_tokens", None),
    }


def response_of(r):
    incomplete = r.incomplete_details
    error = r.error
    return {
        "id": r.id,
        "model": r.model,
        "status": r.status,
        "incomplete_reason": None if incomplete is None else incomplete.reason,
        "error": None if error is None else {"code": error.code, "message": error.message},
        "usage": responses_usage(r.usage),
        "output": [{"type": o.type, "name": getattr(o, "name", None)} for o in (r.output or [])],
    }


def responses(item, headers):
    report = {"terminal": None, "error_events": []}
    try:
        with client.responses.stream(
            model=item["model"], input="Say hi.", extra_headers=headers
        ) as stream:
            final = None
            for event in stream:
                if event.type in ("response.failed", "response.incomplete"):
                    # get_final_response() only knows `response.completed`; the other two
                    # terminal events carry the same Response object, output filled in by
                    # the SDK's ResponseStreamState.
                    report["terminal"] = event.type
                    final = event.response
                elif event.type == "response.completed":
                    report["terminal"] = event.type
                elif event.type == "error":
                    report["error_events"].append({"code": event.code, "message": event.message})
            if report["terminal"] == "response.completed":
                final = stream.get_final_response()
            report["response"] = None if final is None else response_of(final)
            report["raised"] = None
    except openai.APIError as e:
        report["response"] = None
        report["raised"] = {"class": type(e).__name__, "body": e.body}
    return report


for item in json.loads(os.environ["ORACLE_PLAN"]):
    headers = {item["header"]: item["case"], "x-llmtap-user": item["tag"]}
    run = chat if item["dialect"] == "openai_chat" else responses
    report = {"tag": item["tag"], "label": item["label"], "dialect": item["dialect"],
              "sdk": openai.__version__}
    report.update(run(item, headers))
    print(json.dumps(report), flush=True)
