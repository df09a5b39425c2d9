//! The instant a replica's evaluator judges at: time this replica could
//! not receive does not count as the fleet's silence.
//!
//! The rule, stated once:
//! - **Receiving** (connected, and seen caught up with the stream within
//!   the last check): judging runs at the wall clock, less any lag left
//!   from an outage.
//! - **Not receiving**: judging stops at the last instant the replica was
//!   seen caught up. Gateways are refused (503) meanwhile and keep what
//!   they made, so nothing this replica lacks may be taken for silence.
//! - **Back** at `R` after judging stopped at `F`: judging goes on from
//!   `F`, at the wall clock's pace, `R − F` behind it. A session's silence
//!   is then counted only over the time the replica could receive it.
//! - The lag ends (judging jumps to the wall clock) as soon as **every
//!   session a gateway is working on (it reported `connected`,
//!   `connecting` or `reconnecting`) has been heard from with an event
//!   made at or after `R`** (its gateway delivered what it kept and is
//!   current), or at the latest **`heartbeat_age_critical` after `R`**.
//!   By then a session not heard from since `F` is already critical on
//!   the lagging clock, so the jump changes no heartbeat verdict: it pages
//!   for a session that stayed silent a whole critical age while the
//!   replica could hear it, and for nothing else.
//! - It never moves back.
//!
//! Pure: the caller gives the wall clock and what it saw of the stream.

/// The judging clock's state (every instant in ms).
#[derive(Debug)]
pub(super) struct Judging {
    /// The last instant given.
    judged: i64,
    /// How far behind the wall clock judging runs.
    lag: i64,
    /// Whether the replica was receiving at the last reading.
    receiving: bool,
    /// When it was last back (the start of the current lag).
    resumed_at: i64,
    /// When the current lag ends at the latest.
    until: i64,
    /// The longest a lag lasts: `heartbeat_age_critical`.
    bound: i64,
}

impl Judging {
    /// A replica starting at `now`: not receiving until first caught up.
    pub(super) fn new(now: i64, bound_ms: i64) -> Self {
        Self {
            judged: now,
            lag: 0,
            receiving: false,
            resumed_at: now,
            until: now,
            bound: bound_ms.max(0),
        }
    }

    /// The instant to judge at, the wall clock reading `now`;
    /// `caught_up_at`: when the replica was last seen caught up;
    /// `receiving`: whether it is now.
    pub(super) fn at(&mut self, now: i64, caught_up_at: i64, receiving: bool) -> i64 {
        let candidate = if receiving {
            if !self.receiving {
                // Back: go on from where judging stopped.
                self.receiving = true;
                self.lag = (now - self.judged).max(0);
                self.resumed_at = now;
                self.until = now.saturating_add(self.bound);
            }
            if self.lag > 0 && now >= self.until {
                self.lag = 0;
            }
            now - self.lag
        } else {
            self.receiving = false;
            caught_up_at.min(now) - self.lag
        };
        self.judged = self.judged.max(candidate);
        self.judged
    }

    /// While judging lags after a resume: the resume's instant, to find
    /// whether every working session has been heard from since.
    pub(super) fn catching_up_since(&self) -> Option<i64> {
        (self.receiving && self.lag > 0).then_some(self.resumed_at)
    }

    /// Every working session was heard from since the resume at
    /// `resumed_at`: judging rejoins the wall clock (a reading taken for an
    /// earlier resume changes nothing).
    pub(super) fn heard_all_since(&mut self, resumed_at: i64) {
        if self.receiving && self.resumed_at == resumed_at {
            self.lag = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: i64 = 60_000;

    /// Receiving from 0 to 10 s, cut off until 40 s, back after.
    fn outage() -> Judging {
        let mut j = Judging::new(0, BOUND);
        assert_eq!(j.at(0, 0, true), 0);
        assert_eq!(j.at(10_000, 10_000, true), 10_000);
        // Cut off: last seen caught up at 10.5 s.
        assert_eq!(j.at(11_000, 10_500, false), 10_500);
        assert_eq!(j.at(39_000, 10_500, false), 10_500, "stopped while cut off");
        j
    }

    #[test]
    fn time_not_received_does_not_count_after_a_resume() {
        let mut j = outage();
        // Back at 40 s: on from 10.5 s, at the wall clock's pace.
        assert_eq!(j.at(40_000, 40_000, true), 10_500);
        assert_eq!(j.catching_up_since(), Some(40_000));
        assert_eq!(j.at(45_000, 45_000, true), 15_500);
    }

    #[test]
    fn the_lag_ends_once_every_connected_session_was_heard_from() {
        let mut j = outage();
        j.at(40_000, 40_000, true);
        // A reading taken for another resume changes nothing.
        j.heard_all_since(39_000);
        assert_eq!(j.at(41_000, 41_000, true), 11_500);
        j.heard_all_since(40_000);
        assert_eq!(j.catching_up_since(), None);
        assert_eq!(j.at(42_000, 42_000, true), 42_000);
    }

    #[test]
    fn the_lag_ends_at_the_latest_a_critical_age_after_the_resume() {
        let mut j = outage();
        j.at(40_000, 40_000, true);
        assert_eq!(j.at(99_999, 99_999, true), 99_999 - 29_500);
        // 60 s after the resume, a session silent since 10.5 s is already
        // critical at the lagging instant (70.5 s judged: 60 s of silence
        // heard), so rejoining the wall clock changes no verdict.
        assert_eq!(j.at(100_000, 100_000, true), 100_000);
        assert_eq!(j.catching_up_since(), None);
    }

    #[test]
    fn an_outage_while_catching_up_stops_on_the_lagging_clock() {
        let mut j = outage();
        j.at(40_000, 40_000, true);
        assert_eq!(j.at(50_000, 50_000, true), 20_500);
        // Cut off again, last caught up at 50 s: stopped at 20.5 s, not at
        // the wall clock's 50 s.
        assert_eq!(j.at(51_000, 50_000, false), 20_500);
        assert_eq!(j.at(70_000, 50_000, false), 20_500);
        // Back at 80 s: both outages' time is left out.
        assert_eq!(j.at(80_000, 80_000, true), 20_500);
        assert_eq!(j.catching_up_since(), Some(80_000));
        assert_eq!(j.at(81_000, 81_000, true), 21_500);
    }

    #[test]
    fn it_never_moves_back() {
        let mut j = Judging::new(5_000, BOUND);
        // Not yet caught up at start: stopped at the start.
        assert_eq!(j.at(6_000, 5_000, false), 5_000);
        // A stale reading of when it was caught up changes nothing.
        assert_eq!(j.at(7_000, 1_000, false), 5_000);
        assert_eq!(j.at(8_000, 8_000, true), 5_000);
        j.heard_all_since(8_000);
        assert_eq!(j.at(8_100, 8_100, true), 8_100);
        assert_eq!(j.at(8_000, 8_000, true), 8_100, "a clock stepping back");
    }
}
