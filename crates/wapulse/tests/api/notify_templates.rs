//! Message templates: each receiver's title and text from the operator's
//! template (the shipped Brazilian Portuguese one, and inline ones),
//! escaped for the receiver's markup like any text; a broken template is
//! refused by `wapulse config check` naming the receiver and the line.

use serde_json::json;

use crate::support::*;

fn shipped(name: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/templates")
        .join(name)
        .display()
        .to_string()
}

#[tokio::test]
async fn receivers_word_their_messages_from_their_own_templates() {
    let telegram = FakeReceiver::start(Kind::Telegram("123:ABC".into())).await;
    let slack = FakeReceiver::start(Kind::Slack).await;
    let app = spawn_alerting(&alerting_config(
        r#"group_wait = "0s", group_interval = "1s", external_url = "https://wapulse.example""#,
        &[
            receiver(
                "tg",
                "telegram",
                &telegram.url(""),
                &format!(
                    "bot_token = \"123:ABC\"\nchat_id = -100123\ntemplate_file = \"{}\"",
                    shipped("pt-BR.jinja")
                ),
            ),
            receiver(
                "chat",
                "slack",
                &slack.url("/services/T/B/X"),
                "title_template = \"{{ code }} in {{ group.team }}: {{ count }}\"\n\
                 text_template = \"\"\"{% for s in sessions %}{{ s.id }} <{{ s.labels.team }}>\n{% endfor %}\"\"\"",
            ),
            "[[routes]]\nreceiver = \"tg\"\ngroup_by = [\"code\", \"team\"]\ncontinue = true\n\
             [[routes]]\nreceiver = \"chat\"\ngroup_by = [\"code\", \"team\"]\n"
                .to_owned(),
        ],
    ))
    .await;
    app.ingest(json!([
        connected("s1"),
        labelled("s1", json!({"team": "<b>x</b> & co"})),
        logged_out("s1"),
    ]))
    .await;

    let got = telegram.wait_for("the Portuguese message", 1).await;
    assert_eq!(got[0].answered, 200, "{:?}", telegram.violations());
    let text = got[0].body["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "<b>🔴 ALERTA · 1 sessão · LOGGED_OUT · team=&lt;b&gt;x&lt;/b&gt; &amp; co</b>"
        ),
        "the template's title, its label escaped: {text}"
    );
    assert!(
        text.contains("• s1: sessão deslogada pelo WhatsApp"),
        "the template's text: {text}"
    );
    assert!(
        text.contains("Abrir no wapulse: https://wapulse.example/ui/sessions/s1"),
        "{text}"
    );
    assert!(
        !text.contains("Firing"),
        "the template replaces the receiver's own text"
    );

    let got = slack.wait_for("the inline-templated message", 1).await;
    let body = &got[0].body;
    assert_eq!(
        body["blocks"][0]["text"]["text"], "LOGGED_OUT in <b>x</b> & co: 1",
        "a header is plain text"
    );
    let section = body["blocks"][1]["text"]["text"].as_str().unwrap();
    assert_eq!(
        section, "s1 &lt;&lt;b&gt;x&lt;/b&gt; &amp; co&gt;",
        "mrkdwn escaped: no link, no mention"
    );
    assert!(slack.violations().is_empty(), "{:?}", slack.violations());

    app.ingest(json!([connected("s1")])).await;
    let got = telegram.wait_for("the resolve", 2).await;
    let text = got[1].body["text"].as_str().unwrap();
    assert!(text.starts_with("<b>✅ RESOLVIDO"), "{text}");
    assert!(text.contains("Voltou ao normal."), "{text}");
}

#[test]
fn a_broken_template_is_refused_by_config_check_naming_the_receiver_and_the_line() {
    let out = config_check(
        "[[receivers]]\nname = \"ops\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T/B/X\"\n\
         text_template = \"\"\"\n{% for s in sessions %}\n{{ s.nme|upper }}\n{% endfor %}\"\"\"\n",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("receivers[0] (name \"ops\")") && err.contains("text_template: line 2"),
        "{err}"
    );
    let out = config_check(&format!(
        "[[receivers]]\nname = \"mail\"\nkind = \"ntfy\"\nurl = \"https://ntfy.sh/ops\"\n\
         template_file = \"{}\"\n",
        shipped("pt-BR.jinja")
    ));
    assert!(
        out.status.success(),
        "the shipped template passes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
