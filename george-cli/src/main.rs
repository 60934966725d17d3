//! `george`: the operator's command.
//!
//! ```text
//! george validate [PATH] [--format text|json]   validate a repository's manifests offline
//! george schema [KIND]                          print the JSON Schema of a kind (or all)
//! george serve --config george.toml             run an engine and its HTTP API
//! george jobs | describe job NAME | logs NAME [-f] | approvals [--all]
//! george show approval ID | approve ID [--note] | reject ID --reason R
//! george cancel NAME | retry NAME               client commands (GEORGE_URL, GEORGE_TOKEN)
//! ```
//!
//! Exit codes: 0 success; 1 the manifests are invalid (`validate`); 2 a usage, I/O or
//! configuration error; 3 the server refused (401, 403, 404, 409, 422); 4 the server
//! cannot be reached or failed (5xx).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod client;
mod config;
mod ops;
mod schema;
mod serve;
mod validate;

use ops::Output;

/// The process's allocator: mimalloc unless built without the `mimalloc` feature.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The exit code for invalid manifests.
const EXIT_INVALID: u8 = 1;
/// The exit code for a usage, I/O or configuration error.
const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "george",
    version,
    about = "Operate George: GitOps for LLM-agent work"
)]
struct Cli {
    /// The server's base URL (client commands).
    #[arg(
        long,
        global = true,
        env = "GEORGE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// A bearer token (client commands).
    #[arg(long, global = true, env = "GEORGE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Output of client commands.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validates the manifests of a repository's working tree (agent-specs/,
    /// task-templates/, jobs/) with the engine's own loader; prints one
    /// `file:line:column: field: message` line per problem and exits 1 when there is any.
    Validate {
        /// The repository's root folder.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Prints the JSON Schema of a kind's manifests (all kinds, by name, when none is
    /// given), for editors and CI.
    Schema {
        /// `AgentSpec`, `TaskTemplate` or `Job`.
        kind: Option<String>,
    },
    /// Runs an engine and its HTTP API from an operator configuration file; stops
    /// cleanly on SIGTERM or Ctrl-C.
    Serve {
        /// The configuration (TOML).
        #[arg(long, default_value = "george.toml")]
        config: PathBuf,
    },
    /// Lists jobs.
    Jobs {
        /// Only jobs with this status (e.g. `running`, `awaiting_approval`).
        #[arg(long)]
        status: Option<String>,
        /// Only jobs of this template.
        #[arg(long)]
        template: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<String>,
    },
    /// Shows one object.
    Describe {
        #[command(subcommand)]
        what: Describe,
    },
    /// Prints a job's event log; `-f` follows it until the job finishes.
    Logs {
        /// The job.
        name: String,
        /// Follow.
        #[arg(short, long)]
        follow: bool,
    },
    /// Lists open approval requests (`--all`: every request).
    Approvals {
        /// Every request, decided ones too.
        #[arg(long)]
        all: bool,
    },
    /// Shows one object.
    Show {
        #[command(subcommand)]
        what: Show,
    },
    /// Approves a plan, as the token's identity.
    Approve {
        /// The approval request's id.
        id: String,
        /// A note for the record.
        #[arg(long)]
        note: Option<String>,
    },
    /// Rejects a plan, as the token's identity; the reason goes back to the agent.
    Reject {
        /// The approval request's id.
        id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Cancels a job.
    Cancel {
        /// The job.
        name: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Starts a failed, blocked or cancelled job over.
    Retry {
        /// The job.
        name: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum Describe {
    /// A job: its steps, states and messages.
    Job {
        /// The job.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum Show {
    /// An approval request: the plan's exact actions and its digest.
    Approval {
        /// The request's id.
        id: String,
    },
}

/// How `validate` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line per problem, for people and editors.
    Text,
    /// One JSON document, for CI.
    Json,
}

async fn client_command(cli: Cli) -> Result<(), client::CallError> {
    let c = client::Client::new(cli.server, cli.token)?;
    let out = cli.output;
    match cli.command {
        Command::Jobs {
            status,
            template,
            limit,
        } => {
            let q = [("status", status), ("template", template), ("limit", limit)];
            ops::jobs(&c, &q, out).await
        }
        Command::Describe {
            what: Describe::Job { name },
        } => ops::describe_job(&c, &name, out).await,
        Command::Logs { name, follow } => ops::logs(&c, &name, follow, out).await,
        Command::Approvals { all } => ops::approvals(&c, all, out).await,
        Command::Show {
            what: Show::Approval { id },
        } => ops::show_approval(&c, &id, out).await,
        Command::Approve { id, note } => ops::decide(&c, &id, true, note, out).await,
        Command::Reject { id, reason } => ops::decide(&c, &id, false, Some(reason), out).await,
        Command::Cancel { name, reason } => ops::job_action(&c, &name, "cancel", reason, out).await,
        Command::Retry { name, reason } => ops::job_action(&c, &name, "retry", reason, out).await,
        Command::Validate { .. } | Command::Schema { .. } | Command::Serve { .. } => Ok(()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Validate { path, format } => validate::run(path, *format),
        Command::Schema { kind } => schema::run(kind.as_deref()),
        _ => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("george: tokio runtime: {e}");
                    return ExitCode::from(EXIT_ERROR);
                }
            };
            match cli.command {
                Command::Serve { config } => rt.block_on(serve::run(&config)),
                _ => match rt.block_on(client_command(cli)) {
                    Ok(()) => Ok(0),
                    Err(e) => {
                        eprintln!("george: {}", e.message);
                        return ExitCode::from(e.code);
                    }
                },
            }
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("george: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
