//! The extractor's own side: `docqueue extract` reads one request and document from
//! stdin and writes its text to stdout as frames (see `protocol`). It runs under the
//! limits its parent set before exec, holds no connection and no secret, and writes no
//! file. It may be started before its document exists, as a spare.

use std::io::{self, BufWriter, Read, Write};
use std::process::ExitCode;

use super::protocol::{write_extracted, write_frame, Frame, Request, MAX_REQUEST_BYTES};
use crate::processing::extract::{extract, ExtractError, ExtractOptions};

/// Exit status when stdout broke (the parent went away or stopped reading).
const OUTPUT_FAILED: u8 = 3;

pub fn run(limits: &ExtractOptions) -> ExitCode {
    match extract_stdin(limits) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("docqueue extract: {err}");
            ExitCode::from(OUTPUT_FAILED)
        }
    }
}

fn extract_stdin(limits: &ExtractOptions) -> io::Result<()> {
    let mut input = io::stdin().lock();
    let Some(request) = read_request(&mut input)? else {
        // Stdin closed before a request: a spare that was never used.
        return Ok(());
    };
    let content_type = request.content_type.as_str();
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
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
        Err(ExtractError::Cancelled) => {
            write_frame(&mut out, &Frame::Unreadable { reason: ExtractError::Cancelled.to_string() })?;
        }
    }
    out.flush()
}

/// The request line, byte by byte (nothing of the document may be read past it).
fn read_request(input: &mut impl Read) -> io::Result<Option<Request>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if input.read(&mut byte)? == 0 {
            return if line.is_empty() { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
        if line.len() > MAX_REQUEST_BYTES {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request line too long"));
        }
    }
    serde_json::from_slice(&line).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
