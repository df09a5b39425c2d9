//! When a connection last did anything, for `idle_timeout`.
//!
//! A connection is idle when no byte moves either way *and* the server is
//! not working on one of its requests. Bytes are seen by [`Watched`], the
//! socket wrapper. The server's own work is seen by [`Answering`]: from the
//! moment a request's body has been read whole until its answer is ready,
//! the client is waiting on us, and a slow answer (a large delivery applied
//! while the machine is busy) must not be cut as a stalled client. A body
//! that stops arriving is still the client's silence, and is cut.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// When a byte last moved on a connection.
#[derive(Clone)]
pub(super) struct Activity {
    opened: tokio::time::Instant,
    /// Milliseconds from `opened` to the last byte moved.
    last: Arc<AtomicU64>,
    /// Requests read whole whose answers are not ready yet.
    working: Arc<AtomicUsize>,
}

impl Activity {
    pub(super) fn new() -> Self {
        Self {
            opened: tokio::time::Instant::now(),
            last: Arc::default(),
            working: Arc::default(),
        }
    }

    fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    /// Completes once nothing moved for `limit` while the server was not
    /// working on an answer.
    pub(super) async fn idle_for(&self, limit: Duration) {
        loop {
            if self.working.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(limit).await;
                continue;
            }
            let last = self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = last + limit;
            if tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// A connection's socket that notes every byte moving either way.
pub(super) struct Watched {
    pub(super) io: TcpStream,
    pub(super) activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Where one request stands, as far as idleness goes.
const READING: u8 = 0;
const WORKING: u8 = 1;
const ANSWERED: u8 = 2;

/// One request's place in [`Activity::working`]: counted from the end of
/// its body to its answer (or its cancellation), exactly once.
struct Request {
    activity: Activity,
    stage: AtomicU8,
}

impl Request {
    /// The body is read whole: the server works from here.
    fn read(&self) {
        if self
            .stage
            .compare_exchange(READING, WORKING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.activity.working.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The answer is ready (or the request was dropped): the idle clock
    /// starts again from now.
    fn answered(&self) {
        if self.stage.swap(ANSWERED, Ordering::AcqRel) == WORKING {
            self.activity.touch();
            self.activity.working.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Held by the future answering one request; ends its work when dropped.
pub(super) struct Answer(Arc<Request>);

impl Drop for Answer {
    fn drop(&mut self) {
        self.0.answered();
    }
}

/// A request body that tells its connection when it has been read whole.
pub(super) struct Answering {
    body: Incoming,
    request: Arc<Request>,
}

impl Answering {
    /// Wraps `body`; the returned [`Answer`] must live until the answer is
    /// ready. A request without a body is being worked on at once.
    pub(super) fn new(body: Incoming, activity: &Activity) -> (Self, Answer) {
        let request = Arc::new(Request {
            activity: activity.clone(),
            stage: AtomicU8::new(READING),
        });
        if body.is_end_stream() {
            request.read();
        }
        let answer = Answer(request.clone());
        (Self { body, request }, answer)
    }
}

impl Body for Answering {
    type Data = <Incoming as Body>::Data;
    type Error = <Incoming as Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => self.body.is_end_stream(),
            _ => false,
        };
        if ended {
            self.request.read();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
