//! The type of an upload, decided from its bytes (never from the client's word):
//! PDF, DOCX, XLSX, PPTX, ODT, ODS, EPUB, HTML, Markdown, plain text, CSV, or a PNG,
//! JPEG, TIFF or WebP image (read by OCR). The extension only tells apart the text
//! formats, which look alike.

use std::io::{Cursor, Read};

pub const PDF: &str = "application/pdf";
pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub const HTML: &str = "text/html";
pub const MARKDOWN: &str = "text/markdown";
pub const TEXT: &str = "text/plain";
pub const CSV: &str = "text/csv";
pub const PNG: &str = "image/png";
pub const JPEG: &str = "image/jpeg";
pub const TIFF: &str = "image/tiff";
pub const WEBP: &str = "image/webp";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
pub const ODT: &str = "application/vnd.oasis.opendocument.text";
pub const ODS: &str = "application/vnd.oasis.opendocument.spreadsheet";
pub const EPUB: &str = "application/epub+zip";

/// How many leading bytes the sniffer looks at.
pub const HEAD_BYTES: usize = 64 * 1024;

/// Returns the supported type, or the detected unsupported one as the error.
pub fn sniff(head: &[u8], filename: &str) -> Result<&'static str, String> {
    let extension = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    if head.is_empty() {
        // Nothing to look at: go by the name; processing reports the empty file.
        return Ok(match extension.as_str() {
            "pdf" => PDF,
            "docx" => DOCX,
            "xlsx" => XLSX,
            "pptx" => PPTX,
            "odt" => ODT,
            "ods" => ODS,
            "epub" => EPUB,
            "html" | "htm" => HTML,
            "md" | "markdown" => MARKDOWN,
            "csv" => CSV,
            _ => TEXT,
        });
    }
    // PDF readers accept the header anywhere in the first kilobyte.
    if head[..head.len().min(1024)].windows(5).any(|w| w == b"%PDF-") {
        return Ok(PDF);
    }
    if head.starts_with(b"PK\x03\x04") {
        if let Some(document) = zip_document_type(head) {
            return Ok(document);
        }
    }
    if let Some(kind) = infer::get(head) {
        return match kind.mime_type() {
            "application/pdf" => Ok(PDF),
            DOCX => Ok(DOCX),
            "application/zip" if contains(head, b"word/") => Ok(DOCX),
            // The zip's own entries did not tell (its directory starts past the head):
            // infer's guess from the entry names it found.
            kind @ (XLSX | PPTX | ODT | ODS | EPUB) => Ok(kind),
            "text/html" => Ok(HTML),
            "text/xml" | "application/xml" => Ok(TEXT),
            PNG => Ok(PNG),
            JPEG => Ok(JPEG),
            TIFF => Ok(TIFF),
            WEBP => Ok(WEBP),
            other => Err(other.to_string()),
        };
    }
    // Bytes with no known signature that do not look like text are refused, unless the
    // name says text: then extraction decides, and fails the document with a reason
    // the user can read ("not readable text") instead of refusing the upload.
    let named_text = matches!(extension.as_str(), "txt" | "text" | "md" | "markdown" | "csv" | "tsv");
    if looks_binary(head) && !named_text {
        return Err("application/octet-stream".to_string());
    }
    if looks_like_html(head) {
        return Ok(HTML);
    }
    Ok(match extension.as_str() {
        "md" | "markdown" => MARKDOWN,
        "csv" | "tsv" => CSV,
        "html" | "htm" => HTML,
        _ if looks_like_markdown(head) => MARKDOWN,
        _ => TEXT,
    })
}

/// The document type a zip archive declares, read from the head alone: ODF and EPUB
/// files start with a stored `mimetype` entry naming their type; in Office Open XML
/// files `[Content_Types].xml` names the main part's type. Only that entry is
/// inflated, and only 64 KiB of it: sniffing runs in the server. When the head holds
/// neither, the names of the parts tell.
fn zip_document_type(head: &[u8]) -> Option<&'static str> {
    const CONTENT_TYPES: [(&str, &str); 3] = [
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml", DOCX),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", XLSX),
        ("application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml", PPTX),
    ];
    const MAIN_PARTS: [(&str, &str); 3] =
        [("word/document.xml", DOCX), ("xl/workbook.xml", XLSX), ("ppt/presentation.xml", PPTX)];
    let entries = local_entries(head);
    let content_of = |offset: usize| -> Option<String> {
        let mut cursor = Cursor::new(&head[offset..]);
        let entry = zip::read::read_zipfile_from_stream(&mut cursor).ok()??;
        let mut content = Vec::new();
        entry.take(64 * 1024).read_to_end(&mut content).ok()?;
        Some(String::from_utf8_lossy(&content).into_owned())
    };
    if let Some((offset, _)) = entries.first().filter(|(_, name)| name == "mimetype") {
        let content = content_of(*offset)?;
        return [ODT, ODS, EPUB].into_iter().find(|&kind| content.trim() == kind);
    }
    if let Some((offset, _)) = entries.iter().find(|(_, name)| name == "[Content_Types].xml") {
        let content = content_of(*offset)?;
        return CONTENT_TYPES
            .into_iter()
            .find(|(main_part, _)| content.contains(&format!("ContentType=\"{main_part}\"")))
            .map(|(_, kind)| kind);
    }
    MAIN_PARTS.into_iter().find(|(part, _)| entries.iter().any(|(_, name)| name == part)).map(|(_, kind)| kind)
}

/// The (offset, name) of the zip entries whose local headers lie within `head`, walked
/// from the start; the walk stops at an entry whose size its header does not give.
fn local_entries(head: &[u8]) -> Vec<(usize, String)> {
    let u16_at = |at: usize| head.get(at..at + 2).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])));
    let u32_at = |at: usize| head.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let mut entries = Vec::new();
    let mut at = 0;
    while head.get(at..at + 4) == Some(b"PK\x03\x04") {
        let (Some(flags), Some(compressed), Some(name_length), Some(extra_length)) =
            (u16_at(at + 6), u32_at(at + 18), u16_at(at + 26), u16_at(at + 28))
        else {
            break;
        };
        let Some(name) = head.get(at + 30..at + 30 + name_length) else {
            break;
        };
        entries.push((at, String::from_utf8_lossy(name).into_owned()));
        // Bit 3: the sizes follow the data, so the next header cannot be found from here.
        if flags & 0x08 != 0 {
            break;
        }
        at += 30 + name_length + extra_length + compressed;
    }
    entries
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Text has few control characters; a handful of NULs is tolerated (they are
/// stripped at extraction), UTF-16 is not treated as binary.
fn looks_binary(head: &[u8]) -> bool {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return false;
    }
    let sample = &head[..head.len().min(8192)];
    let control = sample.iter().filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1B)).count();
    control * 10 > sample.len()
}

fn looks_like_html(head: &[u8]) -> bool {
    let start = String::from_utf8_lossy(&head[..head.len().min(1024)]).to_ascii_lowercase();
    let start = start.trim_start_matches('\u{feff}').trim_start();
    start.starts_with("<!doctype html")
        || start.starts_with("<html")
        || start.contains("<html")
        || start.contains("<body")
}

fn looks_like_markdown(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    let marks = text
        .lines()
        .filter(|line| line.starts_with("# ") || line.starts_with("## ") || line.starts_with("```"))
        .count();
    marks >= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_sniffed_by_their_bytes_whatever_their_name() {
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R'];
        assert_eq!(sniff(&png, "photo.pdf"), Ok(PNG));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0], "scan.txt"), Ok(JPEG));
        assert_eq!(sniff(b"II*\0\x08\0\0\0\x0b\0\0\x01", "scan"), Ok(TIFF));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 ", "photo.png"), Ok(WEBP));
        // Other images have no text layer and no reader: refused, naming what they are.
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0", "photo.pdf"), Err("image/gif".to_string()));
    }

    #[test]
    fn text_formats_are_told_apart() {
        assert_eq!(sniff(b"%PDF-1.7\n", "x.bin"), Ok(PDF));
        assert_eq!(sniff(b"<!DOCTYPE html><html></html>", "page.txt"), Ok(HTML));
        assert_eq!(sniff(b"a,b\n1,2\n", "data.csv"), Ok(CSV));
        assert_eq!(sniff(b"# Title\n\ntext\n", "notes.md"), Ok(MARKDOWN));
        assert_eq!(sniff(b"caf\xe9 cr\xe8me", "latin1.txt"), Ok(TEXT));
        assert_eq!(sniff(b"{\\rtf1\\ansi Hello}", "letter.txt"), Err("application/rtf".into()));
        assert_eq!(sniff(&[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2], "x.bin"), Err("application/octet-stream".into()));
        assert_eq!(sniff(&[0u8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2], "notes.txt"), Ok(TEXT));
    }

    #[test]
    fn zip_based_documents_are_told_apart_by_their_contents_not_their_names() {
        let fixtures = [
            (&include_bytes!("../../tests/fixtures/python-docx-par-hyperlinks.docx")[..], DOCX),
            (&include_bytes!("../../tests/fixtures/harbours.xlsx")[..], XLSX),
            (&include_bytes!("../../tests/fixtures/lighthouse.pptx")[..], PPTX),
            (&include_bytes!("../../tests/fixtures/beekeeping.odt")[..], ODT),
            (&include_bytes!("../../tests/fixtures/orchard.ods")[..], ODS),
            (&include_bytes!("../../tests/fixtures/mill.epub")[..], EPUB),
        ];
        for (bytes, expected) in fixtures {
            let head = &bytes[..bytes.len().min(HEAD_BYTES)];
            assert_eq!(sniff(head, "upload.zip"), Ok(expected));
            assert_eq!(sniff(head, "upload.pdf"), Ok(expected));
        }
        // openpyxl writes [Content_Types].xml last: a head that ends before the
        // workbook part leaves the decision to the entry names seen so far.
        let xlsx = include_bytes!("../../tests/fixtures/harbours.xlsx");
        let workbook = xlsx.windows(15).position(|w| w == b"xl/workbook.xml").expect("a workbook entry");
        assert_eq!(sniff(&xlsx[..workbook - 30], "upload.zip"), Ok(XLSX));
    }
}
