//! The extractor process the workers start for uploaded files (see
//! `processing::extractor`): `docqueue-extract extract <limits>` reads one request line
//! and document at a time from stdin and writes its text to stdout as JSON-line frames.
//! It is `docqueue extract` without the server: linking only what reading a document
//! needs, it starts in about a millisecond of CPU instead of six (docqueue loads the
//! libraries of the PostgreSQL client at every start), and every user's first document
//! waits for a start.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use docqueue::processing::extract::ExtractOptions;
use docqueue::processing::extractor::command_line::ExtractArgs;
use docqueue::processing::extractor::run_child;

#[derive(Parser)]
#[command(name = "docqueue-extract", version, about = "Reads uploaded documents for docqueue's workers.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read one request line and document from stdin at a time, write its text to
    /// stdout as JSON-line frames.
    Extract(ExtractArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let Command::Extract(args) = Cli::parse().command;
    run_child(&ExtractOptions::from(args))
}
