//! The read governor's metrics (`wapulse_read_realtime`,
//! `wapulse_read_realtime_demotions_total`), read from the process's
//! [`Governor`] when scraped.

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntGauge, Registry};

use super::reads::Governor;

/// Registers the read governor's metrics in `registry`.
pub fn register(registry: &Registry) {
    registry
        .register(Box::new(ReadPriorityCollector::new()))
        .expect("metric names are unique");
}

/// `wapulse_read_realtime` and `wapulse_read_realtime_demotions_total`,
/// read from the process's read governor ([`Governor`]) when scraped.
struct ReadPriorityCollector {
    realtime: IntGauge,
    demotions: IntCounter,
    /// Scrapes may run at once; the counter is brought up to date under it.
    update: Mutex<()>,
}

impl ReadPriorityCollector {
    fn new() -> Self {
        Self {
            realtime: IntGauge::new(
                "wapulse_read_realtime",
                "1 while the request workers run at a real-time priority \
                 (read_priority = \"realtime\", within read_realtime_budget)",
            )
            .expect("valid metric"),
            demotions: IntCounter::new(
                "wapulse_read_realtime_demotions_total",
                "Times the request workers went back to normal priority because \
                 reads used more than read_realtime_budget",
            )
            .expect("valid metric"),
            update: Mutex::new(()),
        }
    }
}

impl Collector for ReadPriorityCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.realtime.desc();
        descs.extend(self.demotions.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _update = self.update.lock();
        let governor = Governor::current();
        self.realtime
            .set(i64::from(governor.is_some_and(|g| g.is_realtime())));
        let total = governor.map_or(0, |g| g.demotions());
        let shown = self.demotions.get();
        if total > shown {
            self.demotions.inc_by(total - shown);
        }
        let mut families = self.realtime.collect();
        families.extend(self.demotions.collect());
        families
    }
}
