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

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::http::Request;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use prometheus::IntCounterVec;
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tower_service::Service;

use crate::priority::lanes::Lane;
use crate::routes::FastPath;

/// How long a new connection may take to send the start of its first
/// request before it is closed (a client that connects and says nothing
/// must not hold a task forever).
const FIRST_BYTES_TIMEOUT: Duration = Duration::from_secs(30);

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
    connections: IntCounterVec,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = GracefulShutdown::new();
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
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
        let ctx = Connection {
            endpoints: endpoints.clone(),
            ingest: ingest.clone(),
            connections: connections.clone(),
            watcher: graceful.watcher(),
            stopped: stopped.clone(),
        };
        tokio::spawn(ctx.route(tcp));
    }
    drop(listener);
    let _ = stop.send(true);
    graceful.shutdown().await;
}

/// What a newly accepted connection needs to be routed and served.
struct Connection {
    endpoints: Endpoints,
    ingest: Handle,
    connections: IntCounterVec,
    watcher: Watcher,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    /// Waits for the first bytes, picks the lane and serves the connection
    /// there.
    async fn route(mut self, tcp: TcpStream) {
        let mut first = [0u8; 8];
        let peeked = tokio::select! {
            peeked = tokio::time::timeout(FIRST_BYTES_TIMEOUT, tcp.peek(&mut first)) => peeked,
            _ = self.stopped.wait_for(|s| *s) => return,
        };
        let n = match peeked {
            Ok(Ok(n)) if n > 0 => n,
            _ => return, // closed, failed or silent: nothing to answer
        };
        let lane = Lane::of(&first[..n]);
        self.connections.with_label_values(&[lane.label()]).inc();
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

    /// Serves HTTP/1.1 on `tcp` until the client closes or the server shuts
    /// down (in-flight requests finish first).
    async fn serve(self, tcp: TcpStream) {
        let Endpoints { router, fast } = self.endpoints;
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            // A read worker takes up a pending priority change here (a
            // no-op on the ingest lane and without read_priority).
            crate::priority::reads::checkpoint();
            // The router is always ready (axum documents `poll_ready` as
            // always `Ready`), so it is called directly.
            let answer = fast.answer(&req).ok_or_else(|| router.clone().call(req));
            async move {
                match answer {
                    Ok(response) => Ok::<_, Infallible>(response),
                    Err(routed) => routed.await,
                }
            }
        });
        // No header-read timer: it costs a timer per request (measured
        // ≈ 5 % of /session/health throughput); the first-bytes timeout
        // above already closes clients that never speak.
        let conn =
            hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
        if let Err(e) = self.watcher.watch(conn).await {
            tracing::trace!(error = %e, "connection ended with an error");
        }
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
