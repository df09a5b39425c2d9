//! The `wapulse` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use wapulse::config::Settings;
use wapulse::priority::reads::{self, Governor, ReadPriority};
use wapulse::startup::{Application, shutdown_signal};
use wapulse::store::sqlite;
use wapulse::{beat, demo, model, nagios, telemetry};
use wapulse_core::SessionId;

// mimalloc: /metrics for a large fleet and every ingest batch allocate
// many small objects; it is markedly faster than glibc malloc for that and
// returns freed memory to the system (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `purge_delay` option, numbered as in its `mimalloc.h` (v3,
/// `mi_option_e`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once (mimalloc's default is a
/// delay, and a delayed purge runs only when the freeing thread allocates
/// again, which an idle evaluator or writer may not do for a long time):
/// after a burst (a fleet-wide outage, a snapshot, a large ingest batch)
/// the resident size falls back to what is held instead of keeping the
/// burst's peak. Measured in docs/benchmarks.md (100,000 sessions: 356 →
/// 225 MiB healthy; `/metrics` with every series pays ~70 ms for
/// faulting its buffer in again).
fn tune_allocator() {
    // SAFETY: sets one of mimalloc's integer options, which it reads on
    // use; no memory is touched.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

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
        #[arg(default_value = nagios::DEFAULT_URL)]
        url: String,
        /// Give up (UNKNOWN) after this long, e.g. 5s.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Write a heartbeat key (Unix seconds, with a TTL) to Redis on a
    /// schedule, for a worker that writes none; a `redis_heartbeat` probe
    /// watches it.
    Beat {
        /// Redis URL, e.g. redis://127.0.0.1:6379/0 (a password in it is
        /// never printed).
        #[arg(long, value_name = "URL", env = "REDIS_URL")]
        redis: String,
        /// The key to write.
        #[arg(long, default_value = "worker:heartbeat")]
        key: String,
        /// Time between writes.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        every: Duration,
        /// The key's time to live (default three intervals).
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<Duration>,
        /// Write once and exit (status 1 when the write fails).
        #[arg(long)]
        once: bool,
        /// Log filter (DEBUG, INFO, WARNING, ERROR).
        #[arg(long, default_value = "INFO", env = "LOG_LEVEL")]
        log_level: String,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Store tools: check, export and backup read the store and are safe
    /// while the service runs; restore fills an empty data directory.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Check the store: integrity, schema, every record decodes. Exit 0 when
    /// sound, 1 otherwise.
    Check {
        /// TOML config file (else WAPULSE_CONFIG); gives data_dir.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Write the journal as NDJSON events that `POST /v1/events` accepts.
    Export {
        /// TOML config file (else WAPULSE_CONFIG); gives data_dir.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Only this session.
        #[arg(long)]
        session: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Copy the whole store to a new file, consistent as of one commit,
    /// while the service runs and writes; the copy is checked like `store
    /// check`. Never overwrites a file.
    Backup {
        /// The backup file to write (must not exist).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// TOML config file (else WAPULSE_CONFIG); gives data_dir.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Put a backup in place as the store of an empty data directory
    /// (refused for a directory that holds anything, such as a running
    /// wapulse's store). Start wapulse on that directory afterwards.
    Restore {
        /// The backup file (from `wapulse store backup`).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The empty (or new) data directory to restore into.
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
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

/// What `store check`, `backup` and `restore` say of a store.
fn print_inspection(what: &str, report: &sqlite::Inspection) {
    println!("{what}: {}", report.path);
    println!("schema version: {}", report.schema_version);
    match report.seq_range {
        Some((lo, hi)) => println!(
            "journal: {} events (seq {lo}..{hi}), {} sessions",
            report.journal_events, report.sessions
        ),
        None => println!("journal: empty"),
    }
    for (seq, taken, bytes) in &report.snapshots {
        println!("snapshot: seq {seq}, taken {taken}, {bytes} bytes");
    }
}

fn main() -> ExitCode {
    tune_allocator();
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

/// The runtime that answers requests: its threads at `read_priority`.
fn serving_runtime(settings: &Settings) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if settings.read_priority == ReadPriority::Realtime {
        let governor = Governor::install(settings.read_realtime_budget);
        // Workers take their priority at a checkpoint: every request (in
        // serve.rs), park and wake-up.
        builder
            .on_thread_start(reads::thread_started)
            .on_thread_stop(move || governor.thread_stopped())
            .on_thread_park(reads::checkpoint)
            .on_thread_unpark(reads::checkpoint);
    }
    builder.build().context("cannot start the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => {
            let settings = load(config)?;
            telemetry::init_logging(&settings.log_filter, settings.log_format);
            serving_runtime(&settings)?.block_on(async {
                let app = Application::build(settings).await?;
                app.run_until(shutdown_signal()).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { config, sessions } => {
            let mut settings = load(config)?;
            // The demo's simulated fleet never touches the real data
            // directory: it journals into a temporary one, removed at exit.
            let scratch = tempfile::Builder::new()
                .prefix("wapulse-demo-")
                .tempdir()
                .context("cannot create a temporary data directory for the demo")?;
            settings.data_dir = scratch.path().to_path_buf();
            settings.durability = wapulse::store::Durability::Process;
            if settings.alerting.receivers.is_empty() {
                settings.alerting = wapulse::alerting::config::AlertingSettings::demo();
            }
            telemetry::init_logging(&settings.log_filter, settings.log_format);
            serving_runtime(&settings)?.block_on(async {
                let app = Application::build(settings).await?;
                let addr = app.local_addr();
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let state = app.state();
                // Through the front door: the service's own ingest API on
                // loopback, as a gateway would post.
                let loopback = match addr.ip() {
                    std::net::IpAddr::V6(_) => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                    std::net::IpAddr::V4(_) => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                };
                let door = demo::FrontDoor {
                    url: format!(
                        "http://{}/v1/events",
                        std::net::SocketAddr::new(loopback, addr.port())
                    ),
                    token: state.settings.ingest_token.clone(),
                    max_batch: state.settings.max_batch_events.min(5_000),
                };
                let sim = tokio::spawn(demo::run(
                    door,
                    state.settings.default_session.clone(),
                    sessions as usize,
                    stopped,
                ));
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
                Ok(rt) => rt.block_on(nagios::run(&url, timeout)),
                Err(e) => (nagios::Verdict::Unknown, format!("WAPULSE UNKNOWN - {e:#}")),
            };
            println!("{line}");
            Ok(ExitCode::from(verdict.code() as u8))
        }
        Command::Store {
            command: StoreCommand::Check { config },
        } => {
            let settings = load(config)?;
            let report = sqlite::inspect(&settings.data_dir, model::codec::validate)?;
            print_inspection("store", &report);
            if report.problems.is_empty() {
                println!("ok");
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &report.problems {
                    println!("problem: {p}");
                }
                Ok(ExitCode::from(1))
            }
        }
        Command::Store {
            command:
                StoreCommand::Export {
                    config,
                    session,
                    output,
                },
        } => {
            let settings = load(config)?;
            let session = session
                .map(|s| SessionId::parse(&s).with_context(|| format!("--session `{s}`")))
                .transpose()?;
            let count = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("--output {}", path.display()))?;
                    let mut w = std::io::BufWriter::new(file);
                    sqlite::export(&settings.data_dir, session.as_ref(), &mut w)?
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    sqlite::export(&settings.data_dir, session.as_ref(), &mut w)?
                }
            };
            eprintln!("exported {count} events");
            Ok(ExitCode::SUCCESS)
        }
        Command::Store {
            command: StoreCommand::Backup { file, config },
        } => {
            let settings = load(config)?;
            let report =
                wapulse::store::backup::backup(&settings.data_dir, &file, model::codec::validate)?;
            print_inspection("backup", &report);
            Ok(ExitCode::SUCCESS)
        }
        Command::Store {
            command: StoreCommand::Restore { file, data_dir },
        } => {
            let report = wapulse::store::backup::restore(&file, &data_dir, model::codec::validate)?;
            print_inspection("restored", &report);
            println!(
                "start wapulse with data_dir = {} (WAPULSE_DATA_DIR); in cluster mode it then \
                 catches up from the stream",
                data_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Beat {
            redis,
            key,
            every,
            ttl,
            once,
            log_level,
        } => {
            let filter = wapulse::config::log_filter(&log_level)?;
            let format = match std::env::var("LOG_FORMAT") {
                Ok(f) if !f.is_empty() => telemetry::LogFormat::parse(&f)
                    .map_err(|e| anyhow::anyhow!("LOG_FORMAT: {e}"))?,
                _ => telemetry::LogFormat::Text,
            };
            telemetry::init_logging(&filter, format);
            let opts = beat::BeatOptions {
                redis_url: redis,
                key,
                every,
                ttl,
                once,
            };
            runtime()?.block_on(beat::run(opts, shutdown_signal()))?;
            Ok(ExitCode::SUCCESS)
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
