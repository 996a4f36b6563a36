//! Gemini: `…/{v1beta|v1}/models/{model}:generateContent` and `:streamGenerateContent`
//! (`alt=sse` → SSE; without it a JSON array streamed element by element), and Gemini Code
//! Assist (`cloudcode-pa.googleapis.com/v1internal:generateContent|streamGenerateContent`),
//! which wraps the same request in `{"model", "project", "request"}` and every response
//! chunk in `{"response"}`.
//!
//! Gemini counts usage apart (ARCHITECTURE.md, "Usage"): normalized input = promptTokenCount (cached
//! included) + toolUsePromptTokenCount, output = candidatesTokenCount + thoughtsTokenCount,
//! reasoning = thoughtsTokenCount. The model comes from the path (the API key may be in the
//! query string, which is never looked at beyond routing).
//!
//! This file reads responses (chunks, array elements and bodies) with the typed structs of
//! [`super::json`]; requests are read in `gemini/request.rs`.

use serde::{
    Deserialize,
    de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::Value;

use super::{
    Dialect, Framing, Operation, ParseError, Progress, ResponseFacts, StreamParser, Target, Usage,
    content::{CaptureBudget, OutputMessage, Part, to_value},
    error_response_with,
    json::{self, NonEmpty, Object},
    lenient::{Read, Shape, Skip, U64},
    sse,
};

mod request;

/// The Gemini API: `…/models/{model}:generateContent` and `:streamGenerateContent`.
pub const GENERATE_CONTENT: Dialect = Dialect {
    name: "gemini_generate_content",
    detect,
    parse_request: request::parse_request,
    parse_response,
    stream_parser,
    max_event: 4 << 20,
};

/// Gemini Code Assist (Gemini CLI signed in with Google): `v1internal:streamGenerateContent`.
pub const CODE_ASSIST: Dialect = Dialect {
    name: "gemini_code_assist",
    detect: detect_code_assist,
    parse_request: request::parse_request,
    parse_response,
    stream_parser,
    max_event: 4 << 20,
};

fn framing(method: &str, query: Option<&str>) -> Option<(Operation, Framing)> {
    let sse = query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
    match method {
        "generateContent" => Some((Operation::GenerateContent, Framing::Json)),
        "streamGenerateContent" if sse => Some((Operation::GenerateContent, Framing::Json)),
        "streamGenerateContent" => Some((Operation::GenerateContent, Framing::JsonArray)),
        _ => None,
    }
}

/// `/models/gemini-2.5-flash:streamGenerateContent` (the part after the provider's
/// `/v1beta` or Vertex AI's `…/publishers/google` prefix) → (`gemini-2.5-flash`, method).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/models/")?;
    let (model, method) = rest.rsplit_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some((model, method))
}

fn detect(t: &Target<'_>) -> Option<(Operation, Framing)> {
    if t.method != "POST" || t.websocket {
        return None;
    }
    let (_, method) = split_path(t.path)?;
    framing(method, t.query)
}

fn detect_code_assist(t: &Target<'_>) -> Option<(Operation, Framing)> {
    if t.method != "POST" || t.websocket {
        return None;
    }
    let method = t.path.strip_prefix("/v1internal:")?;
    framing(method, t.query)
}

/// The model named in a Gemini API path; `None` for Code Assist (it names it in the body).
pub fn model_from_path(path: &str) -> Option<&str> {
    split_path(path).map(|(model, _)| model)
}

/// One Gemini part as a GenAI message part (API reference: `Part`): a function call or
/// response, a thought, text, else its kind (its first key: `inlineData`, `executableCode`, …).
fn part(p: &Value) -> Part<'_> {
    if let Some(call) = p.get("functionCall") {
        Part::ToolCall {
            id: call.get("id").into(),
            name: call.get("name").into(),
            arguments: call.get("args").into(),
        }
    } else if let Some(resp) = p.get("functionResponse") {
        Part::ToolCallResponse {
            id: resp.get("id").into(),
            response: resp.get("response").into(),
        }
    } else if p.get("thought").and_then(Value::as_bool) == Some(true) {
        Part::Reasoning {
            content: p.get("text").into(),
        }
    } else if let Some(text) = p.get("text") {
        Part::Text {
            content: text.into(),
        }
    } else {
        let kind = p.as_object().and_then(|o| o.keys().next());
        Part::Other {
            kind: kind.map_or("unknown", String::as_str).into(),
        }
    }
}

fn parse_response(
    _op: Operation,
    status: u16,
    body: &[u8],
    capture: bool,
) -> Result<ResponseFacts, ParseError> {
    // Errors of a streamed call can come as a one-element array.
    if let Some(facts) = error_response_with(status, body, First, |c| c.error?.error_type()) {
        return Ok(facts);
    }
    let (v, tree) = json::parse::<Chunk>(body, capture)?;
    let mut state = Gemini {
        capture: capture.then(CaptureBudget::unlimited),
        ..Gemini::default()
    };
    state.on_chunk(v, tree.as_ref());
    Ok(state.facts())
}

fn stream_parser(_op: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    Box::new(Gemini {
        capture: capture.map(CaptureBudget::new),
        ..Gemini::default()
    })
}

/// An error body's top level: an object, or an array whose first element is read (a streamed
/// call's error); anything else the default.
#[derive(Debug, Clone, Copy)]
struct First;

impl Shape for First {
    type Out = Chunk;

    fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<Chunk, A::Error> {
        json::Whole::<Chunk>::new().object(map)
    }

    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Chunk, A::Error> {
        let first = seq.next_element_seed(Read(json::Whole::<Chunk>::new()))?;
        while seq.next_element_seed(Read(Skip))?.is_some() {}
        Ok(first.unwrap_or_default())
    }
}

/// One response object: a JSON body, an SSE chunk or an array element (API reference:
/// `GenerateContentResponse`); Code Assist wraps it in `{"response": …}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Chunk {
    /// Code Assist's wrapper: when an object, the response is it.
    #[serde(deserialize_with = "json::lenient")]
    response: Option<Box<Chunk>>,
    #[serde(deserialize_with = "json::lenient")]
    error: Option<WireError>,
    #[serde(deserialize_with = "json::lenient")]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(deserialize_with = "json::lenient")]
    model_version: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    response_id: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    usage_metadata: Option<UsageMetadata>,
    #[serde(deserialize_with = "json::lenient")]
    candidates: Vec<WireCandidate>,
}

impl Object for Chunk {}

/// An error object (Google's JSON errors: `code` is the HTTP status, `status` its name).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireError {
    #[serde(deserialize_with = "json::lenient")]
    status: Option<String>,
    /// A number; of any type, its JSON text names the error when `status` does not.
    #[serde(deserialize_with = "json::lenient")]
    code: Option<Value>,
}

impl Object for WireError {}

impl WireError {
    /// `status` (`RESOURCE_EXHAUSTED`), else `code` as JSON text.
    fn error_type(&self) -> Option<String> {
        self.status
            .clone()
            .or_else(|| self.code.as_ref().map(Value::to_string))
    }

    /// The HTTP status `code` stands for.
    fn status(&self) -> Option<u16> {
        let code = self.code.as_ref()?.as_u64()?;
        u16::try_from(code).ok().filter(|c| (100..600).contains(c))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(deserialize_with = "json::lenient")]
    block_reason: Option<String>,
}

impl Object for PromptFeedback {}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireCandidate {
    #[serde(deserialize_with = "json::lenient")]
    index: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    finish_reason: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    content: Option<Content>,
}

impl Object for WireCandidate {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Content {
    #[serde(deserialize_with = "json::lenient")]
    parts: Vec<WirePart>,
}

impl Object for Content {}

/// What a part says of the call: a non-empty text, a function call's name, code the model
/// runs (the built-in code execution tool).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WirePart {
    #[serde(deserialize_with = "json::lenient")]
    text: NonEmpty,
    #[serde(deserialize_with = "json::lenient")]
    function_call: Option<Named>,
    #[serde(deserialize_with = "json::lenient")]
    executable_code: Option<IgnoredAny>,
}

impl Object for WirePart {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    #[serde(deserialize_with = "json::lenient")]
    name: Option<String>,
    /// `functionCall.id`, which the `functionResponse` echoes (when the API sets it).
    #[serde(deserialize_with = "json::lenient")]
    id: Option<String>,
    /// `functionCall.args`, read only for the fields that name a subagent.
    #[serde(deserialize_with = "json::lenient")]
    args: Option<super::agent::SubagentArgs>,
}

impl Object for Named {}

/// `usageMetadata` with at least one count (a key ending in `TokenCount`, whatever its value):
/// Code Assist sends `{"trafficType":…}` alone on early chunks, which says nothing and must not
/// read as zeros. The rule is on keys, which a derived struct does not see, so this one is
/// read by hand.
#[derive(Debug, Default)]
struct UsageMetadata {
    prompt: Option<u64>,
    candidates: Option<u64>,
    cached: Option<u64>,
    thoughts: Option<u64>,
    tool_use_prompt: Option<u64>,
    has_counts: bool,
}

impl<'de> Deserialize<'de> for UsageMetadata {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_map(UsageVisitor)
    }
}

struct UsageVisitor;

impl<'de> Visitor<'de> for UsageVisitor {
    type Value = UsageMetadata;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("usageMetadata")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UsageMetadata, A::Error> {
        let mut u = UsageMetadata::default();
        while let Some(key) = map.next_key::<String>()? {
            u.has_counts |= key.ends_with("TokenCount");
            let slot = match key.as_str() {
                "promptTokenCount" => &mut u.prompt,
                "candidatesTokenCount" => &mut u.candidates,
                "cachedContentTokenCount" => &mut u.cached,
                "thoughtsTokenCount" => &mut u.thoughts,
                "toolUsePromptTokenCount" => &mut u.tool_use_prompt,
                _ => {
                    map.next_value_seed(Read(Skip))?;
                    continue;
                }
            };
            *slot = map.next_value_seed(Read(U64))?;
        }
        Ok(u)
    }
}

impl Object for UsageMetadata {}

impl UsageMetadata {
    /// The usage. The API's JSON is proto3's, which leaves out a count that is zero: once
    /// `usageMetadata` has a count, an omitted one is 0, not unknown.
    fn usage(&self) -> Usage {
        let n = |count: Option<u64>| count.unwrap_or(0);
        let thoughts = n(self.thoughts);
        Usage {
            input: Some(n(self.prompt).saturating_add(n(self.tool_use_prompt))),
            output: Some(n(self.candidates).saturating_add(thoughts)),
            cache_read: Some(n(self.cached)),
            cache_write_5m: None,
            cache_write_1h: None,
            reasoning: Some(thoughts),
        }
    }
}

#[derive(Debug, Default)]
struct Candidate {
    finish: Option<String>,
    /// Captured parts, as they came.
    parts: Vec<Part<'static>>,
}

#[derive(Debug, Default)]
struct Gemini {
    model: Option<String>,
    id: Option<String>,
    candidates: Vec<Candidate>,
    usage: Option<Usage>,
    tools_called: Vec<String>,
    tool_calls: super::agent::ToolCalls,
    error_type: Option<String>,
    error_status: Option<u16>,
    /// `promptFeedback.blockReason`: the prompt was refused; the answer is complete.
    block_reason: Option<String>,
    /// What captured content may still take; `None` when content is not captured.
    capture: Option<CaptureBudget>,
}

impl Gemini {
    /// One response object (a JSON body, an SSE chunk or an array element), with its tree when
    /// content is captured. Returns whether it carried generated content.
    fn on_chunk(&mut self, outer: Chunk, tree: Option<&Value>) -> bool {
        // Code Assist wraps the response: when `response` is an object, it is the response.
        let (v, tree) = match outer.response {
            Some(inner) => (*inner, tree.and_then(|t| t.get("response"))),
            None => (outer, tree),
        };
        if let Some(e) = &v.error
            && let Some(error_type) = e.error_type()
        {
            self.error_type = Some(error_type);
            self.error_status = e.status();
            return false;
        }
        // A blocked prompt is a whole answer: one chunk, no candidates, the reason why.
        if let Some(reason) = v.prompt_feedback.and_then(|f| f.block_reason) {
            self.block_reason = Some(reason);
        }
        if let Some(model) = v.model_version {
            self.model = Some(model);
        }
        if let Some(id) = v.response_id {
            self.id = Some(id);
        }
        if let Some(u) = v.usage_metadata.filter(|u| u.has_counts) {
            self.usage = Some(u.usage());
        }
        let mut generated = false;
        let raw = tree.map(|t| json::array(t, "candidates"));
        for (at, c) in v.candidates.iter().enumerate() {
            let index = c.index.unwrap_or(0).min(63) as usize;
            if self.candidates.len() <= index {
                self.candidates.resize_with(index + 1, Candidate::default);
            }
            let slot = &mut self.candidates[index];
            if let Some(reason) = &c.finish_reason {
                slot.finish = Some(reason.clone());
            }
            for p in c.content.iter().flat_map(|c| &c.parts) {
                if let Some(call) = &p.function_call
                    && let Some(name) = &call.name
                {
                    self.tools_called.push(name.clone());
                    // Gemini sends each call whole, in one chunk.
                    let subagent = call.args.as_ref().and_then(|a| a.name_for(name));
                    let key = self.tools_called.len() as u64;
                    self.tool_calls
                        .start(key, call.id.as_deref(), name, subagent);
                    generated = true;
                }
                // Code the model runs with the built-in code execution tool.
                if p.executable_code.is_some() {
                    self.tools_called.push("code_execution".to_owned());
                    generated = true;
                }
                if p.text.0 {
                    generated = true;
                }
            }
            if let Some(budget) = &mut self.capture {
                let content = raw.and_then(|r| r.get(at)?.get("content"));
                let parts = content.map_or(&[][..], |c| json::array(c, "parts"));
                let kept = parts.iter().map(part).map_while(|p| budget.admit(p));
                slot.parts.extend(kept.map(Part::into_owned));
            }
        }
        generated
    }
}

impl StreamParser for Gemini {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        let (v, tree) = json::parse::<Chunk>(event.data, self.capture.is_some())?;
        Ok(Progress {
            delta: self.on_chunk(v, tree.as_ref()),
        })
    }

    fn facts(&self) -> ResponseFacts {
        let mut finish_reasons: Vec<String> = self
            .candidates
            .iter()
            .filter_map(|c| c.finish.clone())
            .collect();
        finish_reasons.extend(self.block_reason.clone());
        ResponseFacts {
            model: self.model.clone(),
            id: self.id.clone(),
            finish_reasons,
            usage: self.usage.clone().unwrap_or_default(),
            tools_called: self.tools_called.clone(),
            tool_calls: self.tool_calls.calls(),
            error_type: self.error_type.clone(),
            error_status: self.error_status,
            complete: self.terminal() && self.error_type.is_none(),
            service_tier: None,
            system_fingerprint: None,
            billed_usd: None,
            ratelimits: None,
            cache_write_unsplit: 0,
            output: self.capture.as_ref().map(|_| {
                self.candidates
                    .iter()
                    .map(|c| {
                        let parts = c.parts.iter().map(Part::reborrow).collect();
                        to_value(OutputMessage::assistant(parts, c.finish.as_deref()))
                    })
                    .collect()
            }),
        }
    }

    fn terminal(&self) -> bool {
        self.error_type.is_some()
            || self.block_reason.is_some()
            || self.candidates.iter().any(|c| c.finish.is_some())
    }
}

#[cfg(test)]
mod tests;
