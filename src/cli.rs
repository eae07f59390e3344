//! The command line: `serve`, `migrate`, `token`, and the hidden `extract` that the
//! workers start for each document.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::{self, Role};
use crate::auth::{parse_ttl, Role as TokenRole, TokenKeys};
use crate::config::Config;
use crate::db::Db;
use crate::processing::extract::ExtractOptions;
use crate::processing::extractor;
use crate::processing::extractor::command_line::ExtractArgs;

#[derive(Parser)]
#[command(
    name = "docqueue",
    version,
    about = "Non-blocking document processing: upload, queue, process, push progress."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API and/or the worker pool.
    Serve {
        /// all = HTTP + workers; api = HTTP only; worker = workers only.
        #[arg(long, value_enum, default_value = "all")]
        role: Role,
        /// A TOML file read instead of config/local.toml.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Apply database migrations (and backfill rows that predate the queue), then exit.
    Migrate {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print a signed bearer token for the configured auth.jwt_secret.
    Token {
        /// The user id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// Give the token the admin role.
        #[arg(long)]
        admin: bool,
        /// Lifetime: 90s, 30m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        ttl: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the API's OpenAPI 3.1 description (what /api/openapi.json serves).
    Openapi,
    /// Read one request line and document from stdin, write its text to stdout as
    /// JSON-line frames. Started by the workers, under kernel limits, for every document
    /// when docqueue-extract, which does the same and starts faster, is not installed.
    #[command(hide = true)]
    Extract(ExtractArgs),
}

pub fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Extract(args) => return extractor::run_child(&ExtractOptions::from(args)),
        Command::Serve { role, config } => serve(role, config),
        Command::Migrate { config } => migrate(config),
        Command::Token { user, admin, ttl, config } => token(&user, admin, &ttl, config),
        Command::Openapi => {
            println!("{}", crate::web::openapi::document());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("docqueue: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load(config: Option<PathBuf>) -> Result<Config, String> {
    Config::load(config.as_deref()).map_err(|e| e.to_string())
}

fn serve(role: Role, config: Option<PathBuf>) -> Result<(), String> {
    let config = load(config)?;
    limit_malloc_arenas();
    actix_web::rt::System::new().block_on(async move {
        let running = app::start(config, role).await.map_err(|e| e.to_string())?;
        wait_for_stop_signal().await;
        log::info!("stopping: no new jobs are claimed; running jobs get the shutdown grace period");
        running.shutdown().await;
        log::info!("stopped");
        Ok(())
    })
}

/// glibc gives each thread that allocates concurrently an arena of its own, up to eight
/// per core, and keeps what each arena freed: a burst of parallel searches left the
/// server tens of megabytes larger. One arena per core keeps that in bounds (measured
/// by `scripts/bench.sh search`). MALLOC_ARENA_MAX set by an operator wins.
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, cores as libc::c_int);
    }
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn migrate(config: Option<PathBuf>) -> Result<(), String> {
    let config = load(config)?;
    let db = Db::connect(&config.database).map_err(|e| e.to_string())?;
    let applied = db.migrate().map_err(|e| e.to_string())?;
    println!("migrations applied: {applied} ({})", db.backend_name().map_err(|e| e.to_string())?);
    Ok(())
}

fn token(user: &str, admin: bool, ttl: &str, config: Option<PathBuf>) -> Result<(), String> {
    let config = load(config)?;
    if config.auth.jwt_secret.is_empty() {
        return Err("auth.jwt_secret is not set (DOCQUEUE_AUTH__JWT_SECRET); a development-mode server \
                    logs its own demo tokens at start-up"
            .into());
    }
    let ttl = parse_ttl(ttl).ok_or_else(|| format!("--ttl `{ttl}`: use e.g. 90s, 30m, 24h, 7d (at most 100 years)"))?;
    if user.trim().is_empty() {
        return Err("--user must not be empty".into());
    }
    let keys = TokenKeys::from_config(&config.auth).map_err(|e| e.to_string())?;
    let role = if admin { TokenRole::Admin } else { TokenRole::User };
    println!("{}", keys.issue(user, role, ttl).map_err(|e| e.to_string())?);
    Ok(())
}
