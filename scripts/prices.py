#!/usr/bin/env python3
"""Generate llmtap's embedded price table from the price data in the `litellm` PyPI package.

Usage:
    python3 scripts/prices.py [--litellm-version X.Y.Z] [--from-json PATH] > src/pricing/prices.json
    python3 scripts/prices.py -o src/pricing/prices.json        # same, written atomically

Source: `litellm/model_prices_and_context_window_backup.json` inside the litellm wheel. Without
--from-json the wheel is fetched with `pip download litellm[==X.Y.Z] --no-deps` (newest release
when no version is given) and read as a zip; the version recorded in the output is the one in
the wheel's own `*.dist-info/METADATA`. --from-json takes a litellm-format .json file, or a
litellm .whl / sdist .tar.gz that is already on disk.

What is included, and why
-------------------------
llmtap records the calls of Claude Code, Codex CLI, Gemini CLI and the Anthropic / OpenAI /
google-genai SDKs talking to the providers' own APIs. So the table holds the litellm entries
  * whose `litellm_provider` is `anthropic`, `openai` or `gemini` (first-party APIs: not
    Bedrock, Vertex, Azure, OpenRouter, ... whose names and prices differ; not
    `text-completion-openai`, the legacy /v1/completions models that llmtap does not parse);
  * whose `mode` is `chat`, `responses` or `completion` (no embeddings, images, audio speech /
    transcription, realtime, moderation, video);
  * that have both `input_cost_per_token` and `output_cost_per_token` (0 is a price: the Gemini
    API serves some Gemma models free);
  * that are not fine-tunes (`ft:...`; their names embed the user's org and job id);
  * that are not audio / speech / realtime / image / embedding models even where litellm files
    them under `mode: chat` (name contains audio, realtime, tts, transcribe, image, embedding),
    nor models that cannot output text (`supported_output_modalities` without "text", e.g.
    Lyria music models): their per-token text price would under-state what they cost;
  * plus the bare `alias_of` entries (`claude-opus-latest`, `gpt-sol-latest`, ...) whose target
    is included; they carry the target's prices and an `"alias_of"` key.
Names are the bare model ids the providers return: the `gemini/` prefix is stripped. When a
bare litellm key and a stripped `gemini/` key collide, the `gemini/` entry (litellm's canonical
Gemini API entry) wins and the collision is reported on stderr.

Fields (USD per token)
----------------------
  input, output        input_cost_per_token, output_cost_per_token. Reasoning / thinking
                       tokens are billed as output by all three providers: no separate field.
  cache_read           cache_read_input_token_cost (null if absent).
  cache_write_5m       cache_creation_input_token_cost. Anthropic: if absent, 1.25 x input.
                       Others: null if absent. (litellm lists a write price for some newer
                       OpenAI models; it is carried as is.)
  cache_write_1h       cache_creation_input_token_cost_above_1hr. Anthropic: if absent,
                       2 x input (Anthropic's documented 1-hour write price). Others: null.
  above_<N>k           a long-context tier, present only where litellm has
                       `*_above_<N>k_tokens` prices: the whole call is priced at these rates
                       when its input tokens exceed N*1000. Mostly `above_200k` (Gemini Pro
                       models); OpenAI's newest models have `above_272k`. Same five fields;
                       a field litellm lacks for the tier takes the base rate (for Anthropic
                       cache fields: the multiple of the tier's input), and is marked derived.
  derived              the fields that are not litellm numbers but were filled in by the rules
                       above ("cache_write_1h", "above_200k.cache_read", ...). Omitted if none.
  alias_of             for alias entries: the model whose prices these are.
  service_tiers        per processing tier litellm prices (`flex` from `*_flex`, `priority` from
                       `*_priority`, `batch` from `*_batches`), present only where litellm has
                       the tier's input price: the same five fields and `above_<N>k` tiers
                       (`*_above_<N>k_tokens_<tier>`); a field litellm lacks for the tier takes
                       the standard tier's rate (Anthropic cache fields: the multiple of the
                       tier's input), marked derived as "flex.output", "priority.above_272k.input".
                       llmtap prices a call at the tier its response reports.
"Ultrafast" tiers and OpenAI's 12-hour cache writes are not carried.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile

LITELLM_FILE = "litellm/model_prices_and_context_window_backup.json"
GENERATED_BY = "scripts/prices.py"

PROVIDERS = ("anthropic", "openai", "gemini")
MODES = ("chat", "responses", "completion")
PROVIDER_PREFIXES = {"gemini": "gemini/"}
EXCLUDED_NAME = re.compile(r"audio|realtime|tts|transcribe|image|embedding")

# Anthropic's documented multiples of the input price.
ANTHROPIC_MULTIPLIERS = {"cache_read": 0.1, "cache_write_5m": 1.25, "cache_write_1h": 2.0}

FIELDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h")
LITELLM_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write_5m": "cache_creation_input_token_cost",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
}
TIER_KEY = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost|cache_creation_input_token_cost_above_1hr)"
    r"_above_(\d+)k_tokens$"
)


class BadPrice(ValueError):
    """A price field that is not a finite, non-negative number."""


def warn(msg: str) -> None:
    print(f"prices.py: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Reading litellm's data


def _version_from_metadata(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
        if not line.strip():
            break
    return None


def read_wheel(path: str) -> tuple[dict, str]:
    with zipfile.ZipFile(path) as zf:
        data = json.loads(zf.read(LITELLM_FILE))
        version = None
        for name in zf.namelist():
            if re.fullmatch(r"litellm-[^/]+\.dist-info/METADATA", name):
                version = _version_from_metadata(zf.read(name).decode("utf-8", "replace"))
                break
    if not version:
        raise SystemExit(f"prices.py: no version in {path}'s dist-info/METADATA")
    return data, version


def read_sdist(path: str) -> tuple[dict, str]:
    with tarfile.open(path) as tf:
        data = version = None
        for member in tf.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) != 2:
                continue
            if parts[1] == LITELLM_FILE:
                data = json.load(tf.extractfile(member))
            elif parts[1] == "PKG-INFO":
                version = _version_from_metadata(tf.extractfile(member).read().decode("utf-8", "replace"))
    if data is None or not version:
        raise SystemExit(f"prices.py: {path} lacks {LITELLM_FILE} or PKG-INFO")
    return data, version


def read_source(path: str) -> tuple[dict, str | None, str]:
    """Returns (litellm data, package version or None, file name to record)."""
    if path.endswith(".whl"):
        data, version = read_wheel(path)
        return data, version, LITELLM_FILE
    if path.endswith((".tar.gz", ".tgz")):
        data, version = read_sdist(path)
        return data, version, LITELLM_FILE
    with open(path, encoding="utf-8") as f:
        return json.load(f), None, os.path.basename(path)


def download(version: str | None, tmpdir: str) -> str:
    spec = f"litellm=={version}" if version else "litellm"
    cmd = [sys.executable, "-m", "pip", "download", spec, "--no-deps", "-d", tmpdir,
           "--disable-pip-version-check", "--quiet"]
    warn("running " + " ".join(cmd[1:]))
    # pip's own output goes to stderr: stdout carries the table.
    result = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
    if result.returncode != 0:
        raise SystemExit(f"prices.py: pip download {spec} failed ({result.returncode})")
    files = sorted(f for f in os.listdir(tmpdir) if f.startswith("litellm-"))
    if len(files) != 1:
        raise SystemExit(f"prices.py: expected one litellm download in {tmpdir}, found {files}")
    return os.path.join(tmpdir, files[0])


# ---------------------------------------------------------------------------------------------
# Building the table


def price(entry: dict, key: str) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadPrice(f"{key} = {value!r} is not a number")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise BadPrice(f"{key} = {value!r} is not a finite non-negative number")
    return value


def clean(x: float) -> float:
    """Round away binary noise from multiplying (1.25 * 3e-06 = 3.7500000000000005e-06)."""
    return float(f"{x:.12g}")


def prices_at(entry: dict, provider: str, suffix: str, base: dict | None, prefix: str,
              derived: list[str]) -> dict:
    """The five fields for one level: the base level (suffix "", base None) or a tier."""
    out: dict = {}
    for field in FIELDS:
        value = price(entry, LITELLM_FIELDS[field] + suffix)
        if value is None and field not in ("input", "output") and provider == "anthropic" \
                and out["input"] is not None:
            value = clean(out["input"] * ANTHROPIC_MULTIPLIERS[field])
            derived.append(prefix + field)
        elif value is None and base is not None and base[field] is not None:
            value = base[field]
            derived.append(prefix + field)
        out[field] = value
    return out


def tier_thresholds(entry: dict) -> list[int]:
    found = set()
    for key in entry:
        m = TIER_KEY.match(key)
        if m:
            found.add(int(m.group(2)))
    return sorted(found)


def convert(entry: dict, provider: str) -> dict:
    derived: list[str] = []
    base = prices_at(entry, provider, "", None, "", derived)
    model: dict = {"provider": provider}
    model.update(base)
    for n in tier_thresholds(entry):
        suffix = f"_above_{n}k_tokens"
        if price(entry, LITELLM_FIELDS["input"] + suffix) is None:
            warn(f"tier above_{n}k without an input price: ignored")
            continue
        model[f"above_{n}k"] = prices_at(entry, provider, suffix, base, f"above_{n}k.", derived)
    tiers = service_tiers(entry, provider, model, derived)
    if tiers:
        model["service_tiers"] = tiers
    if derived:
        model["derived"] = derived
    return model


# Processing tiers: the name llmtap uses (the responses' `service_tier` values) -> litellm's
# key suffix.
SERVICE_TIERS = {"flex": "_flex", "priority": "_priority", "batch": "_batches"}


def service_tiers(entry: dict, provider: str, model: dict, derived: list[str]) -> dict:
    """The `service_tiers` object of one model: its flex / priority / batch prices."""
    out: dict = {}
    base = {f: model[f] for f in FIELDS}
    for tier, sfx in SERVICE_TIERS.items():
        if price(entry, LITELLM_FIELDS["input"] + sfx) is None:
            continue
        level = prices_at(entry, provider, sfx, base, f"{tier}.", derived)
        for n in tier_thresholds(entry):
            key = f"above_{n}k"
            long_sfx = f"_above_{n}k_tokens{sfx}"
            if key not in model or price(entry, LITELLM_FIELDS["input"] + long_sfx) is None:
                continue
            level[key] = prices_at(entry, provider, long_sfx, model[key], f"{tier}.{key}.",
                                   derived)
        out[tier] = level
    return out


def bare_name(key: str, provider: str) -> str:
    prefix = PROVIDER_PREFIXES.get(provider)
    if prefix and key.startswith(prefix):
        return key[len(prefix):]
    return key


def excluded(key: str, entry: dict) -> str | None:
    """Why this litellm entry is not in the table, or None if it is."""
    if entry.get("litellm_provider") not in PROVIDERS:
        return "provider"
    if entry.get("mode") not in MODES:
        return "mode"
    if key.startswith("ft:"):
        return "fine-tune"
    name = bare_name(key, entry["litellm_provider"])
    if "/" in name:
        return "prefixed name"
    if EXCLUDED_NAME.search(name):
        return "audio/realtime/image/embedding model"
    outputs = entry.get("supported_output_modalities")
    if isinstance(outputs, list) and "text" not in outputs:
        return "no text output"
    if entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
        return "no per-token prices"
    return None


def build(data: dict, version: str | None, file: str) -> dict:
    if not isinstance(data, dict):
        raise SystemExit("prices.py: the litellm file is not a JSON object")
    chosen: dict[str, tuple[str, dict]] = {}  # bare name -> (litellm key, model)
    for key in sorted(data):
        entry = data[key]
        if not isinstance(entry, dict) or "alias_of" in entry or excluded(key, entry):
            continue
        provider = entry["litellm_provider"]
        try:
            model = convert(entry, provider)
        except BadPrice as e:
            warn(f"skipping {key}: {e}")
            continue
        name = bare_name(key, provider)
        if name in chosen:
            other_key, other = chosen[name]
            prefixed = key if key != name else other_key
            if other != model:
                warn(f"{name}: litellm has both {other_key!r} and {key!r} with different "
                     f"prices; using {prefixed!r}")
            if key != prefixed:
                continue
        chosen[name] = (key, model)

    # Aliases (`"alias_of": "target"`) of included models.
    by_key = {k: m for _, (k, m) in chosen.items()}
    for key in sorted(data):
        entry = data[key]
        if not isinstance(entry, dict) or "alias_of" not in entry or "/" in key:
            continue
        target = entry["alias_of"]
        if target in by_key and key not in chosen:
            model = dict(by_key[target])
            target_name = next(n for n, (k, _) in chosen.items() if k == target)
            model["alias_of"] = target_name
            chosen[key] = (key, model)

    models = {}
    for name in sorted(chosen):
        model = chosen[name][1]
        ordered = {k: model[k] for k in ("provider",) + FIELDS}
        for k in sorted((k for k in model if k.startswith("above_")), key=lambda k: int(k[6:-1])):
            ordered[k] = model[k]
        for k in ("service_tiers", "alias_of", "derived"):
            if k in model:
                ordered[k] = model[k]
        models[name] = ordered

    return {
        "source": {
            "package": "litellm",
            "version": version or "unknown",
            "file": file,
            "generated_by": GENERATED_BY,
        },
        "models": models,
    }


def render(table: dict) -> str:
    return json.dumps(table, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--litellm-version", metavar="X.Y.Z",
                    help="litellm release to download (default: newest on PyPI); with "
                         "--from-json PATH.json, the version to record")
    ap.add_argument("--from-json", metavar="PATH",
                    help="read this litellm-format .json (or litellm .whl / .tar.gz) "
                         "instead of downloading")
    ap.add_argument("-o", "--output", metavar="FILE",
                    help="write here (atomically) instead of stdout")
    args = ap.parse_args(argv)

    if args.from_json:
        data, version, file = read_source(args.from_json)
        if version is None:
            version = args.litellm_version
        elif args.litellm_version and args.litellm_version != version:
            raise SystemExit(f"prices.py: {args.from_json} is litellm {version}, "
                             f"not {args.litellm_version}")
    else:
        with tempfile.TemporaryDirectory(prefix="llmtap-prices-") as tmp:
            path = download(args.litellm_version, tmp)
            data, version = read_wheel(path) if path.endswith(".whl") else read_sdist(path)
            file = LITELLM_FILE
        if args.litellm_version and args.litellm_version != version:
            raise SystemExit(f"prices.py: pip gave litellm {version}, asked for "
                             f"{args.litellm_version}")

    table = build(data, version, file)
    text = render(table)
    warn(f"litellm {table['source']['version']}: {len(table['models'])} models")
    if args.output:
        tmp_path = args.output + ".tmp"
        with open(tmp_path, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp_path, args.output)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
