"""Drive the official `openai` SDK through llmtap, configured only by the environment that
`llmtap env` printed: Chat Completions (JSON, streamed with and without include_usage) and
Responses (JSON and streamed). Prints one JSON object with what the SDK saw."""

import json
import os
import sys

import openai

client = openai.OpenAI(api_key=os.environ["FAKE_OPENAI_KEY"], max_retries=0, timeout=30)
out = {"sdk_version": openai.__version__}
messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]

chat = client.chat.completions.create(model="gpt-5.2", messages=messages)
out["chat"] = {"id": chat.id, "model": chat.model, "prompt_tokens": chat.usage.prompt_tokens,
               "completion_tokens": chat.usage.completion_tokens,
               "finish_reason": chat.choices[0].finish_reason}


def drain(stream):
    chunks, usage, text = 0, None, ""
    for chunk in stream:
        chunks += 1
        if chunk.usage is not None:
            usage = {"prompt_tokens": chunk.usage.prompt_tokens,
                     "completion_tokens": chunk.usage.completion_tokens}
        for choice in chunk.choices:
            text += choice.delta.content or ""
    return {"chunks": chunks, "usage": usage, "text": text}


out["chat_stream_usage"] = drain(client.chat.completions.create(
    model="gpt-5.2", messages=messages, stream=True, stream_options={"include_usage": True}))
out["chat_stream_no_usage"] = drain(client.chat.completions.create(
    model="gpt-5.2", messages=messages, stream=True))

response = client.responses.create(model="gpt-6.1-sol", input="Say hi.", instructions="Be brief.")
out["responses"] = {"id": response.id, "model": response.model, "status": response.status,
                    "input_tokens": response.usage.input_tokens,
                    "output_tokens": response.usage.output_tokens}

events, completed = 0, None
with client.responses.stream(model="gpt-6.1-sol", input="Say hi.") as stream:
    for event in stream:
        events += 1
    final = stream.get_final_response()
out["responses_stream"] = {"events": events, "id": final.id, "status": final.status,
                           "input_tokens": final.usage.input_tokens,
                           "output_tokens": final.usage.output_tokens,
                           "text": final.output_text}

json.dump(out, sys.stdout)
