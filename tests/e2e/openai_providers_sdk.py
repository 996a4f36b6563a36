"""Drive the official `openai` SDK at an OpenAI-compatible provider through llmtap,
configured only by the environment that `llmtap env` printed. `azure`: the `AzureOpenAI`
client (api_key, azure_endpoint, api_version; the deployments path), a chat completion and a
streamed one with usage, whose stream carries Azure's extra chunks (a first chunk with no
choices and `prompt_filter_results`, `content_filter_results` in each choice). `deepseek`:
`OpenAI(base_url="https://api.deepseek.com")`, the same two calls. Prints one JSON object
with what the SDK saw."""

import json
import os
import sys

import openai

which = sys.argv[1]
if which == "azure":
    client = openai.AzureOpenAI(api_key=os.environ["FAKE_PROVIDER_KEY"],
                                azure_endpoint="https://fake-resource.openai.azure.com",
                                api_version="2024-10-21", max_retries=0, timeout=30)
    model = "gpt-4o-prod"  # the deployment
elif which == "deepseek":
    client = openai.OpenAI(api_key=os.environ["FAKE_PROVIDER_KEY"], base_url="https://api.deepseek.com",
                           max_retries=0, timeout=30)
    model = "deepseek-chat"
else:
    raise SystemExit(f"unknown provider {which!r}")

out = {"sdk_version": openai.__version__}
messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]

chat = client.chat.completions.create(model=model, messages=messages, max_tokens=400)
out["chat"] = {"id": chat.id, "model": chat.model, "prompt_tokens": chat.usage.prompt_tokens,
               "completion_tokens": chat.usage.completion_tokens,
               "text": chat.choices[0].message.content}

chunks, empty, models, usage, text = 0, 0, set(), None, ""
for chunk in client.chat.completions.create(model=model, messages=messages, stream=True,
                                            stream_options={"include_usage": True}):
    chunks += 1
    models.add(chunk.model)
    if not chunk.choices:
        empty += 1
    if chunk.usage is not None:
        usage = {"prompt_tokens": chunk.usage.prompt_tokens,
                 "completion_tokens": chunk.usage.completion_tokens}
    for choice in chunk.choices:
        text += choice.delta.content or ""
out["stream"] = {"chunks": chunks, "chunks_without_choices": empty, "models": sorted(models),
                 "usage": usage, "text": text}

json.dump(out, sys.stdout)
