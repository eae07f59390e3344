//! The extractor's wire format. On stdin it gets one request line, then exactly
//! `bytes` bytes of the document:
//!
//! ```text
//! {"content_type":"application/pdf","bytes":48213}
//! %PDF-1.7 …
//! ```
//!
//! On stdout it answers in JSON lines, one frame per line:
//!
//! ```text
//! {"type":"progress","fraction":0.25}
//! {"type":"progress","fraction":0.5,"ocr_pages":{"done":1,"total":3}}
//! {"type":"text","page":1,"text":"First page …","continues":false}
//! {"type":"text","page":null,"text":"Long section, first part …","continues":true}
//! {"type":"text","page":null,"text":"… and its end","continues":false}
//! {"type":"done","markdown":false,"pages":1}
//! ```
//!
//! `ocr_pages`, present once OCR has begun, counts the pages it has recognised of those
//! it will. A section longer than [`MAX_TEXT_PER_FRAME`] is sent in several `text` frames, each
//! but the last with `continues: true`, so every line stays short. The last frame is
//! `done`, or `unreadable` with a reason for the user. Anything else (no last frame, a
//! line that is not a frame) means the extractor broke, whatever it printed.
//!
//! After its last frame the extractor waits for the next request; it exits when stdin
//! closes. The parent decides whether a process reads another document (`kept`).

use std::io::{self, Write};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::processing::extract::{ExtractedText, OcrPages, Section};

/// The request line: what the bytes after it are, and how many follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub content_type: String,
    pub bytes: u64,
}

/// Longest request line the extractor reads.
pub const MAX_REQUEST_BYTES: usize = 4096;

/// Bytes of text per `text` frame, at most.
pub const MAX_TEXT_PER_FRAME: usize = 256 * 1024;
/// Longest line the parent reads: one text frame, escaped (six bytes per char at worst).
pub const MAX_FRAME_BYTES: usize = 6 * MAX_TEXT_PER_FRAME + 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    /// Extraction has advanced to this fraction (0–1), and OCR this far.
    Progress {
        fraction: f32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ocr_pages: Option<OcrPages>,
    },
    /// Text of one section (1-based page for PDFs); `continues` joins it with the next.
    Text { page: Option<u32>, text: String, continues: bool },
    /// Extraction finished; every text frame came before this one.
    Done {
        markdown: bool,
        pages: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        warning: Option<String>,
    },
    /// The document cannot be read; the reason is shown to its owner.
    Unreadable { reason: String },
}

/// Writes one frame as a line.
pub fn write_frame(out: &mut impl Write, frame: &Frame) -> io::Result<()> {
    serde_json::to_writer(&mut *out, frame)?;
    out.write_all(b"\n")
}

/// Writes an extraction result as its text frames and the closing `done`.
pub fn write_extracted(out: &mut impl Write, extracted: &ExtractedText) -> io::Result<()> {
    for section in &extracted.sections {
        let mut rest = section.text.as_str();
        loop {
            let mut cut = rest.len().min(MAX_TEXT_PER_FRAME);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            let (piece, after) = rest.split_at(cut);
            let frame = Frame::Text { page: section.page, text: piece.to_string(), continues: !after.is_empty() };
            write_frame(out, &frame)?;
            if after.is_empty() {
                break;
            }
            rest = after;
        }
    }
    write_frame(
        out,
        &Frame::Done { markdown: extracted.markdown, pages: extracted.pages, warning: extracted.warning.clone() },
    )
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a line longer than {MAX_FRAME_BYTES} bytes")]
    TooLong,
    #[error("a line that is not a frame: {0}")]
    Malformed(String),
    #[error("reading its output failed: {0}")]
    Io(#[from] io::Error),
}

/// Reads the next frame; `None` at the end of the output.
pub async fn read_frame(
    input: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
) -> Result<Option<Frame>, FrameError> {
    line.clear();
    loop {
        let available = input.fill_buf().await?;
        if available.is_empty() {
            return if line.is_empty() { Ok(None) } else { Err(FrameError::Malformed("an unterminated line".into())) };
        }
        let (taken, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        line.extend_from_slice(&available[..taken]);
        input.consume(taken);
        if line.len() > MAX_FRAME_BYTES {
            return Err(FrameError::TooLong);
        }
        if complete {
            return serde_json::from_slice(line).map(Some).map_err(|e| FrameError::Malformed(e.to_string()));
        }
    }
}

/// Puts text frames back together into sections, bounding the total by `max_chars`
/// (the extractor enforces it too; this keeps a broken one from filling the server).
pub struct Sections {
    sections: Vec<Section>,
    open: bool,
    bytes: usize,
    max_bytes: usize,
}

impl Sections {
    pub fn new(max_chars: usize) -> Sections {
        Sections { sections: Vec::new(), open: false, bytes: 0, max_bytes: max_chars.saturating_mul(4) }
    }

    /// Adds a text frame; false when the total passed the bound.
    pub fn add(&mut self, page: Option<u32>, text: String, continues: bool) -> bool {
        self.bytes += text.len();
        match self.sections.last_mut() {
            Some(section) if self.open => section.text.push_str(&text),
            _ => self.sections.push(Section { text, page }),
        }
        self.open = continues;
        self.bytes <= self.max_bytes
    }

    pub fn finish(self, markdown: bool, pages: Option<u32>, warning: Option<String>) -> ExtractedText {
        ExtractedText { sections: self.sections, markdown, pages, warning }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames_of(bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
        let mut input = tokio::io::BufReader::new(bytes);
        let (mut line, mut frames) = (Vec::new(), Vec::new());
        while let Some(frame) = read_frame(&mut input, &mut line).await? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[tokio::test]
    async fn a_long_section_is_sent_in_short_frames_and_put_back_together() {
        let text = "é".repeat(MAX_TEXT_PER_FRAME) + "end";
        let extracted = ExtractedText {
            sections: vec![
                Section { text: text.clone(), page: Some(2) },
                Section { text: "next".into(), page: Some(3) },
            ],
            markdown: true,
            pages: Some(3),
            warning: Some("a page was left unread".into()),
        };
        let mut out = Vec::new();
        write_extracted(&mut out, &extracted).unwrap();
        let frames = frames_of(&out).await.unwrap();
        assert_eq!(frames.len(), 5, "three pieces, one more section, done");
        let mut sections = Sections::new(10 * MAX_TEXT_PER_FRAME);
        for frame in frames {
            match frame {
                Frame::Text { page, text, continues } => assert!(sections.add(page, text, continues)),
                Frame::Done { markdown, pages, warning } => {
                    let back = sections.finish(markdown, pages, warning);
                    assert_eq!(back.warning.as_deref(), Some("a page was left unread"));
                    assert_eq!(back.sections.len(), 2);
                    assert_eq!(back.sections[0].text, text);
                    assert_eq!((back.sections[1].page, back.markdown, back.pages), (Some(3), true, Some(3)));
                    return;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("no done frame");
    }

    #[tokio::test]
    async fn an_overlong_line_and_a_line_that_is_no_frame_are_refused() {
        let long = vec![b'x'; MAX_FRAME_BYTES + 10];
        assert!(matches!(frames_of(&long).await, Err(FrameError::TooLong)));
        assert!(matches!(frames_of(b"{\"type\":\"nonsense\"}\n").await, Err(FrameError::Malformed(_))));
        assert!(matches!(frames_of(b"{\"type\":\"done\",\"markdown\":false").await, Err(FrameError::Malformed(_))));
    }

    #[test]
    fn text_beyond_the_bound_is_refused() {
        let mut sections = Sections::new(10);
        assert!(sections.add(None, "a".repeat(40), true));
        assert!(!sections.add(None, "b".into(), false));
    }
}
