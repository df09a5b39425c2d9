//! The fleet's hours of the last day as the overview charts them, kept in
//! memory: the overview is fetched again whenever the fleet changes (every
//! second under traffic), and must not read the store each time. Read at
//! most once per `max_age`, and again when the day moves to a new hour.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::read::{FleetPoint, ReadFailed};

/// What was read, when, and for which first hour.
type Kept = (Instant, i64, Vec<FleetPoint>);

/// The last day's fleet hours, read from the store at most once per
/// `max_age`.
pub struct RecentHours {
    kept: Mutex<Option<Kept>>,
    max_age: Duration,
}

impl RecentHours {
    /// Nothing kept yet; what is read is kept `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Self {
            kept: Mutex::new(None),
            max_age,
        }
    }

    /// The hours from `from_ms`: kept ones younger than `max_age`, else
    /// what `read` gives (kept when it succeeds).
    pub fn get_or_read(
        &self,
        from_ms: i64,
        read: impl FnOnce() -> Result<Vec<FleetPoint>, ReadFailed>,
    ) -> Result<Vec<FleetPoint>, ReadFailed> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, from, points)) = kept.as_ref()
            && *from == from_ms
            && at.elapsed() < self.max_age
        {
            return Ok(points.clone());
        }
        let points = read()?;
        *kept = Some((Instant::now(), from_ms, points.clone()));
        Ok(points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at_ms: i64) -> Vec<FleetPoint> {
        vec![FleetPoint {
            at_ms,
            ..FleetPoint::default()
        }]
    }

    #[test]
    fn the_store_is_read_once_per_hour_start_and_age() {
        let recent = RecentHours::new(Duration::from_secs(3600));
        let mut reads = 0;
        for _ in 0..3 {
            let got = recent
                .get_or_read(1, || {
                    reads += 1;
                    Ok(point(1))
                })
                .unwrap();
            assert_eq!(got, point(1));
        }
        assert_eq!(reads, 1, "kept while young");
        recent
            .get_or_read(2, || {
                reads += 1;
                Ok(point(2))
            })
            .unwrap();
        assert_eq!(reads, 2, "a new hour is read");
        let stale = RecentHours::new(Duration::ZERO);
        let mut stale_reads = 0;
        for _ in 0..2 {
            stale
                .get_or_read(1, || {
                    stale_reads += 1;
                    Ok(point(1))
                })
                .unwrap();
        }
        assert_eq!(stale_reads, 2, "read again once old");
        // A failed read keeps nothing.
        assert!(
            stale
                .get_or_read(3, || Err(ReadFailed("gone".into())))
                .is_err()
        );
    }
}
