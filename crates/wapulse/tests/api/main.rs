//! The service through real HTTP: `spawn_app()` on 127.0.0.1:0, then
//! requests as a gateway, a load balancer, Prometheus or an operator would
//! make them. One test binary (one link).

mod alertmanager;
mod alerts;
mod auth;
mod cli;
mod cluster;
mod gateways;
mod helpers;
mod ingest;
mod labels;
mod lanes;
mod metrics;
mod notify;
mod platform;
mod probes;
mod receivers;
mod servers;
mod session;
mod storage;
mod tls;
mod web;
