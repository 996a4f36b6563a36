"""Example agent for the compose stack: a few streamed Anthropic calls through llmtap.

It knows nothing about llmtap: HTTPS_PROXY and SSL_CERT_FILE (set by docker-compose.yml)
route it through the proxy, exactly as they would Claude Code or any SDK.
Without ANTHROPIC_API_KEY the calls are refused with 401, which llmtap still records
(outcome client_error), so the stack can be tried without a key.
"""

import os
import sys
import time

import anthropic

MODEL = os.environ.get("AGENT_MODEL", "claude-haiku-4-5")
CALLS = int(os.environ.get("AGENT_CALLS", "3"))
PAUSE = float(os.environ.get("AGENT_PAUSE_SECONDS", "5"))


def main() -> int:
    client = anthropic.Anthropic(api_key=os.environ.get("ANTHROPIC_API_KEY") or "sk-ant-none")
    for i in range(CALLS):
        try:
            with client.messages.stream(
                model=MODEL,
                max_tokens=64,
                messages=[{"role": "user", "content": f"Say hello to llmtap in five words ({i})."}],
            ) as stream:
                text = "".join(stream.text_stream)
                usage = stream.get_final_message().usage
            print(f"call {i}: {text!r} in={usage.input_tokens} out={usage.output_tokens}", flush=True)
        except anthropic.APIStatusError as err:
            print(f"call {i}: HTTP {err.status_code} from the API (recorded by llmtap)", flush=True)
        except anthropic.APIConnectionError as err:
            print(f"call {i}: cannot connect through llmtap: {err}", file=sys.stderr, flush=True)
            return 1
        time.sleep(PAUSE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
