//! The service's own API as the tests use it. Every `wapulse::` path the
//! tests need (but `wapulse::clock`) is named here and nowhere else, so a
//! rename in the service touches this file only.

pub use wapulse::alerting::receivers::webhook::sign as sign_webhook;
pub use wapulse::config::{Secret, Settings};
pub use wapulse::routes::{Access, Shared, router, table};
pub use wapulse::startup::Application;
pub use wapulse::store::sqlite::FILE_NAME as DB_FILE_NAME;
