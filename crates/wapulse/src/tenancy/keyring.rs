//! The named tokens in force: found by the SHA-256 digest of what a
//! request presents (no secret is kept, only digests), swapped whole when a
//! secret file changes (rotation) or on SIGHUP.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use sha2::{Digest, Sha256};
use wapulse_core::{Scope, SessionId};

use super::tokens::{Grant, SecretSource, TokenSpec, read_secret_file};

impl Named {
    /// An operator's view of one label value (the dashboard's "view as"):
    /// read access, scoped to `scope`.
    pub fn viewing(scope: Scope) -> Arc<Self> {
        Arc::new(Self {
            name: format!("view as {}", scope.describe()).into(),
            grant: Grant::Read,
            scope: Some(Arc::new(scope)),
            members: std::sync::Mutex::new(None),
            view_as: true,
        })
    }
}

/// A named token, as a request that presented it is known.
#[derive(Debug)]
pub struct Named {
    /// Its name.
    pub name: Arc<str>,
    /// What it may do.
    pub grant: Grant,
    /// The sessions it covers (`None`: all).
    pub scope: Option<Arc<Scope>>,
    /// Its sessions' ids in id order, as of a fleet membership number
    /// (`FleetSnapshot::membership`): a tenant's page or `/metrics` walks
    /// its own sessions, not the fleet's.
    pub(super) members: std::sync::Mutex<Option<(u64, Arc<Vec<SessionId>>)>>,
    /// Whether it is an operator's "view as", not a token.
    pub view_as: bool,
}

/// A SHA-256 digest.
pub type Digest32 = [u8; 32];

/// The digests in force, each to its token.
#[derive(Default)]
struct Keys {
    by_digest: HashMap<Digest32, Arc<Named>>,
    /// Each token in force, by name, with its secret's digest (a token
    /// whose file could not be read is off: absent).
    by_name: HashMap<Arc<str>, (Digest32, Arc<Named>)>,
}

/// Every named token, looked up per request.
pub struct Keyring {
    specs: Vec<(TokenSpec, Arc<Named>)>,
    keys: ArcSwap<Keys>,
}

fn digest(secret: &str) -> Digest32 {
    Sha256::digest(secret.as_bytes()).into()
}

impl Keyring {
    /// The tokens of `specs`, with the secrets read at start.
    pub fn new(specs: &[TokenSpec]) -> Self {
        let specs: Vec<(TokenSpec, Arc<Named>)> = specs
            .iter()
            .map(|s| {
                let named = Arc::new(Named {
                    name: s.name.as_str().into(),
                    grant: s.grant,
                    scope: s.scope.clone().map(Arc::new),
                    members: std::sync::Mutex::new(None),
                    view_as: false,
                });
                (s.clone(), named)
            })
            .collect();
        let mut keys = Keys::default();
        for (spec, named) in &specs {
            let d = digest(spec.secret.expose());
            keys.by_digest.insert(d, named.clone());
            keys.by_name.insert(named.name.clone(), (d, named.clone()));
        }
        Self {
            specs,
            keys: ArcSwap::from_pointee(keys),
        }
    }

    /// Whether any named token is configured.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Whether any configured token has a scope.
    pub fn has_scopes(&self) -> bool {
        self.specs.iter().any(|(s, _)| s.scope.is_some())
    }

    /// The token whose secret is `presented`, if any. The lookup is by a
    /// digest of what was presented: its timing says nothing of a secret.
    pub fn find(&self, presented: &str) -> Option<Arc<Named>> {
        self.keys.load().by_digest.get(&digest(presented)).cloned()
    }

    /// Reads every secret file again; a token whose file changed takes its
    /// new secret (the old one is refused from then on), and one whose file
    /// is gone or blank is off until it is back. Returns the names of the
    /// tokens that changed, and what could not be read.
    pub fn reload(&self) -> (Vec<Arc<str>>, Vec<String>) {
        let old = self.keys.load();
        let mut changed = Vec::new();
        let mut problems = Vec::new();
        let mut keys = Keys::default();
        for (spec, named) in &self.specs {
            let secret = match &spec.source {
                SecretSource::Env(_) => Some(digest(spec.secret.expose())),
                SecretSource::File(path) => match read_secret_file(path) {
                    Ok(s) => Some(digest(s.expose())),
                    Err(e) => {
                        problems.push(format!("token `{}`: {e}", named.name));
                        None
                    }
                },
            };
            if old.by_name.get(&named.name).map(|(d, _)| *d) != secret {
                changed.push(named.name.clone());
            }
            if let Some(d) = secret {
                keys.by_digest.insert(d, named.clone());
                keys.by_name.insert(named.name.clone(), (d, named.clone()));
            }
        }
        if !changed.is_empty() {
            self.keys.store(Arc::new(keys));
        }
        (changed, problems)
    }

    /// The token named `name` and the digest of its secret now (`None`:
    /// no such token, or it is off): what a dashboard login cookie is
    /// signed with, so a rotated secret ends its logins.
    pub fn named(&self, name: &str) -> Option<(Digest32, Arc<Named>)> {
        self.keys.load().by_name.get(name).cloned()
    }
}

/// Reloads the secret files every `every` and on SIGHUP, until the process
/// ends; logs each rotation by token name (never a secret).
pub async fn watch(keyring: Arc<Keyring>, every: std::time::Duration) {
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        #[cfg(unix)]
        let hup_fired = async {
            match hup.as_mut() {
                Some(h) => {
                    h.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hup_fired = std::future::pending::<()>();
        let why = tokio::select! {
            _ = tick.tick() => "watch",
            () = hup_fired => "SIGHUP",
        };
        let ring = keyring.clone();
        let Ok((changed, problems)) = tokio::task::spawn_blocking(move || ring.reload()).await
        else {
            continue;
        };
        // A file that stays unreadable is said when it goes, and on SIGHUP.
        let say_problems = why == "SIGHUP" || !changed.is_empty();
        for name in changed {
            tracing::info!(token = %name, by = why, "token secret reloaded");
        }
        if say_problems {
            for p in problems {
                tracing::error!("{p}; the token is refused until its file is readable");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn a_changed_file_replaces_the_secret_and_a_missing_one_turns_it_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acme");
        std::fs::write(&path, "first-secret-value").unwrap();
        let spec = TokenSpec {
            name: "acme".into(),
            source: SecretSource::File(path.clone()),
            secret: Secret::new("first-secret-value"),
            grant: Grant::Read,
            scope: None,
        };
        let ring = Keyring::new(&[spec]);
        assert_eq!(&*ring.find("first-secret-value").unwrap().name, "acme");
        assert!(ring.find("second-secret-value").is_none());
        assert_eq!(ring.reload(), (vec![], vec![]), "nothing changed");
        std::fs::write(&path, "second-secret-value\n").unwrap();
        let (changed, _) = ring.reload();
        assert_eq!(changed, vec![Arc::<str>::from("acme")]);
        assert!(
            ring.find("first-secret-value").is_none(),
            "the old secret is refused"
        );
        assert!(ring.find("second-secret-value").is_some());
        std::fs::remove_file(&path).unwrap();
        let (changed, problems) = ring.reload();
        assert_eq!(changed.len(), 1);
        assert!(problems[0].contains("token `acme`"), "{problems:?}");
        assert!(
            ring.find("second-secret-value").is_none(),
            "off while its file is gone"
        );
    }
}
