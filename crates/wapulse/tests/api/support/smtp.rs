//! A real SMTP server (PyPI's aiosmtpd, `smtp_server.py`) with a
//! certificate from a test CA, requiring TLS (STARTTLS or implicit) and
//! AUTH; what it receives is parsed by Python's email package.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TestCa;
use super::process::free_port;

pub struct SmtpServer {
    pub port: u16,
    child: Child,
    _stdin: ChildStdin,
    out: tempfile::TempDir,
}

impl SmtpServer {
    /// `mode`: `starttls` or `implicit`; AUTH as `user` / `password`.
    pub fn start(ca: &TestCa, mode: &str, user: &str, password: &str) -> Self {
        let (cert, key) = ca.issue(&["127.0.0.1", "localhost"]);
        let out = tempfile::tempdir().unwrap();
        let cert_path = out.path().join("cert.pem");
        let key_path = out.path().join("key.pem");
        std::fs::write(&cert_path, cert).unwrap();
        std::fs::write(&key_path, key).unwrap();
        let mail = out.path().join("mail");
        std::fs::create_dir(&mail).unwrap();
        let port = free_port();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/support/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(&cert_path)
            .arg(&key_path)
            .arg(&mail)
            .args([user, password, mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (aiosmtpd: pip install aiosmtpd)");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP server did not start (is aiosmtpd installed?)"
        );
        Self {
            port,
            child,
            _stdin: stdin,
            out,
        }
    }

    /// The messages received so far, in order.
    pub fn received(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.out.path().join("mail"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits (bounded) for `n` messages.
    pub async fn wait_for(&self, what: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + super::WAIT;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {n} messages",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
