//! Captures the git commit, build time and build number for `/version`.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    // SOURCE_DATE_EPOCH keeps reproducible builds reproducible.
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    let time = jiff::Timestamp::from_second(epoch)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| "unknown".into());
    let number = std::env::var("WAPULSE_BUILD_NUMBER").unwrap_or_else(|_| "0".into());
    println!("cargo:rustc-env=WAPULSE_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=WAPULSE_BUILD_TIME={time}");
    println!("cargo:rustc-env=WAPULSE_BUILD_NUMBER={number}");
    println!("cargo:rerun-if-env-changed=WAPULSE_BUILD_NUMBER");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
}
