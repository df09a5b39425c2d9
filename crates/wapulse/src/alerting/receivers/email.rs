//! Email over SMTP (`lettre`): one message per group message, text and
//! HTML alternatives, to every `to` address. STARTTLS (required, not
//! opportunistic: a server that does not offer it is refused), implicit
//! TLS, or a plain connection; certificates verified against the same roots
//! as every other receiver (Mozilla's, the system's, `ca_file`). AUTH with
//! `username` / `password` when given.
//!
//! Threading: every message of a group carries `In-Reply-To` and
//! `References` naming the group's thread (`<wapulse.{hash}@{domain}>`),
//! and its own `Message-ID` (`<wapulse.{hash}.{row}@{domain}>`, the same
//! across retries), so mail clients that thread by reference show a
//! resolve under the firing it ends.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use wapulse_core::grouping::GroupMessage;

use super::{Outcome, Wording, clip, escape_html, link, said, session_list};
use crate::alerting::config::AlertingSettings;
use crate::secret::Secret;

/// How the connection is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Security {
    /// Plain, then `STARTTLS` (required).
    StartTls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS (a relay on the same host).
    None,
}

/// Where and how to send.
#[derive(Clone, Debug)]
pub struct Smtp {
    /// The server's host name (checked against its certificate).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub security: Security,
    /// AUTH, when given.
    pub username: Option<String>,
    /// AUTH's password.
    pub password: Option<Secret>,
    /// The sender.
    pub from: Mailbox,
    /// The recipients.
    pub to: Vec<Mailbox>,
}

/// The group's thread and this message's id.
pub fn ids(group_key: &str, row: i64, from: &Mailbox) -> (String, String) {
    let digest = Sha256::digest(group_key.as_bytes());
    let hash: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    let domain = from.email.domain();
    (
        format!("<wapulse.{hash}@{domain}>"),
        format!("<wapulse.{hash}.{row}@{domain}>"),
    )
}

/// The mail for one group message (`row`: its outbox row).
pub fn render(
    w: &Wording,
    message: &GroupMessage,
    row: i64,
    smtp: &Smtp,
    settings: &AlertingSettings,
) -> Result<Message, String> {
    let max = settings.max_listed_sessions;
    let heading = w.title.clone();
    let lead = said(message).first();
    let mut text = format!("{heading}\n\n");
    let mut html = format!("<h2>{}</h2>\n", escape_html(&heading));
    if let Some(own) = &w.text {
        text.push_str(own);
        text.push('\n');
        html.push_str(&format!(
            "<p>{}</p>\n",
            escape_html(own).replace('\n', "<br>\n")
        ));
    } else if let Some(a) = lead {
        text.push_str(&format!(
            "{}\nLevel: {} · since {}\n",
            a.summary, a.level, a.starts_at
        ));
        html.push_str(&format!(
            "<p>{}</p>\n<p>Level: <b>{}</b> · since {}</p>\n",
            escape_html(&a.summary),
            a.level,
            a.starts_at
        ));
        if !a.action.is_empty() {
            text.push_str(&format!("Action: {}\n", a.action));
            html.push_str(&format!("<p>Action: {}</p>\n", escape_html(&a.action)));
        }
    }
    for (name, alerts, total) in [
        ("Firing", &message.firing, message.firing_total),
        ("Resolved", &message.resolved, message.resolved_total),
    ] {
        if !alerts.is_empty() && w.text.is_none() {
            let list = session_list(alerts, total, max);
            text.push_str(&format!("\n{name}:\n{list}\n"));
            html.push_str(&format!(
                "<h3>{name}</h3>\n<pre>{}</pre>\n",
                escape_html(&list)
            ));
        }
    }
    if let Some(url) = link(message, settings) {
        text.push_str(&format!("\nOpen in wapulse: {url}\n"));
        let href = escape_html(&url).replace('"', "%22");
        html.push_str(&format!("<p><a href=\"{href}\">Open in wapulse</a></p>\n"));
    }
    let mut footer = format!("wapulse · group {}", message.group_key);
    if message.repeat {
        footer.push_str(" · reminder");
    }
    text.push_str(&format!("\n-- \n{footer}\n"));
    html.push_str(&format!("<p><small>{}</small></p>\n", escape_html(&footer)));
    let (thread, id) = ids(&message.group_key, row, &smtp.from);
    let mut builder = Message::builder()
        .from(smtp.from.clone())
        .subject(clip(&heading, 200))
        .message_id(Some(id))
        .in_reply_to(thread.clone())
        .references(thread);
    for to in &smtp.to {
        builder = builder.to(to.clone());
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(format!(
                            "<!doctype html>\n<html><body>\n{html}</body></html>\n"
                        )),
                ),
        )
        .map_err(|e| format!("the message cannot be built: {e}"))
}

/// Sends `mail`: delivered, retried (connection, TLS, timeouts, 4xx
/// replies) or given up (5xx replies: a refused login, sender or
/// recipient).
pub async fn send(
    smtp: &Smtp,
    mail: Message,
    timeout: Duration,
    extra_roots: &[CertificateDer<'static>],
) -> Outcome {
    let transport = match transport(smtp, timeout, extra_roots) {
        Ok(t) => t,
        Err(e) => return Outcome::Permanent(e),
    };
    match transport.send(mail).await {
        Ok(_) => Outcome::Delivered,
        Err(e) if e.is_permanent() => Outcome::Permanent(format!("SMTP: {e}")),
        Err(e) => Outcome::Retry {
            after: None,
            reason: if e.is_timeout() {
                format!(
                    "SMTP: no answer within {}",
                    humantime::format_duration(timeout)
                )
            } else {
                format!("SMTP: {e}")
            },
        },
    }
}

fn transport(
    smtp: &Smtp,
    timeout: Duration,
    extra_roots: &[CertificateDer<'static>],
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .timeout(Some(timeout));
    if smtp.security != Security::None {
        let mut tls = TlsParameters::builder(smtp.host.clone())
            .certificate_store(CertificateStore::WebpkiRoots);
        for der in crate::tls::system_certs().iter().chain(extra_roots) {
            if let Ok(cert) = Certificate::from_der(der.to_vec()) {
                tls = tls.add_root_certificate(cert);
            }
        }
        let tls = tls
            .build_rustls()
            .map_err(|e| format!("TLS settings: {e}"))?;
        builder = builder.tls(match smtp.security {
            Security::Implicit => Tls::Wrapper(tls),
            _ => Tls::Required(tls),
        });
    }
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    Ok(builder.build())
}
