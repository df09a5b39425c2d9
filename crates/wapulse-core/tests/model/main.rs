//! The core's behaviour, through its public API: events in, figures and
//! alerts out. One test binary (faster to link than one per file).

mod alerting;
mod delivery;
mod fleet;
mod gateways;
mod labels;
mod ordering;
mod properties;
mod rules;
mod support;
