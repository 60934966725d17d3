//! `george`: the operator's command.
//!
//! ```text
//! george validate [PATH] [--format text|json]   validate a repository's manifests offline
//! george schema [KIND]                          print the JSON Schema of a kind (or all)
//! ```
//!
//! Exit codes: 0 success; 1 the manifests are invalid; 2 a usage or I/O error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod schema;
mod validate;

/// The exit code for invalid manifests.
const EXIT_INVALID: u8 = 1;
/// The exit code for a usage or I/O error.
const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "george",
    version,
    about = "Operate George: GitOps for LLM-agent work"
)]
struct Cli {
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
}

/// How `validate` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line per problem, for people and editors.
    Text,
    /// One JSON document, for CI.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { path, format } => validate::run(&path, format),
        Command::Schema { kind } => schema::run(kind.as_deref()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("george: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
