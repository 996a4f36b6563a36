#!/usr/bin/env python3
"""Tests for scripts/prices.py. Run: python3 scripts/test_prices.py (stdlib only, no network).

Each test runs the generator as a subprocess, with --from-json, on a small hand-made file in
litellm's shape.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "prices.py")
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "prices")


def chat(provider: str, inp, out, **extra) -> dict:
    entry = {"litellm_provider": provider, "mode": "chat", "max_input_tokens": 200000}
    if inp is not None:
        entry["input_cost_per_token"] = inp
    if out is not None:
        entry["output_cost_per_token"] = out
    entry.update(extra)
    return entry


LITELLM = {
    "sample_spec": {"litellm_provider": "one of https://docs.litellm.ai/docs/providers",
                    "mode": "one of: chat, embedding, ...", "input_cost_per_token": 0.0,
                    "output_cost_per_token": 0.0},
    # Anthropic, complete: nothing derived.
    "claude-full-1": chat("anthropic", 5e-06, 2.5e-05, cache_read_input_token_cost=5e-07,
                          cache_creation_input_token_cost=6.25e-06,
                          cache_creation_input_token_cost_above_1hr=1e-05,
                          input_cost_per_token_batches=2.5e-06),
    # Anthropic without the 1-hour write price: 2 x input, marked derived.
    "claude-no-1h": chat("anthropic", 3e-06, 1.5e-05, cache_read_input_token_cost=3e-07,
                         cache_creation_input_token_cost=3.75e-06),
    # Anthropic without any cache price: 0.1x / 1.25x / 2x input.
    "claude-no-cache": chat("anthropic", 3e-06, 1.5e-05),
    # Anthropic long-context tier, 1-hour write missing in the tier only.
    "claude-long": chat("anthropic", 3e-06, 1.5e-05, cache_read_input_token_cost=3e-07,
                        cache_creation_input_token_cost=3.75e-06,
                        cache_creation_input_token_cost_above_1hr=6e-06,
                        input_cost_per_token_above_200k_tokens=6e-06,
                        output_cost_per_token_above_200k_tokens=2.25e-05,
                        cache_read_input_token_cost_above_200k_tokens=6e-07,
                        cache_creation_input_token_cost_above_200k_tokens=7.5e-06),
    # OpenAI: cache read only; no writes.
    "gpt-test": chat("openai", 1.25e-06, 1e-05, cache_read_input_token_cost=1.25e-07,
                     output_cost_per_reasoning_token=1e-05),
    "gpt-test-responses": {**chat("openai", 1.5e-05, 1.2e-04), "mode": "responses"},
    # OpenAI tier at 272k, cache read missing in the tier: base rate, marked derived.
    "gpt-long": chat("openai", 2.5e-06, 1.5e-05, cache_read_input_token_cost=2.5e-07,
                     input_cost_per_token_above_272k_tokens=5e-06,
                     output_cost_per_token_above_272k_tokens=2.25e-05,
                     input_cost_per_token_above_272k_tokens_batches=2.5e-06),
    # Gemini with prefix and the 200k tier.
    "gemini/gemini-test-pro": chat("gemini", 1.25e-06, 1e-05, cache_read_input_token_cost=1.25e-07,
                                   input_cost_per_token_above_200k_tokens=2.5e-06,
                                   output_cost_per_token_above_200k_tokens=1.5e-05,
                                   cache_read_input_token_cost_above_200k_tokens=2.5e-07,
                                   input_cost_per_token_above_200k_tokens_priority=4.5e-06),
    "gemini/gemini-test-flash": chat("gemini", 3e-07, 2.5e-06, cache_read_input_token_cost=3e-08),
    # Same bare name twice: the gemini/ entry wins.
    "gemini-dup": chat("gemini", 9e-07, 9e-06),
    "gemini/gemini-dup": chat("gemini", 1e-07, 1e-06),
    # ... also when the gemini/ key sorts first.
    "gemma-dup": chat("gemini", 9e-07, 9e-06),
    "gemini/gemma-dup": chat("gemini", 1e-07, 1e-06),
    # Free is a price.
    "gemini/gemma-free": chat("gemini", 0, 0),
    # Aliases: of an included model (kept), of an excluded one (dropped), prefixed (dropped).
    "claude-test-latest": {"alias_of": "claude-full-1"},
    "gpt-ft-latest": {"alias_of": "ft:gpt-test:org::abc"},
    "bedrock/claude-test-latest": {"alias_of": "claude-full-1"},
    # Excluded:
    "ft:gpt-test:org::abc": chat("openai", 3e-06, 1.2e-05),
    "text-embedding-test": {**chat("openai", 1e-07, 0), "mode": "embedding"},
    "gpt-realtime-test": {**chat("openai", 4e-06, 1.6e-05), "mode": "realtime"},
    "gpt-audio-test": chat("openai", 2.5e-06, 1e-05, input_cost_per_audio_token=3.2e-05),
    "gemini/gemini-test-tts": chat("gemini", 1e-06, 2e-05),
    "gemini/lyria-test": chat("gemini", 0, 0, supported_output_modalities=["audio"]),
    "gpt-image-test": {**chat("openai", 5e-06, 4e-05), "mode": "image_generation"},
    "gpt-no-output-price": chat("openai", 1e-06, None),
    "gpt-no-prices": {"litellm_provider": "openai", "mode": "chat"},
    "gpt-no-mode": {"litellm_provider": "openai", "input_cost_per_token": 1e-06,
                    "output_cost_per_token": 1e-06},
    "babbage-test": {**chat("text-completion-openai", 4e-07, 4e-07), "mode": "completion"},
    "gemini/gemini-no-window": {**chat("gemini", 1e-07, 4e-07), "max_input_tokens": None},
    # Other namespaces (test_namespaces_*).
    "anthropic.claude-bedrock-v1:0": chat("bedrock", 3e-06, 1.5e-05),
    "us.anthropic.claude-bedrock-v1:0": chat("bedrock_converse", 3.3e-06, 1.65e-05,
                                             cache_creation_input_token_cost=4.125e-06),
    "bedrock/us.anthropic.claude-dup-v1:0": chat("bedrock", 1e-06, 2e-06),
    "us.anthropic.claude-dup-v1:0": chat("bedrock", 9e-06, 9e-06),
    "bedrock/us-gov-west-1/anthropic.claude-bedrock-v1:0": chat("bedrock", 3.6e-06, 1.8e-05),
    "bedrock/us-east-1/1-month-commitment/anthropic.claude-bedrock-v1:0":
        chat("bedrock", 1e-06, 1e-06),
    "bedrock/*/6-month-commitment/cohere.command-test": chat("bedrock", 1e-06, 1e-06),
    "bedrock/claude_platform/claude-full-1": chat("bedrock", 5e-06, 2.5e-05),
    "bedrock/invoke/anthropic.claude-invoke-v1:0": chat("bedrock", 8e-06, 8e-06),
    "bedrock/claude-bedrock-latest": {"alias_of": "us.anthropic.claude-bedrock-v1:0"},
    "bedrock_mantle/openai.gpt-test": chat("bedrock_mantle", 1e-06, 1e-06),
    "azure/gpt-test": chat("azure", 1.25e-06, 1e-05),
    "azure/eu/gpt-test": chat("azure", 1.375e-06, 1.1e-05),
    "azure/global-standard/gpt-test": chat("azure", 1.25e-06, 1e-05),
    "azure_ai/claude-full-1": chat("azure_ai", 5e-06, 2.5e-05),
    "azure_ai/Llama-Test-70B": chat("azure_ai", 7e-07, 7e-07),
    "vertex_ai/gemini-test-pro": chat("vertex_ai", 1.25e-06, 1e-05),
    "gemini-test-pro": chat("vertex_ai-language-models", 9e-06, 9e-06),
    "vertex_ai/claude-full-1@20250101": chat("vertex_ai-anthropic_models", 5e-06, 2.5e-05),
    "vertex_ai/meta/llama-test-maas": chat("vertex_ai-llama_models", 1e-06, 1e-06),
    "vertex_ai/text-embedding-test": {**chat("vertex_ai-embedding-models", 1e-07, 0),
                                      "mode": "embedding"},
    "openrouter/anthropic/claude-full-1": chat("openrouter", 5e-06, 2.5e-05),
    "deepseek/deepseek-test": chat("deepseek", 2.8e-07, 4.2e-07),
    "groq/openai/gpt-oss-test": chat("groq", 1.5e-07, 6e-07),
    "together_ai/Qwen/Qwen-Test": chat("together_ai", 1.2e-06, 1.2e-06),
    "together-ai-up-to-4b": chat("together_ai", 1e-07, 1e-07),
    "fireworks_ai/accounts/fireworks/models/fw-test": chat("fireworks_ai", 9e-07, 9e-07),
    "zai/glm-test": chat("zai", 6e-07, 2.2e-06),
    "dashscope/qwen-test": chat("dashscope", 1e-06, 1e-06),
    # Malformed price: skipped with a warning, the rest still built.
    "gpt-bad": chat("openai", "cheap", 1e-05),
    "gpt-bad-bool": chat("openai", True, 1e-05),
    "gpt-bad-negative": chat("openai", -1e-06, 1e-05),
}

EXPECTED_NAMES = [
    "claude-full-1", "claude-long", "claude-no-1h", "claude-no-cache", "claude-test-latest",
    "gemini-dup", "gemini-no-window", "gemini-test-flash", "gemini-test-pro", "gemma-dup",
    "gemma-free",
    "gpt-long", "gpt-test", "gpt-test-responses",
]


def first_party(table: dict) -> dict:
    """The anthropic, openai and gemini namespaces as one dict (their names do not collide)."""
    out = {}
    for ns in ("anthropic", "openai", "gemini"):
        out.update(table["namespaces"][ns]["models"])
    return dict(sorted(out.items()))


def run(path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, SCRIPT, "--from-json", path, *args],
                          capture_output=True, text=True, check=False)


class PricesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.tmp.name, "litellm.json")
        with open(cls.path, "w") as f:
            json.dump(LITELLM, f, indent=4)
        cls.proc = run(cls.path, "--litellm-version", "9.9.9")
        if cls.proc.returncode != 0:
            raise AssertionError(cls.proc.stderr)
        cls.out = cls.proc.stdout
        cls.table = json.loads(cls.out)
        cls.ns = cls.table["namespaces"]
        cls.models = first_party(cls.table)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    # --- source and shape

    def test_source_block(self):
        self.assertEqual(self.table["source"], {
            "package": "litellm", "version": "9.9.9", "file": "litellm.json",
            "generated_by": "scripts/prices.py"})
        self.assertEqual(list(self.table), ["source", "namespaces"])
        self.assertEqual(list(self.ns), [
            "anthropic", "openai", "gemini", "bedrock", "vertex_ai", "azure", "azure_ai",
            "openrouter", "deepseek", "groq", "xai", "mistral", "moonshot", "zai", "together_ai",
            "fireworks_ai", "cerebras", "perplexity"])
        for ns, body in self.ns.items():
            self.assertIn(list(body), (["models"], ["models", "regions"]), ns)

    def test_selected_models(self):
        self.assertEqual(list(self.models), EXPECTED_NAMES)

    def test_field_order(self):
        self.assertEqual(list(self.models["gemini-test-pro"]),
                         ["input", "output", "cache_read", "cache_write_5m",
                          "cache_write_1h", "max_input_tokens", "above_200k"])
        self.assertEqual(list(self.models["gemini-test-pro"]["above_200k"]),
                         ["input", "output", "cache_read", "cache_write_5m", "cache_write_1h"])

    # --- derivations

    def test_anthropic_complete_is_not_derived(self):
        m = dict(self.models["claude-full-1"])
        tiers = m.pop("service_tiers")
        m.pop("derived")  # only the batch tier's fields, below
        self.assertEqual(m, {
            "input": 5e-06, "output": 2.5e-05, "cache_read": 5e-07,
            "cache_write_5m": 6.25e-06, "cache_write_1h": 1e-05, "max_input_tokens": 200000})
        self.assertEqual(list(tiers), ["batch"])

    # --- service tiers

    def test_service_tier_prices_and_fallbacks(self):
        m = self.models["claude-full-1"]
        # litellm has only the batch input price: output falls back to the standard rate,
        # Anthropic cache prices are the documented multiples of the tier's input.
        self.assertEqual(m["service_tiers"]["batch"], {
            "input": 2.5e-06, "output": 2.5e-05, "cache_read": 2.5e-07,
            "cache_write_5m": 3.125e-06, "cache_write_1h": 5e-06})
        self.assertEqual(m["derived"], ["batch.output", "batch.cache_read",
                                        "batch.cache_write_5m", "batch.cache_write_1h"])

    def test_a_long_context_tier_price_alone_makes_no_service_tier(self):
        # Only `*_above_Nk_tokens_<tier>` prices, no standard-length price for the tier.
        self.assertNotIn("service_tiers", self.models["gemini-test-pro"])
        self.assertNotIn("service_tiers", self.models["gpt-long"])

    def test_no_service_tiers_without_tier_prices(self):
        for name in ("gpt-test", "claude-no-1h", "claude-no-cache"):
            self.assertNotIn("service_tiers", self.models[name], name)

    def test_anthropic_1h_write_derived_as_2x_input(self):
        m = self.models["claude-no-1h"]
        self.assertEqual(m["cache_write_1h"], 6e-06)
        self.assertEqual(m["cache_write_5m"], 3.75e-06)
        self.assertEqual(m["derived"], ["cache_write_1h"])

    def test_anthropic_all_cache_prices_derived(self):
        m = self.models["claude-no-cache"]
        # Exact decimal values, not 3.7500000000000005e-06.
        self.assertEqual((m["cache_read"], m["cache_write_5m"], m["cache_write_1h"]),
                         (3e-07, 3.75e-06, 6e-06))
        self.assertIn('"cache_write_5m": 3.75e-06,', self.out)
        self.assertEqual(m["derived"], ["cache_read", "cache_write_5m", "cache_write_1h"])

    def test_openai_has_no_cache_writes_and_no_reasoning_field(self):
        self.assertEqual(self.ns["openai"]["models"]["gpt-test"], {
            "input": 1.25e-06, "output": 1e-05, "cache_read": 1.25e-07,
            "cache_write_5m": None, "cache_write_1h": None, "max_input_tokens": 200000})
        self.assertIsNone(self.models["gpt-test-responses"]["cache_read"])

    # --- long-context tiers

    def test_gemini_above_200k(self):
        m = self.models["gemini-test-pro"]
        self.assertIn("gemini-test-pro", self.ns["gemini"]["models"])
        self.assertEqual(m["above_200k"], {"input": 2.5e-06, "output": 1.5e-05,
                                           "cache_read": 2.5e-07, "cache_write_5m": None,
                                           "cache_write_1h": None})
        self.assertNotIn("derived", m)

    def test_no_tier_without_tier_fields(self):
        for name in ("gemini-test-flash", "gpt-test", "claude-full-1"):
            self.assertFalse([k for k in self.models[name] if k.startswith("above_")], name)

    def test_anthropic_tier_derives_1h_write_from_tier_input(self):
        m = self.models["claude-long"]
        self.assertEqual(m["above_200k"], {"input": 6e-06, "output": 2.25e-05,
                                           "cache_read": 6e-07, "cache_write_5m": 7.5e-06,
                                           "cache_write_1h": 1.2e-05})
        self.assertEqual(m["derived"], ["above_200k.cache_write_1h"])

    def test_other_threshold_and_base_fallback(self):
        m = self.models["gpt-long"]
        self.assertEqual(m["above_272k"], {"input": 5e-06, "output": 2.25e-05,
                                           "cache_read": 2.5e-07, "cache_write_5m": None,
                                           "cache_write_1h": None})
        self.assertEqual(m["derived"], ["above_272k.cache_read"])

    # --- filtering

    def test_gemini_prefix_stripped_and_prefixed_entry_wins(self):
        self.assertNotIn("gemini/gemini-test-pro", self.models)
        for name in ("gemini-dup", "gemma-dup"):
            self.assertEqual(self.models[name]["input"], 1e-07, name)
            self.assertIn(f"using 'gemini/{name}'", self.proc.stderr)

    def test_zero_price_kept(self):
        self.assertEqual(self.models["gemma-free"]["input"], 0.0)

    def test_alias(self):
        m = dict(self.models["claude-test-latest"])
        self.assertEqual(m.pop("alias_of"), "claude-full-1")
        self.assertEqual(m, self.models["claude-full-1"])

    def test_malformed_prices_are_skipped_with_warning(self):
        for name in ("gpt-bad", "gpt-bad-bool", "gpt-bad-negative"):
            self.assertNotIn(name, self.models)
            self.assertIn(f"skipping {name}", self.proc.stderr)

    # --- context windows

    def test_max_input_tokens_carried_or_null(self):
        self.assertEqual(self.models["gpt-test"]["max_input_tokens"], 200000)
        self.assertIsNone(self.models["gemini-no-window"]["max_input_tokens"])
        self.assertEqual(self.models["claude-test-latest"]["max_input_tokens"], 200000)

    # --- namespaces

    def test_first_party_namespaces_keep_only_their_provider(self):
        self.assertEqual(sorted(self.ns["anthropic"]["models"]), [
            "claude-full-1", "claude-long", "claude-no-1h", "claude-no-cache",
            "claude-test-latest"])
        self.assertNotIn("gpt-test", self.ns["anthropic"]["models"])
        self.assertNotIn("regions", self.ns["openai"])

    def test_namespaces_bedrock(self):
        b = self.ns["bedrock"]
        # bedrock and bedrock_converse, keys as Bedrock names them; the `bedrock/` route
        # stripped; an alias goes where its target is.
        self.assertEqual(sorted(b["models"]), [
            "anthropic.claude-bedrock-v1:0", "anthropic.claude-invoke-v1:0",
            "claude-bedrock-latest", "us.anthropic.claude-bedrock-v1:0",
            "us.anthropic.claude-dup-v1:0"])
        self.assertEqual(b["models"]["us.anthropic.claude-bedrock-v1:0"]["cache_write_5m"],
                         4.125e-06)
        # Outside the `anthropic` namespace nothing is derived: the cost rule decides.
        self.assertIsNone(b["models"]["us.anthropic.claude-bedrock-v1:0"]["cache_write_1h"])
        self.assertNotIn("derived", b["models"]["us.anthropic.claude-bedrock-v1:0"])
        self.assertEqual(b["models"]["claude-bedrock-latest"]["alias_of"],
                         "us.anthropic.claude-bedrock-v1:0")
        # The `bedrock/` entry is litellm's canonical one.
        self.assertEqual(b["models"]["us.anthropic.claude-dup-v1:0"]["input"], 1e-06)
        self.assertIn("using 'bedrock/us.anthropic.claude-dup-v1:0'", self.proc.stderr)
        # Regional keys become regional variants; commitments and the Claude Platform route
        # are dropped; bedrock_mantle is not a namespace.
        self.assertEqual(b["regions"], {"us-gov-west-1": {
            "anthropic.claude-bedrock-v1:0": b["regions"]["us-gov-west-1"][
                "anthropic.claude-bedrock-v1:0"]}})
        self.assertEqual(
            b["regions"]["us-gov-west-1"]["anthropic.claude-bedrock-v1:0"]["input"], 3.6e-06)
        for dropped in ("claude-full-1", "cohere.command-test", "gpt-test"):
            self.assertNotIn(dropped, json.dumps(b))

    def test_namespaces_vertex_azure_and_others(self):
        v = self.ns["vertex_ai"]["models"]
        self.assertEqual(sorted(v), ["claude-full-1@20250101", "gemini-test-pro",
                                     "meta/llama-test-maas"])
        self.assertEqual(v["gemini-test-pro"]["input"], 1.25e-06)  # vertex_ai/ key wins
        a = self.ns["azure"]
        self.assertEqual(list(a["models"]), ["gpt-test"])
        self.assertEqual(list(a["regions"]), ["eu", "global-standard"])
        self.assertEqual(a["regions"]["eu"]["gpt-test"]["input"], 1.375e-06)
        # Names are lowercase; vendor/model ids keep their vendor.
        self.assertEqual(sorted(self.ns["azure_ai"]["models"]),
                         ["claude-full-1", "llama-test-70b"])
        self.assertEqual(list(self.ns["openrouter"]["models"]), ["anthropic/claude-full-1"])
        self.assertEqual(list(self.ns["deepseek"]["models"]), ["deepseek-test"])
        self.assertEqual(list(self.ns["groq"]["models"]), ["openai/gpt-oss-test"])
        self.assertEqual(list(self.ns["together_ai"]["models"]), ["qwen/qwen-test"])
        self.assertEqual(list(self.ns["fireworks_ai"]["models"]),
                         ["accounts/fireworks/models/fw-test"])
        self.assertEqual(list(self.ns["zai"]["models"]), ["glm-test"])
        self.assertEqual(self.ns["xai"], {"models": {}})
        self.assertNotIn("together-ai-up-to-4b", self.ns["together_ai"]["models"])

    # --- stability

    def test_output_is_stable(self):
        self.assertTrue(self.out.endswith("}\n") and not self.out.endswith("\n\n"))
        self.assertTrue(self.out.startswith('{\n  "source": {\n    "package": "litellm",'))
        again = run(self.path, "--litellm-version", "9.9.9")
        self.assertEqual(again.stdout, self.out)
        # Same data in another key order gives the same bytes.
        items = list(LITELLM.items())
        random.Random(7).shuffle(items)
        os.makedirs(os.path.join(self.tmp.name, "shuffled"), exist_ok=True)
        shuffled = os.path.join(self.tmp.name, "shuffled", "litellm.json")  # same basename
        with open(shuffled, "w") as f:
            json.dump(dict(items), f)
        self.assertEqual(run(shuffled, "--litellm-version", "9.9.9").stdout, self.out)

    def test_output_file_option(self):
        target = os.path.join(self.tmp.name, "prices.json")
        proc = subprocess.run([sys.executable, SCRIPT, "--from-json", self.path,
                               "--litellm-version", "9.9.9", "-o", target],
                              capture_output=True, text=True, check=True)
        self.assertEqual(proc.stdout, "")
        with open(target) as f:
            self.assertEqual(f.read(), self.out)

    # --- reading a wheel

    def test_reads_wheel_and_records_its_version(self):
        whl = os.path.join(self.tmp.name, "litellm-1.2.3-py3-none-any.whl")
        with zipfile.ZipFile(whl, "w") as zf:
            zf.writestr("litellm/model_prices_and_context_window_backup.json",
                        json.dumps(LITELLM))
            zf.writestr("litellm-1.2.3.dist-info/METADATA",
                        "Metadata-Version: 2.4\nName: litellm\nVersion: 1.2.3\n\nbody\n")
        proc = run(whl)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        table = json.loads(proc.stdout)
        self.assertEqual(table["source"]["version"], "1.2.3")
        self.assertEqual(table["source"]["file"],
                         "litellm/model_prices_and_context_window_backup.json")
        self.assertEqual(table["namespaces"], self.ns)
        # A version that contradicts the wheel is an error.
        self.assertNotEqual(run(whl, "--litellm-version", "1.2.4").returncode, 0)

    def test_unknown_version_without_flag(self):
        self.assertEqual(json.loads(run(self.path).stdout)["source"]["version"], "unknown")

    # --- the fixtures for `llmtap --prices FILE`

    def test_fixture_files(self):
        proc = run(os.path.join(FIXTURES, "litellm_override.json"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        models = first_party(json.loads(proc.stdout))
        self.assertEqual(sorted(models), ["claude-opus-4-8", "gpt-6.1-sol", "gpt-6.2-sol"])
        self.assertEqual(models["gpt-6.1-sol"]["above_272k"]["input"], 5e-06)
        proc = run(os.path.join(FIXTURES, "malformed.json"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(list(first_party(json.loads(proc.stdout))), ["good-model"])
        self.assertIn("skipping broken-model", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
