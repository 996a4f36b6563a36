use super::*;

#[test]
fn errors_match_the_value_parser() {
    let deep = |n: usize| format!("{{\"a\":{}0{}}}", "[".repeat(n), "]".repeat(n));
    let cases = [
        "{\"a\":1e400}".to_owned(),
        "{\"a\":\"\\udc00\"}".to_owned(),
        "{\"a\":\"\\ud800x\"}".to_owned(),
        "{\"a\":1} x".to_owned(),
        "{\"a\":01}".to_owned(),
        "{\"a\":[1,]}".to_owned(),
        "".to_owned(),
        deep(126),
        deep(127),
        deep(200),
    ];
    for case in &cases {
        let want = serde_json::from_str::<Value>(case).is_ok();
        assert_eq!(parse_str(case, Skip).is_ok(), want, "{case:.40}");
        let field = Field("a", Field("b", Text));
        assert_eq!(parse_str(case, field).is_ok(), want, "{case:.40}");
    }
    assert_eq!(parse(b"{\"a\":\xff}", Skip), Err(ParseError::InvalidUtf8));
}

#[test]
fn fields_read_like_value_getters() {
    let read = |text: &str| parse_str(text, Field("k", Text)).expect("valid json");
    assert_eq!(read(r#"{"k":"a","k":"b"}"#), Some(Some("b".to_owned())));
    assert_eq!(
        read(r#"{"k":"a","k":1}"#),
        Some(None),
        "last occurrence wins"
    );
    assert_eq!(read(r#"{"\u006b":"esc"}"#), Some(Some("esc".to_owned())));
    assert_eq!(read(r#"{"other":"a"}"#), None);
    assert_eq!(read(r#"["k","a"]"#), None);
    let long = format!(r#"{{"{}":"a"}}"#, "k".repeat(40));
    assert_eq!(read(&long), None);
    assert_eq!(parse_str("-1", U64).expect("json"), None);
    assert_eq!(parse_str("5.0", U64).expect("json"), None);
    assert_eq!(parse_str("-1", F64).expect("json"), Some(-1.0));
}

/// xorshift64*: a fixed sequence, so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }

    /// A message-like item of 1 to a few hundred JSON bytes, with characters that JSON
    /// escapes or spells in several bytes.
    fn item(&mut self) -> Value {
        let text: String = (0..self.below(120))
            .map(|_| ['a', 'é', '"', '\n', '\u{1}', '😀'][self.below(6)])
            .collect();
        match self.below(4) {
            0 => Value::from(self.below(1000)),
            1 => Value::String(text),
            2 => {
                serde_json::json!({"role": "user", "parts": [{"type": "text", "content": text}]})
            }
            _ => serde_json::json!([text, [self.below(9)], {"k": null}]),
        }
    }
}

fn tail_of(max: usize, items: &[Value]) -> Tail {
    let mut tail = Tail::new(max);
    tail.extend(items.iter().cloned());
    tail
}

#[test]
fn a_tail_exports_what_fit_exports_from_every_item() {
    use crate::telemetry::spans::fit;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for case in 0..3000 {
        let items: Vec<Value> = (0..rng.below(40)).map(|_| rng.item()).collect();
        let max = match rng.below(3) {
            0 => rng.below(40),
            1 => rng.below(600),
            _ => rng.below(6000),
        };
        let tail = tail_of(max, &items);
        let kept = tail.items.len();
        assert!(
            kept <= 1 || 2 + tail.total - tail.items[0].1 + kept - 2 <= max,
            "case {case}: the items after the front one fit"
        );
        let tail = tail.into_vec();
        assert_eq!(
            tail[..],
            items[items.len() - kept..],
            "case {case}: a suffix"
        );
        assert_eq!(fit(&tail, max), fit(&items, max), "case {case}: max {max}");

        let split = rng.below(items.len() + 1);
        let (a, b) = items.split_at(split);
        let mut appended = tail_of(max, a);
        appended.append(tail_of(max, b));
        let appended = appended.into_vec();
        assert_eq!(
            fit(&appended, max),
            fit(&items, max),
            "case {case}: appended"
        );
    }
}

#[test]
fn a_tail_holds_about_its_cap_however_many_items_arrive() {
    let mut tail = Tail::new(1000);
    for i in 0..100_000 {
        tail.push(serde_json::json!({"role": "user", "parts": [{"content": i}]}));
    }
    assert!(tail.items.len() < 40, "{}", tail.items.len());
    assert!(tail.total < 2000, "{}", tail.total);
    let mut lengths = tail
        .items
        .iter()
        .map(|(v, len)| (v.to_string().len(), *len));
    assert!(lengths.all(|(real, counted)| real == counted));
    let huge = Value::String("x".repeat(5000));
    tail.push(huge.clone());
    assert_eq!(
        tail.into_vec().last(),
        Some(&huge),
        "the last item is kept whole"
    );
    assert_eq!(Tail::new(0).into_vec(), Vec::<Value>::new());
}
