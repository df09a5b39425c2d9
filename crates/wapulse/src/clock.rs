//! The service's clock: the only place wall time enters the model.

use std::time::{SystemTime, UNIX_EPOCH};

use wapulse_core::Timestamp;

/// Now, as the model counts time.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Timestamp::from_millis(ms)
}
