//! Scripted replies, for [`FakeUpstream::start_scripted`](crate::FakeUpstream::start_scripted):
//! a test that needs exact answers in an exact order (a whole agent session, a 529 and then
//! the answer to its retry) lists them, and each Anthropic `POST /v1/messages` that names no
//! `x-fake-scenario` nor `x-fake-case` takes the next one, whatever its body. The test owns
//! the bytes; this module only serves them, as the fixtures are served:
//!
//! - a `text/event-stream` body goes out one HTTP chunk per SSE event
//!   ([`FakeUpstream::sse_events`](crate::FakeUpstream::sse_events)), 5 ms apart, with
//!   `cache-control: no-cache`; the modifier headers (`x-fake-gzip`, `x-fake-reset-after`, …)
//!   apply as to a fixture stream;
//! - any other body goes out whole (encoded when a modifier asks);
//! - every reply gets the Anthropic headers of this server (`request-id`,
//!   `anthropic-organization-id`), then the reply's own `content-type` and headers, which
//!   replace any of the same name.
//!
//! Once the script is spent, a request gets a 500 `api_error` saying so. Requests are
//! recorded ([`FakeUpstream::seen`](crate::FakeUpstream::seen)) as always.

use std::{collections::VecDeque, sync::Mutex};

use hyper::{
    Response, StatusCode,
    header::{HeaderName, HeaderValue},
};

/// One scripted answer: status, content type, extra headers and the exact body bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status (`200`, `529`).
    pub status: u16,
    /// The `content-type` sent; `text/event-stream…` streams the body event by event.
    pub content_type: String,
    /// Further response headers, in order (a name may repeat).
    pub headers: Vec<(String, String)>,
    /// The body, exactly as sent (before any `x-fake-encoding`).
    pub body: Vec<u8>,
}

impl Reply {
    /// A `200` SSE stream (`text/event-stream; charset=utf-8`, as Anthropic sends it).
    pub fn sse(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            content_type: "text/event-stream; charset=utf-8".to_owned(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A JSON body (`application/json`) with `status`: an error, or a non-streamed message.
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type: "application/json".to_owned(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same reply with one more response header.
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Whether the body is served as an SSE stream.
    pub(crate) fn is_sse(&self) -> bool {
        self.content_type
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
    }

    /// The status, content type and headers as hyper types; panics (at start, in the test)
    /// on a reply that HTTP cannot carry.
    fn checked(&self) -> (StatusCode, Vec<(HeaderName, HeaderValue)>) {
        let status = StatusCode::from_u16(self.status)
            .unwrap_or_else(|e| panic!("scripted reply: status {}: {e}", self.status));
        let headers = std::iter::once(("content-type", self.content_type.as_str()))
            .chain(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())))
            .map(|(name, value)| {
                (
                    HeaderName::from_bytes(name.as_bytes())
                        .unwrap_or_else(|e| panic!("scripted reply: header name {name:?}: {e}")),
                    HeaderValue::from_str(value).unwrap_or_else(|e| {
                        panic!("scripted reply: header {name}: value {value:?}: {e}")
                    }),
                )
            })
            .collect();
        (status, headers)
    }

    /// Puts the status and the reply's headers on `res`, replacing headers of the same names.
    pub(crate) fn apply<B>(&self, res: &mut Response<B>) {
        let (status, headers) = self.checked();
        *res.status_mut() = status;
        for (name, _) in &headers {
            res.headers_mut().remove(name);
        }
        for (name, value) in headers {
            res.headers_mut().append(name, value);
        }
    }
}

/// The replies not served yet, in order, and how many were served.
pub(crate) struct Script(Mutex<(VecDeque<Reply>, usize)>);

impl Script {
    /// A script of `replies`; panics at once on a reply HTTP cannot carry.
    pub(crate) fn new(replies: Vec<Reply>) -> Script {
        for reply in &replies {
            reply.checked();
        }
        Script(Mutex::new((replies.into(), 0)))
    }

    /// The next reply, or how many were served when none is left.
    pub(crate) fn next(&self) -> Result<Reply, usize> {
        let mut script = self.0.lock().expect("script lock poisoned");
        let reply = script.0.pop_front().ok_or(script.1)?;
        script.1 += 1;
        Ok(reply)
    }

    /// How many replies are still waiting.
    pub(crate) fn left(&self) -> usize {
        self.0.lock().expect("script lock poisoned").0.len()
    }
}
