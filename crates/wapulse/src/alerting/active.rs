//! The active alerts as published, with the indexes every reader pages
//! through ([`ActiveAlerts`]): built once per change by the evaluator, so a
//! read costs O(log n + page) however many alerts fire.
//!
//! - worst first (the list itself): `/alerts`, the Alertmanager resend;
//! - by session then code: the session page, `/alerts?session=`;
//! - per code, worst first: `/alerts?code=`; and by session id: the
//!   sessions pages' `?code=` filter, which walk sessions in id order;
//! - per dashboard group (incidents, firing, pending, silenced; firing and
//!   pending that no incident covers), worst first: `/ui/alerts` and the
//!   overview.
//!
//! [`SessionLevels`]: the sessions at warning and at critical, in id order,
//! as last judged: `/sessions?status=` and the dashboard's level filter.

use std::cmp::Reverse;
use std::ops::Deref;

use wapulse_core::{AlertCode, Level, Phase, SessionId};

use super::evaluator::FLEET_INCIDENT;
use super::snapshot::ActiveAlert;

/// The dashboard's groups of active alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertGroup {
    /// Fleet incidents.
    Incidents,
    /// Firing session alerts no silence mutes.
    Firing,
    /// Pending session alerts no silence mutes.
    Pending,
    /// Silenced alerts and incidents.
    Silenced,
    /// Firing session alerts no incident covers (silenced or not): the
    /// overview's headline.
    FiringUncovered,
    /// Pending session alerts no incident covers.
    PendingUncovered,
}

impl AlertGroup {
    const ALL: [AlertGroup; 6] = [
        AlertGroup::Incidents,
        AlertGroup::Firing,
        AlertGroup::Pending,
        AlertGroup::Silenced,
        AlertGroup::FiringUncovered,
        AlertGroup::PendingUncovered,
    ];

    fn holds(self, a: &ActiveAlert) -> bool {
        let incident = a.code == FLEET_INCIDENT;
        match self {
            AlertGroup::Incidents => incident,
            AlertGroup::Firing => !incident && a.state == Phase::Firing && !a.silenced,
            AlertGroup::Pending => !incident && a.state == Phase::Pending && !a.silenced,
            AlertGroup::Silenced => a.silenced,
            AlertGroup::FiringUncovered => !incident && a.state == Phase::Firing && !a.folded,
            AlertGroup::PendingUncovered => !incident && a.state == Phase::Pending && !a.folded,
        }
    }
}

/// Pending and firing alerts and incidents, worst first, with indexes (4
/// bytes per alert each). Dereferences to the worst-first slice.
#[derive(Clone, Debug, Default)]
pub struct ActiveAlerts {
    list: Vec<ActiveAlert>,
    /// Positions in (session, code) order.
    by_session: Vec<u32>,
    /// Per alert code: positions worst first, and positions by session id.
    by_code: Vec<(Vec<u32>, Vec<u32>)>,
    /// Per [`AlertGroup`]: positions worst first.
    groups: [Vec<u32>; 6],
}

impl Deref for ActiveAlerts {
    type Target = [ActiveAlert];

    fn deref(&self) -> &[ActiveAlert] {
        &self.list
    }
}

fn code_index(code: &str) -> Option<usize> {
    AlertCode::ALL.iter().position(|c| c.as_str() == code)
}

impl ActiveAlerts {
    /// Sorts `alerts`, given in (session, code) order (incidents, which
    /// have no session, first), worst first: incidents, then by level,
    /// firing before pending, oldest first, ties in (session, code) order;
    /// and indexes them. One stable sort on integer keys; the session
    /// order is the order given, so it costs no second sort.
    pub fn new(alerts: Vec<ActiveAlert>) -> Self {
        let mut ranked: Vec<(u32, ActiveAlert)> = alerts
            .into_iter()
            .enumerate()
            .map(|(rank, a)| (rank as u32, a))
            .collect();
        ranked.sort_by_key(|(_, a)| {
            (
                Reverse(a.code == FLEET_INCIDENT),
                Reverse(a.level),
                Reverse(a.state == Phase::Firing),
                a.since,
            )
        });
        let mut by_session = vec![0u32; ranked.len()];
        for (position, (rank, _)) in ranked.iter().enumerate() {
            by_session[*rank as usize] = position as u32;
        }
        let list: Vec<ActiveAlert> = ranked.into_iter().map(|(_, a)| a).collect();
        let positions = || 0..list.len() as u32;
        let mut by_code: Vec<(Vec<u32>, Vec<u32>)> = vec![Default::default(); AlertCode::ALL.len()];
        for p in positions() {
            if let Some(c) = code_index(list[p as usize].code) {
                by_code[c].0.push(p);
            }
        }
        for &p in &by_session {
            if let Some(c) = code_index(list[p as usize].code) {
                by_code[c].1.push(p);
            }
        }
        let groups = AlertGroup::ALL.map(|g| {
            positions()
                .filter(|&p| g.holds(&list[p as usize]))
                .collect()
        });
        Self {
            list,
            by_session,
            by_code,
            groups,
        }
    }

    /// The alerts at `positions` (an index's or a group's).
    pub fn alerts<'a>(
        &'a self,
        positions: &'a [u32],
    ) -> impl DoubleEndedIterator<Item = &'a ActiveAlert> + 'a {
        positions.iter().map(|&p| &self.list[p as usize])
    }

    /// The positions of one session's alerts, by code.
    fn session_positions(&self, session: &str) -> &[u32] {
        let from = self
            .by_session
            .partition_point(|&p| &*self.list[p as usize].session < session);
        let to = from
            + self.by_session[from..]
                .partition_point(|&p| &*self.list[p as usize].session == session);
        &self.by_session[from..to]
    }

    /// The active alerts of one session, worst first.
    pub fn of_session(&self, session: &str) -> impl Iterator<Item = &ActiveAlert> + '_ {
        let mut positions = self.session_positions(session).to_vec();
        positions.sort_unstable();
        positions.into_iter().map(|p| &self.list[p as usize])
    }

    /// One alert of one session.
    pub fn find(&self, session: &str, code: &str) -> Option<&ActiveAlert> {
        self.alerts(self.session_positions(session))
            .find(|a| a.code == code)
    }

    /// The alerts with this code (or the fleet incidents), worst first;
    /// none for an unknown code.
    pub fn with_code(&self, code: &str) -> &[u32] {
        if code == FLEET_INCIDENT {
            return self.group(AlertGroup::Incidents);
        }
        code_index(code).map_or(&[], |c| &self.by_code[c].0)
    }

    /// The alerts with this code in session id order, from the first
    /// session after `after`, and how many there are in all.
    pub fn with_code_by_session<'a>(
        &'a self,
        code: &str,
        after: Option<&str>,
    ) -> (impl Iterator<Item = &'a ActiveAlert> + 'a, usize) {
        let all: &[u32] = code_index(code).map_or(&[], |c| &self.by_code[c].1);
        let from = after.map_or(0, |after| {
            all.partition_point(|&p| &*self.list[p as usize].session <= after)
        });
        (self.alerts(&all[from..]), all.len())
    }

    /// One dashboard group, worst first.
    pub fn group(&self, group: AlertGroup) -> &[u32] {
        &self.groups[group as usize]
    }
}

/// The sessions at warning and at critical as the evaluator last judged
/// them, each list in id order.
#[derive(Clone, Debug, Default)]
pub struct SessionLevels {
    unhealthy: [Vec<SessionId>; 2],
}

impl SessionLevels {
    /// Sorts the lists.
    pub fn new(mut warning: Vec<SessionId>, mut critical: Vec<SessionId>) -> Self {
        warning.sort_unstable();
        critical.sort_unstable();
        Self {
            unhealthy: [warning, critical],
        }
    }

    /// A session's level as last judged (`ok` when it is at neither).
    pub fn level_of(&self, session: &str) -> Level {
        let at = |list: &[SessionId]| list.binary_search_by(|id| id.as_str().cmp(session)).is_ok();
        if at(&self.unhealthy[1]) {
            Level::Critical
        } else if at(&self.unhealthy[0]) {
            Level::Warning
        } else {
            Level::Ok
        }
    }

    /// The sessions at `level` after `after`, in id order, and how many
    /// are at it in all; `None` for `ok` (most of a fleet: walk the fleet).
    pub fn at(&self, level: Level, after: Option<&str>) -> Option<(&[SessionId], usize)> {
        let all = match level {
            Level::Ok => return None,
            Level::Warning => &self.unhealthy[0],
            Level::Critical => &self.unhealthy[1],
        };
        let from = after.map_or(0, |after| all.partition_point(|id| id.as_str() <= after));
        Some((&all[from..], all.len()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use wapulse_core::{Level, Phase, SessionId, Timestamp};

    use super::*;

    fn alert(session: &str, code: &'static str, level: Level, state: Phase) -> ActiveAlert {
        ActiveAlert {
            session: session.into(),
            code,
            level,
            state,
            since: Timestamp::from_millis(0),
            fired_at: None,
            flapping: false,
            silenced: session.ends_with('7'),
            folded: session.ends_with('3'),
            summary: "".into(),
            labels: Arc::default(),
            sessions: Vec::new(),
            affected: None,
            told: false,
        }
    }

    /// Alerts of many sessions with one or two codes each, and an
    /// incident, in (session, code) order as the evaluator gives them.
    fn input() -> Vec<ActiveAlert> {
        let mut list = vec![alert("", FLEET_INCIDENT, Level::Critical, Phase::Firing)];
        let codes = [
            AlertCode::HeartbeatStale.as_str(),
            AlertCode::LoggedOut.as_str(),
        ];
        for i in 0..200 {
            let state = if i % 3 == 0 {
                Phase::Pending
            } else {
                Phase::Firing
            };
            let mut a = alert(&format!("s-{i:03}"), codes[i % 2], Level::Critical, state);
            a.since = Timestamp::from_millis((i % 7) as i64);
            if i % 5 == 0 {
                let mut b = alert(
                    &format!("s-{i:03}"),
                    codes[(i + 1) % 2],
                    Level::Warning,
                    state,
                );
                b.since = a.since;
                let mut two = [a, b];
                two.sort_by_key(|a| a.code);
                list.extend(two);
            } else {
                list.push(a);
            }
        }
        list
    }

    #[test]
    fn every_index_gives_what_a_scan_of_the_list_gives() {
        let active = ActiveAlerts::new(input());
        let list = active.to_vec();
        let key = |a: &ActiveAlert| (a.session.to_string(), a.code);
        // Worst first, ties in (session, code) order, nothing lost.
        let rank = |a: &ActiveAlert| {
            (
                a.code != FLEET_INCIDENT,
                Reverse(a.level),
                a.state != Phase::Firing,
                a.since,
                a.session.clone(),
                a.code,
            )
        };
        assert!(list.windows(2).all(|w| rank(&w[0]) < rank(&w[1])));
        assert_eq!(list.len(), input().len());
        // A session's alerts, worst first; one of them by code.
        for s in ["s-005", "s-010", "s-199", "nope"] {
            let scan: Vec<_> = list.iter().filter(|a| &*a.session == s).map(key).collect();
            assert_eq!(active.of_session(s).map(key).collect::<Vec<_>>(), scan);
            for a in list.iter().filter(|a| &*a.session == s) {
                assert_eq!(active.find(s, a.code).map(key), Some(key(a)));
            }
        }
        // A code's alerts: worst first, and by session from a cursor.
        for code in [
            AlertCode::LoggedOut.as_str(),
            AlertCode::HeartbeatStale.as_str(),
            FLEET_INCIDENT,
        ] {
            let scan: Vec<_> = list.iter().filter(|a| a.code == code).map(key).collect();
            let indexed: Vec<_> = active.alerts(active.with_code(code)).map(key).collect();
            assert_eq!(indexed, scan, "{code}");
            if code == FLEET_INCIDENT {
                continue;
            }
            let mut by_id = scan.clone();
            by_id.sort();
            let (all, total) = active.with_code_by_session(code, None);
            assert_eq!(all.map(key).collect::<Vec<_>>(), by_id);
            assert_eq!(total, by_id.len());
            let (rest, _) = active.with_code_by_session(code, Some("s-100"));
            let expected: Vec<_> = by_id
                .iter()
                .filter(|(s, _)| s.as_str() > "s-100")
                .cloned()
                .collect();
            assert_eq!(rest.map(key).collect::<Vec<_>>(), expected);
        }
        assert!(active.with_code("NOT_A_CODE").is_empty());
        // The dashboard's groups, worst first.
        for g in AlertGroup::ALL {
            let scan: Vec<_> = list.iter().filter(|a| g.holds(a)).map(key).collect();
            assert_eq!(
                active.alerts(active.group(g)).map(key).collect::<Vec<_>>(),
                scan
            );
        }
        assert_eq!(active.group(AlertGroup::Incidents).len(), 1);
        assert!(!active.group(AlertGroup::Silenced).is_empty());
    }

    #[test]
    fn level_lists_page_in_id_order_and_leave_ok_to_the_fleet() {
        let ids = |names: &[&str]| -> Vec<SessionId> {
            names.iter().map(|n| SessionId::parse(n).unwrap()).collect()
        };
        let levels = SessionLevels::new(ids(&["b", "a"]), ids(&["z", "c", "m"]));
        assert_eq!(levels.level_of("m"), Level::Critical);
        assert_eq!(levels.level_of("b"), Level::Warning);
        assert_eq!(levels.level_of("q"), Level::Ok);
        let names = |l: &[SessionId]| l.iter().map(|i| i.as_str().to_owned()).collect::<Vec<_>>();
        let (all, n) = levels.at(Level::Critical, None).unwrap();
        assert_eq!(
            (names(all), n),
            (vec!["c".into(), "m".into(), "z".into()], 3)
        );
        let (rest, n) = levels.at(Level::Critical, Some("c")).unwrap();
        assert_eq!((names(rest), n), (vec!["m".into(), "z".into()], 3));
        assert_eq!(
            names(levels.at(Level::Warning, Some("a")).unwrap().0),
            vec!["b"]
        );
        assert!(levels.at(Level::Ok, None).is_none());
    }
}
