//! A config file. Whatever it holds: no panic, and either settings or an
//! error naming the problem (never an empty message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use wapulse::config::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Settings::from_toml(text, |_| None) {
        Ok(settings) => {
            // What was accepted is usable: the OpenAPI document builds.
            let doc = wapulse::openapi::document(&settings);
            assert!(doc["paths"].is_object());
        }
        Err(e) => assert!(!format!("{e:#}").is_empty()),
    }
});
