//! ODT: the paragraphs and headings of an OpenDocument text (`content.xml`), tables
//! cell by cell, read under the zip guards of [`super::archive`].

use quick_xml::events::Event;

use super::archive::{attribute, event_text, Archive, CharBudget};
use super::{ExtractError, ExtractOptions, ExtractedText, Section};

const CONTENT: &str = "content.xml";

/// Spaces one `text:s` may stand for: the count is the file's word, not its size.
const MAX_SPACES: usize = 1024;

pub(super) fn extract(
    bytes: &[u8],
    limits: &ExtractOptions,
    is_cancelled: &dyn Fn() -> bool,
) -> Result<ExtractedText, ExtractError> {
    let mut archive = Archive::open(bytes, "ODT", limits)?;
    if !archive.contains(CONTENT) {
        return Err(ExtractError::Permanent(format!("the file is not an OpenDocument text: it has no {CONTENT}")));
    }
    archive.check_declared_sizes(&[CONTENT.to_string()])?;
    let mut chars = CharBudget::new(limits);
    let mut text = String::new();
    let mut state = OdfText::default();
    archive.read_xml(CONTENT, is_cancelled, |event| state.read(&event, &mut text, &mut chars))?;
    Ok(ExtractedText {
        sections: vec![Section { text: text.trim().to_string(), page: None }],
        markdown: false,
        pages: None,
        warning: None,
    })
}

/// Where the reader is: text counts only inside `text:p` and `text:h`; a note's
/// citation (its number) is not text, its body is.
#[derive(Default)]
struct OdfText {
    paragraphs: usize,
    citations: usize,
}

impl OdfText {
    fn read(&mut self, event: &Event<'_>, text: &mut String, chars: &mut CharBudget<'_>) -> Result<(), ExtractError> {
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "p" | "h" => self.paragraphs += 1,
                "note-citation" => self.citations += 1,
                _ => {}
            },
            Event::Empty(e) if self.paragraphs > 0 => match e.local_name().as_ref() {
                "s" => {
                    let count = attribute(e, "c").and_then(|c| c.parse().ok()).unwrap_or(1usize);
                    chars.append(text, &" ".repeat(count.min(MAX_SPACES)))?;
                }
                "tab" => chars.append(text, "\t")?,
                "line-break" => chars.append(text, "\n")?,
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "p" | "h" => {
                    self.paragraphs = self.paragraphs.saturating_sub(1);
                    // A note's paragraphs sit inside the paragraph that cites it.
                    if self.paragraphs == 0 {
                        text.truncate(text.trim_end_matches(' ').len());
                        while !text.is_empty() && !text.ends_with("\n\n") {
                            text.push('\n');
                        }
                    } else if !text.ends_with(char::is_whitespace) {
                        text.push(' ');
                    }
                }
                "note-citation" => self.citations = self.citations.saturating_sub(1),
                _ => {}
            },
            _ if self.paragraphs > 0 && self.citations == 0 => {
                if let Some(content) = event_text(event) {
                    chars.append(text, &content)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
