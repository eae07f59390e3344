//! DOCX: the text of the body, tables (cell by cell, row by row), headers, footers,
//! footnotes and hyperlinks, read as a stream from the zip archive.
//!
//! A DOCX is a zip of XML parts, so it can be a zip bomb: the entry count and the
//! declared sizes are checked before anything is inflated, and the inflated bytes are
//! counted while reading, because a zip header's declared size can lie.

use std::io::{BufReader, Cursor, Read};

use quick_xml::events::Event;
use quick_xml::Reader;
use zip::ZipArchive;

use super::{too_many_chars, ExtractError, ExtractOptions, ExtractedText, Section};

/// XML events between two polls of the cancellation flag.
const EVENTS_PER_CANCEL_CHECK: usize = 4096;

pub(super) fn extract(
    bytes: &[u8],
    limits: &ExtractOptions,
    on_progress: &mut dyn FnMut(f32),
    is_cancelled: &dyn Fn() -> bool,
) -> Result<ExtractedText, ExtractError> {
    // Reading the central directory allocates per entry: count them from the end
    // record first, so 400,000 entries cost nothing.
    if let Some(entries) = declared_entry_count(bytes).filter(|&n| n > limits.max_docx_entries as u64) {
        return Err(ExtractError::Permanent(format!(
            "the DOCX has {entries} entries, more than allowed (max_docx_entries = {})",
            limits.max_docx_entries
        )));
    }
    let mut archive = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
        ExtractError::Permanent(format!(
            "the file is not a readable DOCX (not a valid zip archive; password-protected documents are not supported): {e}"
        ))
    })?;
    if archive.len() > limits.max_docx_entries {
        return Err(ExtractError::Permanent(format!(
            "the DOCX has {} entries, more than allowed (max_docx_entries = {})",
            archive.len(),
            limits.max_docx_entries
        )));
    }
    let parts = text_parts(&archive);
    if !parts.iter().any(|name| name == "word/document.xml") {
        return Err(ExtractError::Permanent("the file is not a Word document: it has no word/document.xml".into()));
    }
    let mut declared: u64 = 0;
    for name in &parts {
        let size = archive.by_name(name).map(|part| part.size()).unwrap_or(0);
        declared = declared.saturating_add(size);
    }
    if declared > limits.max_docx_uncompressed_bytes {
        return Err(too_large(limits));
    }

    let mut budget = Budget { bytes_left: limits.max_docx_uncompressed_bytes, chars_left: limits.max_chars };
    let mut sections = Vec::new();
    for (done, name) in parts.iter().enumerate() {
        if is_cancelled() {
            return Err(ExtractError::Cancelled);
        }
        let part =
            archive.by_name(name).map_err(|e| ExtractError::Permanent(format!("the DOCX is damaged: {name}: {e}")))?;
        let text = read_part(part, name, &mut budget, limits, is_cancelled)?;
        sections.push(Section { text: text.trim().to_string(), page: None });
        on_progress((done + 1) as f32 / parts.len() as f32);
    }
    Ok(ExtractedText { sections, markdown: false, pages: None })
}

/// The entry count a zip's end-of-central-directory record declares (ZIP64 too), or
/// None when there is no such record (the zip reader then says what is wrong).
fn declared_entry_count(bytes: &[u8]) -> Option<u64> {
    const END: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    const ZIP64_LOCATOR: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
    const ZIP64_END: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
    let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])));
    let u64_at = |at: usize| bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    // The record is 22 bytes plus a comment of at most 65,535.
    let search_from = bytes.len().saturating_sub(22 + 65_535);
    let end = search_from + bytes[search_from..].windows(4).rposition(|w| w == END)?;
    let entries = u16_at(end + 10)?;
    if entries != 0xFFFF {
        return Some(entries);
    }
    let locator = end.checked_sub(20)?;
    if bytes.get(locator..locator + 4)? != ZIP64_LOCATOR {
        return Some(entries);
    }
    let zip64_end = usize::try_from(u64_at(locator + 8)?).ok()?;
    if bytes.get(zip64_end..zip64_end + 4)? != ZIP64_END {
        return Some(entries);
    }
    u64_at(zip64_end + 32)
}

/// The parts that hold text, in reading order: headers, body, notes, footers.
fn text_parts(archive: &ZipArchive<Cursor<&[u8]>>) -> Vec<String> {
    let numbered = |prefix: &str| {
        let mut names: Vec<String> = archive
            .file_names()
            .filter_map(Result::ok)
            .filter(|name| {
                name.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix(".xml"))
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
            })
            .map(|name| name.into_owned())
            .collect();
        // header2 before header10
        names.sort_by_key(|name| (name.len(), name.clone()));
        names
    };
    let present = |name: &str| archive.file_names().filter_map(Result::ok).any(|n| n == name);
    let mut parts = numbered("word/header");
    parts.extend(
        ["word/document.xml", "word/footnotes.xml", "word/endnotes.xml"]
            .into_iter()
            .filter(|name| present(name))
            .map(String::from),
    );
    parts.extend(numbered("word/footer"));
    parts
}

fn too_large(limits: &ExtractOptions) -> ExtractError {
    ExtractError::Permanent(format!(
        "the DOCX expands beyond the decompressed size limit (max_docx_uncompressed_bytes = {})",
        limits.max_docx_uncompressed_bytes
    ))
}

/// What is left of the document's allowances, shared by all its parts.
struct Budget {
    bytes_left: u64,
    chars_left: usize,
}

/// The XML parser buffers one whole element or text node at a time; none may be longer
/// than this, so a part that is one endless text node cannot fill the memory.
const MAX_BYTES_BETWEEN_TAGS: usize = 16 << 20;

/// Why [`CountingReader`] stopped the inflating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    SizeLimit,
    TextWithoutMarkup,
}

/// Counts bytes as they are inflated and fails once the budget is spent or the bytes
/// stop looking like markup.
struct CountingReader<R> {
    inner: R,
    bytes_left: u64,
    bytes_since_tag: usize,
    stopped: Option<Stop>,
}

impl<R> CountingReader<R> {
    fn new(inner: R, bytes_left: u64) -> Self {
        CountingReader { inner, bytes_left, bytes_since_tag: 0, stopped: None }
    }
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_since_tag = match buf[..n].iter().rposition(|&b| b == b'<') {
            Some(last_tag) => n - last_tag - 1,
            None => self.bytes_since_tag.saturating_add(n),
        };
        let stop = match self.bytes_left.checked_sub(n as u64) {
            None => Some(Stop::SizeLimit),
            Some(_) if self.bytes_since_tag > MAX_BYTES_BETWEEN_TAGS => Some(Stop::TextWithoutMarkup),
            Some(left) => {
                self.bytes_left = left;
                None
            }
        };
        match stop {
            None => Ok(n),
            Some(stop) => {
                self.stopped = Some(stop);
                Err(std::io::Error::other(format!("{stop:?}")))
            }
        }
    }
}

/// Reads one XML part into text. Only `w:t` runs are text (field codes, deleted text and
/// the fallback copies of drawings are not); paragraphs end with a blank line, table
/// cells are joined with " | " and rows end with a newline.
fn read_part(
    part: impl Read,
    name: &str,
    budget: &mut Budget,
    limits: &ExtractOptions,
    is_cancelled: &dyn Fn() -> bool,
) -> Result<String, ExtractError> {
    let counting = CountingReader::new(part, budget.bytes_left);
    let mut reader = Reader::from_reader(BufReader::new(counting));
    let mut buf = Vec::new();
    let mut text = String::new();
    let mut state = PartState::default();
    let mut events = 0usize;
    loop {
        events += 1;
        if events % EVENTS_PER_CANCEL_CHECK == 0 && is_cancelled() {
            return Err(ExtractError::Cancelled);
        }
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(e) => {
                return Err(match reader.get_ref().get_ref().stopped {
                    Some(Stop::SizeLimit) => too_large(limits),
                    Some(Stop::TextWithoutMarkup) => ExtractError::Permanent(format!(
                        "the DOCX is damaged: {name} has over {} MiB of text without any markup",
                        MAX_BYTES_BETWEEN_TAGS >> 20
                    )),
                    None => ExtractError::Permanent(format!("the DOCX is damaged: {name}: {e}")),
                })
            }
        };
        match event {
            Event::Eof => break,
            Event::Start(e) => state.open(e.local_name().as_ref(), &mut text),
            Event::Empty(e) => {
                let local = e.local_name();
                state.open(local.as_ref(), &mut text);
                state.close(local.as_ref(), &mut text);
            }
            Event::End(e) => state.close(e.local_name().as_ref(), &mut text),
            Event::Text(e) if state.in_text() => append(&mut text, &e.xml10_content(), budget, limits)?,
            Event::GeneralRef(e) if state.in_text() => {
                if let Ok(Some(c)) = e.resolve_char_ref() {
                    append(&mut text, c.encode_utf8(&mut [0; 4]), budget, limits)?;
                } else if let Some(resolved) = quick_xml::escape::resolve_predefined_entity(&e) {
                    append(&mut text, resolved, budget, limits)?;
                }
            }
            _ => {}
        }
        buf.clear();
    }
    budget.bytes_left = reader.get_ref().get_ref().bytes_left;
    Ok(text)
}

/// Appends document text, spending the character allowance.
fn append(text: &mut String, addition: &str, budget: &mut Budget, limits: &ExtractOptions) -> Result<(), ExtractError> {
    budget.chars_left =
        budget.chars_left.checked_sub(addition.chars().count()).ok_or_else(|| too_many_chars(limits))?;
    text.push_str(addition);
    Ok(())
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
    use std::io::Read;

    use super::{read_part, Budget, CountingReader, Stop};
    use crate::processing::extract::ExtractOptions;

    fn text_of(xml: &str) -> String {
        let limits = ExtractOptions {
            pdftotext: None,
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
        let mut budget = Budget { bytes_left: 1 << 20, chars_left: 1000 };
        read_part(xml.as_bytes(), "word/document.xml", &mut budget, &limits, &|| false).expect("reads")
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

    #[test]
    fn counting_reader_fails_once_the_budget_is_spent_whatever_the_header_said() {
        let mut reader = CountingReader::new(&b"<w:t>0123456789</w:t>"[..], 16);
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).unwrap(), 8);
        assert_eq!(reader.read(&mut buf).unwrap(), 8);
        assert!(reader.read(&mut buf).is_err());
        assert_eq!(reader.stopped, Some(Stop::SizeLimit));
    }
}
