//! The generation parameters a request sets, as the GenAI conventions name them
//! (`gen_ai.request.top_p`, `top_k`, `stop_sequences`, `seed`, `frequency_penalty`,
//! `presence_penalty`, `choice.count`, `gen_ai.output.type`, `gen_ai.request.reasoning.level`,
//! `gen_ai.request.previous_response.id`, `openai.request.service_tier`), read by every
//! dialect's request reader through one function ([`Params::read`]): the APIs spell them
//! differently, but no spelling means two things, so one table of spellings serves all.
//!
//! | Parameter | Messages | Chat | Responses | Gemini `generationConfig` | Converse `inferenceConfig` |
//! |---|---|---|---|---|---|
//! | top_p | `top_p` | `top_p` | `top_p` | `topP` | `topP` |
//! | top_k | `top_k` | | | `topK` | |
//! | stop_sequences | `stop_sequences` | `stop` | | `stopSequences` | `stopSequences` |
//! | seed | | `seed` | | `seed` | |
//! | penalties | | `frequency_penalty`, `presence_penalty` | | `frequencyPenalty`, `presencePenalty` | |
//! | choice count | | `n` | | `candidateCount` | |
//! | output type | `output_config.format.type` | `response_format.type` | `text.format.type` | `responseMimeType` | |
//! | reasoning level | `output_config.effort`, else `thinking.type` | `reasoning_effort` | `reasoning.effort` | `thinkingConfig.thinkingLevel` | |
//! | service tier | `service_tier` | `service_tier` | `service_tier` | | |
//! | previous response | | | `previous_response_id` | | |
//!
//! Sources: each API's request reference. Strings are kept short (stop sequences: 16 of at most
//! 256 bytes; other values 64 bytes), so a request cannot make them large.

use serde::{
    Serialize,
    de::{MapAccess, SeqAccess},
};

use super::lenient::{self, F64, Shape, U64, next_key, skip, value};

/// The parameters a request set; each absent when it did not.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Params {
    /// `gen_ai.request.top_p`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// `gen_ai.request.top_k` (int).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u64>,
    /// `gen_ai.request.stop_sequences`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    /// `gen_ai.request.seed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// `gen_ai.request.frequency_penalty`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    /// `gen_ai.request.presence_penalty`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// `gen_ai.request.choice.count`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choice_count: Option<u64>,
    /// `gen_ai.output.type`: `text` or `json` (the conventions' values), from the format the
    /// request asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_type: Option<&'static str>,
    /// `gen_ai.request.reasoning.level`: the value the client sent (`high`, `adaptive`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_level: Option<String>,
    /// `openai.request.service_tier` (and Anthropic's `service_tier`): as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// `gen_ai.request.previous_response.id`: Responses' `previous_response_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_response_id: Option<String>,
}

/// Stop sequences kept, and the bytes of each.
const MAX_STOPS: usize = 16;
const MAX_STOP_BYTES: usize = 256;
/// Bytes of any other string value kept (longer: not kept).
const MAX_VALUE: usize = 64;

impl Params {
    /// Reads the value of `key` (just read from `map`) when it is a parameter; returns
    /// whether it was (else the caller reads or skips the value).
    pub(crate) fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: Option<&str>,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        match key {
            Some("top_p" | "topP") => self.top_p = value(map, F64)?,
            Some("top_k" | "topK") => self.top_k = value(map, U64)?,
            Some("stop_sequences" | "stop" | "stopSequences") => {
                self.stop_sequences = value(map, Stops)?;
            }
            Some("seed") => self.seed = value(map, Seed)?,
            Some("frequency_penalty" | "frequencyPenalty") => {
                self.frequency_penalty = value(map, F64)?;
            }
            Some("presence_penalty" | "presencePenalty") => {
                self.presence_penalty = value(map, F64)?;
            }
            Some("n" | "candidateCount") => self.choice_count = value(map, U64)?,
            Some("response_format") => {
                let kind = value(map, Field("type", SHORT))?.flatten();
                self.output_type = kind.and_then(output_type);
            }
            Some("responseMimeType") => self.output_type = value(map, SHORT)?.and_then(output_type),
            // Responses: `text: {"format": {"type": …}}`.
            Some("text") => {
                let kind = value(map, Field("format", Field("type", SHORT)))?;
                self.output_type = kind.flatten().flatten().and_then(output_type);
            }
            // Messages: `output_config: {"effort": …, "format": {"type": …}}`.
            Some("output_config") => {
                let (effort, kind) = value(map, OutputConfig)?;
                if effort.is_some() {
                    self.reasoning_level = effort;
                }
                if let Some(kind) = kind.and_then(output_type) {
                    self.output_type = Some(kind);
                }
            }
            // Messages: `thinking: {"type": "enabled" | "adaptive" | "disabled"}`; the effort,
            // when sent, is the finer level and wins.
            Some("thinking") => {
                let kind = value(map, Field("type", SHORT))?.flatten();
                self.reasoning_level = self.reasoning_level.take().or(kind);
            }
            Some("reasoning_effort") => self.reasoning_level = value(map, SHORT)?,
            Some("reasoning") => {
                self.reasoning_level = value(map, Field("effort", SHORT))?.flatten()
            }
            Some("thinkingConfig") => {
                self.reasoning_level = value(map, Field("thinkingLevel", SHORT))?.flatten();
            }
            Some("service_tier") => self.service_tier = value(map, SHORT)?,
            Some("previous_response_id") => self.previous_response_id = value(map, SHORT)?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// `gen_ai.output.type` of a format the request asked for: `text`, or `json` for every JSON
/// format (`json_object`, `json_schema`, `application/json`); other formats say nothing.
fn output_type(kind: String) -> Option<&'static str> {
    match kind.as_str() {
        "text" | "text/plain" => Some("text"),
        "json" | "json_object" | "json_schema" | "application/json" => Some("json"),
        _ => None,
    }
}

/// A string of at most this many bytes (longer: none).
#[derive(Debug, Clone, Copy)]
struct Limited(usize);

impl Shape for Limited {
    type Out = Option<String>;

    fn string(self, s: &str) -> Option<String> {
        (s.len() <= self.0).then(|| s.to_owned())
    }
}

/// A parameter's string value: [`MAX_VALUE`] bytes at most.
const SHORT: Limited = Limited(MAX_VALUE);

/// An object's field read with a shape (`Out` is `None` when the value is no object or has no
/// such field).
#[derive(Debug, Clone, Copy)]
struct Field<S>(&'static str, S);

impl<S: Shape + Copy> Shape for Field<S> {
    type Out = Option<S::Out>;

    fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<Self::Out, A::Error> {
        lenient::Field(self.0, self.1).object(map)
    }
}

/// `stop`: one string or an array of them.
#[derive(Debug, Clone, Copy)]
struct Stops;

impl Shape for Stops {
    type Out = Vec<String>;

    fn string(self, s: &str) -> Vec<String> {
        Limited(MAX_STOP_BYTES).string(s).into_iter().collect()
    }

    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(stop) = seq.next_element_seed(lenient::Read(Limited(MAX_STOP_BYTES)))? {
            if out.len() < MAX_STOPS {
                out.extend(stop);
            }
        }
        Ok(out)
    }
}

/// `seed`: an integer (a fraction or one out of `i64` says nothing).
#[derive(Debug, Clone, Copy)]
struct Seed;

impl Shape for Seed {
    type Out = Option<i64>;

    fn number(self, n: serde_json::Number) -> Option<i64> {
        n.as_i64()
    }
}

/// Anthropic's `output_config`: `effort` and `format.type`.
#[derive(Debug, Clone, Copy)]
struct OutputConfig;

impl Shape for OutputConfig {
    type Out = (Option<String>, Option<String>);

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let mut out = (None, None);
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("effort") => out.0 = value(&mut map, SHORT)?,
                Some("format") => out.1 = value(&mut map, Field("type", SHORT))?.flatten(),
                _ => skip(&mut map)?,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads every top-level key of `body` as a parameter.
    fn read(body: &str) -> Params {
        #[derive(Clone, Copy)]
        struct Top;
        impl Shape for Top {
            type Out = Params;
            fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
                let mut p = Params::default();
                while let Some(key) = next_key(&mut map)? {
                    if !p.read(key.name(), &mut map)? {
                        skip(&mut map)?;
                    }
                }
                Ok(p)
            }
        }
        lenient::parse(body.as_bytes(), Top).expect("json")
    }

    #[test]
    fn each_api_spelling_gives_the_conventions_parameter() {
        let chat = read(
            r#"{"top_p":0.9,"stop":"END","seed":-7,"frequency_penalty":0.5,"presence_penalty":0.25,
               "n":2,"response_format":{"type":"json_schema"},"reasoning_effort":"high","service_tier":"flex"}"#,
        );
        assert_eq!(chat.top_p, Some(0.9));
        assert_eq!(chat.stop_sequences, ["END"]);
        assert_eq!(chat.seed, Some(-7));
        assert_eq!(
            (chat.frequency_penalty, chat.presence_penalty),
            (Some(0.5), Some(0.25))
        );
        assert_eq!(chat.choice_count, Some(2));
        assert_eq!(chat.output_type, Some("json"));
        assert_eq!(chat.reasoning_level.as_deref(), Some("high"));
        assert_eq!(chat.service_tier.as_deref(), Some("flex"));

        let responses = read(
            r#"{"reasoning":{"effort":"medium","summary":"auto"},"text":{"format":{"type":"text"}},"previous_response_id":"resp_1"}"#,
        );
        assert_eq!(responses.reasoning_level.as_deref(), Some("medium"));
        assert_eq!(responses.output_type, Some("text"));
        assert_eq!(responses.previous_response_id.as_deref(), Some("resp_1"));

        let messages = read(
            r#"{"top_k":40,"stop_sequences":["a","b"],"output_config":{"effort":"low"},"thinking":{"type":"adaptive"}}"#,
        );
        assert_eq!(messages.top_k, Some(40));
        assert_eq!(messages.stop_sequences, ["a", "b"]);
        assert_eq!(
            messages.reasoning_level.as_deref(),
            Some("low"),
            "the effort wins"
        );
        assert_eq!(
            read(r#"{"thinking":{"type":"enabled","budget_tokens":1024}}"#)
                .reasoning_level
                .as_deref(),
            Some("enabled")
        );

        let gemini = read(
            r#"{"topP":0.95,"topK":64,"stopSequences":["x"],"candidateCount":1,"responseMimeType":"application/json","thinkingConfig":{"thinkingLevel":"low"}}"#,
        );
        assert_eq!((gemini.top_p, gemini.top_k), (Some(0.95), Some(64)));
        assert_eq!(gemini.output_type, Some("json"));
        assert_eq!(gemini.reasoning_level.as_deref(), Some("low"));
    }

    #[test]
    fn values_are_bounded_and_wrong_types_say_nothing() {
        let long = "s".repeat(MAX_STOP_BYTES + 1);
        let stops: Vec<String> = (0..40).map(|i| format!("\"{i}\"")).collect();
        let p = read(&format!(
            r#"{{"stop":[{},"{long}"],"seed":1.5,"top_p":"high","service_tier":"{}","n":-1}}"#,
            stops.join(","),
            "t".repeat(MAX_VALUE + 1)
        ));
        assert_eq!(p.stop_sequences.len(), MAX_STOPS);
        assert_eq!((p.seed, p.top_p, p.choice_count), (None, None, None));
        assert_eq!(p.service_tier, None);
    }
}
