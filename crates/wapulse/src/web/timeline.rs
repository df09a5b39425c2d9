//! The state timeline of one session: bands of time spent in each state
//! over a window, from the journal's `state` events. Pure, so it is tested
//! without a store.

use wapulse_core::event::STATES;
use wapulse_core::{SessionState, Timestamp};

/// Time spent in one state, clipped to the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    /// The state.
    pub state: SessionState,
    /// Where the band starts.
    pub start: Timestamp,
    /// Where it ends (exclusive).
    pub end: Timestamp,
}

/// The bands of `[from, to)`. `changes` are the session's state changes in
/// time order (possibly starting before `from`); `before` is the state
/// before the first of them when known (a session's first event). The time
/// before the first known state is left out (no band).
pub fn bands(
    changes: &[(Timestamp, SessionState)],
    before: Option<SessionState>,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Band> {
    let mut out: Vec<Band> = Vec::new();
    let mut current: Option<(SessionState, Timestamp)> = before.map(|s| (s, from));
    let close = |state: SessionState, start: Timestamp, end: Timestamp, out: &mut Vec<Band>| {
        let (start, end) = (start.max(from), end.min(to));
        if start >= end {
            return;
        }
        match out.last_mut() {
            Some(last) if last.state == state && last.end == start => last.end = end,
            _ => out.push(Band { state, start, end }),
        }
    };
    for &(at, state) in changes {
        if let Some((s, start)) = current {
            close(s, start, at, &mut out);
        }
        current = Some((state, at));
    }
    if let Some((s, start)) = current {
        close(s, start, to, &mut out);
    }
    out
}

/// Milliseconds spent in each state (`SessionState::index`) over `bands`.
pub fn time_in_state(bands: &[Band]) -> [u64; STATES] {
    let mut total = [0u64; STATES];
    for b in bands {
        total[b.state.index()] += b.end.since(b.start).as_millis();
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use wapulse_core::SessionState::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_millis(1_000_000 + s * 1000)
    }

    #[test]
    fn bands_are_clipped_merged_and_end_at_the_window() {
        let changes = [
            (t(-50), Connecting),
            (t(-40), Connected),
            (t(20), Reconnecting),
            (t(30), Reconnecting),
            (t(35), Connected),
        ];
        let b = bands(&changes, None, t(0), t(100));
        assert_eq!(
            b,
            vec![
                Band {
                    state: Connected,
                    start: t(0),
                    end: t(20)
                },
                Band {
                    state: Reconnecting,
                    start: t(20),
                    end: t(35)
                },
                Band {
                    state: Connected,
                    start: t(35),
                    end: t(100)
                },
            ]
        );
        let total = time_in_state(&b);
        assert_eq!(total[Connected.index()], 85_000);
        assert_eq!(total[Reconnecting.index()], 15_000);
        assert_eq!(total.iter().sum::<u64>(), 100_000);
    }

    #[test]
    fn unknown_time_has_no_band_and_a_known_start_fills_it() {
        let changes = [(t(50), LoggedOut)];
        assert_eq!(
            bands(&changes, None, t(0), t(100)),
            vec![Band {
                state: LoggedOut,
                start: t(50),
                end: t(100)
            }]
        );
        assert_eq!(
            bands(&changes, Some(Connected), t(0), t(100))[0],
            Band {
                state: Connected,
                start: t(0),
                end: t(50)
            }
        );
        assert!(bands(&[], None, t(0), t(100)).is_empty());
        assert_eq!(bands(&[], Some(Connected), t(0), t(100)).len(), 1);
    }
}
