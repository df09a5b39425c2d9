//! The evaluator's pass on its own: a fleet snapshot in, the published
//! [`AlertSnapshot`] and the outbox rows out, at instants the test chooses
//! (no thread, no clock, no HTTP).

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use wapulse_core::grouping::Status;
use wapulse_core::{
    Event, Fleet, FleetSnapshot, Level, Phase, SessionId, Silence, Thresholds, Timestamp, evaluate,
    next_change,
};

use super::Evaluator;
use super::schedule::Deadlines;
use crate::alerting::config::AlertingSettings;
use crate::alerting::metrics::AlertMetrics;
use crate::alerting::payload::Payload;
use crate::alerting::snapshot::AlertSnapshot;
use crate::alerting::store::{AlertStore, OutboxRow};
use crate::store::Durability;
use crate::store::sqlite::{FILE_NAME, SqliteStore};

/// One webhook receiver, everything at once: a condition fires on the
/// pass that sees it, and its group is flushed on that pass.
const HOOK: &str = r#"
[alerting]
for = "0s"
group_wait = "0s"
[[receivers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
"#;

fn settings(toml_text: &str) -> AlertingSettings {
    crate::alerting::config::from_toml(toml_text).unwrap()
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(1_770_000_000_000 + secs * 1000)
}

fn event(session: &str, secs: i64, body: serde_json::Value) -> Event {
    let mut json = body;
    json["session"] = session.into();
    json["at"] = at(secs).to_rfc3339().into();
    serde_json::from_value(json).unwrap()
}

fn sid(id: &str) -> SessionId {
    SessionId::parse(id).unwrap()
}

/// An evaluator over a fleet the test feeds, with its store in a temporary
/// directory.
struct Bench {
    dir: tempfile::TempDir,
    settings: Arc<AlertingSettings>,
    fleet: Fleet,
    published: Arc<ArcSwap<FleetSnapshot>>,
    evaluator: Evaluator,
    alerts: Arc<ArcSwap<AlertSnapshot>>,
    store: Arc<Mutex<AlertStore>>,
}

impl Bench {
    fn new(toml_text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // The journal's store runs the migrations the alerting tables need.
        drop(SqliteStore::open(dir.path(), Durability::Process, None).unwrap());
        let fleet = Fleet::new(Thresholds::default());
        let published = Arc::new(ArcSwap::from_pointee(fleet.snapshot()));
        let settings = Arc::new(settings(toml_text));
        let (evaluator, alerts, store) = Self::load(&dir, &settings, &published);
        Self {
            dir,
            settings,
            fleet,
            published,
            evaluator,
            alerts,
            store,
        }
    }

    fn load(
        dir: &tempfile::TempDir,
        settings: &Arc<AlertingSettings>,
        published: &Arc<ArcSwap<FleetSnapshot>>,
    ) -> (
        Evaluator,
        Arc<ArcSwap<AlertSnapshot>>,
        Arc<Mutex<AlertStore>>,
    ) {
        let store = AlertStore::open(&dir.path().join(FILE_NAME), Durability::Process, None);
        let store = Arc::new(Mutex::new(store.unwrap()));
        let alerts = Arc::new(ArcSwap::from_pointee(AlertSnapshot::default()));
        let cell = published.clone();
        let evaluator = Evaluator::load(
            settings.clone(),
            Thresholds::default(),
            store.clone(),
            Box::new(move || cell.load_full()),
            alerts.clone(),
            AlertMetrics::register(&prometheus::Registry::new()),
            Arc::new(tokio::sync::Notify::new()),
            Vec::new(),
        )
        .unwrap();
        (evaluator, alerts, store)
    }

    /// A restart: a new evaluator loaded from the same store.
    fn restart(&mut self) {
        let (evaluator, alerts, store) = Self::load(&self.dir, &self.settings, &self.published);
        self.evaluator = evaluator;
        self.alerts = alerts;
        self.store = store;
    }

    /// Applies events and publishes the fleet, as the writer does.
    fn apply(&mut self, events: &[Event]) -> Vec<SessionId> {
        self.fleet.apply_all(events);
        self.published.store(Arc::new(self.fleet.snapshot()));
        events.iter().map(|e| e.session.clone()).collect()
    }

    fn outbox(&self, receiver: &str, now: Timestamp) -> Vec<OutboxRow> {
        let store = self.store.lock().unwrap();
        store.due(receiver, now, 100).unwrap()
    }
}

fn logged_out(session: &str, secs: i64) -> Vec<Event> {
    vec![
        event(
            session,
            secs,
            serde_json::json!({"type": "state", "state": "connected"}),
        ),
        event(
            session,
            secs + 1,
            serde_json::json!({"type": "state", "state": "logged_out"}),
        ),
    ]
}

#[test]
fn a_logged_out_session_fires_and_its_message_is_in_the_outbox_before_anything_is_sent() {
    let mut b = Bench::new(HOOK);
    let changed = b.apply(&logged_out("a", 0));
    b.evaluator.pass(at(2), changed, true);

    let judged = b.alerts.load_full();
    assert_eq!(judged.evaluated_at, Some(at(2)));
    assert_eq!(judged.by_level[Level::Critical as usize], 1);
    assert_eq!(judged.counts.firing, 1);
    let alert = &judged.active[0];
    assert_eq!((&*alert.session, alert.code), ("a", "LOGGED_OUT"));
    assert_eq!(alert.state, Phase::Firing);

    let rows = b.outbox("hook", at(2));
    assert_eq!(rows.len(), 1, "one message for one group");
    let payload = Payload::read(&rows[0].body).unwrap();
    let message = payload.into_group_message().unwrap();
    assert_eq!(message.status, Status::Firing);
    assert_eq!(message.firing[0].session, "a");
}

#[test]
fn the_rollup_counts_every_session_at_the_level_evaluate_gives() {
    let mut b = Bench::new(HOOK);
    let mut events = logged_out("a", 0);
    events.push(event(
        "b",
        0,
        serde_json::json!({"type": "state", "state": "connected"}),
    ));
    events.push(event("b", 1, serde_json::json!({"type": "heartbeat"})));
    let changed = b.apply(&events);
    b.evaluator.pass(at(2), changed, true);

    let recount = |b: &Bench, now| {
        let snap = b.published.load_full();
        let mut levels = [0usize; 3];
        let mut codes = [[0usize; 3]; wapulse_core::AlertCode::ALL.len()];
        for s in snap.sessions() {
            let a = evaluate(s, &Thresholds::default(), now);
            levels[a.level as usize] += 1;
            for x in &a.alerts {
                codes[x.code as usize][x.level as usize] += 1;
            }
        }
        (levels, codes)
    };
    let (levels, codes) = recount(&b, at(2));
    assert_eq!(b.alerts.load_full().by_level, levels);
    assert_eq!(b.alerts.load_full().by_code, codes);
    assert_eq!(b.alerts.load_full().sessions(), 2);
    assert_eq!(
        codes[wapulse_core::AlertCode::LoggedOut as usize][wapulse_core::Level::Critical as usize],
        1
    );
    // Kept by difference: after a recovery and a retire, still a recount.
    let changed = b.apply(&[event(
        "a",
        3,
        serde_json::json!({"type": "state", "state": "connected"}),
    )]);
    b.evaluator.pass(at(4), changed, false);
    assert_eq!(b.alerts.load_full().by_code, recount(&b, at(4)).1);
    let changed = b.apply(&[event("b", 5, serde_json::json!({"type": "retire"}))]);
    b.evaluator.pass(at(6), changed, false);
    let (levels, codes) = recount(&b, at(6));
    assert_eq!(b.alerts.load_full().by_code, codes);
    assert_eq!(b.alerts.load_full().by_level, levels);
}

#[test]
fn a_deadline_brings_a_session_back_without_news() {
    let mut b = Bench::new(HOOK);
    let changed = b.apply(&[
        event(
            "b",
            0,
            serde_json::json!({"type": "state", "state": "connected"}),
        ),
        event("b", 0, serde_json::json!({"type": "heartbeat"})),
    ]);
    b.evaluator.pass(at(0), changed, true);
    let level_at = |b: &Bench| {
        let j = b.alerts.load_full();
        (0..3).find(|l| j.by_level[*l] == 1).unwrap()
    };
    let before = level_at(&b);

    // No event arrives; the verdict changes at `next_change` all the same.
    let snap = b.published.load_full();
    let session = snap.get("b").unwrap();
    let due = next_change(session, &Thresholds::default(), at(0)).unwrap();
    let expected = evaluate(session, &Thresholds::default(), due).level as usize;
    assert_ne!(before, expected, "the verdict changes at its deadline");
    b.evaluator.pass(due, Vec::new(), false);
    assert_eq!(level_at(&b), expected);
}

#[test]
fn a_restart_keeps_the_firing_alert_and_writes_no_second_message() {
    let mut b = Bench::new(HOOK);
    let changed = b.apply(&logged_out("a", 0));
    b.evaluator.pass(at(2), changed, true);
    assert_eq!(b.outbox("hook", at(2)).len(), 1);

    b.restart();
    b.evaluator.pass(at(3), Vec::new(), true);
    let judged = b.alerts.load_full();
    assert_eq!(judged.counts.firing, 1);
    assert_eq!(
        judged.active[0].fired_at,
        Some(at(2)),
        "fired before the restart"
    );
    assert_eq!(b.outbox("hook", at(3)).len(), 1, "nothing said twice");
}

#[test]
fn a_silenced_alert_is_listed_silenced_and_sends_nothing() {
    let mut b = Bench::new(HOOK);
    let silence: Silence = serde_json::from_value(serde_json::json!({
        "id": "s1",
        "matchers": [{"name": "session", "value": "a"}],
        "startsAt": at(0).to_rfc3339(),
        "endsAt": at(3600).to_rfc3339(),
        "createdBy": "test",
        "comment": "maintenance",
    }))
    .unwrap();
    let mut changed = Vec::new();
    assert!(
        !b.evaluator
            .take(super::Msg::Silences(vec![silence]), &mut changed)
    );
    let changed = b.apply(&logged_out("a", 0));
    b.evaluator.pass(at(2), changed, true);

    let judged = b.alerts.load_full();
    assert_eq!(judged.counts.silenced, 1);
    assert!(judged.active[0].silenced);
    assert!(b.outbox("hook", at(2)).is_empty());
}

#[test]
fn superseded_deadlines_are_passed_over_and_a_rebuild_keeps_only_current_ones() {
    let mut d = Deadlines::default();
    let (a, b) = (sid("a"), sid("b"));
    d.push(at(5), a.clone());
    d.push(at(3), a.clone()); // a's deadline moved to 3; 5 is superseded
    d.push(at(4), b.clone());
    assert_eq!(d.next(), Some(at(3)));
    let current = |id: &SessionId, t: Timestamp| (id == &a && t == at(3)) || id == &b;
    assert_eq!(d.take_due(at(4), current), vec![a.clone(), b.clone()]);
    // The stale entry comes due later and is passed over.
    assert!(d.take_due(at(10), |_, _| false).is_empty());
    assert_eq!(d.len(), 0);
    d.push(at(7), a.clone());
    d.push(at(8), a.clone());
    d.rebuild([(at(8), a.clone())].into_iter());
    assert_eq!(d.len(), 1);
    assert_eq!(d.next(), Some(at(8)));
}

#[test]
fn the_published_indexes_answer_for_the_fleet_only_once_its_changes_are_judged() {
    let mut b = Bench::new(HOOK);
    let changed = b.apply(&logged_out("a", 0));
    b.evaluator.pass(at(2), changed, true);
    let fleet = b.published.load_full();
    let judged = b.alerts.load_full();
    assert!(judged.judged(&fleet), "a full pass judged the whole fleet");
    let (critical, n) = judged.levels.at(Level::Critical, None).unwrap();
    assert_eq!((critical[0].as_str(), n), ("a", 1));

    // A new commit: until the evaluator is told of it and passes, its
    // indexes do not answer for the new snapshot.
    let ids = b.apply(&logged_out("b", 3));
    let fleet = b.published.load_full();
    assert!(!b.alerts.load_full().judged(&fleet));
    let mut changed = Vec::new();
    assert!(
        !b.evaluator
            .take(super::Msg::Changed(ids, fleet.events()), &mut changed)
    );
    b.evaluator.pass(at(5), changed, false);
    let judged = b.alerts.load_full();
    assert!(judged.judged(&fleet));
    let (critical, n) = judged.levels.at(Level::Critical, None).unwrap();
    assert_eq!(
        (critical.iter().map(|i| i.as_str()).collect::<Vec<_>>(), n),
        (vec!["a", "b"], 2)
    );
    assert_eq!(
        judged.active.find("b", "LOGGED_OUT").map(|a| a.state),
        Some(Phase::Firing)
    );
}

#[test]
fn equal_summaries_of_many_sessions_are_one_text() {
    let mut b = Bench::new(HOOK);
    let mut changed = b.apply(&logged_out("a", 0));
    changed.extend(b.apply(&logged_out("b", 0)));
    b.evaluator.pass(at(2), changed, true);
    let judged = b.alerts.load_full();
    let a = judged.active.find("a", "LOGGED_OUT").unwrap();
    let c = judged.active.find("b", "LOGGED_OUT").unwrap();
    assert_eq!(a.summary, c.summary);
    assert!(Arc::ptr_eq(&a.summary, &c.summary), "one copy, shared");
}
