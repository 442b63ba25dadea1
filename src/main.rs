//! The `failover-orchestrator` command line. No logic lives here: it parses
//! arguments, sets up logging and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use failover_orchestrator::app::{App, AppOptions};
use failover_orchestrator::cli::{OperatorCmd, Target};
use failover_orchestrator::config::{Config, ConfigError};
use failover_orchestrator::shutdown;
use tokio_util::sync::CancellationToken;

/// Keeps a multi-region, active-active service serving when a region fails.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "FO_LOG_JSON")]
    log_json: bool,
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Validate a configuration file and print a summary (exit 2 when invalid).
    CheckConfig {
        /// Path of regions.toml.
        #[arg(default_value = "regions.toml")]
        file: PathBuf,
    },
    /// Run the orchestrator.
    Serve {
        /// Path of regions.toml.
        #[arg(short, long, default_value = "regions.toml", env = "FO_CONFIG")]
        config: PathBuf,
    },
    /// Start the local three-region lab (PostgreSQL with streaming replication, apps, PowerDNS, orchestrator).
    Lab(failover_orchestrator::lab::cli::LabArgs),
    /// Operator commands over the API (status, drill, failover, switchover, failback, maintenance).
    #[command(flatten)]
    Operator(OperatorCmd),
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::CheckConfig { file } => check_config(&file),
        Cmd::Serve { config } => {
            init_logging(cli.log_json);
            match serve(&config).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, error.chain = ?e, "orchestrator failed");
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Operator(cmd) => operator(&cli.target, &cmd).await,
        Cmd::Lab(args) => {
            init_logging(cli.log_json);
            match failover_orchestrator::lab::cli::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("lab failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[allow(clippy::print_stdout)]
fn check_config(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(c) => {
            println!("{}: valid\n{}", file.display(), c.summary());
            ExitCode::SUCCESS
        }
        Err(e @ (ConfigError::Invalid(_) | ConfigError::Parse { .. })) => {
            eprintln!("{}: invalid\n{e}", file.display());
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[allow(clippy::print_stdout)]
async fn operator(target: &Target, cmd: &OperatorCmd) -> ExitCode {
    match failover_orchestrator::cli::run(target, cmd).await {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(path: &std::path::Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    let app = App::build(config, AppOptions::default()).await?;
    let cancel = CancellationToken::new();
    let signals = cancel.clone();
    tokio::spawn(async move {
        if let Err(e) = shutdown::watch_signals(signals).await {
            tracing::error!(error = %e, "cannot install signal handlers");
        }
    });
    app.run(cancel).await
}
