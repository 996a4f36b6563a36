//! llmtap's typed vocabulary: every value an output (metric label, span attribute, call line
//! field) can take that is not traffic-derived, each spelled once.
//!
//! Owns: [`Outcome`], [`ErrorType`], [`TokenType`], and the [`label!`] macro that gives an
//! enum its one spelling (`as_str`, `Serialize`, `ALL`) from its `strum` attributes.
//! Other label enums live with the concept they name and use the same macro:
//! [`Client`](crate::caller::Client) and [`Billing`](crate::caller::Billing) (who is
//! calling), [`Refusal`](crate::policy::Refusal) (the destination policy).
//! Does not own: metric and attribute *names* (`telemetry::names`).

use std::borrow::Cow;

/// Gives a fieldless enum deriving `strum::IntoStaticStr` and `strum::VariantArray` its
/// label methods: `as_str()` (the `strum` spelling), `ALL` (every variant, declaration order)
/// and `Serialize` as that string. One spelling per value, used by metrics, spans, call
/// lines and `report`.
macro_rules! label {
    ($t:ty) => {
        impl $t {
            /// Every value, in declaration order.
            pub const ALL: &'static [$t] = <$t as strum::VariantArray>::VARIANTS;

            /// The value as labels, attributes and call lines spell it.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use label;

/// Where a call's cost came from: the span attribute `llmtap.cost_source` and the call
/// line's `cost_source`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, strum::IntoStaticStr, strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum CostSource {
    /// `table`: usage × the price table's rates (`pricing`).
    #[default]
    Table,
    /// `provider`: what the provider said it billed (OpenRouter `usage.cost`); the table's
    /// price is kept beside it.
    Provider,
}

label!(CostSource);

/// How a call ended. Label values of `llmtap_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    /// A response that completed (or a stream whose terminal event arrived).
    Ok,
    /// A 4xx other than 429, or an in-band error saying so.
    ClientError,
    /// A 5xx, an in-band API error, a broken or cut stream, an unreachable upstream.
    UpstreamError,
    /// 429, or an in-band error type that means rate, quota or plan usage limit.
    RateLimited,
    /// The client went away before the call completed.
    Cancelled,
    /// llmtap itself refused the call (the destination policy).
    ProxyError,
}

label!(Outcome);

/// Why a retried call's earlier attempt failed: the `reason` label of
/// `llmtap_retries_total` and the call line's `retry_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum RetryReason {
    /// 429, or an in-band rate, quota or plan limit error.
    RateLimited,
    /// Anthropic's 529 / `overloaded_error`.
    Overloaded,
    /// Another 5xx or in-band API error.
    ServerError,
    /// The stream was cut (no terminal event, or the body broke off).
    StreamTruncated,
    /// The client went away first (and came back with the same request).
    Cancelled,
    /// Connect, TLS or request failure before a response.
    UpstreamError,
    /// A connect, response-head or stream-idle timeout.
    Timeout,
}

label!(RetryReason);

/// Longest API error type kept, in bytes: longer values are cut at a character boundary
/// (the value is traffic-derived; the label cap bounds how many, this bounds how long).
pub const API_ERROR_TYPE_MAX: usize = 64;

/// Why a call failed: the `error.type` span attribute, the `error_type` label of
/// `llmtap_errors_total` and field of the call line.
///
/// Per the OpenTelemetry conventions (`error.type`): the API's own error type when the
/// response names one, else the HTTP status code as a string, else a low-cardinality name
/// of what llmtap saw go wrong.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// The error type the API sent (`error.type` of Anthropic and OpenAI, Google's
    /// `error.status`), at most [`API_ERROR_TYPE_MAX`] bytes.
    Api(Box<str>),
    /// An HTTP error status whose body named no error type (`"503"`).
    Status(u16),
    /// `cancelled`: the client went away first.
    Cancelled,
    /// `destination_refused`: the destination policy refused the upstream address.
    DestinationRefused,
    /// `upstream_connect`: TCP to the upstream failed.
    UpstreamConnect,
    /// `upstream_tls`: the upstream's TLS handshake or certificate failed.
    UpstreamTls,
    /// `upstream_request`: the request failed after connecting, before a response head.
    UpstreamRequest,
    /// `upstream_reset`: the response body broke off mid-way.
    UpstreamReset,
    /// `upstream_timeout`: connect, response head or stream-idle timeout.
    UpstreamTimeout,
    /// `stream_truncated`: a stream observed to its end had no terminal event.
    StreamTruncated,
}

impl ErrorType {
    /// The API's error type as a label may carry it: visible ASCII only (a control
    /// character or a newline sent by an upstream must not forge a line of the text call
    /// line or of a log; anything else is dropped), cut to [`API_ERROR_TYPE_MAX`] bytes.
    /// Every error type from a response passes here.
    pub fn api(value: &str) -> ErrorType {
        let kept: String = value
            .chars()
            .filter(char::is_ascii_graphic)
            .take(API_ERROR_TYPE_MAX)
            .collect();
        ErrorType::Api(kept.into())
    }

    /// The value as labels, attributes and call lines spell it.
    pub fn as_str(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self {
            ErrorType::Api(kind) => kind,
            ErrorType::Status(status) => return Cow::Owned(status.to_string()),
            ErrorType::Cancelled => "cancelled",
            ErrorType::DestinationRefused => "destination_refused",
            ErrorType::UpstreamConnect => "upstream_connect",
            ErrorType::UpstreamTls => "upstream_tls",
            ErrorType::UpstreamRequest => "upstream_request",
            ErrorType::UpstreamReset => "upstream_reset",
            ErrorType::UpstreamTimeout => "upstream_timeout",
            ErrorType::StreamTruncated => "stream_truncated",
        })
    }
}

impl std::fmt::Display for ErrorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl serde::Serialize for ErrorType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

/// Kinds of tokens: the `type` label of `llmtap_tokens_total`, the keys of the call line's
/// `usage` and of a price entry. Input includes cached tokens and output includes reasoning
/// (the GenAI conventions' `gen_ai.usage.input_tokens` / `output_tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum TokenType {
    /// `input`: every prompt token, the cache parts below included.
    Input,
    /// `output`: every generated token, reasoning included.
    Output,
    /// `cache_read`: prompt tokens served from the provider's cache (part of input).
    CacheRead,
    /// `cache_write_5m`: prompt tokens written to a 5-minute cache (part of input;
    /// Anthropic only).
    #[strum(serialize = "cache_write_5m")]
    CacheWrite5m,
    /// `cache_write_1h`: prompt tokens written to a 1-hour cache (part of input; Anthropic
    /// only).
    #[strum(serialize = "cache_write_1h")]
    CacheWrite1h,
    /// `reasoning`: generated tokens spent thinking (part of output).
    Reasoning,
}

label!(TokenType);

/// Whether a call's cost is unknown: it has no price, yet it cost something — it succeeded
/// (`ok`) or it reported tokens (`used_tokens`). A failed call without usage cost nothing.
/// The one rule behind `llmtap_cost_unknown_total`, the call line's `cost=?`, and the
/// unpriced counts of `wrap` and `report`.
pub fn cost_unknown(cost_usd: Option<f64>, ok: bool, used_tokens: bool) -> bool {
    cost_usd.is_none() && (ok || used_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_value_is_spelled_once_and_serialized_the_same() {
        for outcome in Outcome::ALL {
            let json = serde_json::to_string(outcome).expect("serializes");
            assert_eq!(json, format!("\"{}\"", outcome.as_str()));
        }
        assert_eq!(Outcome::RateLimited.as_str(), "rate_limited");
        let kinds: Vec<_> = TokenType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "input",
                "output",
                "cache_read",
                "cache_write_5m",
                "cache_write_1h",
                "reasoning"
            ]
        );
    }

    #[test]
    fn error_types_spell_status_codes_and_cap_api_types() {
        assert_eq!(ErrorType::Status(503).as_str(), "503");
        assert_eq!(ErrorType::UpstreamReset.to_string(), "upstream_reset");
        let long = format!("{}é", "x".repeat(API_ERROR_TYPE_MAX - 1));
        assert_eq!(
            ErrorType::api(&long).as_str(),
            "x".repeat(API_ERROR_TYPE_MAX - 1)
        );
        assert_eq!(
            ErrorType::api(&"y".repeat(API_ERROR_TYPE_MAX + 9))
                .as_str()
                .len(),
            API_ERROR_TYPE_MAX
        );
        assert_eq!(
            serde_json::to_string(&ErrorType::api("overloaded_error")).expect("serializes"),
            "\"overloaded_error\""
        );
    }

    /// Bug (found by review): an upstream's `error.type` reached the text call line as sent,
    /// so `"x\n15:00:00.000Z claude-code … cost=$0"` forged a call line on stdout.
    #[test]
    fn an_api_error_type_cannot_forge_a_call_line() {
        let forged = ErrorType::api("overloaded\n12:00:00.000Z codex openai x 200 ok\r\t ");
        assert_eq!(forged.as_str(), "overloaded12:00:00.000Zcodexopenaix200ok");
    }

    #[test]
    fn cost_is_unknown_only_when_something_was_spent() {
        assert!(cost_unknown(None, true, false));
        assert!(cost_unknown(None, false, true));
        assert!(!cost_unknown(None, false, false));
        assert!(!cost_unknown(Some(0.1), true, true));
    }
}
