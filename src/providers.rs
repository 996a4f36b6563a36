//! The provider table: who serves an LLM API on which hosts, which wire formats (dialects)
//! it speaks under which path prefixes, and where its prices come from.
//!
//! Owns: [`Providers`] (the embedded table `providers/providers.json`, `--providers FILE`
//! entries, `--intercept` / `--no-intercept` patterns), host patterns ([`HostPattern`]),
//! path prefixes ([`PathPattern`]), and finding a request's [`Route`]: the host picks the
//! provider, a prefix of the path picks where its API lives, and the rest of the path picks
//! the dialect ([`Dialect::detect`]). A compatible endpoint is therefore one table entry,
//! not code: the same `anthropic_messages` dialect reads `/v1/messages` on Anthropic,
//! `/anthropic/v1/messages` on DeepSeek and `…/publishers/anthropic/models/{m}:rawPredict`
//! on Vertex AI.
//!
//! Does not own: the wire formats (`dialects`), prices (`pricing`, which the entries name by
//! namespace), or the decision to decrypt at all (the proxy asks [`Providers::intercepts`]).
//!
//! The file shape (README, "Supported APIs"; the embedded table is the reference):
//! ```json
//! {"providers": [
//!   {"name": "deepseek",                      // gen_ai.provider.name, the `provider` label
//!    "hosts": ["api.deepseek.com"],           // host patterns, `*` within one label
//!    "apis": {"openai_chat_completions": ["", "/v1"],   // dialect → path prefixes
//!             "anthropic_messages": ["/anthropic"]},
//!    "prices": ["deepseek"],                  // price namespaces, tried in order
//!    "price_model": "response",               // or "request" (optional; see PriceModel)
//!    "billed_cost": false,                    // the provider's billed cost is the cost
//!    "context_windows": {"deepseek-chat": 131072}}  // model → context window, tokens
//! ]}
//! ```

use std::sync::Arc;

use serde::Deserialize;

use crate::dialects::{self, DIALECTS, Dialect, Framing, Operation, Target};

/// The embedded table, in the `--providers` file shape.
const BUILTIN: &str = include_str!("providers/providers.json");

/// Price namespaces of a host added with `--intercept` that no entry names: a gateway in
/// front of the first-party APIs serves their models.
const FIRST_PARTY_PRICES: &[&str] = &["anthropic", "openai", "gemini"];

/// Longest provider name: it is a metric label value and a span attribute.
const MAX_NAME: usize = 64;

/// Most segments any dialect's path suffix has (`/v1/messages/count_tokens`,
/// `/model/{id}/converse`: 3), with room to spare: how far back a `**` prefix looks.
const MAX_SUFFIX_SEGMENTS: usize = 6;

/// A host pattern (README, "Supported APIs"): DNS labels compared one by one,
/// case-insensitively; `*` inside a label matches one or more characters of that label and
/// never a dot (RFC 6125 §6.4.3 allows a wildcard in one label; here any label may hold one,
/// for `bedrock-runtime.*.amazonaws.com`). A pattern with a wildcard must end in at least
/// two literal labels (`*.com` would decrypt half the Internet); an IP literal matches only
/// itself. Written here rather than taken from a glob crate: globs let `*` cross dots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    text: Box<str>,
    labels: Vec<Box<str>>,
    /// An IP literal: matches only the same address, however it is spelled.
    ip: Option<std::net::IpAddr>,
}

impl HostPattern {
    /// Parses `text` (lowercased, brackets of an IPv6 literal removed).
    ///
    /// # Errors
    /// A message naming what is wrong: an empty label, a character outside `a-z 0-9 - *`,
    /// two `*` in one label, a label over 63 bytes, or a wildcard without two literal labels
    /// after it.
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let host = crate::wire::normalize_host(text.trim());
        let host = host.trim_end_matches('.');
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(HostPattern {
                text: host.into(),
                labels: Vec::new(),
                ip: Some(ip),
            });
        }
        let labels: Vec<Box<str>> = host.split('.').map(Box::from).collect();
        for label in &labels {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("'{text}' is not a host name or pattern"));
            }
            if !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
            {
                return Err(format!("'{text}' is not a host name or pattern"));
            }
            if label.matches('*').count() > 1 {
                return Err(format!("'{text}': at most one '*' per label"));
            }
        }
        let literal_tail = labels.iter().rev().take_while(|l| !l.contains('*')).count();
        if literal_tail < labels.len() && literal_tail < 2 {
            return Err(format!(
                "'{text}': a wildcard must be followed by at least two literal labels"
            ));
        }
        Ok(HostPattern {
            text: host.into(),
            labels,
            ip: None,
        })
    }

    /// The pattern as written (normalized).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `host` (as [`normalize_host`](crate::wire::normalize_host) spells it)
    /// matches.
    pub fn matches(&self, host: &str) -> bool {
        self.capture(host).is_some()
    }

    /// What the pattern's first `*` matched in `host` (`us-east-1` of
    /// `bedrock-runtime.us-east-1.amazonaws.com`); `Some("")` for a match without a
    /// wildcard, `None` when `host` does not match.
    pub fn capture<'h>(&self, host: &'h str) -> Option<&'h str> {
        let host = host.trim_end_matches('.');
        if let Some(ip) = self.ip {
            return (host.parse::<std::net::IpAddr>().ok() == Some(ip)).then_some("");
        }
        let mut labels = host.split('.');
        let mut captured = None;
        for pattern in &self.labels {
            let label = labels.next()?;
            if !label_matches(pattern, label) {
                return None;
            }
            if captured.is_none()
                && let Some((prefix, suffix)) = pattern.split_once('*')
            {
                captured = Some(&label[prefix.len()..label.len() - suffix.len()]);
            }
        }
        labels.next().is_none().then_some(captured.unwrap_or(""))
    }
}

/// One label against one pattern label: equal, or `prefix*suffix` with at least one
/// character for the `*`.
fn label_matches(pattern: &str, label: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(label),
        Some((prefix, suffix)) => {
            label.len() > prefix.len() + suffix.len()
                && label
                    .get(..prefix.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
                && label
                    .get(label.len() - suffix.len()..)
                    .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
        }
    }
}

/// One segment of a [`PathPattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Must equal the path segment (case-sensitive, RFC 3986 §6.2.2.1).
    Literal(Box<str>),
    /// `*`: any one non-empty segment.
    Any,
    /// `{model}`: any one non-empty segment, which names the model (Azure's deployment)
    /// when the request body does not.
    Model,
    /// `**` (last segment only): any number of segments, none included.
    Rest,
}

/// A path prefix under which a provider serves an API: `""` (the API at the root),
/// `/openai/v1`, `/v1/projects/*/locations/*/publishers/anthropic`,
/// `/openai/deployments/{model}`. Matches whole segments at the start of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: Box<str>,
    segments: Vec<Segment>,
}

/// Where a prefix ended in a path, and the model it named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PrefixMatch<'a> {
    /// Byte offset of the rest (the dialect's part, starting with `/`).
    rest: usize,
    /// The `{model}` segment, still percent-encoded.
    model: Option<&'a str>,
}

impl PathPattern {
    /// Parses a prefix.
    ///
    /// # Errors
    /// A message naming what is wrong: a prefix not starting with `/` (unless empty), an
    /// empty segment or a trailing `/`, a `**` that is not the last segment, a segment with a
    /// query or fragment character.
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        if text.is_empty() {
            return Ok(PathPattern {
                text: "".into(),
                segments: Vec::new(),
            });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!("path prefix '{text}' must start with '/'"));
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let mut segments = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let segment = match *part {
                "" => return Err(format!("path prefix '{text}' has an empty segment")),
                "*" => Segment::Any,
                "{model}" => Segment::Model,
                "**" if i + 1 == parts.len() => Segment::Rest,
                "**" => return Err(format!("path prefix '{text}': '**' must come last")),
                p if p.contains(['?', '#', '*', '{', '}']) => {
                    return Err(format!("path prefix '{text}': bad segment '{p}'"));
                }
                p => Segment::Literal(p.into()),
            };
            segments.push(segment);
        }
        Ok(PathPattern {
            text: text.into(),
            segments,
        })
    }

    /// The prefix as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Every place the prefix can end in `path` (one, or several after `**`), shortest
    /// prefix first.
    fn ends<'a>(&self, path: &'a str) -> Vec<PrefixMatch<'a>> {
        let mut at = 0;
        let mut model = None;
        for segment in &self.segments {
            if *segment == Segment::Rest {
                // Only the last few segment boundaries: no dialect's suffix has more than
                // MAX_SUFFIX_SEGMENTS segments, and trying every `/` of a 64 KiB path of
                // slashes would be quadratic work (each dialect reads the whole rest).
                let mut ends: Vec<PrefixMatch<'a>> = path[at..]
                    .rmatch_indices('/')
                    .take(MAX_SUFFIX_SEGMENTS)
                    .map(|(i, _)| PrefixMatch {
                        rest: at + i,
                        model,
                    })
                    .collect();
                ends.reverse();
                return ends;
            }
            let Some(after) = path[at..].strip_prefix('/') else {
                return Vec::new();
            };
            let len = after.find('/').unwrap_or(after.len());
            let part = &after[..len];
            let ok = match segment {
                Segment::Literal(lit) => part == &**lit,
                Segment::Any => !part.is_empty(),
                Segment::Model => {
                    model = Some(part);
                    !part.is_empty()
                }
                Segment::Rest => unreachable!("handled above"),
            };
            if !ok {
                return Vec::new();
            }
            at += 1 + len;
        }
        vec![PrefixMatch { rest: at, model }]
    }
}

/// One entry of the table.
#[derive(Debug)]
pub struct Provider {
    /// `gen_ai.provider.name`: the GenAI conventions' well-known value where one exists
    /// (`aws.bedrock`, `gcp.vertex_ai`, `azure.ai.openai`, …), else the service's own short
    /// name (`openrouter`). Also the `provider` metric label and call-line field.
    pub name: Arc<str>,
    /// Hosts served.
    pub hosts: Vec<HostPattern>,
    /// The dialects spoken, each under its path prefixes (tried in order).
    pub apis: Vec<(&'static Dialect, Vec<PathPattern>)>,
    /// Price namespaces (`pricing`), tried in order.
    pub prices: Vec<Box<str>>,
    /// Which model a call is priced by.
    pub price_model: PriceModel,
    /// The cost the provider says it billed (OpenRouter's `usage.cost`) is the call's cost.
    /// Only for entries that opt in: any upstream could otherwise set a call's cost.
    pub billed_cost: bool,
    /// Context windows in tokens by model name, for models the price data does not know
    /// (a gateway's own names, a self-hosted model): they win over `max_input_tokens`.
    pub context_windows: std::collections::BTreeMap<String, u64>,
}

/// Which of a call's models decides its price (the other is the fallback when the first is
/// absent or unpriced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceModel {
    /// `response`: the model the response names (a dated snapshot, Azure's model behind a
    /// free-form deployment name), else the one the request asked for.
    #[default]
    Response,
    /// `request`: the model the request asked for. Bedrock bills the model id or inference
    /// profile invoked (`us.anthropic.…` costs more than `anthropic.…`, Bedrock pricing,
    /// "Cross-region inference"), and its responses name the model without the profile.
    Request,
}

impl Provider {
    /// The name (`gen_ai.provider.name`).
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The price namespaces as a slice of `&str`, for `PriceTable::cost`, with `{region}`
    /// left in (see [`Provider::price_namespaces_for`]).
    pub fn price_namespaces(&self) -> Vec<&str> {
        self.prices.iter().map(|p| &**p).collect()
    }

    /// The price namespaces of a call to `host`: a namespace with `{region}` gets what the
    /// first `*` of the host pattern matched (`bedrock/{region}` on
    /// `bedrock-runtime.us-gov-west-1.amazonaws.com` is `bedrock/us-gov-west-1`, litellm's
    /// regional prices); one whose region the host does not say is left out.
    pub fn price_namespaces_for(&self, host: &str) -> Vec<String> {
        let region = self
            .hosts
            .iter()
            .find_map(|h| h.capture(host))
            .filter(|r| !r.is_empty());
        self.prices
            .iter()
            .filter_map(|p| match (p.contains("{region}"), region) {
                (false, _) => Some(p.to_string()),
                (true, Some(region)) => Some(p.replace("{region}", region)),
                (true, None) => None,
            })
            .collect()
    }

    /// A provider for tests and fallbacks: `name` on no host, speaking nothing.
    pub fn named(name: &str, prices: &[&str]) -> Provider {
        Provider {
            name: name.into(),
            hosts: Vec::new(),
            apis: Vec::new(),
            prices: prices.iter().map(|p| (*p).into()).collect(),
            price_model: PriceModel::Response,
            billed_cost: false,
            context_windows: Default::default(),
        }
    }
}

/// An endpoint recognised as an LLM call.
#[derive(Debug, Clone)]
pub struct Route {
    /// Who serves it.
    pub provider: Arc<Provider>,
    /// The dialect that parses the call; its name is the call's `llmtap.api`.
    pub dialect: &'static Dialect,
    /// What kind of call it is.
    pub operation: Operation,
    /// How a non-SSE response body is framed.
    pub framing: Framing,
    /// Byte offset in the request path where the dialect's part begins (after the
    /// provider's prefix): the path the dialect's request parser reads.
    pub api_path: usize,
    /// The model a `{model}` prefix segment named (percent-decoded), used when the request
    /// body names none (Azure OpenAI's deployment).
    pub path_model: Option<String>,
}

impl Route {
    /// The part of `path` (the request's path) the dialect reads: after the provider's
    /// prefix.
    pub fn api_path<'a>(&self, path: &'a str) -> &'a str {
        path.get(self.api_path..).unwrap_or_default()
    }
}

/// An error in the provider table or a `--providers` file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry}: {message}")]
pub struct ProviderError {
    /// `FILE: provider NAME`, or the flag.
    pub entry: String,
    /// What is wrong.
    pub message: String,
}

/// The file shape (module docs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    providers: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    hosts: Vec<String>,
    apis: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    prices: Vec<String>,
    #[serde(default)]
    price_model: PriceModel,
    #[serde(default)]
    billed_cost: bool,
    #[serde(default)]
    context_windows: std::collections::BTreeMap<String, u64>,
}

/// The provider table in force: entries in lookup order, and the hosts `--no-intercept`
/// removed.
#[derive(Debug)]
pub struct Providers {
    entries: Vec<Arc<Provider>>,
    no_intercept: Vec<HostPattern>,
}

impl Providers {
    /// The embedded table alone.
    pub fn builtin() -> Providers {
        let entries = parse_file("built-in table", BUILTIN)
            .expect("the embedded provider table is valid (tested)");
        Providers {
            entries,
            no_intercept: Vec::new(),
        }
    }

    /// The table llmtap runs with: `file`'s entries (`--providers`, `(path, text)`) first,
    /// replacing built-in entries of the same name; then the built-in ones; then one entry
    /// per `--intercept` pattern no entry covers (named after the pattern, every dialect under
    /// any prefix, first-party prices). `no_intercept` patterns remove hosts.
    ///
    /// # Errors
    /// A [`ProviderError`] naming the flag or the file entry at fault.
    pub fn new(
        file: Option<(&str, &str)>,
        intercept: &[String],
        no_intercept: &[String],
    ) -> Result<Providers, ProviderError> {
        let mut entries = match file {
            Some((path, text)) => parse_file(path, text)?,
            None => Vec::new(),
        };
        for builtin in Providers::builtin().entries {
            if !entries.iter().any(|e| e.name == builtin.name) {
                entries.push(builtin);
            }
        }
        let flag = |name: &str, message: String| ProviderError {
            entry: name.to_owned(),
            message,
        };
        for text in intercept {
            let pattern = HostPattern::parse(text).map_err(|m| flag("--intercept", m))?;
            let covered = entries.iter().any(|e| {
                e.hosts
                    .iter()
                    .any(|h| h.matches(pattern.as_str()) || *h == pattern)
            });
            if !covered {
                entries.push(Arc::new(generic(pattern)));
            }
        }
        let no_intercept = no_intercept
            .iter()
            .map(|text| HostPattern::parse(text).map_err(|m| flag("--no-intercept", m)))
            .collect::<Result<_, _>>()?;
        Ok(Providers {
            entries,
            no_intercept,
        })
    }

    /// Every entry, in lookup order.
    pub fn entries(&self) -> &[Arc<Provider>] {
        &self.entries
    }

    /// The intercepted host patterns, for the start-up banner.
    pub fn intercepted(&self) -> Vec<&str> {
        self.entries
            .iter()
            .flat_map(|e| e.hosts.iter().map(HostPattern::as_str))
            .filter(|h| {
                !self
                    .no_intercept
                    .iter()
                    .any(|n| n.matches(h) || n.as_str() == *h)
            })
            .collect()
    }

    /// Whether CONNECTs to `host` are decrypted: some entry serves it and `--no-intercept`
    /// does not remove it.
    pub fn intercepts(&self, host: &str) -> bool {
        self.provider_of(host).is_some()
    }

    /// The first entry serving `host`, unless `--no-intercept` removed it.
    pub fn provider_of(&self, host: &str) -> Option<&Arc<Provider>> {
        let host = crate::wire::normalize_host(host);
        if self.no_intercept.iter().any(|n| n.matches(&host)) {
            return None;
        }
        self.entries
            .iter()
            .find(|e| e.hosts.iter().any(|h| h.matches(&host)))
    }

    /// The route of a request, or `None` for traffic forwarded unrecorded: the provider of
    /// its host, then the first (dialect, prefix) whose prefix the path starts with and whose
    /// dialect recognises the rest.
    pub fn route(&self, target: &Target<'_>) -> Option<Route> {
        let provider = self.provider_of(target.host)?;
        for (dialect, prefixes) in &provider.apis {
            for prefix in prefixes {
                for end in prefix.ends(target.path) {
                    let rest = &target.path[end.rest..];
                    let api_target = Target {
                        path: rest,
                        ..*target
                    };
                    if let Some((operation, framing)) = (dialect.detect)(&api_target) {
                        return Some(Route {
                            provider: provider.clone(),
                            dialect,
                            operation,
                            framing,
                            api_path: end.rest,
                            path_model: end.model.and_then(crate::wire::percent_decode),
                        });
                    }
                }
            }
        }
        None
    }
}

/// The entry of an `--intercept` pattern that no entry covers.
fn generic(pattern: HostPattern) -> Provider {
    let any = PathPattern::parse("/**").expect("valid");
    Provider {
        name: pattern.as_str().into(),
        hosts: vec![pattern],
        apis: DIALECTS.iter().map(|d| (d, vec![any.clone()])).collect(),
        prices: FIRST_PARTY_PRICES.iter().map(|p| (*p).into()).collect(),
        price_model: PriceModel::Response,
        billed_cost: false,
        context_windows: Default::default(),
    }
}

fn parse_file(path: &str, text: &str) -> Result<Vec<Arc<Provider>>, ProviderError> {
    let file: File = serde_json::from_str(text).map_err(|e| ProviderError {
        entry: path.to_owned(),
        message: format!("not a provider table: {e}"),
    })?;
    let mut names = std::collections::HashSet::new();
    file.providers
        .into_iter()
        .map(|entry| {
            let at = |message: String| ProviderError {
                entry: format!("{path}: provider {:?}", entry.name),
                message,
            };
            if entry.name.is_empty()
                || entry.name.len() > MAX_NAME
                || !entry.name.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(at(format!(
                    "name must be 1 to {MAX_NAME} visible ASCII characters"
                )));
            }
            if !names.insert(entry.name.clone()) {
                return Err(at("named twice".to_owned()));
            }
            let hosts = entry
                .hosts
                .iter()
                .map(|h| HostPattern::parse(h))
                .collect::<Result<Vec<_>, _>>()
                .map_err(at)?;
            let mut apis = Vec::new();
            for (api, prefixes) in &entry.apis {
                let dialect = dialects::by_name(api).ok_or_else(|| {
                    at(format!(
                        "unknown api '{api}' (known: {})",
                        DIALECTS
                            .iter()
                            .map(|d| d.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                let prefixes = prefixes
                    .iter()
                    .map(|p| PathPattern::parse(p))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(at)?;
                apis.push((dialect, prefixes));
            }
            if let Some((model, _)) = entry.context_windows.iter().find(|(_, w)| **w == 0) {
                return Err(at(format!(
                    "context window of {model:?} must be over 0 tokens"
                )));
            }
            Ok(Arc::new(Provider {
                name: entry.name.as_str().into(),
                hosts,
                apis,
                prices: entry.prices.iter().map(|p| p.as_str().into()).collect(),
                price_model: entry.price_model,
                billed_cost: entry.billed_cost,
                context_windows: entry.context_windows.clone(),
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests;
