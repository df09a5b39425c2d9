//! The service through real HTTP: `spawn_app()` on 127.0.0.1:0, then
//! requests as a gateway, a load balancer, Prometheus or an operator would
//! make them. One test binary (one link).
//!
//! `support/` holds what the scenario files share (the app, the binary as
//! a process, real servers, stand-in receivers, alerting set-ups); each
//! other module is a scenario file and exports nothing.

mod alertmanager;
mod alerts;
mod auth;
mod backup;
mod cli;
mod cluster;
mod cluster_outage;
mod connections;
mod delivery;
mod gateway_edges;
mod gateways;
mod ha;
mod health;
mod history;
mod ingest;
mod labels;
mod lanes;
mod metrics;
mod notify_cards;
mod notify_chat;
mod notify_delivery;
mod notify_email;
mod notify_incidents;
mod notify_restarts;
mod notify_routing;
mod notify_silences;
mod notify_templates;
mod notify_whatsapp;
mod probes;
mod retire;
mod security;
mod session;
mod storage;
mod support;
mod tenancy;
mod tls;
mod web;
mod whatsapp_cloud;
