use serde::Deserialize;

use super::*;

#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
struct Probe {
    #[serde(deserialize_with = "lenient")]
    count: Option<u64>,
    #[serde(deserialize_with = "lenient")]
    name: Option<String>,
    #[serde(deserialize_with = "lenient")]
    inner: Option<Box<Probe>>,
    #[serde(deserialize_with = "lenient")]
    items: Vec<Probe>,
    #[serde(deserialize_with = "lenient")]
    after: Option<u64>,
}

impl Object for Probe {}

/// `{"<key>": <wrong>, "after": 7}` reads `<key>` as its default and still reads `after`,
/// from the text and from its tree alike.
fn wrong_type_reads_as_default(key: &str, wrong: &str) {
    let text = format!(r#"{{"{key}":{wrong},"after":7}}"#);
    let probe: Probe = read(text.as_bytes()).expect("valid JSON is never an error");
    let want = Probe {
        after: Some(7),
        ..Probe::default()
    };
    assert_eq!(probe, want, "{text}");
    let tree: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(from_value::<Probe>(&tree), want, "{text} from a tree");
}

#[test]
fn a_string_where_a_count_is_expected_reads_as_none() {
    wrong_type_reads_as_default("count", r#""12""#);
}

#[test]
fn null_reads_as_none() {
    wrong_type_reads_as_default("count", "null");
    wrong_type_reads_as_default("name", "null");
    wrong_type_reads_as_default("inner", "null");
    wrong_type_reads_as_default("items", "null");
}

#[test]
fn an_array_where_a_count_or_an_object_is_expected_reads_as_none() {
    wrong_type_reads_as_default("count", "[1,2]");
    // Not read by position, as serde reads a struct from an array.
    wrong_type_reads_as_default("inner", r#"[3,"x",null,[],4]"#);
    wrong_type_reads_as_default("name", r#"["x"]"#);
}

#[test]
fn an_object_where_a_count_or_an_array_is_expected_reads_as_none() {
    wrong_type_reads_as_default("count", r#"{"count":1}"#);
    wrong_type_reads_as_default("items", r#"{"count":1}"#);
    wrong_type_reads_as_default("name", r#"{"name":"x"}"#);
}

#[test]
fn a_negative_count_reads_as_none() {
    wrong_type_reads_as_default("count", "-1");
}

#[test]
fn a_float_count_reads_as_none() {
    wrong_type_reads_as_default("count", "1.5");
    wrong_type_reads_as_default("count", "2.0");
    wrong_type_reads_as_default("count", "1e2");
    wrong_type_reads_as_default("count", "18446744073709551616");
}

#[test]
fn nested_objects_and_arrays_read_leniently_to_the_bottom() {
    let text = r#"{"inner":{"count":3,"name":5},"items":[{"count":1},7,{"count":"x","name":"b"}],"after":2}"#;
    let probe: Probe = read(text.as_bytes()).expect("json");
    assert_eq!(
        probe.inner.map(|i| (i.count, i.name)),
        Some((Some(3), None))
    );
    let items: Vec<_> = probe
        .items
        .iter()
        .map(|i| (i.count, i.name.as_deref()))
        .collect();
    assert_eq!(items, [(Some(1), None), (None, None), (None, Some("b"))]);
    assert_eq!(probe.after, Some(2));
    for top in ["[1]", "\"x\"", "3", "null"] {
        assert_eq!(read::<Probe>(top.as_bytes()), Ok(Probe::default()), "{top}");
    }
}

#[test]
fn a_repeated_key_counts_its_last_occurrence_as_in_a_tree() {
    let probe: Probe =
        read(br#"{"count":1,"inner":{"count":2,"count":3},"count":4}"#).expect("json");
    assert_eq!(
        (probe.count, probe.inner.and_then(|i| i.count)),
        (Some(4), Some(3))
    );
    let probe: Probe = read(br#"{"count":1,"count":"x"}"#).expect("json");
    assert_eq!(probe.count, None);
}

#[test]
fn errors_are_the_value_parsers_even_in_fields_not_read() {
    let deep = format!("{{\"x\":{}0{}}}", "[".repeat(130), "]".repeat(130));
    for text in [
        r#"{"x":1e400}"#,
        r#"{"x":"\udc00"}"#,
        deep.as_str(),
        r#"{"count":1} x"#,
        "{",
    ] {
        assert!(serde_json::from_str::<Value>(text).is_err());
        assert_eq!(
            read::<Probe>(text.as_bytes()),
            Err(ParseError::InvalidJson),
            "{text:.30}"
        );
    }
    assert_eq!(
        read::<Probe>(b"{\"x\":\"\xff\"}"),
        Err(ParseError::InvalidUtf8)
    );
}

#[test]
fn present_keys_tell_null_from_other_types() {
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Keys {
        #[serde(deserialize_with = "lenient")]
        kind: Option<Present<Probe>>,
        #[serde(deserialize_with = "lenient")]
        code: Option<Option<String>>,
        #[serde(deserialize_with = "lenient")]
        any: Option<Value>,
        #[serde(deserialize_with = "lenient")]
        text: NonEmpty,
    }
    impl Object for Keys {}
    let read = |text: &str| read::<Keys>(text.as_bytes()).expect("json");
    let k = read(r#"{"kind":null,"code":null,"any":null,"text":""}"#);
    assert_eq!(
        (k.kind, k.code, k.any, k.text),
        (
            Some(Present::Null),
            Some(None),
            Some(Value::Null),
            NonEmpty(false)
        )
    );
    let k = read(r#"{"kind":[1],"code":5,"any":[1,{"a":2}],"text":"t"}"#);
    assert_eq!(k.kind, Some(Present::Other));
    assert_eq!(k.code, Some(None));
    assert_eq!(k.any, Some(serde_json::json!([1, {"a": 2}])));
    assert_eq!(k.text, NonEmpty(true));
    let k = read(r#"{"kind":{"count":1},"code":"c"}"#);
    assert_eq!(k.kind.and_then(|p| p.into_object().count), Some(1));
    assert_eq!(k.code, Some(Some("c".to_owned())));
    let k = read("{}");
    assert_eq!((k.kind, k.code, k.any), (None, None, None));
}

#[test]
fn array_gives_the_elements_or_none() {
    let v = serde_json::json!({"a": [1, 2], "b": "x"});
    assert_eq!(array(&v, "a").len(), 2);
    assert!(array(&v, "b").is_empty() && array(&v, "c").is_empty());
    assert!(array(&serde_json::json!([1]), "a").is_empty());
}
