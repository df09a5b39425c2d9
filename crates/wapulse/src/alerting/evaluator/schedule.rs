//! When the evaluator runs: the loop that waits for the writer's news or
//! the next due instant, and the deadline heap behind that instant.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use wapulse_core::{SessionId, Timestamp};

use super::{Evaluator, Msg};

/// Sessions' deadlines, earliest first. A session's deadline moves with
/// every judgement; superseded entries stay in the heap and are skipped
/// when they come due (the session's entry holds its one current
/// deadline), and the heap is rebuilt when they pile up.
#[derive(Default)]
pub(super) struct Deadlines(BinaryHeap<Reverse<(Timestamp, SessionId)>>);

impl Deadlines {
    /// Adds `id`'s deadline `at`.
    pub(super) fn push(&mut self, at: Timestamp, id: SessionId) {
        self.0.push(Reverse((at, id)));
    }

    /// The earliest deadline held (perhaps superseded).
    pub(super) fn next(&self) -> Option<Timestamp> {
        self.0.peek().map(|Reverse((t, _))| *t)
    }

    /// Takes every deadline at or before `now`; the sessions whose
    /// deadline it still is (`current`) are due.
    pub(super) fn take_due(
        &mut self,
        now: Timestamp,
        current: impl Fn(&SessionId, Timestamp) -> bool,
    ) -> Vec<SessionId> {
        let mut due = Vec::new();
        while let Some(Reverse((at, _))) = self.0.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((at, id))) = self.0.pop() else {
                break;
            };
            if current(&id, at) {
                due.push(id);
            }
        }
        due
    }

    /// How many entries are held, superseded ones included.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Holds exactly `current` from now on.
    pub(super) fn rebuild(&mut self, current: impl Iterator<Item = (Timestamp, SessionId)>) {
        self.0 = current.map(Reverse).collect();
    }
}

impl Evaluator {
    /// Runs until told to stop: the first pass judges every session.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let mut full = true;
        loop {
            let now = (self.clock)();
            let mut changed: Vec<SessionId> = Vec::new();
            if !full {
                let wait = self
                    .next_wake(now)
                    .map_or(Duration::from_secs(1), |at| {
                        Duration::from_millis(at.since(now).as_millis())
                    })
                    .min(Duration::from_secs(1));
                match rx.recv_timeout(wait) {
                    Ok(msg) => {
                        if self.take(msg, &mut changed) {
                            self.pass((self.clock)(), changed, false);
                            return;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                while let Ok(msg) = rx.try_recv() {
                    if self.take(msg, &mut changed) {
                        self.pass((self.clock)(), changed, false);
                        return;
                    }
                }
            }
            self.pass((self.clock)(), changed, full);
            full = false;
        }
    }

    /// Takes one message; true when it says stop.
    pub(super) fn take(&mut self, msg: Msg, changed: &mut Vec<SessionId>) -> bool {
        match msg {
            Msg::Changed(ids, events) => {
                changed.extend(ids);
                self.told_events = self.told_events.max(events);
            }
            Msg::Silences(s) => {
                // Silenced alerts stay in their groups, muted: the next
                // pass sends what a lifted silence hid.
                self.silences = s;
                self.active_dirty = true;
            }
            Msg::Stop => return true,
        }
        false
    }

    pub(super) fn next_wake(&self, now: Timestamp) -> Option<Timestamp> {
        let queued = self.deadlines.next();
        let groups = self
            .groups
            .values()
            .filter_map(|g| g.group.next_flush(&g.timing, |a| self.is_silenced(a, now)))
            .min();
        let silences = self
            .silences
            .iter()
            .flat_map(|s| [s.starts_at, s.ends_at])
            .filter(|t| *t > self.last_pass)
            .min();
        [queued, groups, silences].into_iter().flatten().min()
    }
}
