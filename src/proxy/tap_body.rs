//! A response or request body wrapper that observes frames without touching them.
//!
//! Owns: forwarding every frame exactly as the inner body yields it, handing a view of each
//! data frame to an observer, and telling the observer exactly once how the body ended
//! (end of stream, error, or dropped before the end). Does not own: what the bytes mean.

use std::{
    future::Future as _,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hudsucker::Body;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::{
    exchange::{BodyEnd, BodyObserver},
    vocab::ErrorType,
};

/// A body that shows each data frame to its observer and yields the frame unchanged; the
/// observer hears the end exactly once (end of stream, error, or drop). Made by [`tap`].
pub struct TapBody {
    inner: Body,
    observer: Option<Box<dyn BodyObserver>>,
}

/// Wraps `body` so that `observer` sees it; the result yields the same frames.
pub fn tap(body: Body, observer: Box<dyn BodyObserver>) -> Body {
    Body::from(BoxBody::new(TapBody {
        inner: body,
        observer: Some(observer),
    }))
}

impl HttpBody for TapBody {
    type Data = Bytes;
    type Error = hudsucker::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(observer)) = (frame.data_ref(), this.observer.as_mut()) {
                    observer.on_data(data);
                }
            }
            Poll::Ready(Some(Err(e))) => this.end(BodyEnd::Failed(body_error(e))),
            Poll::Ready(None) => this.end(BodyEnd::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body that fails with `TimedOut` when its inner body yields no frame for `limit`: the
/// stream-idle timeout. Frames pass through unchanged; the clock restarts at each one.
///
/// The timer is not re-armed per frame (a timer-wheel update for each streamed event): a
/// frame only notes its time, and when the timer fires early because frames came since it
/// was armed, it is moved to `limit` after the last one.
pub struct IdleBody {
    inner: Body,
    limit: Duration,
    /// When the last frame (or the start) was seen.
    last: tokio::time::Instant,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

/// Wraps `body` so that it ends with an error after `limit` without a frame.
pub fn idle_limit(body: Body, limit: Duration) -> Body {
    Body::from(BoxBody::new(IdleBody {
        inner: body,
        limit,
        last: tokio::time::Instant::now(),
        sleep: Box::pin(tokio::time::sleep(limit)),
    }))
}

impl HttpBody for IdleBody {
    type Data = Bytes;
    type Error = hudsucker::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                while this.sleep.as_mut().poll(cx).is_ready() {
                    let deadline = this.last + this.limit;
                    if tokio::time::Instant::now() >= deadline {
                        let err = std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no upstream byte within the stream idle timeout",
                        );
                        return Poll::Ready(Some(Err(hudsucker::Error::Io(err))));
                    }
                    // Frames came since the timer was armed: wait from the last one.
                    this.sleep.as_mut().reset(deadline);
                }
                Poll::Pending
            }
            ready => {
                this.last = tokio::time::Instant::now();
                ready
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What a body's error means for the call: the stream-idle limit ([`IdleBody`]'s
/// `TimedOut`) or a timeout hyper reports is [`ErrorType::UpstreamTimeout`]; anything else
/// (a reset, an incomplete message, a protocol error) broke the body off:
/// [`ErrorType::UpstreamReset`].
fn body_error(e: &hudsucker::Error) -> ErrorType {
    let timed_out = match e {
        hudsucker::Error::Io(io) => io.kind() == std::io::ErrorKind::TimedOut,
        hudsucker::Error::Network(err) => err.is_timeout(),
        _ => false,
    };
    if timed_out {
        ErrorType::UpstreamTimeout
    } else {
        ErrorType::UpstreamReset
    }
}

impl TapBody {
    fn end(&mut self, end: BodyEnd) {
        if let Some(observer) = self.observer.take() {
            observer.on_end(end);
        }
    }
}

impl Drop for TapBody {
    fn drop(&mut self) {
        // hyper may never poll a body that is already at its end (an empty 204, say):
        // that is a complete body, not an abort.
        let end = if self.inner.is_end_stream() {
            BodyEnd::Complete
        } else {
            BodyEnd::Dropped
        };
        self.end(end);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http_body_util::BodyExt as _;

    use super::*;

    #[derive(Default)]
    struct Seen {
        data: Vec<u8>,
        ends: Vec<BodyEnd>,
    }

    struct Recorder(Arc<Mutex<Seen>>);

    impl BodyObserver for Recorder {
        fn on_data(&mut self, data: &Bytes) {
            self.0.lock().expect("lock").data.extend_from_slice(data);
        }
        fn on_end(self: Box<Self>, end: BodyEnd) {
            self.0.lock().expect("lock").ends.push(end);
        }
    }

    #[tokio::test]
    async fn forwards_the_same_bytes_and_ends_once() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let body = tap(Body::from("hello world"), Box::new(Recorder(seen.clone())));
        let bytes = body.collect().await.expect("collect").to_bytes();
        assert_eq!(&bytes[..], b"hello world");
        let seen = seen.lock().expect("lock");
        assert_eq!(seen.data, b"hello world");
        assert_eq!(seen.ends, [BodyEnd::Complete]);
    }

    #[tokio::test]
    async fn dropping_mid_body_reports_dropped() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hudsucker::Error>>(4);
        let stream = tokio_stream_from(rx);
        let mut body = tap(Body::from_stream(stream), Box::new(Recorder(seen.clone())));
        tx.send(Ok(Frame::data(Bytes::from_static(b"part"))))
            .await
            .expect("send");
        let frame = body.frame().await.expect("frame").expect("ok");
        assert_eq!(frame.data_ref().map(|b| &b[..]), Some(&b"part"[..]));
        drop(body);
        assert_eq!(seen.lock().expect("lock").ends, [BodyEnd::Dropped]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_upstream_is_cut_after_the_idle_limit_and_reported() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hudsucker::Error>>(4);
        let idle = idle_limit(
            Body::from_stream(tokio_stream_from(rx)),
            Duration::from_secs(5),
        );
        let mut body = tap(idle, Box::new(Recorder(seen.clone())));
        tx.send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(body.frame().await.expect("frame").is_ok());
        // Each frame restarts the clock; then 5 s of silence ends the body with an error.
        tokio::time::sleep(Duration::from_secs(4)).await;
        tx.send(Ok(Frame::data(Bytes::from_static(b"b"))))
            .await
            .expect("send");
        assert!(body.frame().await.expect("frame").is_ok());
        let silent = tokio::time::Instant::now();
        assert!(body.frame().await.expect("frame").is_err());
        // Cut 5 s after the last frame, not 5 s after the timer was first armed (t = 0).
        assert_eq!(silent.elapsed(), Duration::from_secs(5));
        assert_eq!(
            seen.lock().expect("lock").ends,
            [BodyEnd::Failed(ErrorType::UpstreamTimeout)]
        );
        assert_eq!(seen.lock().expect("lock").data, b"ab");
        drop(tx);
    }

    #[tokio::test]
    async fn a_broken_body_reports_why_it_failed() {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hudsucker::Error>>(4);
        let mut body = tap(
            Body::from_stream(tokio_stream_from(rx)),
            Box::new(Recorder(seen.clone())),
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        tx.send(Err(hudsucker::Error::Io(reset)))
            .await
            .expect("send");
        assert!(body.frame().await.expect("frame").is_err());
        assert_eq!(
            seen.lock().expect("lock").ends,
            [BodyEnd::Failed(ErrorType::UpstreamReset)]
        );
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, hudsucker::Error>>,
    ) -> impl hudsucker::futures::Stream<Item = Result<Bytes, hudsucker::Error>> + Send + Sync {
        hudsucker::futures::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
                .map(|o| o.map(|r| r.map(|f| f.into_data().unwrap_or_default())))
        })
    }
}
