//! Many tenants in one wapulse: named tokens with scopes, who is calling,
//! and the audit log.
//!
//! - `tokens`: `[[tokens]]` in the config, checked ([`TokenSpec`], [`Grant`]).
//! - `keyring`: the tokens in force, by digest; rotation by file watch and
//!   SIGHUP ([`Keyring`]).
//! - `audit`: admin actions and new addresses, in the store ([`AuditLog`]).
//! - `pages`: `[status_pages]`, the tenants' status pages' settings (the
//!   page itself is `web/pages/status`).
//! - here: [`Caller`], what a handler knows of who asked: the token's name
//!   and scope, set by the router's auth layer.
//!
//! The scope rules themselves are pure and live in `wapulse_core::scope`.
//! Invariant: a scoped caller's answer is built only from sessions in its
//! scope; an out-of-scope id gets exactly the answer an unknown id gets.

pub mod audit;
pub mod keyring;
pub mod pages;
pub mod tokens;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use wapulse_core::event::STATES;
use wapulse_core::{FleetSnapshot, Rollup, Scope, Session, SessionId, Thresholds, Timestamp};

use crate::alerting::{AlertCounts, AlertSnapshot};

pub use audit::AuditLog;
pub use keyring::{Keyring, Named};
pub use tokens::{Grant, RawToken, TokenSpec};

/// Who made a request, as the auth layer found out. A request without a
/// named token (an open route, a single token such as `READ_TOKEN`) is
/// unscoped: it sees every session, as before tenants existed.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The named token presented (`None`: a single token or none).
    pub token: Option<Arc<Named>>,
    /// Which single token admitted it (`ADMIN_TOKEN`, …), for the audit
    /// log when no named token was presented.
    pub setting: Option<&'static str>,
}

impl Caller {
    /// A caller known by a named token.
    pub fn named(token: Arc<Named>) -> Self {
        Self {
            token: Some(token),
            setting: None,
        }
    }

    /// The scope it is held to (`None`: every session).
    pub fn scope(&self) -> Option<&Scope> {
        self.token.as_ref().and_then(|t| t.scope.as_deref())
    }

    /// Whether it sees only the current life of a session: one that was
    /// retired and came back (its id taken again, perhaps by another
    /// tenant) starts afresh for a label scope, which must not learn whose
    /// the id was before. An unscoped caller sees the id's whole past, and
    /// a list scope the past of the ids the operator gave it.
    pub fn current_life_only(&self) -> bool {
        matches!(self.scope(), Some(Scope::Labels(_)))
    }

    /// The ids of the sessions it sees in `fleet`, in id order (`None`:
    /// unscoped, every session). Computed once per fleet membership (a
    /// session added, retired or relabelled) and kept with the token, so a
    /// tenant's reads cost its own sessions, not a walk over the fleet.
    pub fn members(&self, fleet: &FleetSnapshot) -> Option<Arc<Vec<SessionId>>> {
        let token = self.token.as_ref()?;
        let scope = token.scope.as_deref()?;
        let mut cached = token.members.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, ids)) = cached.as_ref()
            && *at == fleet.membership()
        {
            return Some(ids.clone());
        }
        let ids: Vec<SessionId> = match scope {
            Scope::Sessions(list) => list
                .iter()
                .filter(|id| fleet.get(id.as_str()).is_some())
                .cloned()
                .collect(),
            Scope::Labels(_) => fleet
                .sessions_after(None)
                .filter(|s| scope.admits(s))
                .map(|s| s.id().clone())
                .collect(),
        };
        let ids = Arc::new(ids);
        *cached = Some((fleet.membership(), ids.clone()));
        Some(ids)
    }

    /// What a tenant's views count (`/api/health`, the dashboard's cards,
    /// grid and live ticks): its sessions judged at `now`, and the alerts of
    /// `judged` it sees. The fleet's come from the evaluator instead.
    pub fn counts(
        &self,
        fleet: &FleetSnapshot,
        t: &Thresholds,
        now: Timestamp,
        judged: &AlertSnapshot,
    ) -> Counts {
        let mut c = Counts::default();
        let members = self.members(fleet).unwrap_or_default();
        for s in members.iter().filter_map(|id| fleet.get(id.as_str())) {
            let a = wapulse_core::evaluate(s, t, now);
            let (state, level) = (s.state.index(), a.level as usize);
            c.rollup.sessions += 1;
            c.rollup.by_state[state] += 1;
            c.rollup.by_level[level] += 1;
            c.rollup.alerts += a.alerts.len();
            c.by_state_level[state][level] += 1;
        }
        for a in judged.active.iter().filter(|a| self.sees_alert(a)) {
            // As the fleet's: firing counts incidents too.
            match a.state {
                wapulse_core::Phase::Firing => c.alerts.firing += 1,
                _ => c.alerts.pending += 1,
            }
            if a.state == wapulse_core::Phase::Firing && a.session.is_empty() {
                c.alerts.incidents += 1;
            }
            c.alerts.silenced += usize::from(a.silenced);
        }
        c
    }

    /// Whether it may see `session`.
    pub fn sees(&self, session: &Session) -> bool {
        self.scope().is_none_or(|s| s.admits(session))
    }

    /// Whether it may see the session `id` of `fleet`, or, retired (gone
    /// from the fleet with its labels), whether its scope lists it.
    pub fn sees_id(&self, fleet: &wapulse_core::FleetSnapshot, id: &str) -> bool {
        match self.scope() {
            None => true,
            Some(scope) => match fleet.get(id) {
                Some(s) => scope.admits(s),
                None => matches!(scope, Scope::Sessions(ids) if ids.contains(id)),
            },
        }
    }

    /// Whether it may see `alert`. A fleet incident is seen by a label
    /// scope whose labels it carries (`incident_by` names them: then it
    /// covers that tenant's sessions only), and by no list scope.
    pub fn sees_alert(&self, alert: &crate::alerting::ActiveAlert) -> bool {
        self.scope()
            .is_none_or(|s| s.admits_alert(|n| alert.label(n)))
    }

    /// Whether it may see `silence`: an unscoped caller every one, a
    /// scoped one those made under its own scope.
    pub fn sees_silence(&self, silence: &wapulse_core::Silence) -> bool {
        self.scope()
            .is_none_or(|s| silence.scope.as_ref() == Some(s))
    }

    /// What the audit log calls it.
    pub fn who(&self) -> String {
        match (&self.token, self.setting) {
            (Some(t), _) => t.name.to_string(),
            (None, Some(setting)) => setting.to_owned(),
            (None, None) => "open".to_owned(),
        }
    }
}

/// A tenant's counts ([`Caller::counts`]).
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Sessions, by state, by level, and their alerts.
    pub rollup: Rollup,
    /// Sessions by state and level.
    pub by_state_level: [[usize; 3]; STATES],
    /// The alerts it sees: firing, pending, its incidents, silenced.
    pub alerts: AlertCounts,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Caller>()
            .cloned()
            .unwrap_or_default())
    }
}
