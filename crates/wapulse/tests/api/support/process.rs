//! The `wapulse` binary as a process: commands with a clean environment,
//! `wapulse serve` on a free port (killed on drop), SIGTERM, and a tiny
//! blocking HTTP client for tests with no async runtime.

use std::net::TcpListener;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wapulse");

/// The binary with a clean environment. Tests that start a server set
/// `WAPULSE_DATA_DIR` to a temporary directory they own.
pub fn wapulse(args: &[&str]) -> Command {
    wapulse_via(&[], args)
}

/// The same, run through `wrapper` (a command and its arguments, which
/// end where the binary's path goes: `setpriv … --`).
pub fn wapulse_via(wrapper: &[&str], args: &[&str]) -> Command {
    let mut c = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LOG_LEVEL", "INFO");
    c
}

/// `wapulse store export` of a data directory: its journal as NDJSON.
pub fn export_journal(data: &std::path::Path) -> String {
    let export = wapulse(&["store", "export"])
        .env("WAPULSE_DATA_DIR", data)
        .output()
        .unwrap();
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    String::from_utf8(export.stdout).unwrap()
}

/// Runs `wapulse config check` on a config file with this text.
pub fn config_check(toml_text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wapulse.toml");
    std::fs::write(&path, toml_text).unwrap();
    wapulse(&["config", "check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Running(pub Child);

/// A `wapulse serve` started by [`serve_with`]; killed on drop.
pub struct Served {
    pub running: Running,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Served {
    /// What the server has written (its log, stdout and stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("output.log")).unwrap_or_default()
    }
}

/// Starts `wapulse serve` on a free port with a data directory of its own
/// and the extra `env`, and waits until it answers `/healthz`.
pub fn serve_with(env: &[(&str, &str)]) -> Served {
    serve_via(&[], env)
}

/// The same, run through `wrapper` (see [`wapulse_via`]).
pub fn serve_via(wrapper: &[&str], env: &[(&str, &str)]) -> Served {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("output.log")).unwrap();
    let mut cmd = wapulse_via(wrapper, &["serve"]);
    cmd.env("PORT", port.to_string())
        .env("WAPULSE_DATA_DIR", dir.path().join("data"))
        .stderr(log.try_clone().unwrap())
        .stdout(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let running = Running(cmd.spawn().unwrap());
    wait_until_up(&format!("http://127.0.0.1:{port}/healthz"));
    Served { running, port, dir }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// This process's user id.
pub fn nix_uid() -> u32 {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Polls `url` until it answers 200, for at most 20 s.
pub fn wait_until_up(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = reqwest::blocking_get_status;
    while Instant::now() < deadline {
        if client(url) == Some(200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} did not come up");
}

pub mod reqwest {
    /// A tiny blocking GET over a std TcpStream (tests only), so the
    /// synchronous process tests need no async runtime.
    pub fn blocking_get_status(url: &str) -> Option<u16> {
        body(url).map(|(code, _)| code)
    }

    pub fn body(url: &str) -> Option<(u16, String)> {
        send(url, "GET", None)
    }

    /// One request with `Connection: close`; a `json` body is sent as
    /// `application/json`. Returns the status and the body.
    pub fn send(url: &str, method: &str, json: Option<&str>) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest.split_at(rest.find('/')?);
        let mut s = std::net::TcpStream::connect(host).ok()?;
        let content = json.map_or(String::new(), |b| {
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            )
        });
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{content}Connection: close\r\n\r\n{}",
            json.unwrap_or_default()
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let code = text.split(' ').nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((code, body))
    }
}

pub fn terminate(child: &mut Child) -> i32 {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `wapulse serve` on `data` with `config`, killed on drop.
pub fn serve_on(data: &std::path::Path, config: &std::path::Path) -> (Running, u16) {
    let port = free_port();
    let log = std::fs::File::create(data.join(format!("output-{port}.log"))).unwrap();
    let child = wapulse(&["serve"])
        .env("PORT", port.to_string())
        .env("WAPULSE_DATA_DIR", data.join("data"))
        .env("WAPULSE_CONFIG", config)
        .stderr(log.try_clone().unwrap())
        .stdout(log)
        .spawn()
        .unwrap();
    let running = Running(child);
    wait_until_up(&format!("http://127.0.0.1:{port}/healthz"));
    (running, port)
}
