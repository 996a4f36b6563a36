"""Drive the official `anthropic` SDK's `AnthropicVertex` client through llmtap, configured
only by the environment that `llmtap env` printed: a Messages call (`:rawPredict`) and a
streamed one (`:streamRawPredict`) on Vertex AI. The access token is passed in, so
google-auth is not needed; the base URL stays the real regional host. Prints one JSON object
with what the SDK saw."""

import json
import os
import sys

import anthropic
from anthropic import AnthropicVertex

client = AnthropicVertex(region="us-east5", project_id="fake-project-314159",
                         access_token=os.environ["FAKE_VERTEX_TOKEN"], max_retries=0, timeout=30)
out = {"sdk_version": anthropic.__version__, "base_url": str(client.base_url)}
model = "claude-sonnet-4-5@20250929"

message = client.messages.create(model=model, max_tokens=1024,
                                 messages=[{"role": "user", "content": "Open Cargo.toml."}])
out["create"] = {"id": message.id, "model": message.model,
                 "input_tokens": message.usage.input_tokens,
                 "cache_creation_input_tokens": message.usage.cache_creation_input_tokens,
                 "output_tokens": message.usage.output_tokens}

with client.messages.stream(model=model, max_tokens=1024,
                            messages=[{"role": "user", "content": "What is a MITM proxy?"}]) as stream:
    text = "".join(stream.text_stream)
    final = stream.get_final_message()
out["stream"] = {"id": final.id, "model": final.model, "text": text,
                 "input_tokens": final.usage.input_tokens,
                 "output_tokens": final.usage.output_tokens}

json.dump(out, sys.stdout)
