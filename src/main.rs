//! The `failover-orchestrator` command line. No logic lives here: it parses
//! arguments, sets up logging and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use failover_orchestrator::app::{App, AppOptions};
use failover_orchestrator::cli::{OperatorCmd, Target};
use failover_orchestrator::config::{Config, ConfigError};
use failover_orchestrator::{logging, shutdown};
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
        /// Check the file as the orchestrator of this region would load it.
        #[arg(long, env = "FO_REGION")]
        region: Option<String>,
    },
    /// Run the orchestrator.
    Serve {
        /// Path of regions.toml.
        #[arg(short, long, default_value = "regions.toml", env = "FO_CONFIG")]
        config: PathBuf,
        /// The region this orchestrator runs in (replaces `orchestrator.vantage`, so that every
        /// region runs the same file).
        #[arg(long, env = "FO_REGION")]
        region: Option<String>,
    },
    /// Operator commands over the API (status, drill, failover, switchover, failback, maintenance).
    #[command(flatten)]
    Operator(OperatorCmd),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::CheckConfig { file, region } => check_config(&file, region.as_deref()),
        Cmd::Serve { config, region } => {
            logging::init(cli.log_json);
            match serve(&config, region.as_deref()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, error.chain = ?e, "orchestrator failed");
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Operator(cmd) => operator(&cli.target, &cmd).await,
    }
}

#[allow(clippy::print_stdout)]
fn check_config(file: &std::path::Path, region: Option<&str>) -> ExitCode {
    match Config::load_for(file, region) {
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

async fn serve(path: &std::path::Path, region: Option<&str>) -> anyhow::Result<()> {
    let config = Config::load_for(path, region)?;
    match failover_orchestrator::probe::raise_open_files_limit() {
        Ok((soft, hard)) => tracing::debug!(soft, hard, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit; probes may fail with EMFILE"),
    }
    let app = App::build(config, AppOptions::default()).await?;
    let cancel = CancellationToken::new();
    match shutdown::watch_signals(cancel.clone()) {
        Ok(watch) => {
            tokio::spawn(watch);
        }
        Err(e) => tracing::error!(error = %e, "cannot install signal handlers"),
    }
    app.run(cancel).await
}
