//! Captured content (`--capture-content`): the GenAI message parts, messages and tool
//! definitions the dialects build, and the budget that bounds what a response keeps.
//!
//! Owns: the JSON shapes of the OpenTelemetry GenAI semantic conventions that llmtap exports
//! (`gen_ai.system_instructions`, `gen_ai.input.messages`, `gen_ai.output.messages`,
//! `gen_ai.tool.definitions`; <https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/>
//! and the JSON schemas `gen-ai-input-messages.json` / `gen-ai-output-messages.json` beside
//! it): [`Part`], [`InputMessage`], [`OutputMessage`], [`ToolDefinition`], and
//! [`CaptureBudget`]. Does not own: which wire field becomes which part (the dialect files),
//! the cap on exported attributes (`fit` in `src/telemetry/spans.rs`), requests (capped as they
//! are read by `Tail` in [`super::lenient`]).
//!
//! A value is exported as the wire has it (a `text` that is not a string stays what it is), so
//! parts hold [`Wire`] values borrowed from the event or body and become a `serde_json::Value`
//! once, when kept ([`to_value`]). A part's JSON is an object with `type` and its fields;
//! serde_json (without `preserve_order`) writes its keys sorted, whatever the order here.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use super::lenient::json_len;

/// A field of a part or message: a value taken from the wire (a string, any JSON value,
/// `null` for one that is absent) or built (streamed text, parsed arguments).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum Wire<'a> {
    /// A string: `"…"`.
    Str(Cow<'a, str>),
    /// Any JSON value, as it is.
    Json(Cow<'a, Value>),
}

impl Wire<'_> {
    /// `null`.
    pub(crate) const NULL: Wire<'static> = Wire::Json(Cow::Owned(Value::Null));

    /// The same value, owning what it borrowed (kept across events).
    pub(crate) fn into_owned(self) -> Wire<'static> {
        match self {
            Wire::Str(s) => Wire::Str(Cow::Owned(s.into_owned())),
            Wire::Json(v) => Wire::Json(Cow::Owned(v.into_owned())),
        }
    }

    /// The same value, borrowed from this one.
    pub(crate) fn reborrow(&self) -> Wire<'_> {
        match self {
            Wire::Str(s) => Wire::Str(Cow::Borrowed(s)),
            Wire::Json(v) => Wire::Json(Cow::Borrowed(v)),
        }
    }
}

impl<'a> From<&'a str> for Wire<'a> {
    fn from(s: &'a str) -> Self {
        Wire::Str(Cow::Borrowed(s))
    }
}

impl<'a> From<&'a String> for Wire<'a> {
    fn from(s: &'a String) -> Self {
        Wire::Str(Cow::Borrowed(s))
    }
}

impl From<String> for Wire<'_> {
    fn from(s: String) -> Self {
        Wire::Str(Cow::Owned(s))
    }
}

impl<'a> From<&'a Value> for Wire<'a> {
    fn from(v: &'a Value) -> Self {
        Wire::Json(Cow::Borrowed(v))
    }
}

impl From<Value> for Wire<'_> {
    fn from(v: Value) -> Self {
        Wire::Json(Cow::Owned(v))
    }
}

/// An absent value is `null`.
impl<'a, T: Into<Wire<'a>>> From<Option<T>> for Wire<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Wire::NULL, Into::into)
    }
}

/// A tool call's arguments from their JSON text (streamed in pieces, or a string on the
/// wire): the JSON value when the text is one, else the text (a piece cut by the budget).
pub(crate) fn arguments(text: &str) -> Wire<'static> {
    serde_json::from_str::<Value>(text).map_or_else(|_| Wire::from(text.to_owned()), Wire::from)
}

/// One message part, as the GenAI conventions spell it (`type` and its fields).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Part<'a> {
    /// `{"type":"text","content":…}`: text the user or the model wrote.
    Text {
        /// The text (a string on every API; whatever the wire has otherwise).
        content: Wire<'a>,
    },
    /// `{"type":"reasoning","content":…}`: the model's thinking or its summary.
    Reasoning {
        /// The thinking text.
        content: Wire<'a>,
    },
    /// `{"type":"tool_call","id":…,"name":…,"arguments":…}`: a tool the model calls.
    ToolCall {
        /// The call's id (`toolu_…`, `call_…`), `null` when the API gives none (Gemini).
        id: Wire<'a>,
        /// The tool's name.
        name: Wire<'a>,
        /// The arguments as JSON (an object, usually), or their text when cut or not JSON.
        arguments: Wire<'a>,
    },
    /// `{"type":"tool_call_response","id":…,"response":…}`: a tool's result sent back.
    ToolCallResponse {
        /// The id of the call it answers.
        id: Wire<'a>,
        /// The result, as the wire has it (text, or content blocks).
        response: Wire<'a>,
    },
    /// `{"type":…}`: any other part (an image, a server tool's result, a block type llmtap
    /// does not read), by its type alone.
    #[serde(untagged)]
    Other {
        /// The part's type: the API's own (`redacted_thinking`, `inlineData`, …).
        #[serde(rename = "type")]
        kind: Wire<'a>,
    },
}

impl Part<'_> {
    /// The same part, owning what it borrowed.
    pub(crate) fn into_owned(self) -> Part<'static> {
        match self {
            Part::Text { content } => Part::Text {
                content: content.into_owned(),
            },
            Part::Reasoning { content } => Part::Reasoning {
                content: content.into_owned(),
            },
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Part::ToolCall {
                id: id.into_owned(),
                name: name.into_owned(),
                arguments: arguments.into_owned(),
            },
            Part::ToolCallResponse { id, response } => Part::ToolCallResponse {
                id: id.into_owned(),
                response: response.into_owned(),
            },
            Part::Other { kind } => Part::Other {
                kind: kind.into_owned(),
            },
        }
    }

    /// The same part, borrowed from this one.
    pub(crate) fn reborrow(&self) -> Part<'_> {
        match self {
            Part::Text { content } => Part::Text {
                content: content.reborrow(),
            },
            Part::Reasoning { content } => Part::Reasoning {
                content: content.reborrow(),
            },
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Part::ToolCall {
                id: id.reborrow(),
                name: name.reborrow(),
                arguments: arguments.reborrow(),
            },
            Part::ToolCallResponse { id, response } => Part::ToolCallResponse {
                id: id.reborrow(),
                response: response.reborrow(),
            },
            Part::Other { kind } => Part::Other {
                kind: kind.reborrow(),
            },
        }
    }
}

/// `{"role":…,"parts":[…]}`: one entry of `gen_ai.input.messages`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct InputMessage<'a> {
    /// `user`, `assistant`, `tool`, `system`, … as the wire has it (`null` when absent).
    pub(crate) role: Wire<'a>,
    /// In the order the wire has them.
    pub(crate) parts: Vec<Part<'a>>,
}

/// `{"role":"assistant","parts":[…],"finish_reason":…}`: one entry of
/// `gen_ai.output.messages` (one per choice or candidate); `finish_reason` is `null` when the
/// response gave none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OutputMessage<'a> {
    /// Always `assistant` ([`OutputMessage::assistant`]).
    pub(crate) role: &'static str,
    /// In the order the wire has them.
    pub(crate) parts: Vec<Part<'a>>,
    /// The API's own value (`end_turn`, `stop`, `STOP`, `completed`, …).
    pub(crate) finish_reason: Option<&'a str>,
}

impl<'a> OutputMessage<'a> {
    /// The model's message.
    pub(crate) fn assistant(parts: Vec<Part<'a>>, finish_reason: Option<&'a str>) -> Self {
        OutputMessage {
            role: "assistant",
            parts,
            finish_reason,
        }
    }
}

/// One entry of `gen_ai.tool.definitions`: `{"type":"function","name":…,"description":…,
/// "parameters":…}` for a function (absent values `null`), or `{"type":…,"name":…}` for a
/// provider's own tool (web search, code execution, an MCP toolset), which has no schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ToolDefinition<'a> {
    /// `function`, or the provider's tool type (`web_search_20250305`, `mcp_toolset`, …).
    #[serde(rename = "type")]
    pub(crate) kind: Wire<'a>,
    /// The tool's name (a provider's own tool is named by its type when it has no name).
    pub(crate) name: Wire<'a>,
    /// Absent (not `null`) for a provider's own tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<Wire<'a>>,
    /// The JSON schema of the arguments; absent (not `null`) for a provider's own tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parameters: Option<Wire<'a>>,
}

impl<'a> ToolDefinition<'a> {
    /// A provider's own tool, by its type and name (no schema).
    pub(crate) fn provider(kind: impl Into<Wire<'a>>, name: impl Into<Wire<'a>>) -> Self {
        ToolDefinition {
            kind: kind.into(),
            name: name.into(),
            description: None,
            parameters: None,
        }
    }

    /// A function with its JSON schema: every key present, `null` when the wire has none.
    pub(crate) fn function(
        kind: impl Into<Wire<'a>>,
        name: impl Into<Wire<'a>>,
        description: impl Into<Wire<'a>>,
        parameters: impl Into<Wire<'a>>,
    ) -> Self {
        ToolDefinition {
            kind: kind.into(),
            name: name.into(),
            description: Some(description.into()),
            parameters: Some(parameters.into()),
        }
    }
}

/// A part, message or definition as the `serde_json::Value` that content lists hold.
pub(crate) fn to_value(content: impl Serialize) -> Value {
    serde_json::to_value(content).expect("content is JSON values under string keys")
}

/// What a response may keep of its generated content under `--capture-max-bytes` = `max`:
/// `max + 1` bytes of what the parts add to the export.
///
/// The rule, the same for every dialect and transport: a part is charged, when it begins, the
/// JSON of its structure (`type`, `id`, `name`, empty content), then its content: text (text,
/// reasoning, tool arguments streamed as JSON text) by its UTF-8 bytes, a value that arrives
/// whole (arguments or a tool result as JSON) by its compact JSON. Text is kept up to what is
/// left, cut on a character boundary; a value that does not fit whole is kept as its JSON
/// text, cut likewise (a cut value is text, as cut streamed arguments are); once nothing is
/// left no part begins. Memory stays about the cap however long the stream runs.
///
/// What is charged is at most what the part adds to the exported JSON (escapes only lengthen
/// it), so an output that was cut or lost a part exports more than `max` bytes: `fit`
/// (`src/telemetry/spans.rs`) cuts it and marks the attribute truncated (the extra byte is
/// what guarantees it). And an output whose export fits in `max` was never cut, but for one
/// case: streamed arguments are charged as the text they arrive as and exported as the JSON
/// value they parse to, without the model's spaces. A complete (non-streamed) body is already
/// bounded by the body cap and is not charged ([`CaptureBudget::unlimited`]); `fit` caps its
/// export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaptureBudget {
    /// Bytes left, or `None` for no limit.
    left: Option<usize>,
}

impl CaptureBudget {
    /// The budget of a streamed response under `--capture-max-bytes` = `max`.
    pub(crate) fn new(max: usize) -> CaptureBudget {
        CaptureBudget {
            left: Some(max.saturating_add(1)),
        }
    }

    /// No limit: a complete body, or request content (capped by `Tail` instead).
    pub(crate) fn unlimited() -> CaptureBudget {
        CaptureBudget { left: None }
    }

    /// Nothing is left: no part begins.
    pub(crate) fn spent(&self) -> bool {
        self.left == Some(0)
    }

    /// Appends what is left of `text` to `into`: a streamed piece of a part already admitted.
    pub(crate) fn append(&mut self, into: &mut String, text: &str) {
        into.push_str(&self.text(Cow::Borrowed(text)));
    }

    /// `part` as it begins, its structure and content charged and its content cut to what is
    /// left; `None` when nothing is left for it to begin. Streamed content then comes through
    /// [`CaptureBudget::append`].
    pub(crate) fn admit<'a>(&mut self, part: Part<'a>) -> Option<Part<'a>> {
        if self.spent() {
            return None;
        }
        let Some(left) = self.left else {
            return Some(part);
        };
        self.left = Some(left.saturating_sub(structure_len(&part)));
        Some(match part {
            Part::Text { content } => Part::Text {
                content: self.value(content),
            },
            Part::Reasoning { content } => Part::Reasoning {
                content: self.value(content),
            },
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Part::ToolCall {
                id,
                name,
                arguments: self.value(arguments),
            },
            Part::ToolCallResponse { id, response } => Part::ToolCallResponse {
                id,
                response: self.value(response),
            },
            other @ Part::Other { .. } => other,
        })
    }

    /// What is left of `text`, charged.
    fn text<'a>(&mut self, text: Cow<'a, str>) -> Cow<'a, str> {
        let Some(left) = &mut self.left else {
            return text;
        };
        if text.len() <= *left {
            *left -= text.len();
            return text;
        }
        let take = super::floor_char_boundary(&text, *left);
        *left -= take;
        match text {
            Cow::Borrowed(s) => Cow::Borrowed(&s[..take]),
            Cow::Owned(mut s) => {
                s.truncate(take);
                Cow::Owned(s)
            }
        }
    }

    /// What is left of a part's content, charged: a string as text, another value whole when
    /// its JSON fits in place of the structure's `""`, else its JSON text cut.
    fn value<'a>(&mut self, value: Wire<'a>) -> Wire<'a> {
        let Some(left) = self.left else {
            return value;
        };
        match value {
            Wire::Str(s) => Wire::Str(self.text(s)),
            Wire::Json(Cow::Borrowed(Value::String(s))) => Wire::Str(self.text(Cow::Borrowed(s))),
            Wire::Json(Cow::Owned(Value::String(s))) => Wire::Str(self.text(Cow::Owned(s))),
            Wire::Json(v) => {
                let len = json_len(&*v).saturating_sub(2);
                if len <= left {
                    self.left = Some(left - len);
                    Wire::Json(v)
                } else {
                    Wire::Str(self.text(Cow::Owned(v.to_string())))
                }
            }
        }
    }
}

/// Bytes of a part's JSON with its content `""`: what it adds to the export before its content.
fn structure_len(part: &Part<'_>) -> usize {
    let empty = || Wire::from("");
    json_len(&match part {
        Part::Text { .. } => Part::Text { content: empty() },
        Part::Reasoning { .. } => Part::Reasoning { content: empty() },
        Part::ToolCall { id, name, .. } => Part::ToolCall {
            id: id.reborrow(),
            name: name.reborrow(),
            arguments: empty(),
        },
        Part::ToolCallResponse { id, .. } => Part::ToolCallResponse {
            id: id.reborrow(),
            response: empty(),
        },
        Part::Other { kind } => Part::Other {
            kind: kind.reborrow(),
        },
    })
}

#[cfg(test)]
mod tests;
