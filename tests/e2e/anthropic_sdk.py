"""Drive the official `anthropic` SDK through llmtap, configured only by the environment
that `llmtap env` printed (HTTPS_PROXY + CA variables): no base_url, no client changes.

Prints one JSON object with what the SDK saw, for tests/sdk_python.rs to compare with
llmtap's call lines. Exits non-zero if any call fails.
"""

import json
import os
import sys

import anthropic

key = os.environ["FAKE_ANTHROPIC_KEY"]
client = anthropic.Anthropic(api_key=key, max_retries=0, timeout=30)
out = {"sdk_version": anthropic.__version__}

message = client.messages.create(
    model="claude-haiku-4-5-20251001",
    max_tokens=256,
    system="You are terse.",
    messages=[{"role": "user", "content": "Say hello."}],
)
out["create"] = {
    "id": message.id,
    "model": message.model,
    "stop_reason": message.stop_reason,
    "input_tokens": message.usage.input_tokens,
    "output_tokens": message.usage.output_tokens,
}

with client.messages.stream(
    model="claude-sonnet-4-6",
    max_tokens=1024,
    messages=[{"role": "user", "content": "Write a haiku."}],
) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
out["stream"] = {
    "id": final.id,
    "model": final.model,
    "text": text,
    "stop_reason": final.stop_reason,
    "input_tokens": final.usage.input_tokens,
    "output_tokens": final.usage.output_tokens,
}

count = client.messages.count_tokens(
    model="claude-sonnet-4-6",
    messages=[{"role": "user", "content": "How many tokens is this?"}],
)
out["count_tokens"] = {"input_tokens": count.input_tokens}

json.dump(out, sys.stdout)
