use wapulse_core::{
    Assessment, Event, EventKind, Session, SessionId, SessionState, Thresholds, Timestamp, evaluate,
};

/// Seconds after an arbitrary origin, as a timestamp.
pub fn at(secs: f64) -> Timestamp {
    Timestamp::from_millis(1_770_000_000_000 + (secs * 1000.0).round() as i64)
}

pub fn sid(text: &str) -> SessionId {
    SessionId::parse(text).unwrap()
}

pub fn ev(secs: f64, kind: EventKind) -> Event {
    Event {
        session: sid("s1"),
        at: at(secs),
        id: None,
        kind,
    }
}

pub fn state(secs: f64, s: SessionState) -> Event {
    ev(
        secs,
        EventKind::State {
            state: s,
            reason: None,
        },
    )
}

pub fn heartbeat(secs: f64) -> Event {
    ev(secs, EventKind::Heartbeat { rtt_ms: Some(40) })
}

/// Folds `events` into a new session with the default thresholds.
pub fn fold(events: &[Event]) -> Session {
    fold_with(events, &Thresholds::default())
}

pub fn fold_with(events: &[Event], t: &Thresholds) -> Session {
    let mut s = Session::new(sid("s1"), events.first().map_or(at(0.0), |e| e.at));
    for e in events {
        s.apply(e, t);
    }
    s
}

pub fn judge(s: &Session, secs: f64) -> Assessment {
    evaluate(s, &Thresholds::default(), at(secs))
}

/// The codes firing, each with its level, e.g. `["HEARTBEAT_STALE:warning"]`.
pub fn fired(s: &Session, secs: f64) -> Vec<String> {
    judge(s, secs)
        .alerts
        .iter()
        .map(|a| format!("{}:{}", a.code, a.level))
        .collect()
}
