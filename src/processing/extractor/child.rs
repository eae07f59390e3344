//! The extractor's own side (`docqueue-extract`, or `docqueue extract`): it reads
//! requests and documents from stdin and writes their text to stdout as frames (see
//! `protocol`), one document after another until stdin closes. It runs under the limits
//! its parent set before exec, holds no connection and no secret, and writes no file. It
//! may be started before its first document exists, as a spare.

use std::cell::RefCell;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::process::ExitCode;

use super::protocol::{write_extracted, write_frame, Frame, Request, MAX_REQUEST_BYTES};
use crate::processing::extract::{extract_reporting_ocr, ExtractError, ExtractOptions, OcrPages};

/// Exit status when stdin or stdout broke (the parent went away or stopped reading).
const OUTPUT_FAILED: u8 = 3;

pub fn run(limits: &ExtractOptions) -> ExitCode {
    let mut input = io::stdin().lock();
    let mut out = BufWriter::new(io::stdout().lock());
    loop {
        match read_request(&mut input) {
            // Stdin closed between documents: the parent is done with this process.
            Ok(None) => return ExitCode::SUCCESS,
            Ok(Some(request)) => {
                if let Err(err) = extract_one(&request, &mut input, &mut out, limits) {
                    eprintln!("extractor: {err}");
                    return ExitCode::from(OUTPUT_FAILED);
                }
            }
            Err(err) => {
                eprintln!("extractor: {err}");
                return ExitCode::from(OUTPUT_FAILED);
            }
        }
    }
}

/// Reads one document of `request.bytes` bytes and answers with its frames.
fn extract_one(
    request: &Request,
    input: &mut impl Read,
    out: &mut impl Write,
    limits: &ExtractOptions,
) -> io::Result<()> {
    let mut bytes = Vec::new();
    input.take(request.bytes).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != request.bytes {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    let progress =
        RefCell::new(ProgressFrames { out: &mut *out, fraction: 0.0, last_sent: -1.0, ocr_pages: None, failed: None });
    let mut on_progress = |fraction: f32| {
        let mut progress = progress.borrow_mut();
        progress.fraction = fraction;
        // Whole percents are all the parent shows; fewer lines, same picture.
        if fraction - progress.last_sent >= 0.01 || fraction >= 1.0 {
            progress.send();
        }
    };
    // Every OCR page is told: each takes seconds.
    let mut on_ocr_pages = |pages: OcrPages| {
        let mut progress = progress.borrow_mut();
        progress.ocr_pages = Some(pages);
        progress.send();
    };
    let result =
        extract_reporting_ocr(&request.content_type, &bytes, limits, &mut on_progress, &mut on_ocr_pages, &|| false);
    if let Some(err) = progress.into_inner().failed {
        return Err(err);
    }
    drop(bytes);
    match result {
        Ok(extracted) => write_extracted(out, &extracted)?,
        Err(ExtractError::Permanent(reason)) => write_frame(out, &Frame::Unreadable { reason })?,
        // Nothing in this process asks for a cancel: the parent cancels by killing it.
        Err(ExtractError::Cancelled) => {
            write_frame(out, &Frame::Unreadable { reason: ExtractError::Cancelled.to_string() })?;
        }
    }
    out.flush()
}

/// The request line; `None` when stdin closed before one began.
fn read_request(input: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = Vec::new();
    input.take(MAX_REQUEST_BYTES as u64 + 1).read_until(b'\n', &mut line)?;
    match line.pop() {
        None => Ok(None),
        Some(b'\n') => {
            serde_json::from_slice(&line).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Some(_) if line.len() >= MAX_REQUEST_BYTES => {
            Err(io::Error::new(io::ErrorKind::InvalidData, "request line too long"))
        }
        Some(_) => Err(io::ErrorKind::UnexpectedEof.into()),
    }
}

/// Progress frames for one document: the fraction and OCR page count last reported,
/// and the first write that failed (the parent went away).
struct ProgressFrames<'a, W: Write> {
    out: &'a mut W,
    fraction: f32,
    last_sent: f32,
    ocr_pages: Option<OcrPages>,
    failed: Option<io::Error>,
}

impl<W: Write> ProgressFrames<'_, W> {
    fn send(&mut self) {
        self.last_sent = self.fraction;
        let frame = Frame::Progress { fraction: self.fraction, ocr_pages: self.ocr_pages };
        if let Err(err) = write_frame(self.out, &frame).and_then(|()| self.out.flush()) {
            self.failed.get_or_insert(err);
        }
    }
}
