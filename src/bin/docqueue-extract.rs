//! The extractor process the workers start for uploaded files (see
//! `processing::extractor`): `docqueue-extract extract <limits>` reads one request line
//! and document at a time from stdin and writes its text to stdout as JSON-line frames.
//! It is `docqueue extract` without the server: linking only what reading a document
//! needs, it starts in about a millisecond of CPU instead of six (docqueue loads the
//! libraries of the PostgreSQL client at every start), and every user's first document
//! waits for a start.

use std::process::ExitCode;

use clap::Parser;
use docqueue::processing::extractor::command_line::ExtractorProgram;
use docqueue::processing::extractor::run_child;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    run_child(&ExtractorProgram::parse().limits())
}
