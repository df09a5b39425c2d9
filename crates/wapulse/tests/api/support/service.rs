//! The service's own API as the tests use it. Every `wapulse::` path the
//! tests need (but `wapulse::clock`) is named here and nowhere else, so a
//! rename in the service touches this file only.

pub use wapulse::alerting::receivers::webhook::sign as sign_webhook;
pub use wapulse::app::Shared;
pub use wapulse::auth::Access;
pub use wapulse::config::{MetricsSessions, Settings};
pub use wapulse::routes::{api_router, table};
pub use wapulse::secret::Secret;
pub use wapulse::startup::Application;
pub use wapulse::store::sqlite::FILE_NAME as DB_FILE_NAME;
pub use wapulse::tenancy::{Caller, Named};
