//! A generateContent request body (or Code Assist's wrapper around one) read for its facts
//! (model, stream, max tokens, temperature, tools offered, system characters, contents, the
//! session) and, with capture, its content as GenAI parts, capped as it is read. No JSON tree:
//! [`crate::dialects::lenient`] reads the body value by value, one content at a time.

use serde::de::{MapAccess, SeqAccess};
use serde_json::Value;

use super::{model_from_path, part};
use crate::dialects::{
    Operation, ParseError, RequestContent, RequestFacts,
    content::{InputMessage, Part, ToolDefinition, to_value},
    json,
    lenient::{
        self, F64, Field, PartsChars, Shape, Skip, Tail, Text, U64, captured, elements, next_key,
        skip, value,
    },
};

/// The `text` of every part in `v.parts`, joined.
fn parts_text(v: &Value) -> String {
    json::array(v, "parts")
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect()
}

pub(super) fn parse_request(
    _op: Operation,
    path: &str,
    body: &[u8],
    capture: Option<usize>,
) -> Result<RequestFacts, ParseError> {
    let outer = lenient::parse(body, Body { capture })?;
    // Code Assist wraps the request: when `request` is an object its fields count, else the
    // body's (as `unwrap` does for responses).
    let outer_session = outer.level.session_id.clone();
    let v = outer.request.unwrap_or(outer.level);
    let (system_chars, system_text) = v.system.or(v.system_snake).unwrap_or_default();
    let (max_tokens, temperature, params) = v.config.or(v.config_snake).unwrap_or_default();
    Ok(RequestFacts {
        // The API names the model in the path; Code Assist in the wrapper.
        model: model_from_path(path).map(str::to_owned).or(outer.model),
        stream: path.ends_with(":streamGenerateContent"),
        max_tokens,
        temperature,
        tools_offered: v.tools.names,
        system_chars,
        messages: v.contents.count,
        cache_ttl: None,
        params,
        conversation_id: outer_session
            .or(v.session_id)
            .flatten()
            .filter(|s| !s.is_empty() && s.len() <= 128),
        content: capture.map(|_| RequestContent {
            system: if system_text.is_empty() {
                Vec::new()
            } else {
                vec![to_value(Part::Text {
                    content: system_text.into(),
                })]
            },
            input: v.contents.input.into_vec(),
            tools: v.tools.definitions.into_vec(),
        }),
    })
}

/// The request body: the fields of a request, plus Code Assist's wrapper.
#[derive(Debug, Default)]
struct Outer {
    level: Level,
    /// `request`, when it is an object.
    request: Option<Level>,
    model: Option<String>,
}

/// What llmtap reads of a generateContent request (the body, or Code Assist's `request`).
/// Fields with two spellings, or that fall back when absent, remember their presence.
#[derive(Debug, Default)]
struct Level {
    /// Characters of `systemInstruction.parts[].text`, and that text with capture.
    system: Option<(u64, String)>,
    system_snake: Option<(u64, String)>,
    contents: Contents,
    tools: Tools,
    /// `maxOutputTokens` and `temperature` of `generationConfig`.
    config: Option<(Option<u64>, Option<f64>, crate::dialects::params::Params)>,
    config_snake: Option<(Option<u64>, Option<f64>, crate::dialects::params::Params)>,
    session_id: Option<Option<String>>,
}

impl Level {
    /// Reads the value of `key` if it is a request field, else skips it.
    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: Option<&str>,
        map: &mut A,
        capture: Option<usize>,
    ) -> Result<(), A::Error> {
        let system = |map: &mut A| -> Result<(u64, String), A::Error> {
            let chars = Field("parts", PartsChars);
            if capture.is_some() {
                let (n, v) = captured(map, chars)?;
                Ok((n.unwrap_or(0), parts_text(&v)))
            } else {
                Ok((value(map, chars)?.unwrap_or(0), String::new()))
            }
        };
        match key {
            Some("systemInstruction") => self.system = Some(system(map)?),
            Some("system_instruction") => self.system_snake = Some(system(map)?),
            Some("contents") => self.contents = value(map, ContentsShape { capture })?,
            Some("tools") => self.tools = value(map, ToolsShape { capture })?,
            Some("generationConfig") => self.config = Some(value(map, ConfigShape)?),
            Some("generation_config") => self.config_snake = Some(value(map, ConfigShape)?),
            Some("session_id") => self.session_id = Some(value(map, Text)?),
            _ => skip(map)?,
        }
        Ok(())
    }
}

/// The request body: an object, else empty facts. `capture`: the content cap.
#[derive(Debug, Clone, Copy)]
struct Body {
    capture: Option<usize>,
}

impl Shape for Body {
    type Out = Outer;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Outer, A::Error> {
        let Body { capture } = self;
        let mut outer = Outer::default();
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("request") => outer.request = value(&mut map, RequestShape { capture })?,
                Some("model") => outer.model = value(&mut map, Text)?,
                name => outer.level.read(name, &mut map, capture)?,
            }
        }
        Ok(outer)
    }
}

/// Code Assist's `request`: `Some` only for an object.
#[derive(Debug, Clone, Copy)]
struct RequestShape {
    capture: Option<usize>,
}

impl Shape for RequestShape {
    type Out = Option<Level>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Level>, A::Error> {
        let mut level = Level::default();
        while let Some(key) = next_key(&mut map)? {
            level.read(key.name(), &mut map, self.capture)?;
        }
        Ok(Some(level))
    }
}

/// `contents`: counted; converted only with capture.
#[derive(Debug, Default)]
struct Contents {
    count: u64,
    input: Tail,
}

#[derive(Debug, Clone, Copy)]
struct ContentsShape {
    capture: Option<usize>,
}

impl Shape for ContentsShape {
    type Out = Contents;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Contents, A::Error> {
        let mut input = Tail::new(self.capture.unwrap_or(0));
        let count = elements(seq, Skip, self.capture.is_some(), |(), c| {
            input.extend(c.as_ref().map(input_message));
        })?;
        Ok(Contents { count, input })
    }
}

/// `tools[].functionDeclarations`: names; definitions only with capture.
#[derive(Debug, Default)]
struct Tools {
    names: Vec<String>,
    definitions: Tail,
}

#[derive(Debug, Clone, Copy)]
struct ToolsShape {
    capture: Option<usize>,
}

impl Shape for ToolsShape {
    type Out = Tools;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Tools, A::Error> {
        let mut tools = Tools {
            names: Vec::new(),
            definitions: Tail::new(self.capture.unwrap_or(0)),
        };
        let capture = self.capture.is_some();
        elements(seq, DeclarationNames, capture, |names, t| {
            tools.names.extend(names);
            if let Some(t) = t {
                let declarations = t
                    .get("functionDeclarations")
                    .or_else(|| t.get("function_declarations"))
                    .and_then(Value::as_array);
                tools
                    .definitions
                    .extend(declarations.into_iter().flatten().map(tool_definition));
            }
        })?;
        Ok(tools)
    }
}

/// Names of one tool's function declarations (either spelling; the camelCase key wins when
/// present).
#[derive(Debug, Clone, Copy)]
struct DeclarationNames;

impl Shape for DeclarationNames {
    type Out = Vec<String>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
        let (mut camel, mut snake, mut builtin) = (None, None, Vec::new());
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("functionDeclarations") => camel = Some(value(&mut map, Names)?),
                Some("function_declarations") => snake = Some(value(&mut map, Names)?),
                // A built-in tool (`googleSearch`, `codeExecution`, `urlContext`, …) is
                // offered under its key, in snake case.
                Some(other) => {
                    builtin.push(snake_case(other));
                    skip(&mut map)?;
                }
                None => skip(&mut map)?,
            }
        }
        let mut names = camel.or(snake).unwrap_or_default();
        names.extend(builtin);
        Ok(names)
    }
}

/// `googleSearch` → `google_search` (the REST API's camelCase keys are the protos' snake case).
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `name` of every object in an array.
#[derive(Debug, Clone, Copy)]
struct Names;

impl Shape for Names {
    type Out = Vec<String>;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<String>, A::Error> {
        let mut names = Vec::new();
        elements(seq, Field("name", Text), false, |name, _| {
            names.extend(name.flatten());
        })?;
        Ok(names)
    }
}

/// `generationConfig`: `maxOutputTokens`, `temperature` and the other parameters.
#[derive(Debug, Clone, Copy)]
struct ConfigShape;

impl Shape for ConfigShape {
    type Out = (Option<u64>, Option<f64>, crate::dialects::params::Params);

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let (mut max_tokens, mut temperature) = (None, None);
        let mut params = crate::dialects::params::Params::default();
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("maxOutputTokens") => max_tokens = value(&mut map, U64)?,
                Some("temperature") => temperature = value(&mut map, F64)?,
                name => {
                    if !params.read(name, &mut map)? {
                        skip(&mut map)?;
                    }
                }
            }
        }
        Ok((max_tokens, temperature, params))
    }
}

/// One content as a GenAI input message.
fn input_message(c: &Value) -> Value {
    let role = match c.get("role").and_then(Value::as_str) {
        Some("model") => "assistant",
        Some(other) => other,
        None => "user",
    };
    let parts = json::array(c, "parts").iter().map(part).collect();
    to_value(InputMessage {
        role: role.into(),
        parts,
    })
}

/// One function declaration as a GenAI tool definition.
fn tool_definition(d: &Value) -> Value {
    to_value(ToolDefinition::function(
        "function",
        d.get("name"),
        d.get("description"),
        d.get("parameters")
            .or_else(|| d.get("parametersJsonSchema")),
    ))
}
