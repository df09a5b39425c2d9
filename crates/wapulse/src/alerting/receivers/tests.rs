//! Tests of the receivers: answers, limits, escaping, links, and
//! templated wording for every kind.

use std::collections::BTreeMap;

use wapulse_core::grouping::NotifiedAlert;
use wapulse_core::{Level, Timestamp};

use super::*;

#[test]
fn answers_sort_into_delivered_retry_and_give_up() {
    let s = |c| StatusCode::from_u16(c).unwrap();
    assert_eq!(classify(s(200), None, ""), Outcome::Delivered);
    assert_eq!(classify(s(202), None, ""), Outcome::Delivered);
    for code in [408, 429, 500, 502, 503] {
        assert!(
            matches!(classify(s(code), None, ""), Outcome::Retry { .. }),
            "{code}"
        );
    }
    match classify(s(429), Some("7"), "slow down") {
        Outcome::Retry { after, reason } => {
            assert_eq!(after, Some(Duration::from_secs(7)));
            assert!(reason.contains("429") && reason.contains("slow down"));
        }
        other => panic!("{other:?}"),
    }
    for code in [400, 401, 403, 404, 410] {
        assert!(
            matches!(classify(s(code), None, ""), Outcome::Permanent(_)),
            "{code}"
        );
    }
}

#[test]
fn backoff_grows_with_jitter_and_honours_retry_after() {
    use crate::alerting::outbox::backoff;
    for attempts in 0..12u32 {
        let d = backoff(attempts, None);
        let base = Duration::from_secs(1u64 << attempts.min(9)).min(Duration::from_secs(300));
        assert!(
            d >= base.mul_f64(0.5) && d < base.mul_f64(1.5),
            "{attempts}: {d:?}"
        );
    }
    assert_eq!(
        backoff(0, Some(Duration::from_secs(30))),
        Duration::from_secs(30)
    );
    assert_eq!(
        backoff(0, Some(Duration::from_secs(99_999))),
        Duration::from_secs(3600)
    );
}

fn message(group_labels: BTreeMap<String, String>, n: usize) -> GroupMessage {
    let alert = |i: usize| NotifiedAlert {
        session: format!("session-{i:05}"),
        code: "HEARTBEAT_DEAD".into(),
        level: Level::Critical,
        status: Status::Firing,
        starts_at: Timestamp::from_millis(1_770_000_000_000),
        ends_at: None,
        summary: "No heartbeat for 5m".into(),
        action: "Force a reconnect".into(),
        flapping: false,
        labels: Default::default(),
        sessions: Vec::new(),
        affected: None,
        retired: false,
    };
    GroupMessage {
        group_key: "k".repeat(400),
        group_labels,
        status: Status::Firing,
        firing: (0..n).map(alert).collect(),
        resolved: Vec::new(),
        firing_total: n,
        resolved_total: 0,
        repeat: false,
    }
}

#[test]
fn slack_stays_within_its_limits_for_a_huge_group() {
    let labels: BTreeMap<String, String> = [("region".to_owned(), "r".repeat(500))]
        .into_iter()
        .collect();
    let m = message(labels, 5000);
    let body = slack::render(&Wording::plain(&m), &m, &AlertingSettings::default());
    let blocks = body["blocks"].as_array().unwrap();
    assert!(blocks.len() <= 50);
    assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
    for b in blocks {
        if let Some(t) = b["text"]["text"].as_str() {
            assert!(t.chars().count() <= 3000);
        }
    }
    let listed = body.to_string();
    assert!(listed.contains("+4980 more"), "capped at 20 sessions");
    assert!(body["text"].as_str().unwrap().contains("5000 sessions"));
}

#[test]
fn slack_markup_in_labels_and_summaries_is_escaped() {
    let labels: BTreeMap<String, String> = [(
        "team".to_owned(),
        "<!channel> & <https://evil|click>".to_owned(),
    )]
    .into_iter()
    .collect();
    let mut m = message(labels, 1);
    m.firing[0].summary = "<!here>".into();
    let body = slack::render(&Wording::plain(&m), &m, &AlertingSettings::default());
    let text = body["text"].as_str().unwrap();
    assert!(
        !text.contains("<!channel>") && !text.contains("<!here>"),
        "{text}"
    );
    assert!(
        text.contains("&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"),
        "{text}"
    );
    for b in body["blocks"].as_array().unwrap().iter().skip(1) {
        let t = b.to_string();
        assert!(!t.contains("<!here>") && !t.contains("<!channel>"), "{t}");
    }
}

#[test]
fn retry_after_reads_seconds_and_http_dates_and_ignores_nonsense() {
    assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
    assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("99999999999999999999"),
        None,
        "not a u64: not a date either"
    );
    assert_eq!(
        parse_retry_after("86400"),
        Some(Duration::from_secs(3600)),
        "capped"
    );
    assert_eq!(parse_retry_after("soon"), None);
    assert_eq!(
        parse_retry_after("1e20"),
        None,
        "no float parsing, no overflow"
    );
    let past = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT");
    assert_eq!(past, Some(Duration::ZERO), "a date in the past: now");
    let ahead = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
    let text = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&ahead)
        .unwrap();
    let wait = parse_retry_after(&text).unwrap();
    assert!(
        wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );
}

#[test]
fn messages_link_to_the_session_the_code_or_the_alerts_page() {
    let mut settings = AlertingSettings::default();
    let one = message(BTreeMap::new(), 1);
    assert_eq!(link(&one, &settings), None, "no external_url, no link");
    settings.external_url = Some("https://wa.example".into());
    assert_eq!(
        link(&one, &settings).unwrap(),
        "https://wa.example/ui/sessions/session-00000"
    );
    let mut odd = message(BTreeMap::new(), 1);
    odd.firing[0].session = "5511@s.whatsapp.net/x y".into();
    assert_eq!(
        link(&odd, &settings).unwrap(),
        "https://wa.example/ui/sessions/5511%40s.whatsapp.net%2Fx%20y"
    );
    let many = message(BTreeMap::new(), 30);
    assert_eq!(
        link(&many, &settings).unwrap(),
        "https://wa.example/ui/sessions?code=HEARTBEAT_DEAD"
    );
    let mut mixed = message(BTreeMap::new(), 2);
    mixed.firing[1].code = "LOGGED_OUT".into();
    assert_eq!(
        link(&mixed, &settings).unwrap(),
        "https://wa.example/ui/alerts"
    );
    let mut resolved = message(BTreeMap::new(), 1);
    resolved.status = Status::Resolved;
    resolved.resolved = std::mem::take(&mut resolved.firing);
    resolved.resolved_total = 1;
    resolved.firing_total = 0;
    assert_eq!(
        link(&resolved, &settings).unwrap(),
        "https://wa.example/ui/sessions/session-00000",
        "a resolve links to what it resolves"
    );
    assert_eq!(
        session_link(&settings, "").unwrap(),
        "https://wa.example/ui/alerts",
        "an incident's alert has no session"
    );
}

#[test]
fn pagerduty_keys_stay_stable_and_short() {
    let m = message(BTreeMap::new(), 1);
    let body = pagerduty::render(&Wording::plain(&m), &m, "rk", &AlertingSettings::default());
    let key = body["dedup_key"].as_str().unwrap();
    assert!(key.len() <= 255);
    assert_eq!(
        key,
        pagerduty::dedup_key(&m.group_key),
        "the same for every message of a group"
    );
    assert_eq!(pagerduty::dedup_key("a/b"), "wapulse/a/b");
    assert!(body["payload"]["summary"].as_str().unwrap().chars().count() <= 1024);
}

mod wording {
    use std::collections::BTreeMap;

    use wapulse_core::grouping::{GroupMessage, NotifiedAlert, Status};
    use wapulse_core::{Level, Timestamp};

    use super::*;

    /// Every receiver that sends text puts a template's title and text
    /// where its own would be, escaped for its markup, and leaves out its
    /// own account of the sessions.
    #[test]
    fn every_receiver_words_a_message_from_its_template() {
        let alert = NotifiedAlert {
            session: "s-one".into(),
            code: "LOGGED_OUT".into(),
            level: Level::Critical,
            status: Status::Firing,
            starts_at: Timestamp::from_millis(1_770_000_000_000),
            ends_at: None,
            summary: "OWN-SUMMARY".into(),
            action: "OWN-ACTION".into(),
            flapping: false,
            labels: Default::default(),
            sessions: Vec::new(),
            affected: None,
            retired: false,
        };
        let m = GroupMessage {
            group_key: "k".into(),
            group_labels: BTreeMap::new(),
            status: Status::Firing,
            firing: vec![alert],
            resolved: Vec::new(),
            firing_total: 1,
            resolved_total: 0,
            repeat: false,
        };
        let settings = AlertingSettings::default();
        let w = Wording {
            title: "Título".into(),
            text: Some("Texto <b>x</b> & *y*".into()),
        };
        let smtp = email::Smtp {
            host: "h".into(),
            port: 25,
            security: email::Security::None,
            username: None,
            password: None,
            from: "a@b.c".parse().unwrap(),
            to: vec!["d@e.f".parse().unwrap()],
        };
        let mail = email::render(&w, &m, 1, &smtp, &settings).unwrap();
        let mail = String::from_utf8(mail.formatted()).unwrap();
        let bodies = [
            ("slack", slack::render(&w, &m, &settings).to_string()),
            (
                "pagerduty",
                pagerduty::render(&w, &m, "rk", &settings).to_string(),
            ),
            ("discord", discord::render(&w, &m, &settings).to_string()),
            ("ntfy", ntfy::render("t", &w, &m, &settings).to_string()),
            (
                "telegram",
                telegram::render(&w, &m, &serde_json::json!(1), None, &settings).to_string(),
            ),
            ("teams", teams::render(&w, &m, &settings).to_string()),
            (
                "google_chat",
                google_chat::render(&w, &m, &settings).to_string(),
            ),
            ("opsgenie", opsgenie::render(&w, &m, &settings).to_string()),
            ("whatsapp", whatsapp::text(&w, &m, &settings)),
            ("email", mail),
        ];
        for (kind, body) in bodies {
            assert!(
                body.contains("Título")
                    || body.contains("T=C3=ADtulo")
                    || body.contains("=?utf-8?"),
                "{kind}: the title: {body}"
            );
            assert!(body.contains("Texto"), "{kind}: the text: {body}");
            // PagerDuty's custom_details are data, kept beside the text.
            assert!(
                kind == "pagerduty" || !body.contains("OWN-ACTION"),
                "{kind}: its own text left out: {body}"
            );
            if ["telegram", "google_chat"].contains(&kind) {
                assert!(
                    body.contains("&lt;b&gt;x&lt;/b&gt; &amp;"),
                    "{kind}: escaped: {body}"
                );
            }
            if kind == "discord" || kind == "teams" {
                assert!(
                    body.contains(r"\\*y\\*"),
                    "{kind}: Markdown escaped: {body}"
                );
            }
        }
    }
}
