//! The zip-bomb guards that every zip-based format shares (DOCX, XLSX, ODS, PPTX, ODT,
//! EPUB): the entry count is checked before the archive's directory is read, the sizes
//! the parts to be read declare are added up before anything is inflated, and the
//! inflated bytes are counted while reading, because a zip header's declared size can
//! lie. One byte allowance (`max_docx_uncompressed_bytes`) covers the whole document.

use std::borrow::Cow;
use std::io::{BufReader, Cursor, Read};

use quick_xml::events::Event;
use quick_xml::Reader;
use zip::ZipArchive;

use super::{too_many_chars, ExtractError, ExtractOptions};

/// XML events between two polls of the cancellation flag.
const EVENTS_PER_CANCEL_CHECK: usize = 4096;

/// The XML parser buffers one whole element or text node at a time; none may be longer
/// than this, so a part that is one endless text node cannot fill the memory.
const MAX_BYTES_BETWEEN_TAGS: usize = 16 << 20;

/// A zip archive opened under the guards; `format` ("DOCX", "XLSX", …) names the
/// document in every message.
pub(super) struct Archive<'a> {
    bytes: &'a [u8],
    zip: ZipArchive<Cursor<&'a [u8]>>,
    format: &'static str,
    limits: &'a ExtractOptions,
    bytes_left: u64,
}

impl<'a> Archive<'a> {
    pub(super) fn open(
        bytes: &'a [u8],
        format: &'static str,
        limits: &'a ExtractOptions,
    ) -> Result<Self, ExtractError> {
        let too_many = |entries: u64| {
            ExtractError::Permanent(format!(
                "the {format} has {entries} entries, more than allowed (max_docx_entries = {})",
                limits.max_docx_entries
            ))
        };
        // Reading the central directory allocates per entry: count them from the end
        // record first, so 400,000 entries cost nothing.
        if let Some(entries) = declared_entry_count(bytes).filter(|&n| n > limits.max_docx_entries as u64) {
            return Err(too_many(entries));
        }
        let zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| {
            ExtractError::Permanent(format!(
                "the file is not a readable {format} (not a valid zip archive; password-protected documents are not supported): {e}"
            ))
        })?;
        if zip.len() > limits.max_docx_entries {
            return Err(too_many(zip.len() as u64));
        }
        Ok(Archive { bytes, zip, format, limits, bytes_left: limits.max_docx_uncompressed_bytes })
    }

    pub(super) fn names(&self) -> Vec<String> {
        self.zip.file_names().filter_map(Result::ok).map(|name| name.into_owned()).collect()
    }

    pub(super) fn contains(&self, name: &str) -> bool {
        self.zip.index_for_name(name).is_some()
    }

    /// Refuses the document before inflating anything when the parts it will read
    /// declare more bytes together than the allowance.
    pub(super) fn check_declared_sizes(&mut self, names: &[String]) -> Result<(), ExtractError> {
        let mut declared: u64 = 0;
        for name in names {
            let size = self.zip.by_name(name).map(|part| part.size()).unwrap_or(0);
            declared = declared.saturating_add(size);
        }
        if declared > self.limits.max_docx_uncompressed_bytes {
            return Err(too_large(self.format, self.limits));
        }
        Ok(())
    }

    /// Streams one XML part through `on_event`, spending the byte allowance.
    pub(super) fn read_xml(
        &mut self,
        name: &str,
        is_cancelled: &dyn Fn() -> bool,
        on_event: impl FnMut(Event<'_>) -> Result<(), ExtractError>,
    ) -> Result<(), ExtractError> {
        let part = self.zip.by_name(name).map_err(|e| damaged(self.format, name, &e))?;
        walk_xml(part, name, self.format, &mut self.bytes_left, self.limits, is_cancelled, on_event)
    }

    /// Inflates one part whole (EPUB chapters, manifests), spending the byte allowance.
    pub(super) fn read_bytes(&mut self, name: &str) -> Result<Vec<u8>, ExtractError> {
        let part = self.zip.by_name(name).map_err(|e| damaged(self.format, name, &e))?;
        let mut bytes = Vec::new();
        // One byte past the allowance tells "too large" from "exactly at the limit".
        part.take(self.bytes_left.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| damaged(self.format, name, &e))?;
        self.bytes_left =
            self.bytes_left.checked_sub(bytes.len() as u64).ok_or_else(|| too_large(self.format, self.limits))?;
        Ok(bytes)
    }

    /// Inflates the named parts and throws the bytes away: a reader that inflates the
    /// archive on its own (calamine) is handed only an archive proven to stay within the
    /// allowance, whatever its headers declare.
    pub(super) fn check_inflated_sizes(
        &mut self,
        names: &[String],
        is_cancelled: &dyn Fn() -> bool,
    ) -> Result<(), ExtractError> {
        let mut buf = vec![0u8; 64 * 1024];
        for name in names {
            if is_cancelled() {
                return Err(ExtractError::Cancelled);
            }
            let mut part = self.zip.by_name(name).map_err(|e| damaged(self.format, name, &e))?;
            loop {
                let n = part.read(&mut buf).map_err(|e| damaged(self.format, name, &e))?;
                if n == 0 {
                    break;
                }
                self.bytes_left =
                    self.bytes_left.checked_sub(n as u64).ok_or_else(|| too_large(self.format, self.limits))?;
            }
        }
        Ok(())
    }

    /// The bytes the archive was opened on, for a reader that takes the whole archive.
    pub(super) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

fn damaged(format: &str, name: &str, error: &dyn std::fmt::Display) -> ExtractError {
    ExtractError::Permanent(format!("the {format} is damaged: {name}: {error}"))
}

fn too_large(format: &str, limits: &ExtractOptions) -> ExtractError {
    ExtractError::Permanent(format!(
        "the {format} expands beyond the decompressed size limit (max_docx_uncompressed_bytes = {})",
        limits.max_docx_uncompressed_bytes
    ))
}

/// Streams XML from `part` through `on_event`, inflating at most `bytes_left` bytes
/// (what is left of it is written back), polling `is_cancelled` as it goes.
pub(super) fn walk_xml(
    part: impl Read,
    name: &str,
    format: &str,
    bytes_left: &mut u64,
    limits: &ExtractOptions,
    is_cancelled: &dyn Fn() -> bool,
    mut on_event: impl FnMut(Event<'_>) -> Result<(), ExtractError>,
) -> Result<(), ExtractError> {
    let counting = CountingReader::new(part, *bytes_left);
    let mut reader = Reader::from_reader(BufReader::new(counting));
    let mut buf = Vec::new();
    let mut events = 0usize;
    loop {
        events += 1;
        if events % EVENTS_PER_CANCEL_CHECK == 0 && is_cancelled() {
            return Err(ExtractError::Cancelled);
        }
        let event = match reader.read_event_into(&mut buf) {
            Ok(Event::Eof) => break,
            Ok(event) => event,
            Err(e) => {
                return Err(match reader.get_ref().get_ref().stopped {
                    Some(Stop::SizeLimit) => too_large(format, limits),
                    Some(Stop::TextWithoutMarkup) => ExtractError::Permanent(format!(
                        "the {format} is damaged: {name} has over {} MiB of text without any markup",
                        MAX_BYTES_BETWEEN_TAGS >> 20
                    )),
                    None => damaged(format, name, &e),
                })
            }
        };
        on_event(event)?;
        buf.clear();
    }
    *bytes_left = reader.get_ref().get_ref().bytes_left;
    Ok(())
}

/// The text an XML event carries: character data, and character or predefined entity
/// references (which quick-xml reports apart from the text around them).
pub(super) fn event_text<'e>(event: &'e Event<'_>) -> Option<Cow<'e, str>> {
    match event {
        Event::Text(e) => Some(e.xml10_content()),
        Event::CData(e) => Some(e.xml10_content()),
        Event::GeneralRef(e) => match e.resolve_char_ref() {
            Ok(Some(c)) => Some(Cow::Owned(c.to_string())),
            _ => quick_xml::escape::resolve_predefined_entity(e).map(Cow::Borrowed),
        },
        _ => None,
    }
}

/// What is left of a document's character allowance, shared by all its parts.
pub(super) struct CharBudget<'l> {
    left: usize,
    limits: &'l ExtractOptions,
}

impl<'l> CharBudget<'l> {
    pub(super) fn new(limits: &'l ExtractOptions) -> Self {
        CharBudget { left: limits.max_chars, limits }
    }

    /// Appends document text, failing the document once the allowance is spent.
    pub(super) fn append(&mut self, text: &mut String, addition: &str) -> Result<(), ExtractError> {
        self.left = self.left.checked_sub(addition.chars().count()).ok_or_else(|| too_many_chars(self.limits))?;
        text.push_str(addition);
        Ok(())
    }
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

/// The names of the entries `prefix` + a number + `suffix` ("ppt/slides/slide7.xml"),
/// in numeric order (2 before 10).
pub(super) fn numbered(names: &[String], prefix: &str, suffix: &str) -> Vec<String> {
    let mut found: Vec<(u64, String)> = names
        .iter()
        .filter_map(|name| {
            let number = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
            Some((number.parse().ok()?, name.clone()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, name)| name).collect()
}

/// `href` (relative to the part `base`, as in relationships and EPUB manifests) as an
/// entry name: percent-escapes decoded, `.` and `..` resolved, any fragment dropped.
/// None when it climbs out of the archive.
pub(super) fn resolve(base: &str, href: &str) -> Option<String> {
    let href = href.split('#').next().unwrap_or_default();
    let href = percent_decode(href);
    let mut parts: Vec<&str> = match href.strip_prefix('/') {
        Some(_) => Vec::new(),
        None => base.rsplit_once('/').map(|(dir, _)| dir.split('/').collect()).unwrap_or_default(),
    };
    for segment in href.trim_start_matches('/').split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            segment => parts.push(segment),
        }
    }
    Some(parts.join("/"))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of the attribute whose local name is `local` ("r:id" and "id" both match
/// "id" when `local` is "id"), unescaped.
pub(super) fn attribute(element: &quick_xml::events::BytesStart<'_>, local: &str) -> Option<String> {
    element
        .attributes()
        .filter_map(Result::ok)
        .find(|a| a.key.local_name().as_ref() == local)
        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(Cow::into_owned))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::{numbered, resolve, CountingReader, Stop};

    #[test]
    fn counting_reader_fails_once_the_budget_is_spent_whatever_the_header_said() {
        let mut reader = CountingReader::new(&b"<w:t>0123456789</w:t>"[..], 16);
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).unwrap(), 8);
        assert_eq!(reader.read(&mut buf).unwrap(), 8);
        assert!(reader.read(&mut buf).is_err());
        assert_eq!(reader.stopped, Some(Stop::SizeLimit));
    }

    #[test]
    fn relative_references_resolve_inside_the_archive_only() {
        assert_eq!(
            resolve("ppt/slides/slide1.xml", "../notesSlides/notesSlide1.xml").as_deref(),
            Some("ppt/notesSlides/notesSlide1.xml")
        );
        assert_eq!(resolve("OEBPS/content.opf", "text/ch%201.xhtml#top").as_deref(), Some("OEBPS/text/ch 1.xhtml"));
        assert_eq!(resolve("content.opf", "/abs.xhtml").as_deref(), Some("abs.xhtml"));
        assert_eq!(resolve("content.opf", "../../etc/passwd"), None);
    }

    #[test]
    fn numbered_entries_sort_by_number() {
        let names: Vec<String> = [
            "ppt/slides/slide10.xml",
            "ppt/slides/slide2.xml",
            "ppt/slides/_rels/slide2.xml.rels",
            "ppt/slides/slideX.xml",
        ]
        .map(String::from)
        .into();
        assert_eq!(numbered(&names, "ppt/slides/slide", ".xml"), ["ppt/slides/slide2.xml", "ppt/slides/slide10.xml"]);
    }
}
