"""Drive Amazon Bedrock clients through llmtap, configured only by the environment that
`llmtap env` printed, with fake AWS credentials from the environment (each request is signed
with SigV4). `boto3`: `bedrock-runtime` `converse_stream` and
`invoke_model_with_response_stream` (Claude's Messages body). `anthropic`: the `anthropic`
SDK's `AnthropicBedrock` client (aws_access_key, aws_secret_key, aws_region), a message and a
streamed one. Prints one JSON object with what the client saw."""

import json
import os
import sys

which = sys.argv[1]
out = {}
region = "us-east-1"
if which == "boto3":
    import boto3
    from botocore.config import Config

    client = boto3.client("bedrock-runtime", region_name=region,
                          config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=30))
    out["sdk_version"] = boto3.__version__
    text, usage, stop = "", None, None
    response = client.converse_stream(
        modelId="anthropic.claude-sonnet-4-5-20250929-v1:0",
        messages=[{"role": "user", "content": [{"text": "Say hi."}]}],
        inferenceConfig={"maxTokens": 1024})
    for event in response["stream"]:
        if "contentBlockDelta" in event:
            text += event["contentBlockDelta"]["delta"].get("text", "")
        if "messageStop" in event:
            stop = event["messageStop"]["stopReason"]
        if "metadata" in event:
            usage = event["metadata"]["usage"]
    out["converse_stream"] = {"text": text, "stop_reason": stop, "usage": usage}

    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 1024,
            "messages": [{"role": "user", "content": "Run the tests."}]}
    response = client.invoke_model_with_response_stream(
        modelId="us.anthropic.claude-sonnet-4-5-20250929-v1:0", body=json.dumps(body))
    events = []
    for event in response["body"]:
        events.append(json.loads(event["chunk"]["bytes"]))
    out["invoke_stream"] = {"types": [e.get("type") for e in events],
                            "id": next((e["message"]["id"] for e in events if e.get("type") == "message_start"), None)}
elif which == "anthropic":
    import anthropic
    from anthropic import AnthropicBedrock

    client = AnthropicBedrock(aws_access_key=os.environ["AWS_ACCESS_KEY_ID"],
                              aws_secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                              aws_region=region, max_retries=0, timeout=30)
    out["sdk_version"] = anthropic.__version__
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    message = client.messages.create(model=model, max_tokens=1024,
                                     messages=[{"role": "user", "content": "Say hi."}])
    out["create"] = {"id": message.id, "input_tokens": message.usage.input_tokens,
                     "output_tokens": message.usage.output_tokens}
    with client.messages.stream(model=model, max_tokens=1024,
                                messages=[{"role": "user", "content": "Run the tests."}]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_message()
    out["stream"] = {"id": final.id, "output_tokens": final.usage.output_tokens}
else:
    raise SystemExit(f"unknown client {which!r}")

json.dump(out, sys.stdout)
