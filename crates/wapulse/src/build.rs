//! Build information for `/version`, captured by `build.rs`.

/// The CI build number (`WAPULSE_BUILD_NUMBER` at build time), 0 for local
/// builds.
pub const NUMBER: u64 = match u64::from_str_radix(env!("WAPULSE_BUILD_NUMBER"), 10) {
    Ok(n) => n,
    Err(_) => 0,
};
/// The git commit built, or `unknown`.
pub const COMMIT: &str = env!("WAPULSE_GIT_COMMIT");
/// When it was built (RFC 3339).
pub const TIME: &str = env!("WAPULSE_BUILD_TIME");
