//! Alert thresholds and the model's timing parameters.
//!
//! [`ThresholdsConfig`] is the plain, serde-friendly form (every field has
//! the seed's value as its default); [`Thresholds`] is the validated form
//! that the model and the rules accept, so an inconsistent configuration
//! (a warning above its critical, a zero interval) can never reach them.

use serde::{Deserialize, Serialize};

use crate::time::DurationMs;

/// Every threshold and timing parameter, as written in configuration.
/// Defaults are the seed's warning and critical tables plus the rules
/// PRODUCT.md adds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThresholdsConfig {
    /// HEARTBEAT_STALE: no heartbeat for this long (warning). Seed: 60s.
    pub heartbeat_age_warning: DurationMs,
    /// HEARTBEAT_DEAD: no heartbeat for this long (critical). Seed: 300s.
    pub heartbeat_age_critical: DurationMs,
    /// RECONNECT_ATTEMPTS: this many attempts in the current reconnect
    /// (warning). Seed: 3.
    pub reconnect_attempts_warning: u32,
    /// EXCESSIVE_RECONNECTS: this many attempts (critical). Seed: 7.
    pub reconnect_attempts_critical: u32,
    /// CREDENTIAL_AGE warning. Seed: 24h.
    pub credential_age_warning: DurationMs,
    /// CREDENTIAL_AGE critical. Seed: 168h.
    pub credential_age_critical: DurationMs,
    /// SLOW_RECONNECT warning. Seed: 30s.
    pub reconnect_latency_warning: DurationMs,
    /// SLOW_RECONNECT critical. Seed: 120s.
    pub reconnect_latency_critical: DurationMs,
    /// MISSED_HEARTBEATS warning, within `missed_heartbeat_window`. Seed: 3.
    pub missed_heartbeats_warning: u32,
    /// MISSED_HEARTBEATS critical. Seed: 10.
    pub missed_heartbeats_critical: u32,
    /// VALIDATION_FAILURES warning, within `validation_window`. Seed: 1.
    pub validation_failures_warning: u32,
    /// LONG_DISCONNECTION critical: not connected for this long. Seed: 30m.
    pub disconnection_critical: DurationMs,
    /// LOCK_HELD_TOO_LONG warning. 5m.
    pub lock_held_warning: DurationMs,
    /// LOCK_HELD_TOO_LONG critical. 30m.
    pub lock_held_critical: DurationMs,
    /// The gateway's circuit breaker threshold (consecutive failures), shown
    /// in `/session/observe`. 3.
    pub circuit_breaker_threshold: u32,
    /// How often a healthy session sends a heartbeat. 30s.
    pub heartbeat_interval: DurationMs,
    /// The sliding window over which missed heartbeats count. 1h.
    pub missed_heartbeat_window: DurationMs,
    /// The sliding window over which validation failures count. 24h.
    pub validation_window: DurationMs,
    /// The gateway's reconnect attempt limit (`maxAttempts`). 10.
    pub max_reconnect_attempts: u32,
    /// SESSION_CONFLICT warning: this many "connection replaced" closes
    /// (440) within `session_conflict_window`. 2.
    pub session_conflict_warning: u32,
    /// SESSION_CONFLICT critical. 5.
    pub session_conflict_critical: u32,
    /// The sliding window over which conflicts count. 10m.
    pub session_conflict_window: DurationMs,
    /// INBOUND_SILENCE warning: a silence whose chance under the session's
    /// own inbound rate is below this (0.001 = 0.1 %).
    pub inbound_silence_warning_chance: f64,
    /// INBOUND_SILENCE critical: chance below this (0.000001 = 0.0001 %).
    pub inbound_silence_critical_chance: f64,
    /// Never judge a silence shorter than this. 10m.
    pub inbound_silence_min_gap: DurationMs,
    /// Time constant of the inbound rate baseline. 6h.
    pub inbound_baseline_window: DurationMs,
    /// A session is judged only once its baseline rests on this many
    /// (weighted) messages. 30: a session receiving fewer than ~5 an hour
    /// is quiet and never judged.
    pub inbound_baseline_min_messages: u32,
    /// … and on this much connected time. 2h.
    pub inbound_baseline_min_history: DurationMs,
    /// DELIVERY_STALLED warning: connected, and at least
    /// `delivery_stall_min_messages` messages sent since the last ack of
    /// any message wait for their server ack, the oldest this long. 2m: a
    /// server ack normally takes well under a second, and a gateway that
    /// queues sends while it reconnects catches up within a minute.
    pub delivery_stall_warning: DurationMs,
    /// DELIVERY_STALLED critical. 10m: customers notice by then.
    pub delivery_stall_critical: DurationMs,
    /// How many outstanding messages the stall needs. 3: single acks go
    /// missing for healthy sessions; three in a row with no ack of
    /// anything in between do not (at 5 % loss, one chance in 8,000).
    pub delivery_stall_min_messages: u32,
    /// The window DELIVERY_FAILURES counts error acks and sends over. 15m
    /// (whole minutes, at most 24h).
    pub delivery_failure_window: DurationMs,
    /// DELIVERY_FAILURES warning: error acks at least this share of the
    /// sends in the window. 0.05.
    pub delivery_failure_warning: f64,
    /// DELIVERY_FAILURES critical share. 0.25.
    pub delivery_failure_critical: f64,
    /// … and at least this many error acks in the window. 5: one failed
    /// send of a quiet session is not a trend.
    pub delivery_failure_min_errors: u32,
}

impl Default for ThresholdsConfig {
    fn default() -> Self {
        Self {
            heartbeat_age_warning: DurationMs::from_secs(60),
            heartbeat_age_critical: DurationMs::from_secs(300),
            reconnect_attempts_warning: 3,
            reconnect_attempts_critical: 7,
            credential_age_warning: DurationMs::from_hours(24),
            credential_age_critical: DurationMs::from_hours(168),
            reconnect_latency_warning: DurationMs::from_secs(30),
            reconnect_latency_critical: DurationMs::from_secs(120),
            missed_heartbeats_warning: 3,
            missed_heartbeats_critical: 10,
            validation_failures_warning: 1,
            disconnection_critical: DurationMs::from_mins(30),
            lock_held_warning: DurationMs::from_mins(5),
            lock_held_critical: DurationMs::from_mins(30),
            circuit_breaker_threshold: 3,
            heartbeat_interval: DurationMs::from_secs(30),
            missed_heartbeat_window: DurationMs::from_hours(1),
            validation_window: DurationMs::from_hours(24),
            max_reconnect_attempts: 10,
            session_conflict_warning: 2,
            session_conflict_critical: 5,
            session_conflict_window: DurationMs::from_mins(10),
            inbound_silence_warning_chance: 0.001,
            inbound_silence_critical_chance: 0.000_001,
            inbound_silence_min_gap: DurationMs::from_mins(10),
            inbound_baseline_window: DurationMs::from_hours(6),
            inbound_baseline_min_messages: 30,
            inbound_baseline_min_history: DurationMs::from_hours(2),
            delivery_stall_warning: DurationMs::from_mins(2),
            delivery_stall_critical: DurationMs::from_mins(10),
            delivery_stall_min_messages: 3,
            delivery_failure_window: DurationMs::from_mins(15),
            delivery_failure_warning: 0.05,
            delivery_failure_critical: 0.25,
            delivery_failure_min_errors: 5,
        }
    }
}

/// Why a threshold configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    /// A warning level was not below its critical level.
    #[error(
        "thresholds.{warning} ({warning_value}) must be below thresholds.{critical} ({critical_value})"
    )]
    WarningNotBelowCritical {
        /// The warning field.
        warning: &'static str,
        /// Its value, as written.
        warning_value: String,
        /// The critical field.
        critical: &'static str,
        /// Its value, as written.
        critical_value: String,
    },
    /// A field that must be positive was zero.
    #[error("thresholds.{field} must be greater than zero")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// A share was not strictly between 0 and 1.
    #[error("thresholds.{field} ({value}) must be a share between 0 and 1 (0.05 = 5 %)")]
    NotAShare {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// A window was not whole minutes, or longer than a day.
    #[error("thresholds.{field} ({value}) must be whole minutes, from 1m to 24h")]
    NotMinutes {
        /// The field.
        field: &'static str,
        /// Its value, as written.
        value: String,
    },
    /// A chance was not strictly between 0 and 1.
    #[error("thresholds.{field} ({value}) must be a chance between 0 and 1 (0.001 = 0.1 %)")]
    NotAChance {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// The critical chance was not below the warning one.
    #[error(
        "thresholds.inbound_silence_critical_chance ({critical}) must be below \
         thresholds.inbound_silence_warning_chance ({warning}): a critical silence is the rarer one"
    )]
    CriticalChanceNotRarer {
        /// The warning chance.
        warning: f64,
        /// The critical chance.
        critical: f64,
    },
}

/// A validated [`ThresholdsConfig`]: every warning below its critical,
/// every duration and count positive.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Thresholds(ThresholdsConfig);

impl Thresholds {
    /// The values, as configured.
    pub fn get(&self) -> &ThresholdsConfig {
        &self.0
    }
}

impl std::ops::Deref for Thresholds {
    type Target = ThresholdsConfig;
    fn deref(&self) -> &ThresholdsConfig {
        &self.0
    }
}

fn ordered<T: PartialOrd + std::fmt::Display>(
    warning: (&'static str, T),
    critical: (&'static str, T),
) -> Result<(), ThresholdError> {
    if warning.1 < critical.1 {
        Ok(())
    } else {
        Err(ThresholdError::WarningNotBelowCritical {
            warning: warning.0,
            warning_value: warning.1.to_string(),
            critical: critical.0,
            critical_value: critical.1.to_string(),
        })
    }
}

fn positive(field: &'static str, is_zero: bool) -> Result<(), ThresholdError> {
    if is_zero {
        Err(ThresholdError::Zero { field })
    } else {
        Ok(())
    }
}

impl TryFrom<ThresholdsConfig> for Thresholds {
    type Error = ThresholdError;

    fn try_from(c: ThresholdsConfig) -> Result<Self, ThresholdError> {
        let zero = DurationMs::ZERO;
        for (field, value) in [
            ("heartbeat_age_warning", c.heartbeat_age_warning),
            ("credential_age_warning", c.credential_age_warning),
            ("reconnect_latency_warning", c.reconnect_latency_warning),
            ("disconnection_critical", c.disconnection_critical),
            ("lock_held_warning", c.lock_held_warning),
            ("heartbeat_interval", c.heartbeat_interval),
            ("missed_heartbeat_window", c.missed_heartbeat_window),
            ("validation_window", c.validation_window),
            ("session_conflict_window", c.session_conflict_window),
            ("inbound_baseline_window", c.inbound_baseline_window),
            ("delivery_stall_warning", c.delivery_stall_warning),
        ] {
            positive(field, value == zero)?;
        }
        for (field, value) in [
            ("reconnect_attempts_warning", c.reconnect_attempts_warning),
            ("missed_heartbeats_warning", c.missed_heartbeats_warning),
            ("validation_failures_warning", c.validation_failures_warning),
            ("circuit_breaker_threshold", c.circuit_breaker_threshold),
            ("max_reconnect_attempts", c.max_reconnect_attempts),
            ("session_conflict_warning", c.session_conflict_warning),
            ("delivery_stall_min_messages", c.delivery_stall_min_messages),
            ("delivery_failure_min_errors", c.delivery_failure_min_errors),
        ] {
            positive(field, value == 0)?;
        }
        let window = c.delivery_failure_window.as_millis();
        if window == 0 || !window.is_multiple_of(60_000) || window > 24 * 3_600_000 {
            return Err(ThresholdError::NotMinutes {
                field: "delivery_failure_window",
                value: c.delivery_failure_window.to_string(),
            });
        }
        for (field, value) in [
            ("delivery_failure_warning", c.delivery_failure_warning),
            ("delivery_failure_critical", c.delivery_failure_critical),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(ThresholdError::NotAShare { field, value });
            }
        }
        ordered(
            ("delivery_failure_warning", c.delivery_failure_warning),
            ("delivery_failure_critical", c.delivery_failure_critical),
        )?;
        ordered(
            ("delivery_stall_warning", c.delivery_stall_warning),
            ("delivery_stall_critical", c.delivery_stall_critical),
        )?;
        for (field, value) in [
            (
                "inbound_silence_warning_chance",
                c.inbound_silence_warning_chance,
            ),
            (
                "inbound_silence_critical_chance",
                c.inbound_silence_critical_chance,
            ),
        ] {
            if !(value > 0.0 && value < 1.0) {
                return Err(ThresholdError::NotAChance { field, value });
            }
        }
        if c.inbound_silence_critical_chance >= c.inbound_silence_warning_chance {
            return Err(ThresholdError::CriticalChanceNotRarer {
                warning: c.inbound_silence_warning_chance,
                critical: c.inbound_silence_critical_chance,
            });
        }
        ordered(
            ("session_conflict_warning", c.session_conflict_warning),
            ("session_conflict_critical", c.session_conflict_critical),
        )?;
        ordered(
            ("heartbeat_age_warning", c.heartbeat_age_warning),
            ("heartbeat_age_critical", c.heartbeat_age_critical),
        )?;
        ordered(
            ("reconnect_attempts_warning", c.reconnect_attempts_warning),
            ("reconnect_attempts_critical", c.reconnect_attempts_critical),
        )?;
        ordered(
            ("credential_age_warning", c.credential_age_warning),
            ("credential_age_critical", c.credential_age_critical),
        )?;
        ordered(
            ("reconnect_latency_warning", c.reconnect_latency_warning),
            ("reconnect_latency_critical", c.reconnect_latency_critical),
        )?;
        ordered(
            ("missed_heartbeats_warning", c.missed_heartbeats_warning),
            ("missed_heartbeats_critical", c.missed_heartbeats_critical),
        )?;
        ordered(
            ("lock_held_warning", c.lock_held_warning),
            ("lock_held_critical", c.lock_held_critical),
        )?;
        Ok(Self(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds_and_valid() {
        let t = Thresholds::try_from(ThresholdsConfig::default()).unwrap();
        assert_eq!(t.heartbeat_age_warning, DurationMs::from_secs(60));
        assert_eq!(t.heartbeat_age_critical, DurationMs::from_secs(300));
        assert_eq!(t.reconnect_attempts_critical, 7);
        assert_eq!(t.credential_age_critical, DurationMs::from_hours(168));
        assert_eq!(t.disconnection_critical, DurationMs::from_mins(30));
        assert_eq!(t, Thresholds::default());
    }

    #[test]
    fn warning_must_be_below_critical() {
        let c = ThresholdsConfig {
            heartbeat_age_warning: DurationMs::from_secs(300),
            ..Default::default()
        };
        let err = Thresholds::try_from(c).unwrap_err();
        assert_eq!(
            err.to_string(),
            "thresholds.heartbeat_age_warning (5m) must be below thresholds.heartbeat_age_critical (5m)"
        );
        let c = ThresholdsConfig {
            missed_heartbeats_critical: 2,
            ..Default::default()
        };
        assert!(matches!(
            Thresholds::try_from(c),
            Err(ThresholdError::WarningNotBelowCritical {
                critical: "missed_heartbeats_critical",
                ..
            })
        ));
    }

    #[test]
    fn zero_is_refused() {
        let c = ThresholdsConfig {
            heartbeat_interval: DurationMs::ZERO,
            ..Default::default()
        };
        assert_eq!(
            Thresholds::try_from(c).unwrap_err(),
            ThresholdError::Zero {
                field: "heartbeat_interval"
            }
        );
    }

    #[test]
    fn chances_must_be_chances_and_critical_the_rarer() {
        for bad in [0.0, 1.0, -0.5, 2.0, f64::NAN] {
            let c = ThresholdsConfig {
                inbound_silence_warning_chance: bad,
                ..Default::default()
            };
            assert!(
                matches!(
                    Thresholds::try_from(c),
                    Err(ThresholdError::NotAChance {
                        field: "inbound_silence_warning_chance",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let c = ThresholdsConfig {
            inbound_silence_critical_chance: 0.01,
            ..Default::default()
        };
        let err = Thresholds::try_from(c).unwrap_err().to_string();
        assert!(
            err.contains("inbound_silence_critical_chance (0.01)"),
            "{err}"
        );
        let c = ThresholdsConfig {
            session_conflict_critical: 2,
            ..Default::default()
        };
        assert!(matches!(
            Thresholds::try_from(c),
            Err(ThresholdError::WarningNotBelowCritical {
                critical: "session_conflict_critical",
                ..
            })
        ));
    }

    #[test]
    fn config_reads_humantime_and_rejects_unknown_fields() {
        let c: ThresholdsConfig = serde_json::from_str(
            r#"{"heartbeat_age_warning":"45s","reconnect_attempts_warning":2}"#,
        )
        .unwrap();
        assert_eq!(c.heartbeat_age_warning, DurationMs::from_secs(45));
        assert_eq!(c.reconnect_attempts_warning, 2);
        assert_eq!(c.heartbeat_age_critical, DurationMs::from_secs(300));
        let err =
            serde_json::from_str::<ThresholdsConfig>(r#"{"heartbeat_ag":"45s"}"#).unwrap_err();
        assert!(err.to_string().contains("heartbeat_ag"), "{err}");
    }
}
