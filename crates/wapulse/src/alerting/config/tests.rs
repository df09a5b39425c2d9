//! `[alerting]`, receivers and routes as written: what is taken and what
//! is refused, naming the field.

use super::*;

fn check(text: &str) -> Result<AlertingSettings> {
    from_toml(text)
}

#[test]
fn without_routes_every_receiver_gets_every_alert_grouped_by_code() {
    let s = check(
        "[[receivers]]\nname = \"a\"\nkind = \"log\"\n[[receivers]]\nname = \"b\"\nkind = \"log\"\n",
    )
    .unwrap();
    assert_eq!(s.routes.len(), 2);
    assert!(
        s.routes
            .iter()
            .all(|r| r.matchers.is_empty() && r.continue_ && r.group_by == ["code"])
    );
    assert_eq!(s.routes[0].timing, GroupTiming::default());
}

#[test]
fn facts_fire_at_once_and_for_code_overrides() {
    let s = check("[alerting]\nfor = \"2m\"\nfor_code = { HEARTBEAT_DEAD = \"0s\" }\n").unwrap();
    assert_eq!(s.rules(AlertCode::LoggedOut).for_, DurationMs::ZERO);
    assert_eq!(
        s.rules(AlertCode::HeartbeatStale).for_,
        DurationMs::from_mins(2)
    );
    assert_eq!(s.rules(AlertCode::HeartbeatDead).for_, DurationMs::ZERO);
}

#[test]
fn pagerduty_defaults_to_the_public_events_url_and_its_rate() {
    let s =
        check("[[receivers]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key = \"k\"\n").unwrap();
    match &s.receivers[0].kind {
        ReceiverKind::PagerDuty { url, .. } => {
            assert_eq!(url, "https://events.pagerduty.com/v2/enqueue")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.receivers[0].rate_per_second, 2.0);
}

#[test]
fn opsgenie_defaults_to_the_us_endpoint_and_cards_to_a_message_a_second() {
    let s = check(
        "[[receivers]]\nname = \"og\"\nkind = \"opsgenie\"\napi_key = \"k\"\n\
         [[receivers]]\nname = \"eu\"\nkind = \"opsgenie\"\napi_key = \"k\"\nurl = \"https://api.eu.opsgenie.com/\"\n\
         [[receivers]]\nname = \"ms\"\nkind = \"teams\"\nurl = \"https://prod-1.westeurope.logic.azure.com/workflows/x\"\n\
         [[receivers]]\nname = \"gc\"\nkind = \"google_chat\"\nurl = \"https://chat.googleapis.com/v1/spaces/A/messages\"\n",
    )
    .unwrap();
    let url = |i: usize| match &s.receivers[i].kind {
        ReceiverKind::Opsgenie { url, .. } => url.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(url(0), "https://api.opsgenie.com");
    assert_eq!(url(1), "https://api.eu.opsgenie.com", "no trailing slash");
    let rates: Vec<f64> = s.receivers.iter().map(|r| r.rate_per_second).collect();
    assert_eq!(rates, [2.0, 2.0, 1.0, 1.0]);
}

#[test]
fn email_defaults_the_port_by_tls_and_the_sender_to_the_username() {
    use crate::alerting::receivers::email::Security;
    let s = check(
        "[[receivers]]\nname = \"a\"\nkind = \"email\"\nsmtp_host = \"smtp.example.com\"\nusername = \"ops@example.com\"\npassword = \"p\"\nto = \"oncall@example.com\"\n\
         [[receivers]]\nname = \"b\"\nkind = \"email\"\nsmtp_host = \"smtp.example.com\"\ntls = \"implicit\"\nfrom = \"W <w@example.com>\"\nto = [\"x@example.com\", \"y@example.com\"]\n\
         [[receivers]]\nname = \"c\"\nkind = \"email\"\nsmtp_host = \"localhost\"\ntls = \"none\"\nusername = \"u@l\"\npassword = \"p\"\nto = \"x@example.com\"\n",
    )
    .unwrap();
    let smtp = |i: usize| match &s.receivers[i].kind {
        ReceiverKind::Email { smtp } => smtp.clone(),
        other => panic!("{other:?}"),
    };
    let (a, b, c) = (smtp(0), smtp(1), smtp(2));
    assert_eq!((a.port, a.security), (587, Security::StartTls));
    assert_eq!(a.from.email.to_string(), "ops@example.com", "the username");
    assert_eq!((b.port, b.security), (465, Security::Implicit));
    assert_eq!(b.to.len(), 2);
    assert_eq!(
        (c.port, c.security),
        (25, Security::None),
        "a local relay may be plain"
    );
    assert_eq!(s.receivers[0].rate_per_second, 1.0);
}

#[test]
fn whatsapp_receivers_watch_their_own_session_and_send_one_message_every_5s() {
    let s = check(
        "[[receivers]]\nname = \"wa\"\nkind = \"waha\"\nurl = \"http://waha:3000/\"\napi_key = \"k\"\nsession = \"bot\"\nchat_id = 5511999990000\n\
         [[receivers]]\nname = \"evo\"\nkind = \"evolution\"\nurl = \"http://evo:8080\"\napi_key = \"k\"\ninstance = \"inst\"\nnumber = \"5511\"\nwatch_session = \"other\"\n",
    )
    .unwrap();
    match &s.receivers[0].kind {
        ReceiverKind::Waha {
            url,
            chat_id,
            sender,
            ..
        } => {
            assert_eq!(url, "http://waha:3000");
            assert_eq!(chat_id, "5511999990000@c.us", "a number is a contact");
            assert_eq!(
                (sender.watch.as_str(), sender.fallback.as_deref()),
                ("bot", None)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.receivers[1].kind.sender().unwrap().watch, "other");
    assert_eq!(s.receivers[0].rate_per_second, 0.2);
    assert_eq!(s.receivers[1].rate_per_second, 0.2);
}

#[test]
fn mistakes_name_the_table_and_the_field() {
    let cases = [
        (
            "[[receivers]]\nname = \"x\"\nkind = \"sms\"\n",
            "receivers[0] (name \"x\")",
            "kind",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"email\"\nto = \"a@b.c\"\n",
            "receivers[0]",
            "smtp_host: required",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"email\"\nsmtp_host = \"h\"\nfrom = \"a@b.c\"\n",
            "receivers[0]",
            "to: required",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"email\"\nsmtp_host = \"h\"\nfrom = \"a@b.c\"\nto = [\"not an address\"]\n",
            "receivers[0]",
            "to: `not an address`",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"email\"\nsmtp_host = \"h\"\nto = \"a@b.c\"\n",
            "receivers[0]",
            "from: required",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"email\"\nsmtp_host = \"h\"\nto = \"a@b.c\"\nfrom = \"a@b.c\"\ntls = \"ssl\"\n",
            "receivers[0]",
            "tls: `ssl`",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"email\"\nsmtp_host = \"mail.example.com\"\nto = \"a@b.c\"\nusername = \"a@b.c\"\npassword = \"p\"\ntls = \"none\"\n",
            "receivers[0]",
            "unencrypted",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"email\"\nsmtp_host = \"h\"\nto = \"a@b.c\"\nusername = \"a@b.c\"\n",
            "receivers[0]",
            "password: required with username",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"slack\"\nurl = \"https://h/\"\nto = \"a@b.c\"\n",
            "receivers[0]",
            "to: only an email",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"slack\"\n",
            "receivers[0]",
            "url: required",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"pagerduty\"\n",
            "receivers[0]",
            "routing_key",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"ftp://h/\"\n",
            "receivers[0]",
            "url",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"slack\"\nurl = \"https://h/\"\nsecret = \"s\"\n",
            "receivers[0]",
            "secret",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"discord\"\n",
            "receivers[0]",
            "url: required",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/\"\n",
            "receivers[0]",
            "names no topic",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"discord\"\nurl = \"https://h/\"\ntoken = \"t\"\n",
            "receivers[0]",
            "token",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"telegram\"\nchat_id = 1\n",
            "receivers[0]",
            "bot_token: required",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"telegram\"\nbot_token = \"1:a\"\nchat_id = \"ops\"\n",
            "receivers[0]",
            "chat_id",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"slack\"\nurl = \"https://h/\"\nchat_id = 5\n",
            "receivers[0]",
            "chat_id: only a telegram",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"waha\"\nurl = \"http://waha:3000\"\napi_key = \"k\"\nchat_id = \"5511\"\n",
            "receivers[0]",
            "session: required",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"evolution\"\nurl = \"http://evo:8080\"\napi_key = \"k\"\ninstance = \"bot\"\n",
            "receivers[0]",
            "number: required",
        ),
        (
            "[[receivers]]\nname = \"wa\"\nkind = \"waha\"\nurl = \"http://waha:3000\"\napi_key = \"k\"\nsession = \"bot\"\nchat_id = \"5511\"\nfallback = \"nobody\"\n",
            "fallback",
            "\"nobody\" is not among",
        ),
        (
            "[[receivers]]\nname = \"wa\"\nkind = \"waha\"\nurl = \"http://waha:3000\"\napi_key = \"k\"\nsession = \"bot\"\nchat_id = \"5511\"\nfallback = \"wa\"\n",
            "receivers[0]",
            "its own fallback",
        ),
        (
            "[[receivers]]\nname = \"wa\"\nkind = \"waha\"\nurl = \"http://waha:3000\"\napi_key = \"k\"\nsession = \"bot\"\nchat_id = \"5511\"\nfallback = \"am\"\n[[receivers]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"http://am:9093\"\n",
            "fallback",
            "takes no messages",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"slack\"\nurl = \"https://h/\"\nsession = \"bot\"\n",
            "receivers[0]",
            "session: only a waha",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"https://h/\"\ntitle_template = \"x\"\n",
            "receivers[0]",
            "sends no text to template",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"teams\"\n",
            "receivers[0]",
            "url: required",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"google_chat\"\nurl = \"chat.googleapis.com\"\n",
            "receivers[0]",
            "url",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"opsgenie\"\n",
            "receivers[0]",
            "api_key: required",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"slack\"\nurl = \"https://h/\"\napi_key = \"k\"\n",
            "receivers[0]",
            "api_key: only opsgenie, waha and evolution",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"log\"\n[[receivers]]\nname = \"x\"\nkind = \"log\"\n",
            "receivers[1]",
            "used twice",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"log\"\n[[routes]]\nreceiver = \"y\"\n",
            "routes[0]",
            "\"y\"",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"log\"\n[[routes]]\nreceiver = \"x\"\nmatch_re = { region = \"(\" }\n",
            "routes[0]",
            "regular expression",
        ),
        (
            "[[receivers]]\nname = \"x\"\nkind = \"log\"\n[[routes]]\nreceiver = \"x\"\ngroup_by = [\"a-b\"]\n",
            "routes[0].group_by",
            "a-b",
        ),
        (
            "[alerting]\nfor_code = { NOPE = \"1m\" }\n",
            "alerting.for_code",
            "NOPE",
        ),
        (
            "[alerting]\nincident_min_share = 1.5\n",
            "alerting.incident_min_share",
            "1.5",
        ),
        (
            "[alerting]\nincident_by = [\"bad label\"]\n",
            "alerting.incident_by",
            "bad label",
        ),
        (
            "[alerting]\nincident_for = \"10m\"\n",
            "alerting.incident_for",
            "incident_window",
        ),
    ];
    for (text, at, what) in cases {
        let err = format!("{:#}", check(text).unwrap_err());
        assert!(err.contains(at) && err.contains(what), "{text}\n=> {err}");
    }
}

#[test]
fn secrets_never_print() {
    let s = check(
        "[[receivers]]\nname = \"chat\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/S3CR3TSLACK\"\n\
         [[receivers]]\nname = \"pd\"\nkind = \"pagerduty\"\nrouting_key = \"S3CR3TKEY\"\n\
         [[receivers]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"https://h/?token=S3CR3TTOKEN\"\nsecret = \"S3CR3TSIGN\"\n\
         [[receivers]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = [\"http://user:S3CR3TPASS@am:9093\"]\n\
         [[receivers]]\nname = \"dc\"\nkind = \"discord\"\nurl = \"https://discord.com/api/webhooks/1/S3CR3TDC\"\n\
         [[receivers]]\nname = \"nt\"\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/S3CR3TTOPIC\"\ntoken = \"tk_S3CR3T\"\n\
         [[receivers]]\nname = \"tg\"\nkind = \"telegram\"\nbot_token = \"123:S3CR3TBOT\"\nchat_id = -100123\n\
         [[receivers]]\nname = \"ms\"\nkind = \"teams\"\nurl = \"https://x.logic.azure.com/workflows/1?sig=S3CR3TSIG\"\n\
         [[receivers]]\nname = \"gc\"\nkind = \"google_chat\"\nurl = \"https://chat.googleapis.com/v1/spaces/A/messages?key=K&token=S3CR3TGC\"\n\
         [[receivers]]\nname = \"og\"\nkind = \"opsgenie\"\napi_key = \"S3CR3TGENIE\"\n\
         [[receivers]]\nname = \"em\"\nkind = \"email\"\nsmtp_host = \"h\"\nusername = \"u@h\"\npassword = \"S3CR3TMAIL\"\nto = \"a@b.c\"\n",
    )
    .unwrap();
    let shown = format!("{s:?}");
    assert!(!shown.contains("S3CR3T"), "{shown}");
    // A bad URL's error does not show it either.
    let err = format!(
        "{:#}",
        check("[[receivers]]\nname = \"x\"\nkind = \"slack\"\nurl = \"not a url S3CR3T\"\n")
            .unwrap_err()
    );
    assert!(!err.contains("S3CR3T"), "{err}");
}
