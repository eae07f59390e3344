//! Plain text and Markdown: decoding bytes of unknown encoding into text.

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::Encoding;

use super::{ExtractError, ExtractedText, Section};

/// Above this share of control or undecodable characters a file is binary data, not
/// text in some encoding we failed to guess.
const MAX_UNREADABLE_SHARE: f64 = 0.05;

pub(super) fn extract(bytes: &[u8], markdown: bool) -> Result<ExtractedText, ExtractError> {
    let text = decode(bytes)?;
    Ok(ExtractedText { sections: vec![Section { text, page: None }], markdown, pages: None, warning: None })
}

/// Decodes text: UTF-8, UTF-16 with a byte-order mark, or else the legacy encoding
/// (Windows-1252, Latin-1, Shift_JIS, …) that chardetng finds most likely. NUL bytes
/// are dropped; a result that is mostly control characters is rejected as not text.
pub(super) fn decode(bytes: &[u8]) -> Result<String, ExtractError> {
    let mut text = if let Some((encoding, bom_length)) = Encoding::for_bom(bytes) {
        encoding.decode_without_bom_handling(&bytes[bom_length..]).0.into_owned()
    } else if let Ok(utf8) = std::str::from_utf8(bytes) {
        utf8.to_owned()
    } else {
        let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
        detector.feed(bytes, true);
        // UTF-8 stays a candidate: a UTF-8 file with one stray byte is still UTF-8.
        let encoding = detector.guess(None, Utf8Detection::Allow);
        encoding.decode_without_bom_handling(bytes).0.into_owned()
    };
    text.retain(|c| c != '\0');

    let (total, unreadable) = text
        .chars()
        .fold((0usize, 0usize), |(total, unreadable), c| (total + 1, unreadable + usize::from(is_unreadable(c))));
    if total > 0 && unreadable as f64 > total as f64 * MAX_UNREADABLE_SHARE {
        return Err(ExtractError::Permanent(format!(
            "the file is not readable text: {}% of its characters are control codes or undecodable bytes (is it a binary file?)",
            (unreadable * 100).div_ceil(total)
        )));
    }
    Ok(text)
}

/// Control characters other than the whitespace ones, and the replacement character
/// a decoder substitutes for bytes that mean nothing in the encoding.
fn is_unreadable(c: char) -> bool {
    c == char::REPLACEMENT_CHARACTER || (c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
}
