//! Splitting extracted text into overlapping chunks of about `chunk_size` characters at
//! semantic boundaries (text-splitter), Markdown-aware for Markdown and HTML-derived text.
//!
//! The sections are joined and split as one text, so a chunk can span pages; the byte
//! offsets the splitter reports are mapped back to sections to give each chunk the range
//! of PDF pages it came from.

use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};

use super::extract::ExtractedText;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub ordinal: i32,
    pub text: String,
    pub page_start: Option<i32>,
    pub page_end: Option<i32>,
}

/// A blank line, so the splitter sees a section boundary as a paragraph boundary.
const SECTION_SEPARATOR: &str = "\n\n";

/// Where one section lies in the joined text.
struct Span {
    start: usize,
    page: Option<u32>,
}

pub fn chunk(doc: &ExtractedText, chunk_size: usize, chunk_overlap: usize) -> Vec<Chunk> {
    let mut text = String::new();
    let mut spans = Vec::with_capacity(doc.sections.len());
    for section in &doc.sections {
        if !text.is_empty() {
            text.push_str(SECTION_SEPARATOR);
        }
        spans.push(Span { start: text.len(), page: section.page });
        text.push_str(&section.text);
    }

    let capacity = chunk_size.max(1);
    // The configuration is validated (overlap < size); fall back to no overlap rather than fail.
    let config = ChunkConfig::new(capacity).with_overlap(chunk_overlap).unwrap_or_else(|_| ChunkConfig::new(capacity));
    let pieces: Vec<(usize, &str)> = if doc.markdown {
        MarkdownSplitter::new(config).chunk_indices(&text).collect()
    } else {
        TextSplitter::new(config).chunk_indices(&text).collect()
    };

    let page_at = |offset: usize| -> Option<i32> {
        let index = spans.partition_point(|span| span.start <= offset).checked_sub(1)?;
        spans[index].page.and_then(|page| i32::try_from(page).ok())
    };
    pieces
        .into_iter()
        .filter(|(_, piece)| !piece.trim().is_empty())
        .enumerate()
        .map(|(ordinal, (offset, piece))| Chunk {
            ordinal: ordinal as i32,
            text: piece.to_string(),
            page_start: page_at(offset),
            page_end: page_at(offset + piece.len().saturating_sub(1)),
        })
        .collect()
}
