//! Text extraction and chunking through the library API, over the real documents in
//! tests/fixtures (see its README for their sources) and over hostile inputs made here.

use std::io::{Cursor, Write};
use std::path::PathBuf;

use docqueue::config::Config;
use docqueue::processing::chunk::{chunk, Chunk};
use docqueue::processing::extract::{
    extract, ExtractError, ExtractOptions, ExtractedText, OcrEngine, OcrOptions, Section,
};

mod common;

use common::hostile;

use common::zip_bomb;

const PDF: &str = "application/pdf";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const HTML: &str = "text/html";
const MARKDOWN: &str = "text/markdown";
const TEXT: &str = "text/plain";
const CSV: &str = "text/csv";

fn config() -> Config {
    Config::from_overrides(serde_json::json!({})).expect("the default configuration loads")
}

fn limits() -> ExtractOptions {
    ExtractOptions::from(&config().processing)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn extract_with(content_type: &str, bytes: &[u8], limits: &ExtractOptions) -> Result<ExtractedText, ExtractError> {
    extract(content_type, bytes, limits, &mut |_| {}, &|| false)
}

fn extracted(content_type: &str, bytes: &[u8]) -> ExtractedText {
    extract_with(content_type, bytes, &limits()).unwrap_or_else(|e| panic!("extraction failed: {e}"))
}

fn failure(content_type: &str, bytes: &[u8], limits: &ExtractOptions) -> String {
    match extract_with(content_type, bytes, limits) {
        Err(ExtractError::Permanent(reason)) => reason,
        Err(ExtractError::Cancelled) => panic!("expected a permanent failure, got Cancelled"),
        Ok(doc) => panic!("expected a permanent failure, got {} sections", doc.sections.len()),
    }
}

fn chunks_of(doc: &ExtractedText) -> Vec<Chunk> {
    let processing = config().processing;
    chunk(doc, processing.chunk_size, processing.chunk_overlap)
}

/// Runs of whitespace (line breaks included) as one space: a sentence may wrap, but its
/// words must be separated and never glued together.
fn normalised(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The chunk whose text contains `sentence`, with words spaced as in the original.
fn chunk_containing<'a>(chunks: &'a [Chunk], sentence: &str) -> &'a Chunk {
    let wanted = normalised(sentence);
    chunks.iter().find(|c| normalised(&c.text).contains(&wanted)).unwrap_or_else(|| {
        let all: Vec<String> = chunks.iter().map(|c| normalised(&c.text)).collect();
        panic!("no chunk contains {wanted:?}; chunks:\n{}", all.join("\n---\n"))
    })
}

fn all_text(chunks: &[Chunk]) -> String {
    chunks.iter().map(|c| c.text.as_str()).collect::<Vec<_>>().join("\n")
}

// --- real documents -------------------------------------------------------------------

#[test]
fn pdf_text_keeps_the_spaces_between_separately_drawn_words() {
    let doc = extracted(PDF, &fixture("debian-reference-excerpt.pdf"));
    let chunks = chunks_of(&doc);
    for sentence in [
        "Overwriting a file changes all of the mtime, ctime, and atime attributes of the file.",
        "Use touch(1) command to change timestamps of existing files.",
        "The hardlink can be made within the same filesystem and shares the same inode number",
        "dpkg(1) is the lowest level tool for the Debian package management.",
        "Colorized commands are handy for inspecting their output in the interactive environment.",
        // A table cell whose text runs into the next column.
        "/var/lib/dpkg/info/package_name.conffiles list of configuration files.",
        // A code line that starts further right than the previous one ended.
        "else alias ll=’ls -l’",
    ] {
        chunk_containing(&chunks, sentence);
    }
    let text = all_text(&chunks);
    for glued in ["conffileslist", "elsealias", "Overwritinga", "mtime,ctime"] {
        assert!(!text.contains(glued), "words glued together: {glued}");
    }
}

#[test]
fn pdf_sections_and_chunks_carry_their_page_numbers() {
    let doc = extracted(PDF, &fixture("debian-reference-excerpt.pdf"));
    assert_eq!(doc.pages, Some(4));
    assert!(!doc.markdown);
    let pages: Vec<Option<u32>> = doc.sections.iter().map(|s| s.page).collect();
    assert_eq!(pages, vec![Some(1), Some(2), Some(3), Some(4)]);

    let chunks = chunks_of(&doc);
    let first = chunk_containing(&chunks, "Overwriting a file changes all of the mtime");
    assert_eq!((first.page_start, first.page_end), (Some(1), Some(1)));
    let third = chunk_containing(&chunks, "dpkg(1) is the lowest level tool");
    assert!(third.page_start.unwrap() <= 3 && third.page_end == Some(3), "{third:?}");
    assert!(chunks.iter().any(|c| c.page_start < c.page_end), "text flowing over a page break stays together");
    let whole = chunk(&doc, 1_000_000, 0);
    assert_eq!(whole.len(), 1);
    assert_eq!((whole[0].page_start, whole[0].page_end), (Some(1), Some(4)));
}

#[test]
fn pdf_progress_is_reported_page_by_page() {
    let progress_with = |ocr: OcrOptions| {
        let mut fractions = Vec::new();
        let options = ExtractOptions { ocr, ..limits() };
        extract(PDF, &fixture("debian-reference-excerpt.pdf"), &options, &mut |f| fractions.push(f), &|| false)
            .expect("extracts");
        assert!(fractions.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {fractions:?}");
        fractions
    };
    let without_ocr = progress_with(OcrOptions { engine: OcrEngine::Disabled, ..limits().ocr });
    assert_eq!(&without_ocr[..4], &[0.25, 0.5, 0.75, 1.0]);
    // Where scanned pages may follow, reading the text layers is the first half: OCR
    // takes seconds a page, text layers milliseconds. (No page here needs OCR, so the
    // programs are never started.)
    let ocr_possible = OcrOptions {
        engine: OcrEngine::Tesseract("/usr/bin/tesseract".into()),
        pdftoppm: Some("/usr/bin/pdftoppm".into()),
        ..limits().ocr
    };
    let with_ocr = progress_with(ocr_possible);
    assert_eq!(&with_ocr[..4], &[0.125, 0.25, 0.375, 0.5]);
    assert_eq!(with_ocr.last(), Some(&1.0));
}

#[test]
fn docx_yields_paragraphs_table_cells_in_reading_order_headers_and_footers() {
    let doc = extracted(DOCX, &fixture("python-docx-blk-paras-and-tables.docx"));
    let chunks = chunks_of(&doc);
    chunk_containing(&chunks, "Lorem ipsum dolor sit amet, consectetur adipiscing elit.");
    chunk_containing(&chunks, "Donec semper facilisis metus finibus malesuada.");
    chunk_containing(&chunks, "Left-side | Right-side");
    chunk_containing(&chunks, "Copyright | Page-number");
    // A table nested in a cell, between the cell's own paragraphs.
    chunk_containing(&chunks, "Text before Table");
    chunk_containing(&chunks, "Between");

    let text = all_text(&chunks);
    let position = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s:?} missing"));
    assert!(position("Left-side") < position("Lorem ipsum"), "the header comes first");
    assert!(position("Donec semper") < position("Copyright"), "the footer comes last");
    assert!(!text.contains(" | \n") && !text.starts_with(" |"), "empty table cells leave no separators");
}

#[test]
fn docx_hyperlink_text_stays_in_its_sentence() {
    let doc = extracted(DOCX, &fixture("python-docx-par-hyperlinks.docx"));
    let chunks = chunks_of(&doc);
    chunk_containing(&chunks, "One awesome hyperlink.");
    chunk_containing(&chunks, "Three hyperlinks: the first one here, the second one, and the third.");
}

#[test]
fn html_keeps_visible_text_and_headings_but_not_navigation_or_footer() {
    let doc = extracted(HTML, &fixture("python-tutorial-errors.html"));
    assert!(doc.markdown, "HTML headings are kept as Markdown structure");
    let chunks = chunks_of(&doc);
    chunk_containing(
        &chunks,
        "Syntax errors, also known as parsing errors, are perhaps the most common kind of complaint you get while you are still learning Python:",
    );
    // "Built-in Exceptions" is a link: its text stays in the sentence, without brackets.
    chunk_containing(&chunks, "Built-in Exceptions lists the built-in exceptions and their meanings.");
    let text = all_text(&chunks);
    assert!(text.lines().any(|l| l == "# 8. Errors and Exceptions"), "the page title is a level-1 heading");
    assert!(text.lines().any(|l| l == "## 8.1. Syntax Errors"), "sections are level-2 headings");
    for boilerplate in ["Previous topic", "Quick search", "Report a Bug", "Navigation", "Copyright", "¶"] {
        assert!(!text.contains(boilerplate), "page furniture kept: {boilerplate:?}");
    }
}

#[test]
fn html_drops_scripts_styles_and_page_furniture_elements() {
    let page = br#"<!DOCTYPE html><html><head><title>T</title><style>p { color: red }</style>
        <script>var hidden = "script text";</script></head>
        <body><header>Site header</header><nav><a href="/">Home</a> <a href="/about">About</a></nav>
        <main><h1>Release notes</h1><h2>Fixes</h2><p>The worker no longer <em>stalls</em> on <a href="/x">large uploads</a>.</p></main>
        <footer>Footer text</footer></body></html>"#;
    let doc = extracted(HTML, page);
    let text = all_text(&chunks_of(&doc));
    assert!(text.contains("# Release notes\n"), "{text}");
    assert!(text.contains("## Fixes\n"), "{text}");
    assert!(text.contains("The worker no longer stalls on large uploads."), "{text}");
    for hidden in ["script text", "color: red", "Site header", "Home", "About", "Footer text"] {
        assert!(!text.contains(hidden), "{hidden:?} should not be extracted: {text}");
    }
}

#[test]
fn markdown_is_chunked_along_its_headings() {
    let doc = extracted(MARKDOWN, &fixture("text-splitter-README.md"));
    assert!(doc.markdown);
    let chunks = chunks_of(&doc);
    chunk_containing(
        &chunks,
        "This crate provides methods for splitting longer pieces of text into smaller chunks, aiming to maximize a desired chunk size, but still splitting at semantically sensible boundaries whenever possible.",
    );
    assert!(chunks.iter().any(|c| c.text.starts_with("## Get Started")), "a chunk starts at a heading");
}

#[test]
fn latin1_text_is_decoded_with_its_accents() {
    let bytes = fixture("debian-reference-fr-excerpt.latin1.txt");
    assert!(std::str::from_utf8(&bytes).is_err(), "the fixture is not UTF-8");
    let doc = extracted(TEXT, &bytes);
    let chunks = chunks_of(&doc);
    chunk_containing(&chunks, "Les répertoires d'un système UNIX sont appelés dossiers sur d'autres systèmes.");
    chunk_containing(&chunks, "À l'opposé, la commande umount(8) les détachera de nouveau.");
    assert!(!all_text(&chunks).contains('\u{FFFD}'), "no undecodable characters");
}

#[test]
fn nul_bytes_are_stripped_from_text() {
    let doc = extracted(TEXT, b"Hello\0 wor\0ld, plain text.\n");
    assert_eq!(doc.sections[0].text, "Hello world, plain text.\n");
}

#[test]
fn csv_with_a_header_row_names_each_value() {
    let doc = extracted(CSV, &fixture("uspop-latin1.csv"));
    let chunks = chunks_of(&doc);
    chunk_containing(
        &chunks,
        "City: Kenai; State: AK; Population: 7610; Latitude: 60.5544444; Longitude: -151.2583333",
    );
    // Latin-1 decoded, and the empty Population left out.
    chunk_containing(&chunks, "City: Õakman; State: AL; Latitude: 33.7133333; Longitude: -87.3886111");
    assert!(!all_text(&chunks).contains("City: City"), "the header row is not a data row");
}

#[test]
fn csv_without_a_header_row_keeps_plain_rows() {
    let doc = extracted(CSV, &fixture("rio-noheader.csv"));
    let chunks = chunks_of(&doc);
    chunk_containing(&chunks, "0, ??, ?, Total, 1998, 46991171, 23594034, 23397137");
    chunk_containing(&chunks, "0, ??, 5 - 9?, 5, 1998, 3428387, 1820224, 1608163");
    assert!(!all_text(&chunks).contains(": "), "no column names are invented");
}

// --- chunking ---------------------------------------------------------------------------

#[test]
fn a_chunk_spanning_two_pages_carries_the_page_range() {
    let doc = ExtractedText {
        sections: vec![
            Section { text: "The third page ends with this sentence.".into(), page: Some(3) },
            Section { text: "The fourth page starts with this one.".into(), page: Some(4) },
        ],
        markdown: false,
        pages: Some(4),
        warning: None,
    };
    let together = chunk(&doc, 1000, 100);
    assert_eq!(together.len(), 1);
    assert_eq!((together[0].page_start, together[0].page_end), (Some(3), Some(4)));
    assert!(together[0].text.contains("sentence.\n\nThe fourth"));

    let apart = chunk(&doc, 40, 0);
    let ranges: Vec<_> = apart.iter().map(|c| (c.page_start, c.page_end)).collect();
    assert_eq!(ranges, vec![(Some(3), Some(3)), (Some(4), Some(4))]);
}

#[test]
fn chunks_are_numbered_in_order_never_empty_and_overlap() {
    let doc = extracted(TEXT, &fixture("debian-reference-fr-excerpt.latin1.txt"));
    let chunks = chunk(&doc, 300, 60);
    assert!(chunks.len() > 5);
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.ordinal, i as i32);
        assert!(!c.text.trim().is_empty());
        assert!(c.text.chars().count() <= 300);
        assert_eq!((c.page_start, c.page_end), (None, None));
    }
    let overlapping = chunks.windows(2).filter(|w| {
        let tail: String = w[0].text.chars().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
        w[1].text.contains(tail.trim())
    });
    assert!(overlapping.count() > 0, "consecutive chunks share text");
}

// --- limits, cancellation, hostile input ------------------------------------------------

#[test]
fn an_empty_file_fails_as_empty_whatever_its_type() {
    for content_type in [PDF, DOCX, HTML, MARKDOWN, TEXT, CSV] {
        assert_eq!(failure(content_type, b"", &limits()), "the file is empty");
    }
}

#[test]
fn whitespace_only_text_fails_as_containing_no_text() {
    let reason = failure(TEXT, b" \n\t\r\n  \n", &limits());
    assert!(reason.contains("contains no text"), "{reason}");
    let reason = failure(HTML, b"<html><body><p>   </p><script>x()</script></body></html>", &limits());
    assert!(reason.contains("contains no text"), "{reason}");
}

#[test]
fn a_truncated_pdf_fails_as_damaged() {
    let pdf = fixture("debian-reference-excerpt.pdf");
    let reason = failure(PDF, &pdf[..pdf.len() * 2 / 3], &limits());
    assert!(reason.starts_with("the PDF is damaged or truncated"), "{reason}");
}

#[test]
fn a_png_uploaded_as_pdf_fails_as_not_a_pdf() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    assert_eq!(failure(PDF, png, &limits()), "the file is not a PDF: it has no %PDF header");
}

#[test]
fn an_image_only_pdf_fails_naming_the_ocr_package_when_tesseract_is_missing() {
    let mut processing = config().processing;
    processing.ocr.tesseract = "/nonexistent/tesseract".into();
    let reason = failure(PDF, &fixture("ocrmypdf-trivial.pdf"), &ExtractOptions::from(&processing));
    assert!(
        reason.starts_with("the PDF has no extractable text (scanned pages?) and OCR is not available"),
        "{reason}"
    );
    assert!(reason.contains("install the tesseract-ocr and tesseract-ocr-eng packages"), "{reason}");
}

#[test]
fn a_password_protected_pdf_fails_asking_for_the_password_to_be_removed() {
    let reason = failure(PDF, &fixture("password-protected.pdf"), &limits());
    assert_eq!(reason, "the PDF is password-protected; remove the password and upload it again");
}

#[test]
fn a_pdf_over_the_page_limit_fails_naming_max_pages() {
    let limits = ExtractOptions { max_pages: 3, ..limits() };
    let reason = failure(PDF, &fixture("debian-reference-excerpt.pdf"), &limits);
    assert!(reason.contains("4 pages") && reason.contains("(max_pages = 3)"), "{reason}");
}

#[test]
fn text_over_the_character_limit_fails_naming_max_chars() {
    let limits = ExtractOptions { max_chars: 500, ..limits() };
    for (content_type, name) in [
        (PDF, "debian-reference-excerpt.pdf"),
        (HTML, "python-tutorial-errors.html"),
        (MARKDOWN, "text-splitter-README.md"),
        (CSV, "uspop-latin1.csv"),
    ] {
        let reason = failure(content_type, &fixture(name), &limits);
        assert_eq!(reason, "the extracted text exceeds the character limit (max_chars = 500)", "{name}");
    }
    let limits = ExtractOptions { max_chars: 20, ..limits };
    let reason = failure(DOCX, &fixture("python-docx-par-hyperlinks.docx"), &limits);
    assert!(reason.contains("(max_chars = 20)"), "{reason}");
}

#[test]
fn the_built_in_pdf_reader_notices_cancellation_between_pages() {
    let pages_done = std::cell::Cell::new(0);
    let result = extract(
        PDF,
        &fixture("debian-reference-excerpt.pdf"),
        &ExtractOptions { pdftotext: None, ..limits() },
        &mut |_| pages_done.set(pages_done.get() + 1),
        &|| pages_done.get() >= 1,
    );
    assert!(matches!(result, Err(ExtractError::Cancelled)), "{result:?}");
    assert_eq!(pages_done.get(), 1, "extraction stopped after the first page");
}

#[test]
fn an_unsupported_type_fails_permanently() {
    let reason = failure("image/gif", b"GIF89a", &limits());
    assert!(reason.contains("\"image/gif\" are not supported"), "{reason}");
}

#[test]
fn invalid_utf8_garbage_fails_as_unreadable_text() {
    // Bytes from a fixed xorshift sequence: invalid UTF-8 and text in no encoding.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..8192)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect();
    assert!(std::str::from_utf8(&garbage).is_err());
    for content_type in [TEXT, MARKDOWN, CSV, HTML] {
        let reason = failure(content_type, &garbage, &limits());
        assert!(reason.starts_with("the file is not readable text:"), "{content_type}: {reason}");
    }
}

#[test]
fn a_docx_that_is_not_a_zip_fails_with_the_reason() {
    let reason = failure(DOCX, b"PK\x03\x04 but nothing else", &limits());
    assert!(reason.starts_with("the file is not a readable DOCX"), "{reason}");
}

/// Bytes of repeated XML behind a real zip structure: 1 GiB inflated from about 1 MB.
const BOMB_BYTES: u64 = 1 << 30;

#[test]
fn a_docx_zip_bomb_fails_on_the_decompressed_size_limit() {
    let (stream, inflated) = zip_bomb::deflate_bomb(BOMB_BYTES);
    assert!(stream.len() < 2 << 20, "the bomb is small: {} bytes", stream.len());
    let docx = zip_bomb::zip_with_entry("word/document.xml", &stream, inflated);
    let started = std::time::Instant::now();
    let reason = failure(DOCX, &docx, &limits());
    assert!(reason.starts_with("the DOCX expands beyond the decompressed size limit"), "{reason}");
    assert!(reason.contains("(max_docx_uncompressed_bytes = 268435456)"), "{reason}");
    println!("zip bomb rejected in {:?}", started.elapsed());
}

#[test]
fn a_docx_zip_bomb_that_understates_its_size_is_stopped_while_inflating() {
    let (stream, _) = zip_bomb::deflate_bomb(BOMB_BYTES);
    let docx = zip_bomb::zip_with_entry("word/document.xml", &stream, 64 * 1024);
    let reason = failure(DOCX, &docx, &limits());
    assert!(reason.starts_with("the DOCX is damaged: word/document.xml:"), "{reason}");
}

#[test]
fn a_docx_zip_bomb_under_a_raised_size_limit_is_stopped_before_its_endless_text_fills_memory() {
    let limits = ExtractOptions { max_docx_uncompressed_bytes: u64::MAX, ..limits() };
    let (stream, inflated) = zip_bomb::deflate_bomb(BOMB_BYTES);
    let docx = zip_bomb::zip_with_entry("word/document.xml", &stream, inflated);
    let reason = failure(DOCX, &docx, &limits);
    assert_eq!(reason, "the DOCX is damaged: word/document.xml has over 16 MiB of text without any markup");
}

#[test]
fn a_docx_with_too_many_entries_fails_on_the_entry_limit() {
    let limits = ExtractOptions { max_docx_entries: 100, ..limits() };
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..101 {
        zip.start_file(format!("word/media/{i}.bin"), stored).unwrap();
        zip.write_all(b"x").unwrap();
    }
    let docx = zip.finish().unwrap().into_inner();
    let reason = failure(DOCX, &docx, &limits);
    assert_eq!(reason, "the DOCX has 101 entries, more than allowed (max_docx_entries = 100)");
}

#[test]
fn a_csv_whose_header_multiplies_its_text_fails_on_max_chars_as_it_grows() {
    let csv = hostile::huge_header_csv(200_000, 30_000);
    let reason = failure(CSV, &csv, &limits());
    assert!(reason.contains("max_chars"), "{reason}");
}

#[test]
fn html_nested_deeper_than_the_limit_fails_naming_max_html_depth() {
    let reason = failure(HTML, &hostile::deeply_nested_html(200_000), &limits());
    assert!(reason.contains("processing.max_html_depth = 512"), "{reason}");
    assert!(extract_with(HTML, &hostile::deeply_nested_html(400), &limits()).is_ok());
}

#[test]
fn html_with_unclosed_paragraphs_list_items_and_void_elements_is_not_deep() {
    let mut html = String::from("<html><body><ul>");
    for i in 0..5_000 {
        html.push_str(&format!("<li>item {i}<br><img src=x.png><p>para {i} <span class='a>b'>text</span>"));
    }
    html.push_str("<script>if (a < b) { document.write('<div><div><div>') }</script></ul></body></html>");
    let doc = extracted(HTML, html.as_bytes());
    assert!(doc.sections[0].text.contains("para 4999 text"));
}

#[test]
fn a_pdf_form_that_draws_itself_fails_instead_of_overflowing_the_stack() {
    let reason = failure(PDF, &hostile::self_drawing_form_pdf(), &limits());
    assert!(reason.contains("draws itself"), "{reason}");
}

#[test]
fn pdf_forms_nested_past_the_depth_cap_fail_and_shallow_ones_are_read() {
    let reason = failure(PDF, &hostile::form_chain_pdf_with(40, 1), &limits());
    assert!(reason.contains("levels deep"), "{reason}");
    let doc = extracted(PDF, &hostile::form_chain_pdf_with(3, 2));
    assert!(normalised(&doc.sections[0].text).contains("Ten to the power of many."), "{:?}", doc.sections);
}
