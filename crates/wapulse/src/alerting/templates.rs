//! Message templates (`minijinja`, Jinja syntax): a receiver's title and
//! text written by the operator, in their language, over a documented
//! model of the message (README, "Templates").
//!
//! A template is compiled when the configuration is read, then rendered
//! against a firing and a resolved sample message with undefined names
//! refused (`SemiStrict`: a missing label may still be tested with `if`),
//! so a mistake is found by `wapulse config check` and at start, never
//! at 3 a.m. Should a real message still fail to render, the receiver's
//! own wording is sent instead: a page is never lost to a template.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, anyhow};
use minijinja::value::{Enumerator, Object};
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;
use wapulse_core::grouping::{GroupMessage, NotifiedAlert, Status};
use wapulse_core::{Level, Timestamp};

use super::config::AlertingSettings;
use super::receivers::{count_sessions, link, said, session_link, title};

/// A receiver's templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
    /// `template_file`'s name: its `title` and `text` blocks are the parts
    /// (a block it lacks is the receiver's own).
    file: Option<String>,
    /// Which inline parts are given.
    title: bool,
    text: bool,
}

/// What a template rendered.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// The title line.
    pub title: Option<String>,
    /// The text.
    pub text: Option<String>,
}

impl Templates {
    /// Compiles inline templates (`title_template`, `text_template`) or a
    /// file holding `{% block title %}` and `{% block text %}`, and renders
    /// them against sample messages. Errors name the part and the line.
    pub fn load(
        title: Option<&str>,
        text: Option<&str>,
        file: Option<&Path>,
        settings: &AlertingSettings,
    ) -> Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        let templates = match file {
            Some(path) => {
                if title.is_some() || text.is_some() {
                    return Err(anyhow!(
                        "template_file: give either a template_file or title_template / text_template"
                    ));
                }
                let source = std::fs::read_to_string(path)
                    .map_err(|e| anyhow!("template_file: cannot read `{}`: {e}", path.display()))?;
                let name = path.display().to_string();
                env.add_template_owned(name.clone(), source)
                    .map_err(|e| anyhow!("template_file: {}", describe(&e)))?;
                Self {
                    env,
                    file: Some(name),
                    title: false,
                    text: false,
                }
            }
            None => {
                for (part, source) in [("title_template", title), ("text_template", text)] {
                    if let Some(source) = source {
                        env.add_template_owned(part, source.to_owned())
                            .map_err(|e| anyhow!("{part}: {}", describe(&e)))?;
                    }
                }
                Self {
                    env,
                    file: None,
                    title: title.is_some(),
                    text: text.is_some(),
                }
            }
        };
        // Every part rendered on samples: mistakes are found now.
        for status in [Status::Firing, Status::Resolved] {
            templates.try_render(&sample(status), settings)?;
        }
        if let Some(name) = &templates.file {
            let model = Value::from(minijinja::value::Serde(Model::of(
                &sample(Status::Firing),
                settings,
            )));
            let template = templates
                .env
                .get_template(name)
                .map_err(|e| anyhow!("{e}"))?;
            let mut captured = template
                .render_captured(model)
                .map_err(|e| anyhow!("template_file: {}", describe(&e)))?;
            let mut defines = |block: &str| {
                !matches!(
                    captured.with_state_mut(|state| state.render_block(block)),
                    Err(e) if e.kind() == ErrorKind::UnknownBlock
                )
            };
            if !defines("title") && !defines("text") {
                return Err(anyhow!(
                    "template_file: defines neither {{% block title %}} nor {{% block text %}}"
                ));
            }
        }
        Ok(templates)
    }

    /// The title and text for `message`; `None` parts are the receiver's
    /// own. A failure is logged and the receiver's own wording used.
    pub fn render(&self, message: &GroupMessage, settings: &AlertingSettings) -> Rendered {
        self.try_render(message, settings).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "a template failed on this message; sent with the receiver's own wording");
            Rendered::default()
        })
    }

    fn try_render(&self, message: &GroupMessage, settings: &AlertingSettings) -> Result<Rendered> {
        let model = Value::from(minijinja::value::Serde(Model::of(message, settings)));
        let clean = |s: String| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        match &self.file {
            Some(name) => {
                let template = self.env.get_template(name).map_err(|e| anyhow!("{e}"))?;
                let mut captured = template
                    .render_captured(model)
                    .map_err(|e| anyhow!("template_file: {}", describe(&e)))?;
                let mut block = |name: &str| -> Result<Option<String>> {
                    match captured.with_state_mut(|state| state.render_block(name)) {
                        Ok(text) => Ok(clean(text)),
                        Err(e) if e.kind() == ErrorKind::UnknownBlock => Ok(None),
                        Err(e) => Err(anyhow!("template_file: block {name}: {}", describe(&e))),
                    }
                };
                Ok(Rendered {
                    title: block("title")?,
                    text: block("text")?,
                })
            }
            None => {
                let part = |name: &str, wanted: bool| -> Result<Option<String>> {
                    if !wanted {
                        return Ok(None);
                    }
                    let template = self.env.get_template(name).map_err(|e| anyhow!("{e}"))?;
                    template
                        .render(&model)
                        .map(clean)
                        .map_err(|e| anyhow!("{name}: {}", describe(&e)))
                };
                Ok(Rendered {
                    title: part("title_template", self.title)?,
                    text: part("text_template", self.text)?,
                })
            }
        }
    }
}

/// An error with where it is: "line 3: undefined value (in …)".
fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.line() {
        Some(line) => format!("line {line}: {}", e.kind()),
        None => e.kind().to_string(),
    };
    if let Some(detail) = e.detail() {
        text.push_str(": ");
        text.push_str(detail);
    }
    text
}

/// Labels as a template sees them: a label a session or group does not
/// have reads as empty, so `{{ group.region }}` is no error for a group
/// without one (the samples a template is checked on have few labels).
#[derive(Debug)]
struct Labels(Arc<BTreeMap<String, String>>);

impl Object for Labels {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let key = key.as_str()?;
        Some(Value::from(self.0.get(key).map_or("", String::as_str)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<Value> = self.0.keys().map(|k| Value::from(k.as_str())).collect();
        Enumerator::Iter(Box::new(keys.into_iter()))
    }
}

/// The model a template sees (README, "Templates").
#[derive(Serialize)]
struct Model<'a> {
    /// `firing` or `resolved`.
    status: &'static str,
    /// `critical` or `warning` (of the worst alert).
    level: &'static str,
    /// The alert code, or the codes joined with ", ".
    code: String,
    /// How many sessions the message is about.
    count: usize,
    /// The group's labels ([`Labels`]).
    group: Value,
    /// The sessions listed (at most `max_listed_sessions`).
    sessions: Vec<SessionModel<'a>>,
    /// How many more there are beyond those listed.
    more: usize,
    /// The dashboard link (`external_url`), or none.
    url: Option<String>,
    /// wapulse's own title line.
    title: String,
    /// Whether this is a reminder of a group still firing.
    repeat: bool,
}

#[derive(Serialize)]
struct SessionModel<'a> {
    id: &'a str,
    labels: Value,
    code: &'a str,
    level: &'static str,
    summary: &'a str,
    action: &'a str,
    since: String,
    url: Option<String>,
}

impl<'a> Model<'a> {
    fn of(message: &'a GroupMessage, settings: &AlertingSettings) -> Self {
        let alerts = said(message);
        let total = match message.status {
            Status::Firing => message.firing_total,
            Status::Resolved => message.resolved_total,
        }
        .max(alerts.len());
        let max = settings.max_listed_sessions;
        let mut codes: Vec<&str> = alerts.iter().map(|a| a.code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        let level = alerts
            .iter()
            .map(|a| a.level)
            .max()
            .unwrap_or(Level::Warning);
        Self {
            status: match message.status {
                Status::Firing => "firing",
                Status::Resolved => "resolved",
            },
            level: level.as_str(),
            code: codes.join(", "),
            count: count_sessions(message),
            group: Value::from_object(Labels(Arc::new(message.group_labels.clone()))),
            sessions: alerts
                .iter()
                .take(max)
                .map(|a| SessionModel {
                    id: &a.session,
                    labels: Value::from_object(Labels(a.labels.clone())),
                    code: &a.code,
                    level: a.level.as_str(),
                    summary: &a.summary,
                    action: &a.action,
                    since: a.starts_at.to_rfc3339(),
                    url: session_link(settings, &a.session),
                })
                .collect(),
            more: total.saturating_sub(max.min(alerts.len())),
            url: link(message, settings),
            title: title(message),
            repeat: message.repeat,
        }
    }
}

/// A message like a real one, for checking templates.
fn sample(status: Status) -> GroupMessage {
    let alert = |i: usize| NotifiedAlert {
        session: format!("sample-{i}"),
        code: "LOGGED_OUT".into(),
        level: Level::Critical,
        status,
        starts_at: Timestamp::from_millis(1_770_000_000_000),
        ends_at: (status == Status::Resolved).then(|| Timestamp::from_millis(1_770_000_600_000)),
        summary: "Session logged out (401)".into(),
        action: "Scan the QR code again".into(),
        flapping: false,
        labels: std::sync::Arc::new([("region".to_owned(), "eu-1".to_owned())].into()),
        sessions: Vec::new(),
        affected: None,
        retired: false,
    };
    let alerts: Vec<NotifiedAlert> = (0..3).map(alert).collect();
    let (firing, resolved) = match status {
        Status::Firing => (alerts, Vec::new()),
        Status::Resolved => (Vec::new(), alerts),
    };
    GroupMessage {
        group_key: "{}:{code=\"LOGGED_OUT\"}".into(),
        group_labels: [("code".to_owned(), "LOGGED_OUT".to_owned())].into(),
        status,
        firing_total: firing.len(),
        resolved_total: resolved.len(),
        firing,
        resolved,
        repeat: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AlertingSettings {
        AlertingSettings {
            external_url: Some("https://wa.example".into()),
            ..AlertingSettings::default()
        }
    }

    #[test]
    fn inline_templates_see_the_documented_model() {
        let t = Templates::load(
            Some("{{ status|upper }} {{ code }} x{{ count }} {{ group.code }}"),
            Some(
                "{% for s in sessions %}{{ s.id }} {{ s.level }} {{ s.labels.region }} {{ s.url }}\n{% endfor %}{{ more }} {{ url }}",
            ),
            None,
            &settings(),
        )
        .unwrap();
        let r = t.render(&sample(Status::Firing), &settings());
        assert_eq!(r.title.as_deref(), Some("FIRING LOGGED_OUT x3 LOGGED_OUT"));
        let text = r.text.unwrap();
        assert!(
            text.starts_with("sample-0 critical eu-1 https://wa.example/ui/sessions/sample-0\n"),
            "{text}"
        );
        assert!(
            text.ends_with("0 https://wa.example/ui/sessions?code=LOGGED_OUT"),
            "{text}"
        );
        let only_title = Templates::load(Some("{{ title }}"), None, None, &settings()).unwrap();
        let r = only_title.render(&sample(Status::Resolved), &settings());
        assert!(r.title.unwrap().starts_with("✅ RESOLVED"));
        assert_eq!(r.text, None, "the receiver's own text");
    }

    #[test]
    fn mistakes_are_found_when_loading_with_their_line() {
        let err = |t: Option<&str>, x: Option<&str>| {
            format!(
                "{:#}",
                Templates::load(t, x, None, &settings()).unwrap_err()
            )
        };
        let e = err(Some("{{ status "), None);
        assert!(e.starts_with("title_template: line 1: syntax error"), "{e}");
        let e = err(None, Some("ok\n{{ sesions|length }}"));
        assert!(
            e.starts_with("text_template: line 2: undefined value"),
            "{e}"
        );
        let e = err(None, Some("{{ count|nope }}"));
        assert!(e.contains("line 1") && e.contains("nope"), "{e}");
        // A missing label may be tested.
        Templates::load(
            None,
            Some("{% if group.region %}x{% endif %}"),
            None,
            &settings(),
        )
        .unwrap();
    }

    #[test]
    fn the_shipped_portuguese_file_renders_both_parts() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/templates/pt-BR.jinja");
        let t = Templates::load(None, None, Some(&path), &settings()).unwrap();
        let firing = t.render(&sample(Status::Firing), &settings());
        let title = firing.title.unwrap();
        assert_eq!(title, "🔴 ALERTA · 3 sessões · LOGGED_OUT");
        let text = firing.text.unwrap();
        assert!(text.starts_with("Nível crítico desde"), "{text}");
        assert!(
            text.contains("• sample-0: sessão deslogada pelo WhatsApp"),
            "{text}"
        );
        assert!(
            text.ends_with("Abrir no wapulse: https://wa.example/ui/sessions?code=LOGGED_OUT"),
            "{text}"
        );
        let resolved = t.render(&sample(Status::Resolved), &settings());
        assert!(resolved.title.unwrap().starts_with("✅ RESOLVIDO"));
        assert!(resolved.text.unwrap().starts_with("Voltou ao normal."));
    }

    #[test]
    fn the_short_portuguese_file_lists_one_line_a_session() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/templates/pt-BR-curto.jinja");
        let t = Templates::load(None, None, Some(&path), &settings()).unwrap();
        let r = t.render(&sample(Status::Firing), &settings());
        assert_eq!(r.title.as_deref(), Some("🔴 LOGGED_OUT: 3 sessões"));
        assert_eq!(
            r.text.as_deref(),
            Some("sample-0\nsample-1\nsample-2\nhttps://wa.example/ui/sessions?code=LOGGED_OUT")
        );
    }

    /// A template that fails only on some message (here: one session, a
    /// division by zero) leaves that message in the receiver's own words.
    #[test]
    fn a_message_a_template_fails_on_keeps_the_receivers_own_words() {
        let t = Templates::load(
            Some("{{ 10 // (count - 1) }}"),
            Some("ok"),
            None,
            &settings(),
        )
        .expect("three sessions in the samples: no division by zero");
        let mut one = sample(Status::Firing);
        one.firing.truncate(1);
        one.firing_total = 1;
        assert_eq!(t.render(&one, &settings()), Rendered::default());
        assert_eq!(
            t.render(&sample(Status::Firing), &settings())
                .title
                .as_deref(),
            Some("5")
        );
    }

    /// A block that says nothing for a firing message is still used for
    /// a resolve (it was once judged absent from the firing sample alone).
    #[test]
    fn a_block_empty_on_firing_still_words_a_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jinja");
        std::fs::write(
            &path,
            "{% block title %}{% if status == 'resolved' %}fim{% endif %}{% endblock %}",
        )
        .unwrap();
        let t = Templates::load(None, None, Some(&path), &settings()).unwrap();
        assert_eq!(t.render(&sample(Status::Firing), &settings()).title, None);
        assert_eq!(
            t.render(&sample(Status::Resolved), &settings())
                .title
                .as_deref(),
            Some("fim")
        );
    }

    #[test]
    fn a_file_needs_a_block_and_is_not_mixed_with_inline_parts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jinja");
        std::fs::write(&path, "no blocks here").unwrap();
        let e = format!(
            "{:#}",
            Templates::load(None, None, Some(&path), &settings()).unwrap_err()
        );
        assert!(e.contains("neither"), "{e}");
        std::fs::write(&path, "{% block text %}\n{{ nope }}{% endblock %}").unwrap();
        let e = format!(
            "{:#}",
            Templates::load(None, None, Some(&path), &settings()).unwrap_err()
        );
        assert!(e.contains("line 2") && e.contains("undefined"), "{e}");
        let e = format!(
            "{:#}",
            Templates::load(Some("x"), None, Some(&path), &settings()).unwrap_err()
        );
        assert!(e.contains("either"), "{e}");
        let e = format!(
            "{:#}",
            Templates::load(None, None, Some(&dir.path().join("missing")), &settings())
                .unwrap_err()
        );
        assert!(e.contains("cannot read"), "{e}");
    }
}
