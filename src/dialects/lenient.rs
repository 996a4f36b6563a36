//! Reading a request body for its facts without building a JSON tree of it.
//!
//! Owns: [`parse`] (bytes → facts, with the error kinds of [`super::json::tree`]), the
//! [`Shape`] trait through which a dialect says what it reads of one JSON value, [`Read`] (a
//! shape as a serde seed, which [`super::json`] builds its typed response reading on), and the
//! small shapes the dialects share. Does not own: what any field means (the dialect files).
//!
//! A request body is client-controlled and up to 32 MiB; as a `serde_json::Value` tree a body
//! of many small values (`[0,0,…]`, thousands of tiny messages) costs tens of bytes of heap per
//! input byte. Here every value passes through a [`Shape`], which keeps only what it wants
//! (counts, names, a model) and skips the rest as it goes, arrays element by element: memory
//! while parsing is what the shapes keep. With `capture` a dialect reads one element at a time
//! as a `Value` ([`elements`], [`captured`]) to build the prompt content it exports, never the
//! whole body, and collects what it builds in a [`Tail`], which keeps only the items that
//! [`fit`](crate::telemetry::spans::fit) can still export under `--capture-max-bytes`: captured
//! content costs the cap while parsing (plus the element being read and an item that alone is
//! over the cap), not the body.
//!
//! Reading is exactly as lenient as the `Value` getters it replaces: a field of another JSON
//! type reads as absent (`as_str`, `as_u64`, … gave `None`), a repeated key counts only its
//! last occurrence (a `Value` map keeps the last), any other JSON at the top gives empty facts,
//! and [`Field`] tells a present key from a missing one (for `a.or_else(b)` fallbacks). Skipped
//! values go through `deserialize_any`, not `serde::de::IgnoredAny`, and are never derived
//! with `#[derive(Deserialize)]` structs (which reject repeated keys): serde_json skips an
//! `IgnoredAny` with a fast path that accepts what its `Value` parser rejects (nesting deeper
//! than 128, `1e400`, a lone surrogate `\udc00`), and a body llmtap counted as `invalid_json`
//! must stay so.

use std::{collections::VecDeque, fmt, io};

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

use crate::dialects::ParseError;

/// Reads `body` with `shape`, telling invalid UTF-8 apart from invalid JSON (as
/// [`super::json::tree`] does). The whole body is checked, trailing bytes included.
pub(crate) fn parse<S: Shape>(body: &[u8], shape: S) -> Result<S::Out, ParseError> {
    let text = std::str::from_utf8(body).map_err(|_| ParseError::InvalidUtf8)?;
    parse_str(text, shape).map_err(|_| ParseError::InvalidJson)
}

/// Reads JSON text with `shape`; fails exactly where `serde_json::from_str::<Value>` would.
pub(crate) fn parse_str<S: Shape>(text: &str, shape: S) -> Result<S::Out, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let out = Read(shape).deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

/// What is read of one JSON value. Each method handles one JSON type; the defaults skip the
/// value and give `Out::default()`, so a shape names only the types it wants.
pub(crate) trait Shape: Sized {
    type Out: Default;

    fn string(self, _s: &str) -> Self::Out {
        Self::Out::default()
    }

    fn number(self, _n: Number) -> Self::Out {
        Self::Out::default()
    }

    fn boolean(self, _b: bool) -> Self::Out {
        Self::Out::default()
    }

    /// `null` (the default gives what a missing value gives).
    fn null(self) -> Self::Out {
        Self::Out::default()
    }

    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Out, A::Error> {
        while seq.next_element_seed(Read(Skip))?.is_some() {}
        Ok(Self::Out::default())
    }

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        while next_key(&mut map)?.is_some() {
            skip(&mut map)?;
        }
        Ok(Self::Out::default())
    }
}

/// A [`Shape`] as a serde seed and visitor: accepts every JSON type, each read through
/// `deserialize_any` (as strict as the `Value` parser).
pub(crate) struct Read<S>(pub(crate) S);

impl<'de, S: Shape> DeserializeSeed<'de> for Read<S> {
    type Value = S::Out;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Out, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, S: Shape> Visitor<'de> for Read<S> {
    type Value = S::Out;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<S::Out, E> {
        Ok(self.0.boolean(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<S::Out, E> {
        Ok(self.0.number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<S::Out, E> {
        Ok(self.0.number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<S::Out, E> {
        // serde_json never yields a non-finite float (it rejects `1e400`).
        Ok(Number::from_f64(n).map_or_else(S::Out::default, |n| self.0.number(n)))
    }

    fn visit_str<E>(self, s: &str) -> Result<S::Out, E> {
        Ok(self.0.string(s))
    }

    fn visit_unit<E>(self) -> Result<S::Out, E> {
        Ok(self.0.null())
    }

    fn visit_none<E>(self) -> Result<S::Out, E> {
        Ok(self.0.null())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<S::Out, A::Error> {
        self.0.array(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<S::Out, A::Error> {
        self.0.object(map)
    }
}

/// Any value, read for nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Skip;

impl Shape for Skip {
    type Out = ();
}

/// An object key. Keys up to 32 bytes (longer than any llmtap reads) are kept on the stack,
/// so the keys of a million small objects cost no allocation.
#[derive(Debug, Default)]
pub(crate) struct Key {
    bytes: [u8; 32],
    /// Length of the key, or `None` for a key too long to be one llmtap reads.
    len: Option<usize>,
}

impl Key {
    pub(crate) fn name(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes.get(..self.len?)?).ok()
    }
}

struct KeyShape;

impl Shape for KeyShape {
    type Out = Key;

    fn string(self, s: &str) -> Key {
        let mut key = Key::default();
        if let Some(into) = key.bytes.get_mut(..s.len()) {
            into.copy_from_slice(s.as_bytes());
            key.len = Some(s.len());
        }
        key
    }
}

/// The next key of an object, or `None` after the last entry. Its value must be read next,
/// with [`value`], [`captured`] or [`skip`].
pub(crate) fn next_key<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Key>, A::Error> {
    map.next_key_seed(Read(KeyShape))
}

/// Reads the value of the key just read with `shape`.
pub(crate) fn value<'de, A: MapAccess<'de>, S: Shape>(
    map: &mut A,
    shape: S,
) -> Result<S::Out, A::Error> {
    map.next_value_seed(Read(shape))
}

/// Skips the value of the key just read.
pub(crate) fn skip<'de, A: MapAccess<'de>>(map: &mut A) -> Result<(), A::Error> {
    value(map, Skip)
}

/// Reads the value of the key just read both with `shape` and as a `Value` (for captured
/// content): one value's tree, never the body's.
pub(crate) fn captured<'de, A: MapAccess<'de>, S: Shape>(
    map: &mut A,
    shape: S,
) -> Result<(S::Out, Value), A::Error> {
    map.next_value_seed(Captured(shape))
}

/// Reads an array element by element: `each` gets every element's facts by `shape` and, with
/// `capture`, the element itself as a `Value`, which is dropped before the next one is read.
/// Returns the number of elements.
pub(crate) fn elements<'de, A, S, F>(
    mut seq: A,
    shape: S,
    capture: bool,
    mut each: F,
) -> Result<u64, A::Error>
where
    A: SeqAccess<'de>,
    S: Shape + Clone,
    F: FnMut(S::Out, Option<Value>),
{
    let mut count = 0;
    if capture {
        while let Some((facts, element)) = seq.next_element_seed(Captured(shape.clone()))? {
            count += 1;
            each(facts, Some(element));
        }
    } else {
        while let Some(facts) = seq.next_element_seed(Read(shape.clone()))? {
            count += 1;
            each(facts, None);
        }
    }
    Ok(count)
}

/// A value read as a `Value`, and its facts read from that `Value` by the same shape, so
/// capture on or off gives the same facts.
struct Captured<S>(S);

impl<'de, S: Shape> DeserializeSeed<'de> for Captured<S> {
    type Value = (S::Out, Value);

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        let v = Value::deserialize(de)?;
        let facts = Read(self.0).deserialize(&v).map_err(de::Error::custom)?;
        Ok((facts, v))
    }
}

/// A string (`Value::as_str`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Text;

impl Shape for Text {
    type Out = Option<String>;

    fn string(self, s: &str) -> Option<String> {
        Some(s.to_owned())
    }
}

/// A non-negative integer (`Value::as_u64`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct U64;

impl Shape for U64 {
    type Out = Option<u64>;

    fn number(self, n: Number) -> Option<u64> {
        n.as_u64()
    }
}

/// Any number (`Value::as_f64`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct F64;

impl Shape for F64 {
    type Out = Option<f64>;

    fn number(self, n: Number) -> Option<f64> {
        n.as_f64()
    }
}

/// A boolean (`Value::as_bool`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bool;

impl Shape for Bool {
    type Out = Option<bool>;

    fn boolean(self, b: bool) -> Option<bool> {
        Some(b)
    }
}

/// Whether the value is one of these strings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OneOf(pub &'static [&'static str]);

impl Shape for OneOf {
    type Out = bool;

    fn string(self, s: &str) -> bool {
        self.0.contains(&s)
    }
}

/// Characters of a string (0 for anything else).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chars;

impl Shape for Chars {
    type Out = u64;

    fn string(self, s: &str) -> u64 {
        s.chars().count() as u64
    }
}

/// Characters of every part's `text` in an array of parts (`[{"text": …}, …]`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartsChars;

impl Shape for PartsChars {
    type Out = u64;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<u64, A::Error> {
        let mut chars = 0;
        elements(seq, Field("text", Chars), false, |n, _| {
            chars += n.unwrap_or(0);
        })?;
        Ok(chars)
    }
}

/// Characters of message content: a string, or an array of parts with `text`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TextChars;

impl Shape for TextChars {
    type Out = u64;

    fn string(self, s: &str) -> u64 {
        Chars.string(s)
    }

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<u64, A::Error> {
        PartsChars.array(seq)
    }
}

/// One field of an object (`Value::get`): `None` when the value is not an object or has no
/// such key, else the field's last occurrence read with the shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<S>(pub &'static str, pub S);

impl<S: Shape + Clone> Shape for Field<S> {
    type Out = Option<S::Out>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let Field(name, shape) = self;
        let mut out = None;
        while let Some(key) = next_key(&mut map)? {
            if key.name() == Some(name) {
                out = Some(value(&mut map, shape.clone())?);
            } else {
                skip(&mut map)?;
            }
        }
        Ok(out)
    }
}

/// Captured content items, capped while they are read: the most recent items that
/// [`fit`](crate::telemetry::spans::fit) can export in `max` bytes, so that `fit` gives the
/// same JSON (and the same cut flag) from [`Tail::into_vec`] as from every item pushed.
///
/// `fit` exports the longest suffix whose JSON array fits in `max` bytes, else the last item
/// shortened. An item followed by more than `max` bytes of items is therefore never exported:
/// it is dropped, and what remains still does not fit, so `fit` still says it cut. The last
/// item is always kept, whatever its size (`fit` falls back to it).
#[derive(Debug)]
pub(crate) struct Tail {
    max: usize,
    /// Each item with the length of its JSON, as `fit` measures it.
    items: VecDeque<(Value, usize)>,
    /// JSON bytes of all items, brackets and commas not counted.
    total: usize,
}

impl Tail {
    pub(crate) fn new(max: usize) -> Tail {
        Tail {
            max,
            items: VecDeque::new(),
            total: 0,
        }
    }

    pub(crate) fn push(&mut self, v: Value) {
        let len = json_len(&v);
        self.push_sized(v, len);
    }

    /// Pushes every item of `other` after this tail's own, under this tail's cap: `fit` then
    /// gives what it would from every item of both.
    pub(crate) fn append(&mut self, other: Tail) {
        for (v, len) in other.items {
            self.push_sized(v, len);
        }
    }

    pub(crate) fn into_vec(self) -> Vec<Value> {
        self.items.into_iter().map(|(v, _)| v).collect()
    }

    fn push_sized(&mut self, v: Value, len: usize) {
        self.items.push_back((v, len));
        self.total += len;
        while self.items.len() >= 2 {
            let front = self.items[0].1;
            // The JSON array of the items after the front one: brackets, items, commas.
            let after = 2 + (self.total - front) + (self.items.len() - 2);
            if after <= self.max {
                break;
            }
            self.total -= front;
            self.items.pop_front();
        }
    }
}

/// Content that was absent. Uncapped, so that pushing into it could never change what `fit`
/// exports; dialects push only into tails made with [`Tail::new`].
impl Default for Tail {
    fn default() -> Tail {
        Tail::new(usize::MAX)
    }
}

impl Extend<Value> for Tail {
    fn extend<I: IntoIterator<Item = Value>>(&mut self, items: I) {
        items.into_iter().for_each(|v| self.push(v));
    }
}

/// Bytes of `v` as compact JSON (what `Value::to_string` gives), counted without writing them.
pub(crate) fn json_len(v: &impl serde::Serialize) -> usize {
    struct Count(usize);

    impl io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    let mut count = Count(0);
    serde_json::to_writer(&mut count, v)
        .expect("JSON values under string keys serialize into a writer that never fails");
    count.0
}

/// The TTL of the last `cache_control` breakpoint anywhere inside a value (Anthropic prompt
/// caching: `{"type":"ephemeral"}` is 5 minutes, `"ttl":"1h"` one hour). Walks the whole
/// value, in document order; `None` when it holds no breakpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastCacheTtl;

impl Shape for LastCacheTtl {
    type Out = Option<String>;

    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Out, A::Error> {
        let mut last = None;
        while let Some(ttl) = seq.next_element_seed(Read(LastCacheTtl))? {
            last = ttl.or(last);
        }
        Ok(last)
    }

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let mut last = None;
        while let Some(key) = next_key(&mut map)? {
            let ttl = match key.name() {
                Some("cache_control") => value(&mut map, CacheControl)?,
                // A tool call's `input` is the model's data, not a breakpoint.
                Some("input") => {
                    skip(&mut map)?;
                    None
                }
                _ => value(&mut map, LastCacheTtl)?,
            };
            last = ttl.or(last);
        }
        Ok(last)
    }
}

/// One `cache_control` object: its `ttl`, `"5m"` when it names none (the default TTL).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CacheControl;

impl Shape for CacheControl {
    type Out = Option<String>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let mut ttl = None;
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("ttl") => ttl = value(&mut map, Text)?,
                _ => skip(&mut map)?,
            }
        }
        Ok(Some(ttl.unwrap_or_else(|| "5m".to_owned())))
    }
}

#[cfg(test)]
mod tests;
