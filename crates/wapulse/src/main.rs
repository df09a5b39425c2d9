//! The `wapulse` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use wapulse::config::Settings;
use wapulse::startup::{Application, shutdown_signal};
use wapulse::{check, demo, telemetry};

/// Operator-grade observability for WhatsApp session fleets.
#[derive(Parser)]
#[command(name = "wapulse", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve {
        /// TOML config file (else WAPULSE_CONFIG).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Run the service with a simulated fleet that lives through realistic
    /// trouble; every alert code shows up within a few minutes.
    Demo {
        /// TOML config file (else WAPULSE_CONFIG).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// How many sessions to simulate.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        sessions: u32,
    },
    /// Nagios/Icinga plugin and Docker healthcheck: exit 0 ok, 1 warning,
    /// 2 critical, 3 unknown.
    Check {
        /// Health endpoint to query.
        #[arg(default_value = check::DEFAULT_URL)]
        url: String,
        /// Give up (UNKNOWN) after this long, e.g. 5s.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load and validate the configuration, then print it (secrets hidden).
    Check {
        /// TOML config file (else WAPULSE_CONFIG).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration like 5s: {e}"))
}

fn load(config: Option<PathBuf>) -> Result<Settings> {
    Settings::load(config.as_deref(), |k| std::env::var(k).ok())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wapulse: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => {
            let settings = load(config)?;
            telemetry::init_logging(&settings.log_filter);
            runtime()?.block_on(async {
                let app = Application::build(settings).await?;
                app.run_until(shutdown_signal()).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { config, sessions } => {
            let settings = load(config)?;
            telemetry::init_logging(&settings.log_filter);
            runtime()?.block_on(async {
                let app = Application::build(settings).await?;
                let addr = app.local_addr();
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let sim = tokio::spawn(demo::run(app.state(), sessions as usize, stopped));
                eprintln!(
                    "wapulse demo: {sessions} simulated sessions on http://{addr}/ \
                     (try /sessions, /session/observe, /sessions/demo-002/alerts, /metrics); \
                     trouble starts within a minute, every alert code within ~6 minutes"
                );
                let served = app.run_until(shutdown_signal()).await;
                let _ = stop.send(true);
                let _ = sim.await;
                served
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { url, timeout } => {
            let (verdict, line) = match runtime() {
                Ok(rt) => rt.block_on(check::run(&url, timeout)),
                Err(e) => (check::Verdict::Unknown, format!("WAPULSE UNKNOWN - {e:#}")),
            };
            println!("{line}");
            Ok(ExitCode::from(verdict.code() as u8))
        }
        Command::Config {
            command: ConfigCommand::Check { config },
        } => {
            let settings = load(config)?;
            println!("configuration is valid:\n{settings:#?}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
