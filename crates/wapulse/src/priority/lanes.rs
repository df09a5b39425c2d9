//! Connection lanes: a gateway that floods `POST /v1/events` must not slow
//! the health checks that page people. Each new connection is classified
//! by its first request line, read with `peek` (nothing consumed): one
//! that starts with `POST` is served by the **ingest lane**, a runtime
//! whose threads run at the ingest priority ([`super::ingest`]); every
//! other connection stays on the **read lane**, the main runtime. Both
//! lanes serve every route; the lane only decides who yields the CPU.
//! Counted in `wapulse_http_connections_total{lane}`. The accept loop that
//! uses them is `crate::serve`.

use std::io;

use tokio::runtime::{Handle, Runtime};

use super::ingest::{self, Priority};

/// Which runtime serves a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// The main runtime, at normal priority: reads.
    Read,
    /// The runtime at the ingest priority: writes.
    Ingest,
}

impl Lane {
    /// The lane for a connection whose first bytes are `first` (the start
    /// of its first request line). Only methods that write go to the
    /// ingest lane; anything short or unknown stays on the read lane.
    pub fn of(first: &[u8]) -> Self {
        if first.starts_with(b"POST ") {
            Self::Ingest
        } else {
            Self::Read
        }
    }

    /// The label used in `wapulse_http_connections_total`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Ingest => "ingest",
        }
    }
}

/// The ingest lane's runtime. Dropping it stops its threads without
/// waiting (allowed from inside another runtime, unlike a plain drop).
pub struct IngestLane {
    runtime: Option<Runtime>,
}

impl IngestLane {
    /// Starts `threads` workers (at least one) at `priority`, named
    /// `wapulse-ingest`.
    pub fn start(threads: usize, priority: Priority) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("wapulse-ingest")
            .on_thread_start(move || ingest::set_current_thread(priority))
            .enable_all()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Where ingest connections are spawned.
    pub fn handle(&self) -> Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives until drop")
            .handle()
            .clone()
    }
}

impl Drop for IngestLane {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_go_to_the_ingest_lane_and_everything_else_reads() {
        assert_eq!(Lane::of(b"POST /v1"), Lane::Ingest);
        assert_eq!(Lane::of(b"GET /ses"), Lane::Read);
        assert_eq!(Lane::of(b"HEAD /he"), Lane::Read);
        assert_eq!(Lane::of(b"POS"), Lane::Read, "too short to tell");
        assert_eq!(Lane::of(b"POSTX /"), Lane::Read);
        assert_eq!(Lane::of(b""), Lane::Read);
    }
}
