//! The extractor's own side: `docqueue extract` reads one document from stdin and
//! writes its text to stdout as frames (see `protocol`). It runs under the limits its
//! parent set before exec, holds no connection and no secret, and writes no file.

use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use super::protocol::{write_extracted, write_frame, Frame};
use crate::processing::extract::{extract, ExtractError, ExtractLimits};

/// Exit status when stdout broke (the parent went away or stopped reading).
const OUTPUT_FAILED: u8 = 3;

pub fn run(content_type: &str, limits: &ExtractLimits) -> ExitCode {
    match extract_stdin(content_type, limits) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("docqueue extract: {err}");
            ExitCode::from(OUTPUT_FAILED)
        }
    }
}

fn extract_stdin(content_type: &str, limits: &ExtractLimits) -> io::Result<()> {
    let mut bytes = Vec::new();
    io::stdin().lock().read_to_end(&mut bytes)?;
    let mut out = BufWriter::new(io::stdout().lock());
    let mut progress_failed = None;
    let mut last_sent = -1.0f32;
    let mut on_progress = |fraction: f32| {
        // Whole percents are all the parent shows; fewer lines, same picture.
        if fraction - last_sent >= 0.01 || fraction >= 1.0 {
            last_sent = fraction;
            let sent = write_frame(&mut out, &Frame::Progress { fraction }).and_then(|()| out.flush());
            if let Err(err) = sent {
                progress_failed.get_or_insert(err);
            }
        }
    };
    let result = extract(content_type, &bytes, limits, &mut on_progress, &|| false);
    if let Some(err) = progress_failed {
        return Err(err);
    }
    drop(bytes);
    match result {
        Ok(extracted) => write_extracted(&mut out, &extracted)?,
        Err(ExtractError::Permanent(reason)) => write_frame(&mut out, &Frame::Unreadable { reason })?,
        // Nothing in this process asks for a cancel: the parent cancels by killing it.
        Err(ExtractError::Cancelled) => write_frame(&mut out, &Frame::Unreadable { reason: "cancelled".into() })?,
    }
    out.flush()
}
