//! The wapulse service: HTTP API, dashboard, ingest, alerting, and the
//! operator CLI's commands.
//!
//! # Layout
//! From the entry points down: a module imports only modules after it in
//! this list (`scripts/imports --check` holds the order).
//!
//! Entry points and wiring:
//! - [`startup`]: [`startup::Application`] builds every part from the
//!   settings and wires them (the one place that does).
//! - [`serve`]: the accept loop; ingest connections on a low-priority lane.
//! - [`demo`]: a simulated fleet with realistic trouble (`wapulse demo`).
//! - [`beat`]: `wapulse beat`, a heartbeat key for workers that have none.
//! - [`nagios`]: `wapulse check`, the Nagios/Icinga plugin and container
//!   healthcheck.
//!
//! The HTTP layer (reads the shared state, never written to by it):
//! - [`web`]: the dashboard's pages.
//! - [`openapi`]: `/openapi.json`, generated from the route table.
//! - [`routes`]: the API: one module per resource, the route table, the
//!   router, the fast path.
//! - [`auth`]: who may call what; tokens checked in constant time.
//!
//! Below the HTTP layer, above the parts:
//! - [`app`]: [`app::AppState`], the state every handler shares, and where
//!   writes go (the model, or the cluster's stream).
//! - [`config`]: typed [`config::Settings`] from defaults, TOML,
//!   environment; composes each part's own settings section.
//!
//! The parts (each given narrow handles, never the app state):
//! - [`cluster`]: scale-out on NATS JetStream; implements alerting's gate.
//! - [`alerting`]: the evaluator, the outbox, one file per receiver kind.
//! - [`gateways`]: WAHA and Evolution API webhooks mapped to events.
//! - [`probes`]: background probes of PostgreSQL, Redis, heartbeat keys,
//!   HTTP and TCP, read from cache by readiness and health.
//! - [`model`]: the writer thread (group commit, snapshots) and the
//!   lock-free published snapshot.
//! - [`store`]: the journal and snapshots on disk (SQLite), and reads of
//!   the journal.
//! - [`telemetry`]: the HTTP metrics, the registry, logging.
//! - [`priority`]: CPU priority: ingest threads and connections that
//!   yield to reads, real-time request workers within a CPU budget.
//!
//! Shared vocabulary (leaves):
//! - [`tls`]: outgoing TLS (trusted roots, the shared client config).
//! - [`secret`]: [`secret::Secret`] and URL redaction.
//! - [`clock`]: wall time. [`build`]: build information.
//!
//! **Architecture invariant:** request handlers read the published
//! snapshot only; they never wait on a lock held by a writer, on disk, or
//! on the network. The exceptions are ingest, which waits for its commit,
//! `/v1/silences` writes, which wait for theirs, and `/sessions/{id}/events`
//! and `/alerts/history`, which read the store off the async workers.
#![forbid(unsafe_code)]

pub mod alerting;
pub mod app;
pub mod auth;
pub mod beat;
pub mod build;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod gateways;
pub mod history;
pub mod model;
pub mod nagios;
pub mod openapi;
pub mod priority;
pub mod probes;
pub mod retire;
pub mod routes;
pub mod secret;
pub mod serve;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod tls;
pub mod web;
