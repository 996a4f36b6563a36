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

Shape of the output
-------------------
  {"source": {"package": "litellm", "version": "X.Y.Z", "file": ..., "generated_by": ...},
   "namespaces": {
     "<namespace>": {
       "models":  {"<model id>": MODEL, ...},
       "regions": {"<region>": {"<model id>": MODEL, ...}, ...}    # only where litellm has some
     }, ...}}
Every namespace is present (possibly with no models), in the order of NAMESPACES; model ids
and regions are sorted; model ids are lowercase (llmtap matches case-insensitively). MODEL is
described under "Fields". A namespace is where a provider's prices come from; llmtap's
provider table names, per provider, the namespaces to try in order. A region holds the prices
litellm gives for one region or deployment zone (Bedrock `bedrock/us-gov-west-1/...`, Azure
data zones `azure/eu/...`, `azure/global-standard/...`); llmtap looks them up as the
namespace `<namespace>/<region>` (e.g. `bedrock/us-gov-west-1`).

Namespaces, and what is included
--------------------------------
llmtap records the calls of coding agents and SDKs to the providers' APIs. A namespace holds
the litellm entries of these `litellm_provider`s:
  anthropic, openai, gemini   the first-party APIs (not `text-completion-openai`, the legacy
                              /v1/completions models llmtap does not parse)
  bedrock                     `bedrock` and `bedrock_converse` (not `bedrock_mantle`, the
                              OpenAI-compatible endpoint, which no provider maps here yet)
  vertex_ai                   `vertex_ai` and every `vertex_ai-*` (Claude, Gemini, partners)
  azure, azure_ai             Azure OpenAI; Azure AI Foundry
  openrouter, deepseek, groq, xai, mistral, moonshot, zai, together_ai, fireworks_ai,
  cerebras, perplexity        the provider of the same name
Names are the model ids as the provider's API names them: litellm's routing prefix is
stripped (`gemini/`, `bedrock/`, `vertex_ai/`, `azure/`, `azure_ai/`, `openrouter/`,
`deepseek/`, `groq/`, `xai/`, `mistral/`, `moonshot/`, `zai/`, `together_ai/`,
`fireworks_ai/`, `cerebras/`, `perplexity/`), what the provider itself names is kept
(`us.anthropic.claude-...-v1:0`, OpenRouter's `anthropic/claude-...`, Vertex's
`claude-...@20250929`, Fireworks' `accounts/fireworks/models/...`). In anthropic and openai a
key with a `/` is dropped (image sizes, routes), as is one in gemini after `gemini/`.
Special keys:
  bedrock/<aws-region>/<id>   a regional variant (region `<aws-region>`)
  bedrock/invoke/<id>         litellm's InvokeModel route: `<id>`, lowest precedence
  bedrock/*/..., bedrock/<region>/<N>-month-commitment/...   dropped: provisioned
                              throughput, billed per model unit and hour, not per token
  bedrock/claude_platform/... dropped: a litellm route to the Claude Platform on AWS, whose
                              ids are Anthropic's, not Bedrock's (no namespace for it yet)
  azure/<zone>/<id>           a regional variant: data zones `eu`, `us`, `apac`, `us-gov`,
                              and `global`, `global-standard` deployments
  together-ai-<size>          dropped: litellm's price by parameter count, not a model id
When two keys land on the same name, the one under the routing prefix wins (litellm's
canonical entry: `gemini/x` over `x`, `deepseek/x` over `x`), then a bare key, then a route
(`bedrock/invoke/`); a price difference is reported on stderr. litellm's `alias_of` entries
go to their target's namespace (and region) under their own stripped name, with the target's
prices and an `"alias_of"` key naming the target.

Within those, an entry is included when
  * its `mode` is `chat`, `responses` or `completion` (no embeddings, images, audio speech /
    transcription, realtime, moderation, video);
  * it has both `input_cost_per_token` and `output_cost_per_token` (0 is a price: the Gemini
    API serves some Gemma models free);
  * it is not a fine-tune (`ft:...`; the names embed the user's org and job id);
  * it is not an audio / speech / realtime / image / embedding model even where litellm files
    it under `mode: chat` (name contains audio, realtime, tts, transcribe, image, embedding),
    nor a model that cannot output text (`supported_output_modalities` without "text", e.g.
    Lyria music models): its per-token text price would under-state what it costs.

Fields (USD per token)
----------------------
  input, output        input_cost_per_token, output_cost_per_token. Reasoning / thinking
                       tokens are billed as output by all these providers: no separate field.
  cache_read           cache_read_input_token_cost (null if absent).
  cache_write_5m       cache_creation_input_token_cost. In the `anthropic` namespace, if
                       absent: 1.25 x input. Elsewhere null if absent (llmtap's cost rule
                       then bills Claude writes at 1.25 x input: src/pricing.rs). (litellm
                       lists a write price for some newer OpenAI models; carried as is.)
  cache_write_1h       cache_creation_input_token_cost_above_1hr. In `anthropic`, if absent,
                       2 x input (Anthropic's documented 1-hour write price). Elsewhere null.
  max_input_tokens     litellm's max_input_tokens (the context window, in tokens), null if
                       litellm has none.
  above_<N>k           a long-context tier, present only where litellm has
                       `*_above_<N>k_tokens` prices: the whole call is priced at these rates
                       when its input tokens exceed N*1000. Mostly `above_200k` (Gemini Pro
                       models); OpenAI's newest models have `above_272k`. Same five fields;
                       a field litellm lacks for the tier takes the base rate (for cache
                       fields in `anthropic`: the multiple of the tier's input), and is
                       marked derived.
  derived              the fields that are not litellm numbers but were filled in by the rules
                       above ("cache_write_1h", "above_200k.cache_read", ...). Omitted if none.
  alias_of             for alias entries: the model whose prices these are.
  service_tiers        per processing tier litellm prices (`flex` from `*_flex`, `priority` from
                       `*_priority`, `batch` from `*_batches`), present only where litellm has
                       the tier's input price: the same five fields and `above_<N>k` tiers
                       (`*_above_<N>k_tokens_<tier>`); a field litellm lacks for the tier takes
                       the standard tier's rate (cache fields in `anthropic`: the multiple of
                       the tier's input), marked derived as "flex.output", "priority.above_272k.input".
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

# The namespaces, in file order. Their names are a contract with llmtap's provider table.
NAMESPACES = (
    "anthropic", "openai", "gemini", "bedrock", "vertex_ai", "azure", "azure_ai", "openrouter",
    "deepseek", "groq", "xai", "mistral", "moonshot", "zai", "together_ai", "fireworks_ai",
    "cerebras", "perplexity",
)
FIRST_PARTY = ("anthropic", "openai", "gemini")
# litellm_provider -> namespace; every `vertex_ai*` provider is `vertex_ai` (namespace_of).
NAMESPACE_PROVIDERS = {ns: ns for ns in NAMESPACES if ns != "vertex_ai"}
NAMESPACE_PROVIDERS["bedrock_converse"] = "bedrock"
# The litellm routing prefix of each namespace's keys; stripped, as no provider returns it.
# anthropic and openai have none: their keys with a `/` are sizes and routes, not models.
ROUTING_PREFIX = {ns: ns + "/" for ns in NAMESPACES if ns not in ("anthropic", "openai")}
MODES = ("chat", "responses", "completion")
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


def convert(entry: dict, ns: str) -> dict:
    # Only the `anthropic` namespace gets Anthropic's cache multiples filled in; elsewhere a
    # missing price stays null and llmtap's cost rule decides (src/pricing.rs).
    provider = "anthropic" if ns == "anthropic" else ns
    derived: list[str] = []
    base = prices_at(entry, provider, "", None, "", derived)
    model: dict = dict(base)
    model["max_input_tokens"] = max_input_tokens(entry)
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


# ---------------------------------------------------------------------------------------------
# Namespaces: which litellm entries go where, under which name


class Excluded(Exception):
    """An entry that is not in the table; the message says why."""


# An AWS region as Bedrock's regional keys spell it (`us-east-1`, `us-gov-west-1`).
AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
# Provisioned-throughput commitments (`bedrock/us-east-1/1-month-commitment/...`, `bedrock/*/...`):
# billed per model unit and hour, not per token.
COMMITMENT = re.compile(r"^\d+-month-commitment$")


def namespace_of(provider: object) -> str | None:
    """The namespace of a `litellm_provider`, or None if llmtap does not price it."""
    if not isinstance(provider, str):
        return None
    if provider in NAMESPACE_PROVIDERS:
        return NAMESPACE_PROVIDERS[provider]
    if provider.startswith("vertex_ai"):  # vertex_ai, vertex_ai-anthropic_models, ...
        return "vertex_ai"
    return None


def place(key: str, ns: str) -> tuple[str | None, str, int]:
    """Where a litellm key goes in namespace `ns`: (region or None, model name, rank).

    The rank orders entries that land on the same name: 0 for a key under the namespace's
    routing prefix (litellm's canonical entry, e.g. `gemini/x` over `x`), 1 for a bare key,
    2 for a key under a litellm route (`bedrock/invoke/...`). Raises Excluded.
    """
    prefix = ROUTING_PREFIX.get(ns)
    prefixed = bool(prefix) and key.startswith(prefix)
    rest = key[len(prefix):] if prefixed else key
    rank = 0 if prefixed else 1
    region = None
    if ns in FIRST_PARTY:
        if "/" in rest:
            raise Excluded("prefixed name")
    elif ns == "bedrock" and "/" in rest:
        parts = rest.split("/")
        if not prefixed:
            raise Excluded("prefixed name")
        if parts[0] == "invoke":
            parts, rank = parts[1:], 2
        elif parts[0] == "claude_platform":
            raise Excluded("litellm route to the Claude Platform on AWS, not a Bedrock model id")
        elif parts[0] == "*" or any(COMMITMENT.match(p) for p in parts):
            raise Excluded("provisioned throughput (billed per hour, not per token)")
        elif AWS_REGION.match(parts[0]):
            region, parts = parts[0], parts[1:]
        if len(parts) != 1:
            raise Excluded("unrecognised bedrock route")
        rest = parts[0]
    elif ns == "azure" and "/" in rest:
        # azure/eu/gpt-5, azure/global-standard/gpt-4o: data-zone and global deployments.
        parts = rest.split("/")
        if not prefixed or len(parts) != 2:
            raise Excluded("unrecognised azure route")
        region, rest = parts
    if ns == "together_ai" and rest.startswith("together-ai-"):
        raise Excluded("litellm's price-by-model-size fallback, not a model id")
    name = rest.lower()
    if not name:
        raise Excluded("empty name")
    return region, name, rank


def excluded(key: str, entry: dict) -> str | None:
    """Why this litellm entry is not in the table, or None if it is."""
    ns = namespace_of(entry.get("litellm_provider"))
    if ns is None:
        return "provider"
    if entry.get("mode") not in MODES:
        return "mode"
    try:
        _, name, _ = place(key, ns)
    except Excluded as e:
        return str(e)
    if name.startswith("ft:") or key.startswith("ft:"):
        return "fine-tune"
    if EXCLUDED_NAME.search(name):
        return "audio/realtime/image/embedding model"
    outputs = entry.get("supported_output_modalities")
    if isinstance(outputs, list) and "text" not in outputs:
        return "no text output"
    if entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
        return "no per-token prices"
    return None


def max_input_tokens(entry: dict) -> int | None:
    value = entry.get("max_input_tokens")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or value < 0 or value != int(value):
        return None
    return int(value)


def ordered(model: dict) -> dict:
    out = {k: model[k] for k in FIELDS + ("max_input_tokens",)}
    for k in sorted((k for k in model if k.startswith("above_")), key=lambda k: int(k[6:-1])):
        out[k] = model[k]
    for k in ("service_tiers", "alias_of", "derived"):
        if k in model:
            out[k] = model[k]
    return out


def build(data: dict, version: str | None, file: str) -> dict:
    if not isinstance(data, dict):
        raise SystemExit("prices.py: the litellm file is not a JSON object")
    # (namespace, region or None, name) -> (rank, litellm key, model)
    chosen: dict[tuple[str, str | None, str], tuple[int, str, dict]] = {}
    for key in sorted(data):
        entry = data[key]
        if not isinstance(entry, dict) or "alias_of" in entry or excluded(key, entry):
            continue
        ns = namespace_of(entry["litellm_provider"])
        region, name, rank = place(key, ns)
        try:
            model = convert(entry, ns)
        except BadPrice as e:
            warn(f"skipping {key}: {e}")
            continue
        slot = (ns, region, name)
        if slot in chosen:
            other_rank, other_key, other = chosen[slot]
            keep_other = other_rank <= rank
            if other != model:
                winner = other_key if keep_other else key
                warn(f"{ns}{'/' + region if region else ''}: {name}: litellm has both "
                     f"{other_key!r} and {key!r} with different prices; using {winner!r}")
            if keep_other:
                continue
        chosen[slot] = (rank, key, model)

    # Aliases (`"alias_of": "target"`) of included models go where their target is.
    by_key = {k: (slot, m) for slot, (_, k, m) in chosen.items()}
    for key in sorted(data):
        entry = data[key]
        if not isinstance(entry, dict) or "alias_of" not in entry:
            continue
        target = entry["alias_of"]
        if target not in by_key:
            continue
        (ns, region, target_name), target_model = by_key[target]
        try:
            alias_region, name, _ = place(key, ns)
        except Excluded:
            continue
        if alias_region != region or (ns, region, name) in chosen:
            continue
        model = dict(target_model)
        model["alias_of"] = target_name
        chosen[(ns, region, name)] = (3, key, model)

    namespaces: dict = {}
    for ns in NAMESPACES:
        models = {name: ordered(m) for (n, r, name), (_, _, m) in sorted(
            chosen.items(), key=lambda kv: kv[0][2]) if n == ns and r is None}
        regions: dict = {}
        for region in sorted({r for (n, r, _) in chosen if n == ns and r is not None}):
            regions[region] = {name: ordered(m) for (n, r, name), (_, _, m) in sorted(
                chosen.items(), key=lambda kv: kv[0][2]) if n == ns and r == region}
        namespaces[ns] = {"models": models}
        if regions:
            namespaces[ns]["regions"] = regions

    return {
        "source": {
            "package": "litellm",
            "version": version or "unknown",
            "file": file,
            "generated_by": GENERATED_BY,
        },
        "namespaces": namespaces,
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
    sizes = ", ".join(f"{ns} {len(v['models'])}"
                      + (f" (+{sum(map(len, v['regions'].values()))} regional)"
                         if "regions" in v else "")
                      for ns, v in table["namespaces"].items())
    warn(f"litellm {table['source']['version']}: {sizes}; {len(text)} bytes")
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
