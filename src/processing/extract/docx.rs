//! DOCX: the text of the body, tables (cell by cell, row by row), headers, footers,
//! footnotes and hyperlinks, read as a stream from the zip archive.
//!
//! A DOCX is a zip of XML parts, so it can be a zip bomb: it is read under the guards of
//! [`super::archive`], which every zip-based format shares.

use quick_xml::events::Event;

use super::archive::{event_text, numbered, Archive, CharBudget};
use super::{ExtractError, ExtractOptions, ExtractedText, Section};

pub(super) fn extract(
    bytes: &[u8],
    limits: &ExtractOptions,
    on_progress: &mut dyn FnMut(f32),
    is_cancelled: &dyn Fn() -> bool,
) -> Result<ExtractedText, ExtractError> {
    let mut archive = Archive::open(bytes, "DOCX", limits)?;
    let parts = text_parts(&archive);
    if !parts.iter().any(|name| name == "word/document.xml") {
        return Err(ExtractError::Permanent("the file is not a Word document: it has no word/document.xml".into()));
    }
    archive.check_declared_sizes(&parts)?;

    let mut chars = CharBudget::new(limits);
    let mut sections = Vec::new();
    for (done, name) in parts.iter().enumerate() {
        if is_cancelled() {
            return Err(ExtractError::Cancelled);
        }
        let mut text = String::new();
        let mut state = PartState::default();
        archive.read_xml(name, is_cancelled, |event| state.read(&event, &mut text, &mut chars))?;
        sections.push(Section { text: text.trim().to_string(), page: None });
        on_progress((done + 1) as f32 / parts.len() as f32);
    }
    Ok(ExtractedText { sections, markdown: false, pages: None, warning: None })
}

/// The parts that hold text, in reading order: headers, body, notes, footers.
fn text_parts(archive: &Archive<'_>) -> Vec<String> {
    let names = archive.names();
    let mut parts = numbered(&names, "word/header", ".xml");
    parts.extend(
        ["word/document.xml", "word/footnotes.xml", "word/endnotes.xml"]
            .into_iter()
            .filter(|name| archive.contains(name))
            .map(String::from),
    );
    parts.extend(numbered(&names, "word/footer", ".xml"));
    parts
}

/// Where the reader is in the WordprocessingML tree.
#[derive(Default)]
struct PartState {
    /// Inside `w:t`.
    text_run: bool,
    /// Depth inside `mc:Fallback`, which repeats the content of `mc:Choice` for old readers.
    fallback: usize,
    /// The open table rows, innermost last (tables nest).
    rows: Vec<Row>,
}

/// A table row being read: empty cells are dropped, so a separator goes in front of a
/// cell only once it turns out to hold text.
struct Row {
    start: usize,
    cell_start: usize,
    filled_cells: usize,
}

impl PartState {
    /// Only `w:t` runs are text (field codes, deleted text and the fallback copies of
    /// drawings are not); paragraphs end with a blank line, table cells are joined with
    /// " | " and rows end with a newline.
    fn read(&mut self, event: &Event<'_>, text: &mut String, chars: &mut CharBudget<'_>) -> Result<(), ExtractError> {
        match event {
            Event::Start(e) => self.open(e.local_name().as_ref(), text),
            Event::Empty(e) => {
                let local = e.local_name();
                self.open(local.as_ref(), text);
                self.close(local.as_ref(), text);
            }
            Event::End(e) => self.close(e.local_name().as_ref(), text),
            _ if self.in_text() => {
                if let Some(content) = event_text(event) {
                    chars.append(text, &content)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn in_text(&self) -> bool {
        self.text_run && self.fallback == 0
    }

    fn open(&mut self, element: &str, text: &mut String) {
        if element == "Fallback" {
            self.fallback += 1;
        }
        if self.fallback > 0 {
            return;
        }
        match element {
            "t" => self.text_run = true,
            "tab" => text.push('\t'),
            "br" | "cr" => text.push('\n'),
            "noBreakHyphen" => text.push('-'),
            "tr" => self.rows.push(Row { start: text.len(), cell_start: text.len(), filled_cells: 0 }),
            "tc" => {
                if let Some(row) = self.rows.last_mut() {
                    row.cell_start = text.len();
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, element: &str, text: &mut String) {
        if element == "Fallback" {
            self.fallback = self.fallback.saturating_sub(1);
            return;
        }
        if self.fallback > 0 {
            return;
        }
        match element {
            "t" => self.text_run = false,
            // In a table cell, paragraphs run on: the row is the line.
            "p" if !self.rows.is_empty() => separate_words(text),
            "p" => {
                // Empty paragraphs (spacing) collapse into one blank line.
                trim_end_spaces(text);
                while !text.is_empty() && !text.ends_with("\n\n") {
                    text.push('\n');
                }
            }
            "tc" => {
                if let Some(row) = self.rows.last_mut() {
                    if text.get(row.cell_start..).is_none_or(|cell| cell.trim().is_empty()) {
                        text.truncate(row.cell_start.min(text.len()));
                    } else {
                        trim_end_spaces(text);
                        if row.filled_cells > 0 {
                            text.insert_str(row.cell_start, " | ");
                        }
                        row.filled_cells += 1;
                    }
                }
            }
            "tr" => {
                if let Some(row) = self.rows.pop() {
                    if row.filled_cells == 0 {
                        text.truncate(row.start);
                    } else {
                        trim_end_spaces(text);
                        text.push('\n');
                    }
                }
            }
            "tbl" if !text.ends_with("\n\n") => text.push('\n'),
            _ => {}
        }
    }
}

fn separate_words(text: &mut String) {
    if !text.is_empty() && !text.ends_with(char::is_whitespace) {
        text.push(' ');
    }
}

fn trim_end_spaces(text: &mut String) {
    text.truncate(text.trim_end_matches(' ').len());
}

#[cfg(test)]
mod tests {
    use super::PartState;
    use crate::processing::extract::archive::{walk_xml, CharBudget};
    use crate::processing::extract::ExtractOptions;

    fn text_of(xml: &str) -> String {
        let limits = ExtractOptions {
            pdftotext: None,
            pdftext_helper: None,
            max_pages: 1,
            max_chars: 1000,
            max_docx_uncompressed_bytes: 1 << 20,
            max_docx_entries: 10,
            max_html_depth: 512,
            ocr: ExtractOptions::from(
                &crate::config::Config::from_overrides(serde_json::json!({})).expect("defaults").processing,
            )
            .ocr,
        };
        let (mut text, mut state, mut chars, mut bytes_left) =
            (String::new(), PartState::default(), CharBudget::new(&limits), 1 << 20);
        walk_xml(xml.as_bytes(), "word/document.xml", "DOCX", &mut bytes_left, &limits, &|| false, |event| {
            state.read(&event, &mut text, &mut chars)
        })
        .expect("reads");
        text
    }

    #[test]
    fn entities_tabs_and_breaks_become_text() {
        let xml = "<w:document><w:body><w:p><w:r><w:t>Fish &amp; chips,</w:t><w:tab/><w:t xml:space=\"preserve\"> &#233;t&#xE9;</w:t><w:br/><w:t>next</w:t></w:r></w:p></w:body></w:document>";
        assert_eq!(text_of(xml).trim_end(), "Fish & chips,\t été\nnext");
    }

    #[test]
    fn field_codes_deleted_text_and_fallback_copies_are_not_text() {
        let xml = "<w:document><w:body><w:p>\
            <w:r><w:instrText>HYPERLINK \"https://example.com\"</w:instrText></w:r><w:r><w:t>shown</w:t></w:r>\
            <w:del><w:r><w:delText>deleted</w:delText></w:r></w:del>\
            <mc:AlternateContent><mc:Choice><w:t> once</w:t></mc:Choice><mc:Fallback><w:t> twice</w:t></mc:Fallback></mc:AlternateContent>\
            </w:p></w:body></w:document>";
        assert_eq!(text_of(xml).trim_end(), "shown once");
    }
}
