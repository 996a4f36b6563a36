"""Drive the official `google-genai` SDK through llmtap, configured only by the environment
that `llmtap env` printed: generate_content and generate_content_stream. Prints one JSON
object with what the SDK saw."""

import json
import os
import sys

from google import genai

client = genai.Client(api_key=os.environ["FAKE_GEMINI_KEY"])
out = {}

reply = client.models.generate_content(model="gemini-2.5-flash", contents="Say hi.")
out["generate"] = {"text": reply.text, "response_id": reply.response_id,
                   "prompt_tokens": reply.usage_metadata.prompt_token_count,
                   "candidates_tokens": reply.usage_metadata.candidates_token_count}

chunks, text, usage = 0, "", None
for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="Say hi."):
    chunks += 1
    text += chunk.text or ""
    if chunk.usage_metadata is not None and chunk.usage_metadata.prompt_token_count is not None:
        usage = {"prompt_tokens": chunk.usage_metadata.prompt_token_count,
                 "candidates_tokens": chunk.usage_metadata.candidates_token_count}
out["stream"] = {"chunks": chunks, "text": text, "usage": usage}

json.dump(out, sys.stdout)
