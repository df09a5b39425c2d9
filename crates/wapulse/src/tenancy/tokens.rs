//! `[[tokens]]`: named tokens, each with an access level and, for a
//! tenant, a scope; checked once at start, naming the token at fault.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::Deserialize;
use wapulse_core::{Scope, SessionId};

use crate::secret::Secret;

/// One `[[tokens]]` entry, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    name: Option<String>,
    secret_env: Option<String>,
    secret_file: Option<PathBuf>,
    access: Option<String>,
    #[serde(rename = "match")]
    matches: Option<BTreeMap<String, String>>,
    sessions: Option<Vec<String>>,
}

/// What a named token may do. Each level includes the ones before it:
/// an ingest token also reads, an admin token also ingests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    /// Reads: sessions, alerts, history, metrics.
    Read,
    /// Reads, and writes events (the API and the gateway webhooks).
    Ingest,
    /// Everything: silences, retiring sessions, the audit log.
    Admin,
}

impl Grant {
    /// Its name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Read => "read",
            Grant::Ingest => "ingest",
            Grant::Admin => "admin",
        }
    }
}

/// Where a token's secret is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable, read at start.
    Env(String),
    /// A file, read at start and again when it changes (rotation).
    File(PathBuf),
}

/// A checked `[[tokens]]` entry, with its secret as read at start.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    /// Its name: what the audit log and the logs call it.
    pub name: String,
    /// Where its secret comes from.
    pub source: SecretSource,
    /// The secret read at start.
    pub secret: Secret,
    /// What it may do.
    pub grant: Grant,
    /// The sessions it covers (`None`: every session).
    pub scope: Option<Scope>,
}

/// Reads a secret file: its content without the line end; blank is
/// refused (a token of nothing would let anyone in).
pub fn read_secret_file(path: &std::path::Path) -> std::result::Result<Secret, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read secret_file {}: {e}", path.display()))?;
    let secret = text.trim_end_matches(['\n', '\r']);
    if secret.trim().is_empty() {
        return Err(format!("secret_file {} is empty", path.display()));
    }
    Ok(Secret::new(secret))
}

/// Checks every `[[tokens]]` entry; `env` reads the environment.
/// `legacy`: the single tokens (`INGEST_TOKEN`, …) already set, which no
/// named token may share a secret with.
pub fn check(
    raw: Vec<RawToken>,
    env: impl Fn(&str) -> Option<String>,
    legacy: &[(&str, Option<&Secret>)],
) -> Result<Vec<TokenSpec>> {
    let mut out: Vec<TokenSpec> = Vec::with_capacity(raw.len());
    let mut names = HashSet::new();
    for (i, t) in raw.into_iter().enumerate() {
        let Some(name) = t.name.filter(|n| !n.trim().is_empty()) else {
            bail!("tokens[{i}]: `name` is required");
        };
        let at = format!("tokens[{i}] (`{name}`)");
        if name.chars().count() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!("{at}: the name must be 1-64 of a-z, A-Z, 0-9, `-`, `_`, `.`");
        }
        if !names.insert(name.clone()) {
            bail!("{at}: another token has this name");
        }
        let (source, secret) = match (t.secret_env, t.secret_file) {
            (Some(var), None) => {
                let Some(value) = env(&var).filter(|v| !v.trim().is_empty()) else {
                    bail!("{at}: secret_env names `{var}`, which is not set (or blank)");
                };
                (SecretSource::Env(var), Secret::new(value))
            }
            (None, Some(path)) => {
                let secret = read_secret_file(&path).map_err(|e| anyhow::anyhow!("{at}: {e}"))?;
                (SecretSource::File(path), secret)
            }
            (Some(_), Some(_)) => bail!("{at}: give secret_env or secret_file, not both"),
            (None, None) => bail!("{at}: secret_env or secret_file is required"),
        };
        let grant = match t.access.as_deref() {
            Some("read") => Grant::Read,
            Some("ingest") => Grant::Ingest,
            Some("admin") => Grant::Admin,
            Some(other) => bail!("{at}: access `{other}` is not read, ingest or admin"),
            None => bail!("{at}: access is required (read, ingest or admin)"),
        };
        let scope = match (t.matches, t.sessions) {
            (Some(_), Some(_)) => bail!("{at}: give `match` or `sessions`, not both"),
            (Some(pairs), None) => {
                if pairs.is_empty() {
                    bail!("{at}: `match` is empty; name at least one label, or leave it out");
                }
                for (n, v) in &pairs {
                    wapulse_core::labels::check_name(n)
                        .and_then(|()| wapulse_core::labels::check_value(n, v))
                        .map_err(|e| anyhow::anyhow!("{at}: match: {e}"))?;
                }
                Some(Scope::Labels(pairs))
            }
            (None, Some(ids)) => {
                if ids.is_empty() {
                    bail!("{at}: `sessions` is empty; list at least one, or leave it out");
                }
                let ids = ids
                    .iter()
                    .map(|id| {
                        SessionId::parse(id)
                            .map_err(|e| anyhow::anyhow!("{at}: sessions: `{id}`: {e}"))
                    })
                    .collect::<Result<BTreeSet<_>>>()?;
                Some(Scope::Sessions(ids))
            }
            (None, None) => None,
        };
        if let Some(other) = out.iter().find(|o| o.secret == secret) {
            bail!(
                "{at}: its secret is also `{}`'s; every token needs its own",
                other.name
            );
        }
        if let Some((setting, _)) = legacy.iter().find(|(_, s)| *s == Some(&secret)) {
            bail!("{at}: its secret is also {setting}'s; every token needs its own");
        }
        out.push(TokenSpec {
            name,
            source,
            secret,
            grant,
            scope,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<TokenSpec>> {
        #[derive(Deserialize)]
        struct File {
            tokens: Vec<RawToken>,
        }
        let file: File = toml::from_str(text).unwrap();
        let env = |name: &str| match name {
            "ACME" => Some("acme-secret-0123456789".to_owned()),
            "BOLT" => Some("bolt-secret-0123456789".to_owned()),
            _ => None,
        };
        let ingest = Secret::new("ingest-secret-0123456789");
        check(file.tokens, env, &[("INGEST_TOKEN", Some(&ingest))])
    }

    #[test]
    fn tokens_read_their_access_and_scope() {
        let specs = parse(
            r#"
            [[tokens]]
            name = "acme-read"
            secret_env = "ACME"
            access = "read"
            match = { tenant = "acme" }
            [[tokens]]
            name = "bolt-ingest"
            secret_env = "BOLT"
            access = "ingest"
            sessions = ["b1", "b2"]
            "#,
        )
        .unwrap();
        assert_eq!(specs[0].grant, Grant::Read);
        assert_eq!(specs[0].scope.as_ref().unwrap().describe(), "tenant=acme");
        assert_eq!(specs[1].grant, Grant::Ingest);
        assert_eq!(specs[1].scope.as_ref().unwrap().describe(), "2 sessions");
        assert!(Grant::Admin > Grant::Ingest && Grant::Ingest > Grant::Read);
    }

    #[test]
    fn bad_tokens_are_refused_naming_the_token_and_the_key() {
        let cases = [
            (
                "name = \"a\"\nsecret_env = \"NOPE\"\naccess = \"read\"",
                "`NOPE`",
            ),
            (
                "name = \"a\"\nsecret_env = \"ACME\"\naccess = \"write\"",
                "access `write`",
            ),
            ("name = \"a\"\nsecret_env = \"ACME\"", "access is required"),
            (
                "secret_env = \"ACME\"\naccess = \"read\"",
                "`name` is required",
            ),
            (
                "name = \"a\"\nsecret_env = \"ACME\"\naccess = \"read\"\nmatch = { tenant = \"x\" }\nsessions = [\"s\"]",
                "not both",
            ),
            (
                "name = \"a\"\nsecret_env = \"ACME\"\naccess = \"read\"\nmatch = { session = \"x\" }",
                "reserved",
            ),
            (
                "name = \"a\"\nsecret_env = \"ACME\"\naccess = \"read\"\nsessions = [\"bad id\"]",
                "`bad id`",
            ),
            (
                "name = \"a b\"\nsecret_env = \"ACME\"\naccess = \"read\"",
                "the name must be",
            ),
        ];
        for (body, want) in cases {
            let err = parse(&format!("[[tokens]]\n{body}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("tokens[0]") && err.contains(want),
                "{body}: {err}"
            );
        }
        let twice = parse(
            "[[tokens]]\nname = \"a\"\nsecret_env = \"ACME\"\naccess = \"read\"\n\
             [[tokens]]\nname = \"b\"\nsecret_env = \"ACME\"\naccess = \"admin\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            twice.contains("tokens[1] (`b`)") && twice.contains("`a`'s"),
            "{twice}"
        );
    }

    #[test]
    fn a_secret_file_is_read_without_its_line_end_and_blank_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acme");
        std::fs::write(&path, "s3cret-from-a-file\n").unwrap();
        assert_eq!(
            read_secret_file(&path).unwrap().expose(),
            "s3cret-from-a-file"
        );
        std::fs::write(&path, " \n").unwrap();
        assert!(read_secret_file(&path).unwrap_err().contains("is empty"));
        assert!(
            read_secret_file(&dir.path().join("gone"))
                .unwrap_err()
                .contains("cannot read")
        );
    }
}
