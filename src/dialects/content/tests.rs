use serde_json::json;

use super::*;

/// Each part, message and definition gives the bytes of the `json!` literal it replaced.
#[test]
fn parts_give_the_conventions_json_byte_for_byte() {
    let args = json!({"cmd": "ls", "n": [1, 2.5, null]});
    let cases = [
        (
            to_value(Part::Text {
                content: "hé\n\"".into(),
            }),
            json!({"type": "text", "content": "hé\n\""}),
        ),
        (
            to_value(Part::Reasoning {
                content: Wire::NULL,
            }),
            json!({"type": "reasoning", "content": null}),
        ),
        (
            to_value(Part::ToolCall {
                id: "call_1".into(),
                name: Some(&json!("shell")).into(),
                arguments: (&args).into(),
            }),
            json!({"type": "tool_call", "id": "call_1", "name": "shell", "arguments": args}),
        ),
        (
            to_value(Part::ToolCallResponse {
                id: None::<&Value>.into(),
                response: json!([{"type": "text", "text": "ok"}]).into(),
            }),
            json!({"type": "tool_call_response", "id": null, "response": [{"type": "text", "text": "ok"}]}),
        ),
        (
            to_value(Part::Other {
                kind: "inlineData".into(),
            }),
            json!({"type": "inlineData"}),
        ),
        (
            to_value(Part::Other {
                kind: Some(&json!(7)).into(),
            }),
            json!({"type": 7}),
        ),
        (
            to_value(InputMessage {
                role: None::<&Value>.into(),
                parts: vec![Part::Text {
                    content: "a".into(),
                }],
            }),
            json!({"role": null, "parts": [{"type": "text", "content": "a"}]}),
        ),
        (
            to_value(OutputMessage::assistant(Vec::new(), Some("stop"))),
            json!({"role": "assistant", "parts": [], "finish_reason": "stop"}),
        ),
        (
            to_value(OutputMessage::assistant(Vec::new(), None)),
            json!({"role": "assistant", "parts": [], "finish_reason": null}),
        ),
        (
            to_value(ToolDefinition::function(
                "function",
                "f",
                None::<&Value>,
                &args,
            )),
            json!({"type": "function", "name": "f", "description": null, "parameters": args}),
        ),
        (
            to_value(ToolDefinition::provider("web_search", "web_search")),
            json!({"type": "web_search", "name": "web_search"}),
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got.to_string(), want.to_string());
    }
}

#[test]
fn capped_appends_stop_at_the_budget_on_a_char_boundary() {
    // 5 bytes: a cap of 4, and the byte that shows the cap was hit.
    let (mut budget, mut out) = (CaptureBudget::new(4), String::new());
    budget.append(&mut out, "ab");
    budget.append(&mut out, "céé");
    assert_eq!((out.as_str(), budget.spent()), ("abc\u{e9}", true));
    budget.append(&mut out, "more");
    assert_eq!(out, "abcé");
}

#[test]
fn a_budget_charges_structure_and_content_and_no_part_begins_after_it() {
    let args = json!({"path": "a.txt", "text": "0123456789"});
    let mut budget = CaptureBudget::new(100);
    // 101 bytes: 28 for `{"type":"text","content":""}` and 10 of text leave 63.
    let text = Part::Text {
        content: "0123456789".into(),
    };
    assert_eq!(
        budget.admit(text.clone()),
        Some(text.clone()),
        "below the cap"
    );
    // 59 for the call's structure leave 4: its arguments do not fit, and are cut as text.
    let call = budget.admit(Part::ToolCall {
        id: "c".into(),
        name: "write".into(),
        arguments: (&args).into(),
    });
    let cut = Part::ToolCall {
        id: "c".into(),
        name: "write".into(),
        arguments: args.to_string()[..4].to_owned().into(),
    };
    assert_eq!(call.as_ref(), Some(&cut));
    assert!(budget.spent());
    let image = Part::Other {
        kind: "image".into(),
    };
    assert_eq!(budget.admit(image), None, "no part begins");
    let exported = to_value(OutputMessage::assistant(vec![text, cut], None));
    assert!(
        exported.to_string().len() > 100,
        "over the cap: fit marks it"
    );
    let mut unlimited = CaptureBudget::unlimited();
    let whole = Part::Text {
        content: "x".repeat(1 << 20).into(),
    };
    assert_eq!(unlimited.admit(whole.clone()), Some(whole));
    assert!(!unlimited.spent());
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

    fn text(&mut self) -> String {
        (0..self.below(40))
            .map(|_| ['a', 'é', '"', '\n', '😀'][self.below(5)])
            .collect()
    }
}

/// A stream's parts: each begins with content and may grow by pieces.
fn stream(rng: &mut Rng, budget: &mut CaptureBudget) -> Vec<Part<'static>> {
    let mut parts: Vec<(Part<'static>, String)> = Vec::new();
    for _ in 0..rng.below(12) {
        let part = match rng.below(4) {
            0 => Part::Text {
                content: rng.text().into(),
            },
            1 => Part::Reasoning {
                content: json!(rng.below(1000)).into(),
            },
            2 => Part::ToolCall {
                id: rng.text().into(),
                name: "t".into(),
                arguments: json!({"k": rng.text(), "n": [1, 2]}).into(),
            },
            _ => Part::Other {
                kind: "image".into(),
            },
        };
        if let Some(part) = budget.admit(part) {
            parts.push((part, String::new()));
        }
        for _ in 0..rng.below(4) {
            let piece = rng.text();
            if let Some((Part::Text { .. }, acc)) = parts.last_mut() {
                budget.append(acc, &piece);
            }
        }
    }
    parts
        .into_iter()
        .map(|(part, acc)| match part {
            Part::Text { content } if !acc.is_empty() => {
                let Wire::Str(s) = content else {
                    unreachable!("text parts are strings here")
                };
                Part::Text {
                    content: (s.into_owned() + &acc).into(),
                }
            }
            other => other,
        })
        .collect()
}

#[test]
fn a_budget_never_cuts_an_output_that_fits_and_what_it_cuts_is_over_the_cap() {
    use crate::telemetry::spans::fit;
    for case in 0..3000u64 {
        let max = Rng(case).below(400);
        let whole = stream(&mut Rng(case + 1), &mut CaptureBudget::unlimited());
        let kept = stream(&mut Rng(case + 1), &mut CaptureBudget::new(max));
        let whole = vec![to_value(OutputMessage::assistant(whole, None))];
        let kept = vec![to_value(OutputMessage::assistant(kept, None))];
        if !fit(&whole, max).1 {
            assert_eq!(kept, whole, "case {case}: fits in {max}, nothing cut");
        } else if kept != whole {
            let len = Value::Array(kept.clone()).to_string().len();
            assert!(len > max, "case {case}: cut, yet {len} bytes fit in {max}");
        }
    }
}

#[test]
fn arguments_are_json_when_they_parse_and_text_when_cut() {
    assert_eq!(arguments(r#"{"a":1}"#), Wire::from(json!({"a": 1})));
    assert_eq!(arguments(r#"{"a":"#), Wire::from(r#"{"a":"#));
    assert_eq!(arguments(""), Wire::from(""));
}
