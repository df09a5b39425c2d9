//! CPU priority: who yields the CPU to whom, so that a flood of events
//! never slows the reads that page people.
//!
//! - [`ingest`]: `ingest_priority`: the threads that parse batches and the
//!   journal writer run at nice 10 (or `SCHED_IDLE`), so reads win the CPU.
//! - [`lanes`]: connections that start with a `POST` are served by their
//!   own runtime at the ingest priority; everything else reads.
//! - [`reads`]: `read_priority = "realtime"`: request workers at
//!   `SCHED_RR` 1, bounded by the read governor's budget.
//! - [`metrics`]: the read governor's metrics.
//!
//! Measured in docs/benchmarks.md ("Why health reads slow down under full
//! ingest").

pub mod ingest;
pub mod lanes;
pub mod metrics;
pub mod reads;
