//! The accept loop: every connection is served on one of two lanes
//! ([`crate::priority::lanes`]).
//!
//! A gateway that floods `POST /v1/events` must not slow the health checks
//! that page people. Parsing and committing already run at the ingest
//! priority ([`crate::priority`]), but the HTTP work of an ingest connection
//! (reading bodies, writing answers) used to share the async workers with
//! the reads: a health request then waited behind dozens of ready ingest
//! connections. So each new connection is classified by its first request
//! line, read with `peek` (nothing consumed): one that starts with `POST`
//! is served by the **ingest lane**, a runtime whose threads run at the
//! ingest priority; every other connection stays on the **read lane**, the
//! main runtime. Both lanes serve every route (a keep-alive connection that
//! mixes reads and writes is answered correctly either way); the lane only
//! decides who yields the CPU. Gateways keep their connections open, so the
//! peek happens once per connection, not once per request.
//!
//! Connections are bounded ([`Limits`]): at most `max_connections` at once
//! (kept below the process's file limit, so `accept` never runs out of
//! descriptors; one over the cap is answered 503 and closed); a request's
//! head must arrive within `header_read_timeout` (a client trickling bytes,
//! or an idle keep-alive, is closed then); a connection on which no byte
//! moves either way for `idle_timeout` (a stalled body, a client that
//! stopped reading) is closed.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::http::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use prometheus::{IntCounter, IntCounterVec, IntGauge};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower_service::Service;

mod activity;

use self::activity::{Activity, Answering, Watched};
use crate::priority::lanes::Lane;
use crate::routes::FastPath;

/// What one connection may take of the process.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
    /// How long a request's head may take to arrive, from the moment the
    /// connection waits for it (its start, or the end of the previous
    /// answer): also how long a keep-alive connection may sit idle.
    pub header_read_timeout: Duration,
    /// How long a connection may go without a byte moving either way.
    pub idle_timeout: Duration,
}

/// What a connection over `max_connections` is told before it is closed.
const OVER_CAPACITY: &str =
    "{\"error\":\"too many connections at once; retry shortly (max_connections)\"}";

/// What every connection serves: the router (API and pages), with the
/// fast path for `GET /session/health` in front of it.
#[derive(Clone)]
pub struct Endpoints {
    /// The API and the dashboard.
    pub router: Router,
    /// `GET /session/health`, answered before the router.
    pub fast: Arc<FastPath>,
}

/// Accepts on `listener` until `shutdown` completes, serves each
/// connection on its lane, then waits for in-flight requests to finish.
pub async fn serve(
    listener: TcpListener,
    endpoints: Endpoints,
    ingest: Handle,
    limits: Limits,
    metrics: ConnectionMetrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = GracefulShutdown::new();
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => break,
        };
        // Answers are small and written whole: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics.refused.inc();
            refuse(tcp);
            continue;
        };
        let ctx = Connection {
            endpoints: endpoints.clone(),
            ingest: ingest.clone(),
            limits,
            metrics: metrics.clone(),
            watcher: graceful.watcher(),
            stopped: stopped.clone(),
            _slot: slot,
        };
        tokio::spawn(ctx.route(tcp));
    }
    drop(listener);
    let _ = stop.send(true);
    graceful.shutdown().await;
}

/// The connection metrics `serve` keeps.
#[derive(Clone)]
pub struct ConnectionMetrics {
    /// `wapulse_http_connections_total{lane}`.
    pub accepted: IntCounterVec,
    /// `wapulse_http_connections_refused_total`: answered 503, over
    /// `max_connections`.
    pub refused: IntCounter,
    /// `wapulse_http_connections_open`.
    pub open: IntGauge,
}

/// Tells a connection over the cap to come back, and closes it, right in
/// the accept loop: a refused connection never holds a descriptor past
/// this call, however fast a flood comes. What the client already sent is
/// read first, so that closing does not reset the answer away.
fn refuse(tcp: TcpStream) {
    static ANSWER: LazyLock<String> = LazyLock::new(|| {
        format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{OVER_CAPACITY}",
            OVER_CAPACITY.len()
        )
    });
    let mut sink = [0u8; 4096];
    let _ = tcp.try_read(&mut sink);
    let _ = tcp.try_write(ANSWER.as_bytes());
}

/// What a newly accepted connection needs to be routed and served.
struct Connection {
    endpoints: Endpoints,
    ingest: Handle,
    limits: Limits,
    metrics: ConnectionMetrics,
    watcher: Watcher,
    stopped: watch::Receiver<bool>,
    /// Its place under `max_connections`, given back when it ends.
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    /// Waits for the first bytes, picks the lane and serves the connection
    /// there.
    async fn route(mut self, tcp: TcpStream) {
        let mut first = [0u8; 8];
        let peeked = tokio::select! {
            peeked = tokio::time::timeout(self.limits.header_read_timeout, tcp.peek(&mut first)) => peeked,
            _ = self.stopped.wait_for(|s| *s) => return,
        };
        let n = match peeked {
            Ok(Ok(n)) if n > 0 => n,
            _ => return, // closed, failed or silent: nothing to answer
        };
        let lane = Lane::of(&first[..n]);
        self.metrics
            .accepted
            .with_label_values(&[lane.label()])
            .inc();
        match lane {
            Lane::Read => self.serve(tcp).await,
            Lane::Ingest => {
                // Move the socket to the other runtime's reactor.
                let Ok(std) = tcp.into_std() else { return };
                let ingest = self.ingest.clone();
                ingest.spawn(async move {
                    if let Ok(tcp) = TcpStream::from_std(std) {
                        self.serve(tcp).await;
                    }
                });
            }
        }
    }

    /// Serves HTTP/1.1 on `tcp` until the client closes, a limit closes it,
    /// or the server shuts down (in-flight requests finish first).
    async fn serve(self, tcp: TcpStream) {
        let Endpoints { router, fast } = self.endpoints;
        let activity = Activity::new();
        let working = activity.clone();
        // Who is at the other end: the audit log records a named token's
        // new addresses.
        let peer = tcp.peer_addr().ok().map(axum::extract::ConnectInfo);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            // A read worker takes up a pending priority change here (a
            // no-op on the ingest lane and without read_priority).
            crate::priority::reads::checkpoint();
            // The router is always ready (axum documents `poll_ready` as
            // always `Ready`), so it is called directly. Its requests say
            // when their bodies are read, so the time spent answering is
            // never taken for an idle client.
            let answer = fast.answer(&req).ok_or_else(|| {
                let (mut head, body) = req.into_parts();
                if let Some(peer) = peer {
                    head.extensions.insert(peer);
                }
                let (body, answering) = Answering::new(body, &working);
                (
                    router.clone().call(Request::from_parts(head, body)),
                    answering,
                )
            });
            async move {
                match answer {
                    Ok(response) => Ok::<_, Infallible>(response),
                    Err((routed, _answering)) => routed.await,
                }
            }
        });
        let io = Watched {
            io: tcp,
            activity: activity.clone(),
        };
        // The header-read timer costs a timer per request (measured ≈ 5 %
        // of /session/health throughput): the price of closing clients that
        // trickle their request or sit idle.
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout)
            .serve_connection(TokioIo::new(io), service);
        let _open = OpenGuard::new(&self.metrics.open);
        tokio::select! {
            served = self.watcher.watch(conn) => {
                if let Err(e) = served {
                    tracing::trace!(error = %e, "connection ended with an error");
                }
            }
            () = activity.idle_for(self.limits.idle_timeout) => {
                tracing::debug!("connection closed: nothing moved for idle_timeout");
            }
        }
    }
}

/// Counts a connection in `wapulse_http_connections_open` while it lives.
struct OpenGuard(IntGauge);

impl OpenGuard {
    fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Accept errors are either one client's problem (skip it) or the process
/// running out of something (file descriptors): wait a little so the loop
/// does not spin.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
