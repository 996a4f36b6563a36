//! Reading the JSON of response events and bodies into typed, lenient structs, without a JSON
//! tree when nothing is captured.
//!
//! Owns: [`read`] and [`parse`] (bytes → a `#[derive(Deserialize)]` struct holding the metadata
//! a dialect reads: ids, model, usage, finish reasons, tool names, error type and status),
//! [`from_value`] (the same struct from a tree), the field helper [`lenient`] with the
//! [`Lenient`] types it reads, and [`array`] for the captured content that stays a
//! `serde_json::Value`. Does not own: what a field means (the dialect files); request bodies,
//! which [`super::lenient`] reads with its shapes.
//!
//! Lenient as the `Value` getters it replaces (`get`, `as_str`, `as_u64`, …) were: an unknown
//! field is ignored, a missing one is its default (`None`, empty), and so is a field of another
//! JSON type (a string, `null`, an array or an object where a count is expected, or a negative
//! or fractional number), which never fails the event. A top-level value that is not an object
//! gives the struct's default. Every field of these structs carries
//! `#[serde(deserialize_with = "json::lenient")]`; a struct read from an object implements
//! [`Object`].
//!
//! Exactly as strict as the `Value` parser, so an event is read or counted as invalid JSON as it
//! was with a tree: [`read`] first checks the text with the tree-less reader of
//! [`super::lenient`], which fails where `serde_json::from_str::<Value>` fails (a derived struct
//! skips unknown fields with serde_json's fast path, which accepts `1e400`, a lone surrogate
//! `\udc00` and nesting deeper than 128), then reads the struct. A key repeated in one object,
//! which a derived struct rejects and a `Value` resolves to its last occurrence, sends the text
//! to the tree, so it gives the facts it gave before.
//!
//! Memory: without capture no tree is built (the caller's charge for one, `TREE_PER_BYTE` in
//! `src/exchange/pipeline.rs`, is then an upper bound); with capture, or for a repeated key, the
//! event's tree exists while it is read, as before.

use std::marker::PhantomData;

use serde::de::{
    Deserialize, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess,
    value::MapAccessDeserializer,
};
use serde_json::{Number, Value};

use super::{
    ParseError,
    lenient::{Bool, Read, Shape, Skip, Text, U64, parse_str},
};

/// The elements of `v[key]` when it is an array, else none (no such key, another JSON type,
/// `v` not an object).
pub(crate) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Parses JSON from bytes into a tree, telling invalid UTF-8 apart from invalid JSON.
pub(crate) fn tree(bytes: &[u8]) -> Result<Value, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8)?;
    serde_json::from_str(text).map_err(|_| ParseError::InvalidJson)
}

/// Reads `S` from the JSON text in `bytes` without a tree: `S::default()` for a top-level value
/// that is not an object. Errors as [`tree`] (`InvalidUtf8`, else `InvalidJson`), in the
/// same cases.
pub(crate) fn read<S: Object>(bytes: &[u8]) -> Result<S, ParseError> {
    read_with(bytes, Whole(PhantomData))
}

/// Reads the JSON text in `bytes` with `shape`, as [`read`] does.
pub(crate) fn read_with<Sh: Shape + Clone>(bytes: &[u8], shape: Sh) -> Result<Sh::Out, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8)?;
    parse_str(text, Skip).map_err(|_| ParseError::InvalidJson)?;
    let mut de = serde_json::Deserializer::from_str(text);
    match Read(shape.clone()).deserialize(&mut de) {
        Ok(out) => Ok(out),
        // Valid JSON (checked above) a derived struct refused: a key repeated in one object.
        Err(_) => {
            let tree: Value = serde_json::from_str(text).map_err(|_| ParseError::InvalidJson)?;
            Ok(Read(shape).deserialize(&tree).unwrap_or_default())
        }
    }
}

/// Reads `S` from the bytes, and also keeps their tree when `keep` (captured content is read
/// from it). Errors as [`read`].
pub(crate) fn parse<S: Object>(bytes: &[u8], keep: bool) -> Result<(S, Option<Value>), ParseError> {
    if keep {
        let tree = tree(bytes)?;
        Ok((from_value(&tree), Some(tree)))
    } else {
        Ok((read(bytes)?, None))
    }
}

/// Reads `S` from a tree, as [`read`] reads it from the tree's text.
pub(crate) fn from_value<S: Object>(v: &Value) -> S {
    // A tree has no repeated keys and every field is lenient: nothing can fail.
    Read(Whole::<S>(PhantomData))
        .deserialize(v)
        .unwrap_or_default()
}

/// The `deserialize_with` helper of every field of the typed structs: reads the field as its
/// [`Lenient`] type, JSON of another type giving the type's default.
pub(crate) fn lenient<'de, D: Deserializer<'de>, T: Lenient>(de: D) -> Result<T, D::Error> {
    Read(T::shape()).deserialize(de)
}

/// A struct read from a JSON object (`#[derive(Deserialize, Default)]`, every field
/// [`lenient`]): it can be a field, an array element or the top-level value.
pub(crate) trait Object: DeserializeOwned + Default {}

/// `serde::de::IgnoredAny` as an [`Object`]: `Option<IgnoredAny>` says whether a field is an
/// object.
impl Object for IgnoredAny {}

/// A boxed [`Object`], for a struct that holds one of its own kind (Gemini's Code Assist
/// wrapper).
impl<S: Object> Object for Box<S> {}

/// A field type that reads leniently: the [`Shape`] that reads it, which gives the type's
/// default for JSON of any type it does not take.
pub(crate) trait Lenient: Default {
    /// The shape, whose output is this type.
    type Shape: Shape<Out = Self>;
    /// The shape to read a value with.
    fn shape() -> Self::Shape;
}

/// A string (`Value::as_str`).
impl Lenient for Option<String> {
    type Shape = Text;
    fn shape() -> Text {
        Text
    }
}

/// A non-negative integer (`Value::as_u64`): not a negative or fractional number.
impl Lenient for Option<u64> {
    type Shape = U64;
    fn shape() -> U64 {
        U64
    }
}

/// Any number (`Value::as_f64`).
impl Lenient for Option<f64> {
    type Shape = super::lenient::F64;
    fn shape() -> super::lenient::F64 {
        super::lenient::F64
    }
}

/// A boolean (`Value::as_bool`).
impl Lenient for Option<bool> {
    type Shape = Bool;
    fn shape() -> Bool {
        Bool
    }
}

/// An object read as `S` (`Value::get` then `is_object`).
impl<S: Object> Lenient for Option<S> {
    type Shape = Obj<S>;
    fn shape() -> Obj<S> {
        Obj(PhantomData)
    }
}

/// An array whose elements are read as `S`, an element that is not an object as
/// `S::default()` (`Value::as_array`, then `get` on each element).
impl<S: Object> Lenient for Vec<S> {
    type Shape = Objs<S>;
    fn shape() -> Objs<S> {
        Objs(PhantomData)
    }
}

/// Whether the key is present, whatever its value (`Value::get(..).is_some()`), and its value
/// as a string (`as_str`): `Some(None)` for `null` or another type.
impl Lenient for Option<Option<String>> {
    type Shape = Given<Text>;
    fn shape() -> Given<Text> {
        Given(Text)
    }
}

/// A key present with any value, for rules that look at its JSON type: `"error": null` is no
/// error where `"error": "boom"` is one, a `function` key of any type picks the function form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Present<S> {
    /// `null`.
    Null,
    /// An object, read as `S`.
    Object(S),
    /// A string, number, boolean or array.
    Other,
}

impl<S: Default> Present<S> {
    /// The object, or `S::default()` for a value of another type (whose keys are all absent).
    pub(crate) fn into_object(self) -> S {
        match self {
            Present::Object(s) => s,
            Present::Null | Present::Other => S::default(),
        }
    }

    /// The object, if the value is one.
    pub(crate) fn object(&self) -> Option<&S> {
        match self {
            Present::Object(s) => Some(s),
            Present::Null | Present::Other => None,
        }
    }
}

/// `None` when absent, else the value's [`Present`] kind.
impl<S: Object> Lenient for Option<Present<S>> {
    type Shape = Kind<S>;
    fn shape() -> Kind<S> {
        Kind(PhantomData)
    }
}

/// Whether a string is there and not empty, without keeping it: generated text is content,
/// read from the tree only when captured.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonEmpty(pub(crate) bool);

impl Lenient for NonEmpty {
    type Shape = NonEmptyText;
    fn shape() -> NonEmptyText {
        NonEmptyText
    }
}

/// Any value, `null` included, as it is: for the few scalars whose JSON type varies (an error
/// `code` that is a string for one server and a number for another). Never captured content.
impl Lenient for Option<Value> {
    type Shape = Any;
    fn shape() -> Any {
        Any
    }
}

/// The top-level value: an object as `S`, anything else as `S::default()`.
#[derive(Debug)]
pub(crate) struct Whole<S>(PhantomData<S>);

impl<S> Whole<S> {
    /// The shape that reads `S`.
    pub(crate) fn new() -> Self {
        Whole(PhantomData)
    }
}

impl<S> Clone for Whole<S> {
    fn clone(&self) -> Self {
        Whole(PhantomData)
    }
}

impl<S: Object> Shape for Whole<S> {
    type Out = S;

    fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<S, A::Error> {
        S::deserialize(MapAccessDeserializer::new(map))
    }
}

/// An object as `Some(S)`; anything else `None`.
#[derive(Debug)]
pub(crate) struct Obj<S>(PhantomData<S>);

impl<S: Object> Shape for Obj<S> {
    type Out = Option<S>;

    fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<Option<S>, A::Error> {
        S::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

/// An array of [`Whole`] elements; anything else empty.
#[derive(Debug)]
pub(crate) struct Objs<S>(PhantomData<S>);

impl<S: Object> Shape for Objs<S> {
    type Out = Vec<S>;

    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<S>, A::Error> {
        let mut out = Vec::new();
        while let Some(element) = seq.next_element_seed(Read(Whole::<S>(PhantomData)))? {
            out.push(element);
        }
        Ok(out)
    }
}

/// Any value as `Some(inner)`, read by the inner shape (`null` too); `None` only when absent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Given<Sh>(Sh);

impl<Sh: Shape> Shape for Given<Sh> {
    type Out = Option<Sh::Out>;

    fn string(self, s: &str) -> Self::Out {
        Some(self.0.string(s))
    }

    fn number(self, n: Number) -> Self::Out {
        Some(self.0.number(n))
    }

    fn boolean(self, b: bool) -> Self::Out {
        Some(self.0.boolean(b))
    }

    fn null(self) -> Self::Out {
        Some(self.0.null())
    }

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Out, A::Error> {
        self.0.array(seq).map(Some)
    }

    fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<Self::Out, A::Error> {
        self.0.object(map).map(Some)
    }
}

/// Any value as a `Value`, `null` included.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Any;

impl Shape for Any {
    type Out = Option<Value>;

    fn string(self, s: &str) -> Option<Value> {
        Some(Value::String(s.to_owned()))
    }

    fn number(self, n: Number) -> Option<Value> {
        Some(Value::Number(n))
    }

    fn boolean(self, b: bool) -> Option<Value> {
        Some(Value::Bool(b))
    }

    fn null(self) -> Option<Value> {
        Some(Value::Null)
    }

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Option<Value>, A::Error> {
        Value::deserialize(serde::de::value::SeqAccessDeserializer::new(seq)).map(Some)
    }

    fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<Option<Value>, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(Some)
    }
}

/// Any value as `Some` of its [`Present`] kind.
#[derive(Debug)]
pub(crate) struct Kind<S>(PhantomData<S>);

impl<S: Object> Shape for Kind<S> {
    type Out = Option<Present<S>>;

    fn string(self, _s: &str) -> Self::Out {
        Some(Present::Other)
    }

    fn number(self, _n: Number) -> Self::Out {
        Some(Present::Other)
    }

    fn boolean(self, _b: bool) -> Self::Out {
        Some(Present::Other)
    }

    fn null(self) -> Self::Out {
        Some(Present::Null)
    }

    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Out, A::Error> {
        while seq.next_element_seed(Read(Skip))?.is_some() {}
        Ok(Some(Present::Other))
    }

    fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<Self::Out, A::Error> {
        S::deserialize(MapAccessDeserializer::new(map)).map(|s| Some(Present::Object(s)))
    }
}

/// A non-empty string.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NonEmptyText;

impl Shape for NonEmptyText {
    type Out = NonEmpty;

    fn string(self, s: &str) -> NonEmpty {
        NonEmpty(!s.is_empty())
    }
}

#[cfg(test)]
mod tests;
