//! What the scenarios share: the app in-process, the `wapulse` binary as a
//! process, real servers, stand-in receivers, alerting set-ups, a test CA
//! and promtool. Scenario files take it with `use crate::support::*;`.

pub mod alerting;
pub mod app;
pub mod cards;
pub mod process;
pub mod promtool;
pub mod receivers;
pub mod replicas;
pub mod servers;
pub mod service;
pub mod smtp;
pub mod tls;

pub use alerting::*;
pub use app::*;
// Not `process::*`: its `reqwest` module would hide the reqwest crate.
pub use process::{
    Running, Served, config_check, export_journal, free_port, nix_uid, serve_on, serve_via,
    serve_with, terminate, wait_until_up, wapulse, wapulse_via,
};
pub use promtool::promtool_check;
pub use receivers::{FakeReceiver, Fault, Kind, Received, verify_webhook};
pub use replicas::*;
pub use servers::{AlertmanagerServer, BlackHole, Nats, PostgresServer, RedisServer, nats_binary};
pub use service::*;
pub use smtp::SmtpServer;
pub use tls::{TestCa, TlsListener};
