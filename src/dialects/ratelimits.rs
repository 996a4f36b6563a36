//! The rate-limit and plan-limit headers the providers send on every response, read into
//! numbers. Pure: header names and values in, [`RateLimits`] out (the clock that turns a
//! relative reset into a time is the caller's argument).
//!
//! What is read, by source:
//! - Anthropic subscription windows ("unified" limits, which Claude Code reads on every
//!   response): `anthropic-ratelimit-unified-status` (`allowed`, `allowed_warning`,
//!   `rejected`), and per window (`5h`, `7d`, `7d_opus`, …)
//!   `anthropic-ratelimit-unified-{window}-utilization` (0–1) and `-{window}-reset` (Unix
//!   seconds).
//! - Anthropic API limits (API reference, "Rate limits", response headers):
//!   `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
//!   reset in RFC 3339.
//! - OpenAI API limits (API reference, "Rate limits", headers):
//!   `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, reset a duration from now
//!   (`6m0s`, `20ms`).
//! - Codex on a ChatGPT plan: `x-codex-{primary,secondary}-used-percent` (0–100),
//!   `-window-minutes`, `-reset-at` (Unix seconds) or `-reset-after-seconds`; a window is
//!   named by its length (300 minutes: `5h`, 10080: `7d`, else `<n>m`).
//!
//! Bounded: at most [`MAX_WINDOWS`] windows and the four resources; window names are short
//! tokens (`[a-z0-9_]`, at most 16 bytes) that begin with a digit (a length: `5h`, `7d_opus`)
//! or are `overage`; anything else is ignored.

use std::{
    collections::BTreeMap,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

/// Windows kept per response (Anthropic sends two or three, Codex two).
pub const MAX_WINDOWS: usize = 8;

/// The limits one response reported. Empty when it sent none of these headers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RateLimits {
    /// `anthropic-ratelimit-unified-status`: `allowed`, `allowed_warning`, `rejected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Plan windows by name (`5h`, `7d`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub windows: BTreeMap<String, Window>,
    /// API limits by resource: `requests`, `tokens`, `input_tokens`, `output_tokens`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<&'static str, Resource>,
}

/// One plan window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Window {
    /// How much of the window is used, 0–1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f64>,
    /// When the window resets, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<u64>,
}

/// One API resource's limit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Resource {
    /// The limit per window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// What is left of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// When it is fully replenished, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<u64>,
}

impl RateLimits {
    /// Nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.windows.is_empty() && self.resources.is_empty()
    }

    /// Reads every header `headers` yields (name lowercase, value), at `now`. `None` when
    /// none of them is a limit.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: SystemTime,
    ) -> Option<RateLimits> {
        let mut out = RateLimits::default();
        let mut codex: BTreeMap<&'a str, Codex> = BTreeMap::new();
        for (name, value) in headers {
            let value = value.trim();
            if let Some(rest) = name.strip_prefix("anthropic-ratelimit-unified-") {
                out.unified(rest, value);
            } else if let Some(rest) = name.strip_prefix("anthropic-ratelimit-") {
                out.api(rest, value, rfc3339);
            } else if let Some(rest) = name.strip_prefix("x-ratelimit-") {
                // OpenAI spells `{field}-{resource}`; turn it into `{resource}-{field}`.
                if let Some((field, resource)) = rest.split_once('-') {
                    out.api(&format!("{resource}-{field}"), value, |v| {
                        let after = humantime::parse_duration(v).ok()?;
                        unix(now.checked_add(after)?)
                    });
                }
            } else if let Some(rest) = name.strip_prefix("x-codex-")
                && let Some((which, field)) = rest.split_once('-')
                && matches!(which, "primary" | "secondary")
            {
                let c = codex.entry(which).or_default();
                match field {
                    "used-percent" => c.used = number(value).map(|p| p / 100.0),
                    "window-minutes" => c.minutes = value.parse().ok(),
                    "reset-at" => c.reset_at = value.parse().ok(),
                    "reset-after-seconds" => {
                        c.reset_at = value
                            .parse::<u64>()
                            .ok()
                            .and_then(|s| unix(now.checked_add(Duration::from_secs(s))?));
                    }
                    _ => {}
                }
            }
        }
        for c in codex.into_values() {
            out.codex_window(c.used.map(|u| u * 100.0), c.minutes, c.reset_at);
        }
        (!out.is_empty()).then_some(out)
    }

    /// A Codex plan window: `used_percent` (0–100), its length in minutes (which names it:
    /// 300 is `5h`, 10080 is `7d`, else `<n>m`), its reset in Unix seconds. The same fields
    /// as the `x-codex-{primary,secondary}-*` headers and the `codex.rate_limits` event's
    /// `rate_limits.{primary,secondary}`. A window of unknown length is ignored.
    pub fn codex_window(
        &mut self,
        used_percent: Option<f64>,
        window_minutes: Option<u64>,
        reset_at: Option<u64>,
    ) {
        let name = match window_minutes {
            Some(300) => "5h".to_owned(),
            Some(10080) => "7d".to_owned(),
            Some(m) => format!("{m}m"),
            None => return,
        };
        self.window(&name, |w| {
            w.utilization = used_percent
                .map(|p| p / 100.0)
                .filter(|u| u.is_finite() && (0.0..=10.0).contains(u));
            w.reset = reset_at;
        });
    }

    /// Adds what `other` reported, its values winning.
    pub fn merge(&mut self, other: RateLimits) {
        if other.status.is_some() {
            self.status = other.status;
        }
        for (name, w) in other.windows {
            if self.windows.contains_key(&name) || self.windows.len() < MAX_WINDOWS {
                self.windows.insert(name, w);
            }
        }
        self.resources.extend(other.resources);
    }

    /// `anthropic-ratelimit-unified-` + `rest`.
    fn unified(&mut self, rest: &str, value: &str) {
        if rest == "status" {
            if let Some(v) = token(value) {
                self.status = Some(v.to_owned());
            }
            return;
        }
        let Some((window, field)) = rest.rsplit_once('-') else {
            return;
        };
        match field {
            "utilization" => {
                let u = number(value).filter(|u| (0.0..=10.0).contains(u));
                self.window(window, |w| w.utilization = u);
            }
            "reset" => {
                let r = value.parse().ok();
                self.window(window, |w| w.reset = r);
            }
            _ => {}
        }
    }

    /// `{resource}-{field}` of an API limit, Anthropic's spelling.
    fn api(&mut self, rest: &str, value: &str, reset: impl FnOnce(&str) -> Option<u64>) {
        let Some((resource, field)) = rest.rsplit_once('-') else {
            return;
        };
        let resource = match resource {
            "requests" => "requests",
            "tokens" => "tokens",
            "input-tokens" => "input_tokens",
            "output-tokens" => "output_tokens",
            _ => return,
        };
        let r = self.resources.entry(resource).or_default();
        match field {
            "limit" => r.limit = value.parse().ok(),
            "remaining" => r.remaining = value.parse().ok(),
            "reset" => r.reset = reset(value),
            _ => {}
        }
    }

    fn window(&mut self, name: &str, set: impl FnOnce(&mut Window)) {
        // A window is named by its length (`5h`, `7d`, `7d_opus`, `300m`) or is `overage`.
        let Some(name) =
            token(name).filter(|n| n.starts_with(|c: char| c.is_ascii_digit()) || *n == "overage")
        else {
            return;
        };
        if !self.windows.contains_key(name) && self.windows.len() >= MAX_WINDOWS {
            return;
        }
        set(self.windows.entry(name.to_owned()).or_default());
    }
}

#[derive(Debug, Default)]
struct Codex {
    used: Option<f64>,
    minutes: Option<u64>,
    reset_at: Option<u64>,
}

/// A short token (`[a-z0-9_]`, 1–16 bytes): a window name or a status.
fn token(s: &str) -> Option<&str> {
    (!s.is_empty()
        && s.len() <= 16
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
    .then_some(s)
}

fn number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

fn rfc3339(s: &str) -> Option<u64> {
    unix(humantime::parse_rfc3339_weak(s).ok()?)
}

fn unix(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(headers: &[(&str, &str)]) -> Option<RateLimits> {
        let now = UNIX_EPOCH + Duration::from_secs(1_764_547_200);
        RateLimits::from_headers(headers.iter().copied(), now)
    }

    #[test]
    fn anthropic_unified_windows_and_api_limits() {
        let r = read(&[
            ("anthropic-ratelimit-unified-status", "allowed_warning"),
            ("anthropic-ratelimit-unified-5h-utilization", "0.42"),
            ("anthropic-ratelimit-unified-5h-reset", "1764558000"),
            ("anthropic-ratelimit-unified-7d-utilization", "0.85"),
            ("anthropic-ratelimit-unified-7d-reset", "1765000000"),
            (
                "anthropic-ratelimit-unified-representative-claim",
                "five_hour",
            ),
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "49"),
            ("anthropic-ratelimit-requests-reset", "2025-12-01T00:00:30Z"),
            ("anthropic-ratelimit-input-tokens-remaining", "30000"),
            ("content-type", "text/event-stream"),
        ])
        .expect("limits");
        assert_eq!(r.status.as_deref(), Some("allowed_warning"));
        assert_eq!(r.windows["5h"].utilization, Some(0.42));
        assert_eq!(r.windows["5h"].reset, Some(1_764_558_000));
        assert_eq!(r.windows["7d"].utilization, Some(0.85));
        assert_eq!(r.windows.len(), 2, "{:?}", r.windows);
        let req = &r.resources["requests"];
        assert_eq!((req.limit, req.remaining), (Some(50), Some(49)));
        assert_eq!(req.reset, Some(1_764_547_230));
        assert_eq!(r.resources["input_tokens"].remaining, Some(30_000));
    }

    #[test]
    fn openai_and_codex() {
        let r = read(&[
            ("x-ratelimit-limit-requests", "500"),
            ("x-ratelimit-remaining-requests", "499"),
            ("x-ratelimit-reset-requests", "120ms"),
            ("x-ratelimit-remaining-tokens", "29000"),
            ("x-ratelimit-reset-tokens", "6m0s"),
            ("x-codex-primary-used-percent", "42.5"),
            ("x-codex-primary-window-minutes", "300"),
            ("x-codex-primary-reset-at", "1764558000"),
            ("x-codex-secondary-used-percent", "7"),
            ("x-codex-secondary-window-minutes", "10080"),
            ("x-codex-secondary-reset-after-seconds", "3600"),
        ])
        .expect("limits");
        assert_eq!(r.resources["requests"].limit, Some(500));
        assert_eq!(r.resources["requests"].reset, Some(1_764_547_200));
        assert_eq!(r.resources["tokens"].reset, Some(1_764_547_200 + 360));
        assert_eq!(r.windows["5h"].utilization, Some(0.425));
        assert_eq!(r.windows["5h"].reset, Some(1_764_558_000));
        assert_eq!(r.windows["7d"].utilization, Some(0.07));
        assert_eq!(r.windows["7d"].reset, Some(1_764_547_200 + 3600));
    }

    #[test]
    fn hostile_values_are_ignored_and_windows_bounded() {
        assert_eq!(read(&[("content-type", "x")]), None);
        let names: Vec<String> = (0..50)
            .map(|i| format!("anthropic-ratelimit-unified-{i}d-utilization"))
            .collect();
        let mut headers: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "0.5")).collect();
        headers.push(("anthropic-ratelimit-unified-5h-utilization", "NaN"));
        headers.push(("anthropic-ratelimit-unified-Bad Name-utilization", "0.1"));
        headers.push(("anthropic-ratelimit-unified-status", "<script>"));
        headers.push(("anthropic-ratelimit-bogus-limit", "1"));
        let r = read(&headers).expect("limits");
        assert_eq!(r.windows.len(), MAX_WINDOWS);
        assert!(r.windows.keys().all(|k| k.ends_with('d')));
        assert_eq!(
            read(&[("anthropic-ratelimit-unified-anything-utilization", "0.1")]),
            None,
            "a window is named by its length"
        );
        assert_eq!(r.status, None);
        assert!(r.resources.is_empty());
    }
}
