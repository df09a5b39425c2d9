//! Safe by default, loud when unsafe: every open surface is named at
//! start, and a token of blanks is refused rather than taken.

use crate::support::*;

#[test]
fn every_open_surface_is_named_at_start_loopback_included() {
    let mut open = serve_with(&[]);
    terminate(&mut open.running.0);
    let log = open.log();
    for (what, setting) in [
        ("reads are open", "READ_TOKEN"),
        ("ingest is open", "INGEST_TOKEN"),
        ("silences are open", "ADMIN_TOKEN"),
    ] {
        assert!(
            log.lines().any(|l| l.contains(what) && l.contains(setting)),
            "{what}: {log}"
        );
    }

    let mut guarded = serve_with(&[("READ_TOKEN", "r"), ("INGEST_TOKEN", "i")]);
    terminate(&mut guarded.running.0);
    let log = guarded.log();
    assert!(
        !log.contains("reads are open") && !log.contains("ingest is open"),
        "{log}"
    );
    assert!(
        log.contains("silences are guarded by INGEST_TOKEN") && log.contains("ADMIN_TOKEN"),
        "{log}"
    );

    let mut closed = serve_with(&[
        ("READ_TOKEN", "r"),
        ("INGEST_TOKEN", "i"),
        ("ADMIN_TOKEN", "a"),
    ]);
    terminate(&mut closed.running.0);
    assert!(!closed.log().contains("are open"), "{}", closed.log());
}

#[test]
fn a_token_of_blanks_is_refused_naming_it() {
    for name in ["INGEST_TOKEN", "READ_TOKEN", "ADMIN_TOKEN", "METRICS_TOKEN"] {
        let out = wapulse(&["config", "check"])
            .env(name, "   ")
            .env("WAPULSE_BIND", "0.0.0.0:3001")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(name) && err.contains("blanks"),
            "{name}: {err}"
        );
    }
}
