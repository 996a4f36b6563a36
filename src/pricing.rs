//! What a call cost, computed once from its normalized usage and the price table.
//!
//! Owns: the table ([`PriceTable`], [`ModelPrice`], [`Rates`]), the rules that map a model
//! name as a provider returns it to a table entry, and the arithmetic (cache tokens are
//! parts of input, never counted twice; the long-context tier applies to the whole call
//! above its threshold). Does not own: reading the table, the embedded `prices.json` and
//! `--prices` overrides in litellm's own JSON format (`pricing::load`), nor which namespaces
//! a provider's prices come from (the provider table).
//!
//! # Namespaces
//!
//! Prices are kept per *price namespace* (`anthropic`, `openai`, `gemini`, `bedrock`,
//! `vertex_ai`, `azure`, `azure_ai`, `openrouter`, `deepseek`, `groq`, `xai`, `mistral`,
//! `moonshot`, `zai`, `together_ai`, `fireworks_ai`, `cerebras`, `perplexity`: litellm's
//! entries grouped as `scripts/prices.py` documents). A regional variant is the namespace
//! `<namespace>/<region>`: `bedrock/us-gov-west-1` (litellm's `bedrock/<region>/…` keys),
//! `azure/eu`, `azure/global-standard` (Azure data zones and global deployments). A lookup
//! takes an ordered list of namespaces (`["bedrock/us-gov-west-1", "bedrock"]`) and tries
//! each with that namespace's matching rules; the first hit wins. Neighbouring namespaces of
//! one kind (a region and its namespace) are searched name by name, the most specific name
//! first: a cross-region profile `us.anthropic.…` priced in `bedrock` keeps that price
//! rather than the bare model's price in the region the call entered by. The provider table
//! fills `{region}` from the host (`bedrock-runtime.<region>.amazonaws.com`).
//!
//! # Matching a model name
//!
//! In every namespace, in order: the name as sent (lowercase; the table's names are
//! lowercase), then the namespace's stems below, each tried as it is, without a dated-snapshot
//! suffix (`-20251001`, `-2025-08-07`), without `-latest`, and without a version suffix
//! `-001`. Every stem drops a `[…]` suffix (Claude Code's `claude-opus-4-6[1m]`).
//!
//! * `anthropic`, `openai`, `gemini`: without a provider prefix (`models/` as the Gemini API
//!   names models, and litellm's and OpenRouter's `anthropic/`, `openai/`, `gemini/`,
//!   `google/`) and without a router's `:variant` suffix (a `:free` variant has no price
//!   here); a Claude id with dotted versions (OpenRouter's `claude-sonnet-4.5`) also as
//!   `claude-sonnet-4-5`. This is how a gateway or router in front of the first-party APIs
//!   (an `--intercept` host, OpenRouter) finds first-party prices.
//! * `bedrock` (Bedrock model ids and ARNs, docs.aws.amazon.com/bedrock "Supported
//!   foundation models", "Inference profiles"): an ARN of a `foundation-model` or an
//!   `inference-profile` becomes its id (the part after the last `/`); any other ARN
//!   (`application-inference-profile`, `provisioned-model`, `custom-model`, …) names its
//!   model by an opaque id and has no price: cost unknown, never $0. Then the id as given
//!   and without a cross-region prefix (`us.`, `eu.`, `apac.`, `jp.`, `au.`, `global.`,
//!   `us-gov.`, and `in.` which litellm also lists); each of those as given, without a
//!   `:N` version suffix, and without `-vN:N` (`…-20250929-v1:0` → `…-20250929`). Last, an
//!   Anthropic model id (`claude-…`, what a Claude response body on Bedrock names) as
//!   Bedrock's `anthropic.claude-…-v1:0` and `anthropic.claude-…`. The as-given id comes first
//!   because litellm prices regional profiles (`us.…`) above global ones.
//! * `vertex_ai` (Vertex AI model resource names): a resource path
//!   (`projects/…/publishers/anthropic/models/claude-sonnet-4-5@20250929`, or `models/…`)
//!   becomes the part after the last `models/`, a method suffix (`:streamRawPredict`) is
//!   dropped; then as given and without a `google/` prefix (Vertex's OpenAI-compatible
//!   endpoint names Gemini `google/gemini-…`); each as given, then without an `@version`
//!   suffix (`claude-sonnet-4-5@20250929` → `claude-sonnet-4-5`, `mistral-large@2411-001`).
//! * `openrouter` (`vendor/model` ids, openrouter.ai/docs "Model variants"): a `:variant`
//!   suffix (`:nitro`, `:floor`, `:online`, `:thinking`, `:extended`, …) is dropped, except
//!   `:free`: a free variant is never priced at the paid model's rate.
//! * `azure`: nothing more. Deployment names are free-form; the provider table passes the
//!   model a response names (`gpt-4o-2024-08-06`) when there is one.
//! * every other namespace: nothing more (the ids are the provider's own, vendor prefixes
//!   such as Groq's `openai/gpt-oss-120b` or Fireworks' `accounts/fireworks/models/…` kept).
//!
//! A name that matches in none of the namespaces has no price: the call adds no cost and
//! counts in `llmtap_cost_unknown_total`.
//!
//! # Cache writes
//!
//! Cache writes are billed when the usage reports them; only dialects whose API bills writes
//! report them (Anthropic Messages; Bedrock Converse / InvokeModel on Claude). Each written
//! token is billed at the table's write price for its duration; where the table has none,
//! at 1.25 × input (5 minutes) or 2 × input (1 hour) for Claude models (the model name
//! contains `claude`: Anthropic's documented multipliers, which Bedrock and Vertex AI charge
//! too), else at the input rate.

mod load;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::dialects::{Operation, Usage};

/// Prices of one model at one level (standard, a long-context tier, a processing tier), in
/// USD per token, as litellm's `*_cost_per_token` fields give them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    /// Uncached input tokens (litellm `input_cost_per_token`).
    pub input: f64,
    /// Output tokens, reasoning included (`output_cost_per_token`).
    pub output: f64,
    /// Input tokens read from cache (`cache_read_input_token_cost`); `None`: billed at
    /// `input`.
    pub cache_read: Option<f64>,
    /// Input tokens written to a 5-minute cache (`cache_creation_input_token_cost`); `None`:
    /// billed by the rule in the module docs ("Cache writes").
    pub cache_write_5m: Option<f64>,
    /// Input tokens written to a 1-hour cache (`cache_creation_input_token_cost_above_1hr`);
    /// `None`: billed by the rule in the module docs ("Cache writes").
    pub cache_write_1h: Option<f64>,
}

/// The price of one model: standard rates, long-context tiers, processing tiers.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPrice {
    /// The standard rates, for calls at or under every tier's threshold.
    pub base: Rates,
    /// Long-context tiers: above this many input tokens, the whole call is billed at these
    /// rates (200k for Claude and Gemini Pro, 272k for recent OpenAI models, …).
    pub tiers: Vec<(u64, Rates)>,
    /// Prices of the processing tiers litellm knows for the model (`flex`, `priority`,
    /// `batch`), each with its own long-context tiers. The standard tier is `base`/`tiers`.
    pub service_tiers: Vec<(String, ModelPrice)>,
    /// The model's context window in tokens (litellm `max_input_tokens`); `None`: litellm
    /// does not say.
    pub max_input_tokens: Option<u64>,
}

impl ModelPrice {
    /// The price at the processing tier a response reports (OpenAI `service_tier`:
    /// `flex`, `priority`, `default`, `auto`, `scale`; Anthropic `usage.service_tier`:
    /// `standard`, `priority`, `batch`). A tier without prices of its own, or none, is the
    /// standard tier.
    pub fn at_tier(&self, service_tier: Option<&str>) -> &ModelPrice {
        service_tier
            .and_then(|t| self.service_tiers.iter().find(|(name, _)| name == t))
            .map_or(self, |(_, price)| price)
    }

    /// The rates for a call with `input` prompt tokens.
    pub fn rates(&self, input: u64) -> Rates {
        self.tiers
            .iter()
            .filter(|(threshold, _)| input > *threshold)
            .max_by_key(|(threshold, _)| *threshold)
            .map_or(self.base, |(_, rates)| *rates)
    }
}

/// One kind of token of a call's cost ([`PriceTable::breakdown`]).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CostPart {
    /// `input` (uncached), `cache_read`, `cache_write_5m`, `cache_write_1h`, `output`.
    pub kind: &'static str,
    /// Tokens of this kind.
    pub tokens: u64,
    /// The rate, USD per million tokens.
    pub usd_per_mtok: f64,
    /// Tokens × rate, USD.
    pub usd: f64,
}

/// An error in a `--prices` file, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry}: {message}")]
pub struct PriceError {
    /// `FILE: MODEL`, or the file alone when the file itself is at fault.
    pub entry: String,
    /// What is wrong (`not JSON: …`, `input_cost_per_token must be a non-negative number,
    /// got …`).
    pub message: String,
}

/// Prices by namespace and model name (lowercase): the embedded table, plus `--prices`
/// overrides.
#[derive(Debug, Clone)]
pub struct PriceTable {
    /// Namespace (`bedrock`, or a regional variant `bedrock/us-gov-west-1`) → model → price.
    namespaces: HashMap<String, HashMap<String, ModelPrice>>,
    /// Where the table came from, e.g. `litellm 1.110.2 + /path/prices.json (3 models)`.
    pub source: String,
}

impl PriceTable {
    /// How many prices the table holds, counted over every namespace and region (a model
    /// priced in two namespaces counts twice).
    pub fn len(&self) -> usize {
        self.namespaces.values().map(HashMap::len).sum()
    }

    /// Whether the table prices no model (the embedded table did not parse).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many models namespace `namespace` (`bedrock`, `azure/eu`) prices; 0 for one the
    /// table does not have.
    pub fn namespace_len(&self, namespace: &str) -> usize {
        self.namespaces.get(namespace).map_or(0, HashMap::len)
    }

    /// The price of `model` in the first of `namespaces` (in order) that has it, each
    /// tried with its matching rules (module docs). `None`: no namespace prices it.
    pub fn lookup(&self, namespaces: &[&str], model: &str) -> Option<&ModelPrice> {
        // Neighbouring namespaces of one kind (`bedrock/us-east-1`, `bedrock`) are searched
        // name first: the most specific name wins before the most specific namespace, so a
        // cross-region profile (`us.…`) priced in `bedrock` is not priced as the bare model
        // of the region the call entered by.
        let kind = |ns: &str| ns.split_once('/').map_or(ns, |(k, _)| k).to_owned();
        let mut rest = namespaces;
        while let Some(first) = rest.first() {
            let k = kind(first);
            let len = rest.iter().take_while(|ns| kind(ns) == k).count();
            let (group, after) = rest.split_at(len);
            let tables: Vec<_> = group
                .iter()
                .filter_map(|ns| self.namespaces.get(*ns))
                .collect();
            let found = candidates(first, model)
                .iter()
                .find_map(|name| tables.iter().find_map(|models| models.get(name)));
            if found.is_some() {
                return found;
            }
            rest = after;
        }
        None
    }

    /// The context window of `model` in tokens (litellm `max_input_tokens`), found as
    /// [`PriceTable::lookup`] finds it. `None`: no price, or litellm does not say.
    pub fn max_input_tokens(&self, namespaces: &[&str], model: &str) -> Option<u64> {
        self.lookup(namespaces, model)?.max_input_tokens
    }

    /// The cost of a call in USD at the processing tier its response reports (see
    /// [`ModelPrice::at_tier`]), with the model found as [`PriceTable::lookup`] finds it in
    /// `namespaces`, cache writes billed by the rule in the module docs. `None` when the model
    /// has no price or the call has no usage. `count_tokens` is free. The sum of
    /// [`PriceTable::breakdown`].
    pub fn cost(
        &self,
        namespaces: &[&str],
        operation: Operation,
        model: Option<&str>,
        service_tier: Option<&str>,
        usage: &Usage,
    ) -> Option<f64> {
        if operation == Operation::CountTokens {
            return Some(0.0);
        }
        let parts = self.breakdown(namespaces, model?, service_tier, usage)?;
        Some(parts.iter().map(|p| p.usd).sum())
    }

    /// A call's cost by kind of token (uncached input, cache read, 5-minute and 1-hour cache
    /// writes, output), each with its tokens and rate: what [`PriceTable::cost`] adds up.
    /// `None` when the model has no price or the call has no usage.
    pub fn breakdown(
        &self,
        namespaces: &[&str],
        model: &str,
        service_tier: Option<&str>,
        usage: &Usage,
    ) -> Option<Vec<CostPart>> {
        let price = self.lookup(namespaces, model)?.at_tier(service_tier);
        if usage.input.is_none() && usage.output.is_none() {
            return None;
        }
        let input = usage.input.unwrap_or(0);
        let rates = price.rates(input);
        let cache_read = usage.cache_read.unwrap_or(0);
        let (w5m, w1h) = (
            usage.cache_write_5m.unwrap_or(0),
            usage.cache_write_1h.unwrap_or(0),
        );
        // Normalized input includes every cache part (ARCHITECTURE.md, "Usage"); bill each
        // part at its own rate and the rest at the input rate. Dialects whose API does not
        // bill cache writes report none.
        let uncached = input
            .saturating_sub(cache_read)
            .saturating_sub(w5m)
            .saturating_sub(w1h);
        let (m5m, m1h) = if model.to_ascii_lowercase().contains("claude") {
            (1.25, 2.0)
        } else {
            (1.0, 1.0)
        };
        let part = |kind: &'static str, tokens: u64, rate: f64| CostPart {
            kind,
            tokens,
            usd_per_mtok: rate * 1e6,
            usd: tokens as f64 * rate,
        };
        Some(vec![
            part("input", uncached, rates.input),
            part(
                "cache_read",
                cache_read,
                rates.cache_read.unwrap_or(rates.input),
            ),
            part(
                "cache_write_5m",
                w5m,
                rates.cache_write_5m.unwrap_or(rates.input * m5m),
            ),
            part(
                "cache_write_1h",
                w1h,
                rates.cache_write_1h.unwrap_or(rates.input * m1h),
            ),
            part("output", usage.output.unwrap_or(0), rates.output),
        ])
    }
}

/// The names to try for `model` in `namespace`, in order (module docs, "Matching a model
/// name"). Empty: the name cannot have a price (an opaque Bedrock ARN).
fn candidates(namespace: &str, model: &str) -> Vec<String> {
    let kind = namespace.split_once('/').map_or(namespace, |(ns, _)| ns);
    let raw = model.trim().to_ascii_lowercase();
    let name = raw.split_once('[').map_or(raw.as_str(), |(base, _)| base);
    let stems: Vec<String> = match kind {
        "anthropic" | "openai" | "gemini" => {
            let mut name = name;
            for prefix in ["models/", "anthropic/", "openai/", "gemini/", "google/"] {
                name = name.strip_prefix(prefix).unwrap_or(name);
            }
            // A router's variant (`:nitro`) is the same model; a `:free` one is not priced.
            let name = match name.rsplit_once(':') {
                Some((_, "free")) => return Vec::new(),
                Some((base, _)) => base,
                None => name,
            };
            let mut stems = vec![name.to_owned()];
            // Routers spell Claude versions with dots (OpenRouter `claude-sonnet-4.5`).
            if name.starts_with("claude-") && name.contains('.') {
                stems.push(name.replace('.', "-"));
            }
            stems
        }
        "bedrock" => match bedrock_stems(name) {
            Some(stems) => stems,
            None => return Vec::new(),
        },
        "vertex_ai" => vertex_stems(name),
        "openrouter" => {
            let mut stems = vec![name.to_owned()];
            if let Some((base, variant)) = name.rsplit_once(':')
                && variant != "free"
            {
                stems.push(base.to_owned());
            }
            stems
        }
        _ => vec![name.to_owned()],
    };
    let mut out = vec![raw.clone()];
    for stem in stems {
        for candidate in [
            Some(stem.clone()),
            strip_date(&stem),
            stem.strip_suffix("-latest").map(str::to_owned),
            strip_version(&stem),
        ]
        .into_iter()
        .flatten()
        {
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

/// Bedrock's cross-region inference-profile prefixes (geographies and `global`).
const BEDROCK_GEOS: [&str; 8] = [
    "us.", "eu.", "apac.", "jp.", "au.", "global.", "us-gov.", "in.",
];

/// The stems of a Bedrock model id or ARN; `None` for an ARN whose id is opaque.
fn bedrock_stems(name: &str) -> Option<Vec<String>> {
    let id = if name.starts_with("arn:") {
        // arn:PARTITION:bedrock:REGION:ACCOUNT:TYPE/ID (the ID may contain `:`).
        let resource = name.splitn(6, ':').nth(5)?;
        let (kind, id) = resource.split_once('/')?;
        if !matches!(kind, "foundation-model" | "inference-profile") {
            return None;
        }
        id.rsplit('/').next()?
    } else {
        name
    };
    let geo_less = BEDROCK_GEOS.iter().find_map(|geo| id.strip_prefix(geo));
    let mut ids = vec![id];
    ids.extend(geo_less);
    let mut stems = Vec::new();
    for id in ids {
        stems.push(id.to_owned());
        if let Some((base, n)) = id.rsplit_once(':')
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
        {
            stems.push(base.to_owned());
            if let Some((base, v)) = base.rsplit_once("-v")
                && !v.is_empty()
                && v.bytes().all(|b| b.is_ascii_digit())
            {
                stems.push(base.to_owned());
            }
        }
    }
    let last = stems.last().cloned().unwrap_or_default();
    if last.starts_with("claude-") {
        stems.push(format!("anthropic.{last}-v1:0"));
        stems.push(format!("anthropic.{last}"));
    }
    Some(stems)
}

/// The stems of a Vertex AI model name or resource path.
fn vertex_stems(name: &str) -> Vec<String> {
    let name = name.rsplit_once("models/").map_or(name, |(_, id)| id);
    let name = name.split_once(':').map_or(name, |(id, _)| id);
    let mut ids = vec![name];
    ids.extend(name.strip_prefix("google/"));
    let mut stems = Vec::new();
    for id in ids {
        stems.push(id.to_owned());
        if let Some((base, _)) = id.split_once('@') {
            stems.push(base.to_owned());
        }
    }
    stems
}

/// `claude-haiku-4-5-20251001` → `claude-haiku-4-5`; `gpt-4o-2024-08-06` → `gpt-4o`.
fn strip_date(name: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((base, date)) = name.rsplit_once('-')
        && date.len() == 8
        && digits(date)
    {
        return Some(base.to_owned());
    }
    let parts: Vec<&str> = name.rsplitn(4, '-').collect();
    if parts.len() == 4
        && parts[2].len() == 4
        && parts[1].len() == 2
        && parts[0].len() == 2
        && parts[..3].iter().all(|p| digits(p))
    {
        return Some(parts[3].to_owned());
    }
    None
}

/// `gemini-2.0-flash-001` → `gemini-2.0-flash`.
fn strip_version(name: &str) -> Option<String> {
    let (base, v) = name.rsplit_once('-')?;
    (v.len() == 3 && v.bytes().all(|b| b.is_ascii_digit())).then(|| base.to_owned())
}
