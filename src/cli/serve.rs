//! `vaxpass serve`: the HTTP service (SPEC §7).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::service::{self, AppState, Config};

#[derive(Debug, Args)]
#[command(
    after_long_help = "Examples:\n  vaxpass serve                       # 127.0.0.1:8080, sqlite://vaxpass.db, keys-example/\n  \
    VAXPASS_ADMIN_TOKEN=… vaxpass serve --config /etc/vaxpass.toml --db postgres://vaxpass@db/vaxpass\n\n\
    Configuration: the TOML file, then VAXPASS_LISTEN, VAXPASS_DB, VAXPASS_KEYS, VAXPASS_SECRET,\n\
    VAXPASS_ADMIN_TOKEN, VAXPASS_METRICS_TOKEN, then these flags. Logs are JSON lines on stderr (RUST_LOG filters them)."
)]
pub(super) struct ServeArgs {
    /// TOML configuration file (keys: listen, db, keys, secret, admin_token_sha256,
    /// trust_list_key, trust_list_cert, max_body_bytes, request_timeout_secs,
    /// upload_timeout_secs, header_read_timeout_ms, max_connections, trusted_proxies,
    /// metrics_token_sha256, metrics_listen, …).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Database: sqlite://FILE or postgres://… (default sqlite://vaxpass.db).
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// Starts the service's clock at this time (it then advances), for tests and
    /// demonstrations: verification, tokens, correction requests and reports read it.
    #[arg(long, value_name = "RFC3339", value_parser = super::parse_time, hide = true)]
    at: Option<time::OffsetDateTime>,
}

pub(super) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(args.config.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(db) = args.db {
        config.db = db;
    }
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Some(at) = args.at {
        config.clock = service::Clock::starting_at(at);
    }
    let now = config.clock.now();
    let state = AppState::open(config, now).context("starting the service")?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(service::serve(state)).context("serving")?;
    // Dropping a runtime waits for every blocking task; a photo decode or a store call must
    // not hold the process past the shutdown grace (issue #8: SIGTERM no longer stopped it).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}
