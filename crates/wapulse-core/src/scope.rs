//! Tenant scopes: which sessions a scoped token may see and write.
//!
//! A [`Scope`] is either label equality (`tenant = "acme"`: every session
//! whose labels hold each pair) or a list of session ids. A session without
//! the label is outside every label scope. The rules here are pure: the
//! daemon asks them of sessions, alerts and ingest batches.
//!
//! An ingest batch is checked whole ([`Scope::check_batch`]): an event for
//! a session outside the scope, or a `labels` event that would change a
//! scope label, refuses the batch naming its index. A label scope may
//! create sessions: each new one is given the scope's labels by a `labels`
//! event placed before its first event, so it is the tenant's from its
//! first instant.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventKind};
use crate::fleet::FleetSnapshot;
use crate::id::SessionId;
use crate::labels::{LabelChanges, Labels};
use crate::session::Session;

/// Which sessions a scoped token covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// Sessions whose labels hold every pair.
    Labels(BTreeMap<String, String>),
    /// These sessions.
    Sessions(BTreeSet<SessionId>),
}

/// Why an ingest batch was refused by a scope.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OutOfScope {
    /// The event concerns a session the scope does not cover.
    #[error("event {index}: session `{session}` is outside this token's scope")]
    Session {
        /// The event's index in the batch.
        index: usize,
        /// Its session.
        session: SessionId,
    },
    /// The `labels` event would change or remove a label the scope is
    /// defined by (which would move the session out of it).
    #[error(
        "event {index}: label `{label}` defines this token's scope; a scoped token cannot \
         change it"
    )]
    ScopeLabel {
        /// The event's index in the batch.
        index: usize,
        /// The label.
        label: String,
    },
}

impl OutOfScope {
    /// The index of the event refused.
    pub fn index(&self) -> usize {
        match self {
            OutOfScope::Session { index, .. } | OutOfScope::ScopeLabel { index, .. } => *index,
        }
    }
}

impl Scope {
    /// Whether `session` is in scope.
    pub fn admits(&self, session: &Session) -> bool {
        self.admits_labelled(session.id().as_str(), &session.labels)
    }

    /// Whether the session `id` with `labels` is in scope.
    pub fn admits_labelled(&self, id: &str, labels: &Labels) -> bool {
        match self {
            Scope::Labels(pairs) => pairs.iter().all(|(n, v)| labels.get(n) == Some(v.as_str())),
            Scope::Sessions(ids) => ids.contains(id),
        }
    }

    /// Whether an alert whose labels `label` reads (its `session` among
    /// them) concerns sessions in scope only. A fleet incident carries no
    /// session: a label scope takes one whose labels (its `incident_by`
    /// set) hold the scope's pairs, which then covers in-scope sessions
    /// only; a list scope takes none.
    pub fn admits_alert<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        match self {
            Scope::Labels(pairs) => pairs.iter().all(|(n, v)| label(n) == Some(v.as_str())),
            Scope::Sessions(ids) => label("session").is_some_and(|s| ids.contains(s)),
        }
    }

    /// The session a scope of one listed session stands for: what
    /// `/session/*` answers for such a token. `None` for a label scope.
    pub fn first_session(&self) -> Option<&SessionId> {
        match self {
            Scope::Labels(_) => None,
            Scope::Sessions(ids) => ids.iter().next(),
        }
    }

    /// How the scope reads in a message: `tenant=acme`, or `3 sessions`.
    pub fn describe(&self) -> String {
        match self {
            Scope::Labels(pairs) => pairs
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            Scope::Sessions(ids) if ids.len() == 1 => "1 session".into(),
            Scope::Sessions(ids) => format!("{} sessions", ids.len()),
        }
    }

    /// Checks a batch a scoped token sends against the fleet it will be
    /// applied to: the batch, with the scope's labels given to each
    /// session it creates (label scopes), or the first event refused.
    pub fn check_batch(
        &self,
        events: Vec<Event>,
        fleet: &FleetSnapshot,
    ) -> Result<Vec<Event>, OutOfScope> {
        let mut created: HashSet<SessionId> = HashSet::new();
        for (index, event) in events.iter().enumerate() {
            let known = fleet.get(event.session.as_str());
            let admitted = match known {
                Some(s) => self.admits(s),
                None => match self {
                    Scope::Labels(_) => {
                        created.insert(event.session.clone());
                        true
                    }
                    Scope::Sessions(ids) => ids.contains(&event.session),
                },
            };
            if !admitted {
                return Err(OutOfScope::Session {
                    index,
                    session: event.session.clone(),
                });
            }
            if let (Scope::Labels(pairs), EventKind::Labels { labels }) = (self, &event.kind)
                && let Some((label, _)) = labels
                    .iter()
                    .find(|(n, v)| pairs.get(*n).is_some_and(|want| *v != Some(want.as_str())))
            {
                return Err(OutOfScope::ScopeLabel {
                    index,
                    label: label.to_owned(),
                });
            }
        }
        let Scope::Labels(pairs) = self else {
            return Ok(events);
        };
        if created.is_empty() {
            return Ok(events);
        }
        let changes = LabelChanges::try_from_changes(
            pairs.iter().map(|(n, v)| (n.as_str(), Some(v.as_str()))),
        )
        .expect("scope labels are checked when the token is loaded");
        let mut out = Vec::with_capacity(events.len() + created.len());
        for event in events {
            if created.remove(&event.session) {
                out.push(Event {
                    session: event.session.clone(),
                    at: event.at,
                    id: None,
                    kind: EventKind::Labels {
                        labels: changes.clone(),
                    },
                });
            }
            out.push(event);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::Fleet;
    use crate::thresholds::Thresholds;
    use crate::time::Timestamp;

    fn id(s: &str) -> SessionId {
        SessionId::parse(s).unwrap()
    }

    fn ev(session: &str, kind: EventKind) -> Event {
        Event {
            session: id(session),
            at: Timestamp::from_millis(1_770_000_000_000),
            id: None,
            kind,
        }
    }

    fn heartbeat(session: &str) -> Event {
        ev(session, EventKind::HeartbeatFailed)
    }

    fn labels(session: &str, pairs: &[(&str, Option<&str>)]) -> Event {
        ev(
            session,
            EventKind::Labels {
                labels: LabelChanges::try_from_changes(pairs.iter().copied()).unwrap(),
            },
        )
    }

    fn acme() -> Scope {
        Scope::Labels(BTreeMap::from([("tenant".into(), "acme".into())]))
    }

    fn fleet() -> Fleet {
        let mut f = Fleet::new(Thresholds::default());
        f.apply_all(&[
            labels("a1", &[("tenant", Some("acme"))]),
            labels("b1", &[("tenant", Some("bolt"))]),
            heartbeat("bare"),
        ]);
        f
    }

    #[test]
    fn a_label_scope_admits_only_sessions_holding_every_pair() {
        let f = fleet();
        let snap = f.snapshot();
        let scope = acme();
        assert!(scope.admits(snap.get("a1").unwrap()));
        assert!(!scope.admits(snap.get("b1").unwrap()));
        assert!(
            !scope.admits(snap.get("bare").unwrap()),
            "no label: no scope"
        );
        let listed = Scope::Sessions(BTreeSet::from([id("b1")]));
        assert!(listed.admits(snap.get("b1").unwrap()));
        assert!(!listed.admits(snap.get("a1").unwrap()));
    }

    #[test]
    fn a_batch_touching_another_session_is_refused_naming_it() {
        let f = fleet();
        let err = acme()
            .check_batch(vec![heartbeat("a1"), heartbeat("b1")], &f.snapshot())
            .unwrap_err();
        assert_eq!(
            err,
            OutOfScope::Session {
                index: 1,
                session: id("b1")
            }
        );
        let listed = Scope::Sessions(BTreeSet::from([id("a1")]));
        let err = listed
            .check_batch(vec![heartbeat("new")], &f.snapshot())
            .unwrap_err();
        assert_eq!(err.index(), 0, "a list scope creates nothing else");
    }

    #[test]
    fn new_sessions_of_a_label_scope_get_its_labels_first() {
        let f = fleet();
        let out = acme()
            .check_batch(
                vec![heartbeat("a1"), heartbeat("new"), heartbeat("new")],
                &f.snapshot(),
            )
            .unwrap();
        assert_eq!(out.len(), 4);
        assert_eq!(out[1].session, id("new"));
        let EventKind::Labels { labels } = &out[1].kind else {
            panic!("{:?}", out[1]);
        };
        assert_eq!(labels.get("tenant"), Some(Some("acme")));
        let mut g = fleet();
        g.apply_all(&out);
        assert!(acme().admits(g.snapshot().get("new").unwrap()));
    }

    #[test]
    fn a_scoped_token_cannot_move_a_session_out_of_its_scope() {
        let f = fleet();
        for change in [Some("bolt"), None] {
            let err = acme()
                .check_batch(vec![labels("a1", &[("tenant", change)])], &f.snapshot())
                .unwrap_err();
            assert!(
                matches!(err, OutOfScope::ScopeLabel { index: 0, .. }),
                "{err}"
            );
        }
        // Other labels, and the scope's own value, are fine.
        assert!(
            acme()
                .check_batch(
                    vec![labels(
                        "a1",
                        &[("tenant", Some("acme")), ("region", Some("eu"))]
                    )],
                    &f.snapshot()
                )
                .is_ok()
        );
    }

    #[test]
    fn membership_changes_with_sessions_and_labels_only() {
        let mut f = fleet();
        let at = f.snapshot().membership();
        f.apply_all(&[heartbeat("a1"), ev("b1", EventKind::HeartbeatFailed)]);
        assert_eq!(f.snapshot().membership(), at, "events of known sessions");
        f.apply_all(&[labels("a1", &[("region", Some("eu"))])]);
        let relabelled = f.snapshot().membership();
        assert_ne!(relabelled, at);
        f.apply_all(&[heartbeat("new")]);
        let added = f.snapshot().membership();
        assert_ne!(added, relabelled);
        f.apply_all(&[ev("new", EventKind::Retire { reason: None })]);
        assert_ne!(f.snapshot().membership(), added);
        // A fleet rebuilt from its state never repeats another's numbers.
        let rebuilt = Fleet::from_state(
            Thresholds::default(),
            f.to_state(),
            crate::dedup::DedupLimits::default(),
        );
        assert_ne!(rebuilt.snapshot().membership(), f.snapshot().membership());
    }

    #[test]
    fn alerts_are_in_scope_by_their_labels_and_incidents_by_none() {
        let scope = acme();
        assert!(scope.admits_alert(|n| (n == "tenant").then_some("acme")));
        assert!(!scope.admits_alert(|n| (n == "session").then_some("a1")));
        let listed = Scope::Sessions(BTreeSet::from([id("a1")]));
        assert!(listed.admits_alert(|n| (n == "session").then_some("a1")));
        assert!(!listed.admits_alert(|_| None));
    }
}
