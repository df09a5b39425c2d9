//! Delivery: sends, acks, DELIVERY_STALLED, DELIVERY_FAILURES and
//! ACCOUNT_RESTRICTED.

use proptest::prelude::*;
use wapulse_core::delivery::MAX_FOLLOWED;
use wapulse_core::{
    AckStatus, AlertCode, Delivery, Direction, ErrorCode, Event, EventKind, Level, Session,
    SessionState, Thresholds, next_change,
};

use crate::support::*;

fn send(secs: f64, ids: &[&str]) -> Event {
    ev(
        secs,
        EventKind::Message {
            direction: Direction::Outbound,
            count: ids.len() as u32,
            ids: ids.iter().map(|i| (*i).into()).collect(),
        },
    )
}

fn ack(secs: f64, id: &str, status: AckStatus) -> Event {
    ev(
        secs,
        EventKind::Ack {
            message: id.into(),
            status,
            code: None,
            detail: None,
        },
    )
}

fn nack(secs: f64, id: &str, code: &str) -> Event {
    ev(
        secs,
        EventKind::Ack {
            message: id.into(),
            status: AckStatus::Error,
            code: Some(ErrorCode::parse(code).unwrap()),
            detail: Some("refused".into()),
        },
    )
}

fn delivery(s: &Session) -> &Delivery {
    s.delivery.as_deref().expect("delivery figures")
}

fn stall(s: &Session, secs: f64) -> Option<(Level, String)> {
    judge(s, secs)
        .alerts
        .into_iter()
        .find(|a| a.code == AlertCode::DeliveryStalled)
        .map(|a| (a.level, a.message()))
}

fn find(s: &Session, secs: f64, code: AlertCode) -> Option<wapulse_core::Alert> {
    judge(s, secs).alerts.into_iter().find(|a| a.code == code)
}

#[test]
fn a_session_that_never_sends_has_no_delivery_figures() {
    let s = fold(&[
        state(0.0, SessionState::Connected),
        heartbeat(10.0),
        ev(
            20.0,
            EventKind::Message {
                direction: Direction::Inbound,
                count: 3,
                ids: Box::default(),
            },
        ),
        ev(
            30.0,
            EventKind::Message {
                direction: Direction::Outbound,
                count: 2,
                ids: Box::default(),
            },
        ),
    ]);
    assert!(
        s.delivery.is_none(),
        "allocated only when a session sends with ids or is acked"
    );
    assert_eq!(s.traffic.outbound, 2);
}

#[test]
fn acks_count_once_whatever_their_order() {
    let s = fold(&[
        state(0.0, SessionState::Connected),
        send(1.0, &["a", "b", "c"]),
        ack(1.5, "a", AckStatus::Server),
        ack(1.6, "a", AckStatus::Server),
        // Delivered before its server ack: both count, the late server ack
        // changes nothing.
        ack(2.0, "b", AckStatus::Delivered),
        ack(2.5, "b", AckStatus::Server),
        // Read straight away: server, delivered and read.
        ack(3.0, "c", AckStatus::Read),
        ack(3.1, "c", AckStatus::Read),
        ack(3.2, "c", AckStatus::Delivered),
        // Never sent (as far as wapulse knows).
        ack(4.0, "zzz", AckStatus::Delivered),
    ]);
    let d = delivery(&s);
    assert_eq!(
        (
            d.sent(),
            d.server_acked(),
            d.delivered(),
            d.read(),
            d.failed()
        ),
        (3, 3, 2, 1, 0)
    );
    assert_eq!(d.pending(), 0);
    let p = d.time_to_server().unwrap();
    assert_eq!(p.p50, 500, "one measured server ack: 0.5 s");
    assert_eq!(d.time_to_delivered().unwrap().p99, 1000);
    assert_eq!(s.traffic.outbound, 3);
}

#[test]
fn an_ack_that_comes_before_its_send_counts_when_the_send_arrives() {
    let s = fold(&[
        state(0.0, SessionState::Connected),
        ack(1.0, "early", AckStatus::Server),
        send(1.2, &["early"]),
    ]);
    let d = delivery(&s);
    assert_eq!((d.sent(), d.server_acked(), d.pending()), (1, 1, 0));
}

#[test]
fn a_send_reported_twice_counts_once() {
    // Evolution reports a send in `send.message` and in `messages.upsert`.
    let s = fold(&[
        state(0.0, SessionState::Connected),
        send(1.0, &["x"]),
        send(1.1, &["x"]),
    ]);
    assert_eq!(delivery(&s).sent(), 1);
    assert_eq!(s.traffic.outbound, 1);
}

#[test]
fn an_error_ack_is_failed_not_pending_and_counted_by_code() {
    let s = fold(&[
        state(0.0, SessionState::Connected),
        send(1.0, &["a", "b"]),
        nack(2.0, "a", "479"),
        nack(2.5, "a", "479"),
    ]);
    let d = delivery(&s);
    assert_eq!((d.failed(), d.pending()), (1, 1));
    let by_code = d.errors_by_code(at(3.0), Thresholds::default().delivery_failure_window);
    assert_eq!(by_code, vec![(ErrorCode::parse("479").unwrap(), 1)]);
    assert_eq!(d.last_error_at(), Some(at(2.0)));
}

#[test]
fn past_the_bound_the_oldest_outstanding_messages_stay_followed() {
    let mut events = vec![state(0.0, SessionState::Connected)];
    let ids: Vec<String> = (0..MAX_FOLLOWED + 100).map(|i| format!("id{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        events.push(send(1.0 + i as f64 * 0.01, &[id]));
    }
    let s = fold(&events);
    let d = delivery(&s);
    assert_eq!(d.sent(), (MAX_FOLLOWED + 100) as u64);
    assert_eq!(d.pending(), MAX_FOLLOWED as u64);
    assert_eq!(d.untracked(), 100);
    assert_eq!(d.oldest_pending(), Some(at(1.0)));
    // The stall is judged from the oldest.
    assert_eq!(stall(&s, 121.0).map(|x| x.0), Some(Level::Warning));
}

/// A source that sends no keepalives: the heartbeat rules keep out of the
/// way of the deadlines these tests look at.
fn quiet(secs: f64) -> Event {
    ev(secs, EventKind::Keepalives { expected: false })
}

/// Sends every 10 s, acked within a second, until `acked_until`; after
/// that nothing is acked.
fn mute_after(acked_until: f64, end: f64) -> Vec<Event> {
    let mut events = vec![state(0.0, SessionState::Connected), quiet(0.0)];
    let mut t = 5.0;
    let mut n = 0;
    while t <= end {
        let id = format!("m{n}");
        events.push(send(t, &[&id]));
        if t <= acked_until {
            events.push(ack(t + 0.4, &id, AckStatus::Server));
        }
        t += 10.0;
        n += 1;
    }
    events
}

#[test]
fn a_mute_session_fires_at_the_bar_not_a_millisecond_before() {
    let t = Thresholds::default();
    // Last ack at 305.4 s (the send of 305); the first send since: 315 s;
    // the third at 335 s.
    let s = fold(&mute_after(305.0, 900.0));
    let bar = 315.0 + 120.0;
    assert_eq!(stall(&s, bar - 0.001), None);
    let (level, message) = stall(&s, bar).expect("fires at the bar");
    assert_eq!(level, Level::Warning);
    assert!(message.starts_with("59 sent messages waiting"), "{message}");
    assert_eq!(stall(&s, 315.0 + 600.0 - 0.001).unwrap().0, Level::Warning);
    assert_eq!(stall(&s, 315.0 + 600.0).unwrap().0, Level::Critical);
    let a = find(&s, bar, AlertCode::DeliveryStalled).unwrap();
    assert!(a.action().contains("restart"), "{}", a.action());
    // The evaluator's deadline lands exactly on the bars.
    let up_to = fold(&mute_after(305.0, 340.0));
    assert_eq!(
        next_change(&up_to, &t, at(340.0)).map(|n| n == at(bar)),
        Some(true)
    );
    assert_eq!(next_change(&up_to, &t, at(bar)), Some(at(315.0 + 600.0)));
}

#[test]
fn fewer_outstanding_messages_than_the_bar_needs_never_fire() {
    // Two sends since the last ack, hours old: lost acks, not a mute session.
    let s = fold(&mute_after(305.0, 325.0));
    assert_eq!(delivery(&s).outstanding().unwrap().count, 2);
    assert_eq!(stall(&s, 10_000.0), None);
}

#[test]
fn a_stall_resolves_when_acks_resume() {
    let mut events = mute_after(305.0, 900.0);
    events.push(send(905.0, &["again"]));
    events.push(ack(905.5, "again", AckStatus::Server));
    let s = fold(&events);
    assert_eq!(stall(&s, 906.0), None);
    // The old messages stay pending (their acks were lost), yet a new
    // stall is judged from the sends after the last ack only.
    assert!(delivery(&s).pending() >= 59);
}

#[test]
fn a_history_of_lost_acks_never_keeps_a_mute_session_from_firing() {
    let mut events = vec![state(0.0, SessionState::Connected)];
    // An hour of sends, one ack in three lost.
    for n in 0..360 {
        let t = 1.0 + n as f64 * 10.0;
        let id = format!("h{n}");
        events.push(send(t, &[&id]));
        if n % 3 != 0 {
            events.push(ack(t + 0.5, &id, AckStatus::Server));
        }
    }
    // The last ack came at 3591.5; then the session goes mute.
    for n in 0..30 {
        let t = 3_600.0 + n as f64 * 10.0;
        events.push(send(t, &[&format!("mute{n}")]));
    }
    let s = fold(&events);
    assert_eq!(stall(&s, 3_600.0 + 119.999), None);
    assert_eq!(stall(&s, 3_600.0 + 120.0).unwrap().0, Level::Warning);
}

#[test]
fn messages_sent_before_the_connection_wait_from_the_connect() {
    let mut events = vec![state(0.0, SessionState::Connected)];
    for n in 0..5 {
        events.push(send(10.0 + n as f64, &[&format!("q{n}")]));
    }
    events.push(state(20.0, SessionState::Reconnecting));
    events.push(state(1_000.0, SessionState::Connected));
    let s = fold(&events);
    assert_eq!(stall(&s, 500.0), None, "not judged while not connected");
    assert_eq!(stall(&s, 1_000.0 + 119.0), None);
    assert_eq!(stall(&s, 1_000.0 + 120.0).unwrap().0, Level::Warning);
}

#[test]
fn reach_out_timelock_fires_account_restricted_with_its_own_action() {
    let s = fold(&[
        state(0.0, SessionState::Connected),
        send(1.0, &["a"]),
        nack(2.0, "a", "463"),
    ]);
    let a = find(&s, 3.0, AlertCode::AccountRestricted).unwrap();
    assert_eq!(a.level, Level::Critical);
    assert_eq!(a.since, Some(at(2.0)));
    assert!(
        a.message().contains("463") && a.message().contains("reach-out timelock"),
        "{}",
        a.message()
    );
    assert!(a.action().contains("Do NOT re-pair"), "{}", a.action());
    let r = delivery(&s).restriction(at(3.0)).unwrap();
    assert_eq!(
        (r.kind.as_str(), r.code.as_str()),
        ("reachout_timelock", "463")
    );
}

#[test]
fn a_rate_limit_says_slow_down() {
    let s = fold(&[
        state(0.0, SessionState::Connected),
        nack(2.0, "unknown-id", "429"),
    ]);
    // An unknown id changes no count, but the code is a fact about the
    // account.
    let d = delivery(&s);
    assert_eq!((d.sent(), d.failed()), (0, 0));
    let a = find(&s, 3.0, AlertCode::AccountRestricted).unwrap();
    assert!(a.action().starts_with("Slow down"), "{}", a.action());
}

#[test]
fn a_restriction_lifts_when_a_later_send_is_delivered() {
    let mut events = vec![
        state(0.0, SessionState::Connected),
        send(1.0, &["before"]),
        nack(2.0, "x", "463"),
        // A message sent before the restriction being delivered says
        // nothing about it.
        ack(3.0, "before", AckStatus::Delivered),
    ];
    assert!(find(&fold(&events), 4.0, AlertCode::AccountRestricted).is_some());
    events.push(send(5.0, &["after"]));
    events.push(ack(6.0, "after", AckStatus::Delivered));
    let s = fold(&events);
    assert!(find(&s, 7.0, AlertCode::AccountRestricted).is_none());
}

#[test]
fn a_restriction_with_an_expiry_lifts_at_it() {
    let t = Thresholds::default();
    let mut s = fold(&[state(0.0, SessionState::Connected), quiet(0.0)]);
    let mut d = Delivery::default();
    d.restrict(
        wapulse_core::RestrictionKind::PolicyBlock,
        ErrorCode::parse("368").unwrap(),
        at(10.0),
        Some(at(3_600.0)),
    );
    s.delivery = Some(Box::new(d));
    let a = find(&s, 100.0, AlertCode::AccountRestricted).unwrap();
    assert_eq!(a.until, Some(at(3_600.0)));
    assert!(a.message().contains("until"), "{}", a.message());
    assert_eq!(next_change(&s, &t, at(100.0)), Some(at(3_600.0)));
    assert!(find(&s, 3_600.0, AlertCode::AccountRestricted).is_none());
}

#[test]
fn delivery_failures_judge_a_share_of_the_sends_in_the_window() {
    let t = Thresholds::default();
    let with_errors = |errors: usize| {
        let mut events = vec![state(0.0, SessionState::Connected), quiet(0.0)];
        for n in 0..40 {
            let id = format!("f{n}");
            events.push(send(10.0 + n as f64, &[&id]));
            if n < errors {
                events.push(nack(
                    11.0 + n as f64,
                    &id,
                    if n % 2 == 0 { "479" } else { "500" },
                ));
            } else {
                events.push(ack(10.5 + n as f64, &id, AckStatus::Server));
            }
        }
        fold(&events)
    };
    assert!(
        find(&with_errors(4), 60.0, AlertCode::DeliveryFailures).is_none(),
        "fewer than 5 errors"
    );
    let warn = find(&with_errors(5), 60.0, AlertCode::DeliveryFailures).unwrap();
    assert_eq!(
        (warn.level, warn.value, warn.context),
        (Level::Warning, 5, 40)
    );
    assert!(
        warn.message().contains("5 of 40 sends failed") && warn.message().contains("479, 500"),
        "{}",
        warn.message()
    );
    let crit = find(&with_errors(12), 60.0, AlertCode::DeliveryFailures).unwrap();
    assert_eq!(crit.level, Level::Critical);
    // Once the errors leave the window, it resolves, at an instant the
    // evaluator knows in advance.
    let s = with_errors(12);
    // (The errors fell in the first minute: they leave it 15 minutes on.)
    assert_eq!(next_change(&s, &t, at(60.0)), Some(at(15.0 * 60.0)));
    assert!(find(&s, 15.0 * 60.0 - 0.001, AlertCode::DeliveryFailures).is_some());
    assert!(find(&s, 60.0 + 16.0 * 60.0, AlertCode::DeliveryFailures).is_none());
}

// --- properties ------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Send(Vec<u16>),
    Ack(u16, AckStatus, Option<&'static str>),
}

fn op(pool: u16) -> impl Strategy<Value = (i64, Op)> {
    let send = proptest::collection::vec(0..pool, 1..4).prop_map(Op::Send);
    let ack = (
        0..pool,
        proptest::sample::select(AckStatus::ALL.to_vec()),
        proptest::sample::select(vec![None, Some("463"), Some("429"), Some("479")]),
    )
        .prop_map(|(id, status, code)| {
            Op::Ack(id, status, code.filter(|_| status == AckStatus::Error))
        });
    // Mostly forward in time, sometimes late.
    (-30_000i64..60_000, prop_oneof![1 => send, 1 => ack])
}

fn op_events(ops: &[(i64, Op)]) -> Vec<Event> {
    let mut clock = 0i64;
    let mut out = vec![state(0.0, SessionState::Connected)];
    for (step, op) in ops {
        clock += step;
        let secs = clock as f64 / 1000.0;
        out.push(match op {
            Op::Send(ids) => {
                let ids: Vec<String> = ids.iter().map(|i| format!("i{i}")).collect();
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                send(secs, &refs)
            }
            Op::Ack(id, status, code) => ev(
                secs,
                EventKind::Ack {
                    message: format!("i{id}").into(),
                    status: *status,
                    code: code.map(|c| ErrorCode::parse(c).unwrap()),
                    detail: None,
                },
            ),
        });
    }
    out
}

fn consistent(d: &Delivery) -> Result<(), TestCaseError> {
    prop_assert!(
        d.server_acked() <= d.sent(),
        "acked {} > sent {}",
        d.server_acked(),
        d.sent()
    );
    prop_assert!(d.delivered() <= d.server_acked());
    prop_assert!(d.read() <= d.delivered());
    prop_assert!(d.failed() <= d.sent());
    prop_assert!(
        d.pending() + d.server_acked().max(d.failed()) <= d.sent(),
        "pending {} acked {} failed {} sent {}",
        d.pending(),
        d.server_acked(),
        d.failed(),
        d.sent()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Late, repeated, out-of-order and unknown acks, ids reused: every
    /// count stays consistent after every event.
    #[test]
    fn counts_stay_consistent_under_any_interleaving(ops in proptest::collection::vec(op(24), 0..200)) {
        let t = Thresholds::default();
        let events = op_events(&ops);
        let mut s = Session::new(sid("s1"), at(0.0));
        for e in &events {
            s.apply(e, &t);
            if let Some(d) = &s.delivery {
                consistent(d)?;
            }
        }
    }

    /// Cut anywhere, the figures written down and read back, the rest
    /// applied: the same figures as without the cut.
    #[test]
    fn delivery_restores_exactly_after_a_cut(
        ops in proptest::collection::vec(op(24), 0..200),
        cut in any::<prop::sample::Index>(),
    ) {
        let t = Thresholds::default();
        let events = op_events(&ops);
        let cut = cut.index(events.len() + 1);
        let whole = fold_with(&events, &t);
        let mut s = fold_with(&events[..cut.max(1)], &t);
        let written = serde_json::to_string(&s.delivery).unwrap();
        s.delivery = serde_json::from_str(&written).unwrap();
        for e in &events[cut.max(1)..] {
            s.apply(e, &t);
        }
        prop_assert_eq!(&whole.delivery, &s.delivery);
    }

    /// Past the bound, with ids reused: still consistent.
    #[test]
    fn counts_stay_consistent_past_the_bound(ops in proptest::collection::vec(op(3_000), 1_100..1_400)) {
        let t = Thresholds::default();
        let s = fold_with(&op_events(&ops), &t);
        if let Some(d) = &s.delivery {
            consistent(d)?;
        }
    }

}

proptest! {
    // Fixed cases: three lost acks in a row spread over two minutes is
    // exactly what a mute session looks like, and at one send every 10 s
    // and 5 % loss it happens about once in 10,000 hours. The cases are
    // chosen once, so the run is the same every time.
    #![proptest_config(ProptestConfig {
        cases: 48,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_acc5),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// A session sending at random (a Poisson stream, one send every 2 to
    /// 10 s on average) whose server acks come within 3 s but up to 5 %
    /// of them are lost never fires DELIVERY_STALLED over six hours (the
    /// verdict is checked just before and after every event: between
    /// events it only grows with the clock).
    #[test]
    fn a_healthy_session_losing_acks_never_stalls(
        seed in any::<u64>(),
        mean_gap_ms in 2_000u64..10_000,
        loss in 0.0f64..=0.05,
    ) {
        let t = Thresholds::default();
        let mut rng = Lcg(seed | 1);
        let mut s = Session::new(sid("s1"), at(0.0));
        s.apply(&state(0.0, SessionState::Connected), &t);
        let mut pending: Vec<(f64, String)> = Vec::new();
        let mut clock = 0.0f64;
        let mut n = 0u64;
        while clock < 6.0 * 3_600.0 {
            clock += -(mean_gap_ms as f64 / 1000.0) * (1.0 - rng.unit()).ln();
            // Acks due by now, in time order.
            pending.sort_by(|a, b| a.0.total_cmp(&b.0));
            while pending.first().is_some_and(|p| p.0 <= clock) {
                let (when, id) = pending.remove(0);
                prop_assert_eq!(stall(&s, when), None);
                s.apply(&ack(when, &id, AckStatus::Server), &t);
            }
            prop_assert!(stall(&s, clock).is_none(), "stalled at {clock} s");
            let id = format!("p{n}");
            n += 1;
            s.apply(&send(clock, &[&id]), &t);
            prop_assert!(stall(&s, clock).is_none(), "stalled at {clock} s");
            if rng.unit() >= loss {
                pending.push((clock + 0.2 + 2.8 * rng.unit(), id));
            }
        }
    }
}

/// A small deterministic generator for the simulated streams.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn a_stopped_session_pages_nothing_whatever_it_holds() {
    let t = Thresholds::default();
    let mut events = mute_after(305.0, 900.0);
    events.push(nack(901.0, "m1", "463"));
    events.push(state(902.0, SessionState::Stopped));
    let stopped = events.len();
    let s = fold(&events);
    assert_eq!(s.state, SessionState::Stopped);
    assert!(
        judge(&s, 902.0 + 7_200.0).alerts.is_empty(),
        "no LONG_DISCONNECTION, no delivery alert"
    );
    assert_eq!(next_change(&s, &t, at(903.0)), None);
    // Started again: judged again.
    assert_eq!(events.len(), stopped);
    events.push(state(10_000.0, SessionState::Connecting));
    let s = fold(&events);
    assert!(find(&s, 10_000.0 + 1_801.0, AlertCode::LongDisconnection).is_some());
}

#[test]
fn a_reported_restriction_holds_until_its_end_or_its_lift() {
    let t = Thresholds::default();
    let restriction = |secs: f64, code: &str, until: Option<f64>, lifted: bool| {
        ev(
            secs,
            EventKind::Restriction {
                code: ErrorCode::parse(code).unwrap(),
                until: until.map(at),
                lifted,
            },
        )
    };
    let s = fold(&[
        state(0.0, SessionState::Connected),
        quiet(0.0),
        restriction(10.0, "BIZ_INITIATED_BLOCK", Some(7_200.0), false),
    ]);
    let a = find(&s, 20.0, AlertCode::AccountRestricted).unwrap();
    assert_eq!(
        a.restriction_kind().map(|k| k.as_str()),
        Some("messaging_restricted")
    );
    assert_eq!(next_change(&s, &t, at(20.0)), Some(at(7_200.0)));
    assert!(find(&s, 7_200.0, AlertCode::AccountRestricted).is_none());
    // A code wapulse does not name is still a restriction; a lift ends it.
    let s = fold(&[
        state(0.0, SessionState::Connected),
        restriction(10.0, "SOMETHING_NEW", None, false),
    ]);
    let a = find(&s, 20.0, AlertCode::AccountRestricted).unwrap();
    assert_eq!(a.restriction_kind().map(|k| k.as_str()), Some("other"));
    let s = fold(&[
        state(0.0, SessionState::Connected),
        restriction(10.0, "WABA_DISABLED", None, false),
        restriction(30.0, "WABA_DISABLED", None, true),
    ]);
    assert!(find(&s, 40.0, AlertCode::AccountRestricted).is_none());
}
