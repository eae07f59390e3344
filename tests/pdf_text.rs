//! PDF text as poppler reads it, through docqueue's reader: every text-showing
//! operator, Type 3 fonts, ToUnicode CMaps, vertical Japanese, two-column reading order, page numbers
//! across the parallel page ranges, and the built-in reader where poppler is absent.
//! The PDFs are written by hand (tests/common/pdf_writer.rs), each using exactly the
//! feature under test.

mod common;

use std::time::Duration;

use common::pdf_writer;
use common::{token, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::config::Config;
use docqueue::processing::extract::{extract, ExtractOptions, ExtractedText};
use serde_json::json;

const PDF: &str = "application/pdf";

fn options() -> ExtractOptions {
    let options = ExtractOptions::from(&Config::from_overrides(json!({})).unwrap().processing);
    assert!(options.pdftotext.is_some(), "poppler's pdftotext is installed (scripts/test.sh installs poppler-utils)");
    assert!(
        options.pdftext_helper.is_some(),
        "docqueue-pdftext was built (scripts/test.sh installs libpoppler-cpp-dev and g++)"
    );
    options
}

fn pages_of(bytes: &[u8], options: &ExtractOptions) -> Result<Vec<(Option<u32>, String)>, String> {
    let doc = extract(PDF, bytes, options, &mut |_| {}, &|| false).map_err(|e| e.to_string())?;
    Ok(doc.sections.into_iter().map(|section| (section.page, section.text)).collect())
}

fn text_of(bytes: &[u8], options: &ExtractOptions) -> String {
    let doc: ExtractedText = extract(PDF, bytes, options, &mut |_| {}, &|| false).expect("the PDF reads");
    let joined: Vec<String> = doc.sections.iter().map(|s| s.text.clone()).collect();
    joined.join("\n").split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn lines_shown_with_the_quote_operator_are_read() {
    let text = text_of(&pdf_writer::quote_operator_pdf(), &options());
    assert!(text.contains("The quick brown fox jumps over the lazy dog. Second line of honest text here."), "{text}");
}

#[test]
fn lines_shown_with_the_double_quote_operator_are_read() {
    let text = text_of(&pdf_writer::double_quote_operator_pdf(), &options());
    assert!(text.contains("Spacing set by the double quote operator."), "{text}");
    assert!(text.contains("Another line with wider letters."), "{text}");
}

#[test]
fn tj_kerning_joins_letters_and_wide_gaps_separate_words() {
    let text = text_of(&pdf_writer::kerned_tj_pdf(), &options());
    assert_eq!(text, "Kerning keeps words whole");
}

#[test]
fn text_in_a_type3_font_is_read_by_its_glyph_names() {
    let text = text_of(&pdf_writer::type3_font_pdf(), &options());
    assert!(text.contains("A page in Helvetica."), "{text}");
    assert!(text.contains("Glyphs"), "{text}");
}

#[test]
fn a_tounicode_cmap_decides_what_the_codes_mean() {
    let text = text_of(&pdf_writer::to_unicode_cmap_pdf(), &options());
    assert_eq!(text, "Unicode Café");
}

#[test]
fn a_two_column_page_reads_column_by_column() {
    let text = text_of(&pdf_writer::two_column_pdf(12), &options());
    let last_left = text.find("Left column sentence number 12").expect("the left column");
    let first_right = text.find("Right column sentence number 1 ").expect("the right column");
    assert!(last_left < first_right, "the right column started inside the left one: {text}");
    for row in 1..12 {
        let this = text.find(&format!("Left column sentence number {row} ")).unwrap();
        let next = text.find(&format!("Left column sentence number {} ", row + 1)).unwrap();
        assert!(this < next, "{text}");
    }
}

#[test]
fn vertical_japanese_reads_down_each_column_from_the_right() {
    let text = text_of(&pdf_writer::vertical_cjk_pdf(), &options());
    assert_eq!(text, "縦書きの 文章です");
}

#[test]
fn pages_read_in_parallel_ranges_keep_their_numbers() {
    let doc = extract(PDF, &pdf_writer::multi_page_pdf(41), &options(), &mut |_| {}, &|| false).unwrap();
    assert_eq!(doc.pages, Some(41));
    assert_eq!(doc.sections.len(), 41);
    for section in &doc.sections {
        let page = section.page.unwrap();
        assert!(section.text.contains(&format!("This is page {page} of")), "page {page}: {:?}", section.text);
    }
}

#[test]
fn the_kept_helper_reads_short_pdfs_exactly_as_pdftotext_does() {
    let by_helper = options();
    let by_pdftotext = ExtractOptions { pdftext_helper: None, ..options() };
    let fixture = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/debian-reference-excerpt.pdf"));
    let documents = [
        fixture.expect("the fixture"),
        pdf_writer::two_column_pdf(12),
        pdf_writer::vertical_cjk_pdf(),
        pdf_writer::to_unicode_cmap_pdf(),
        pdf_writer::type3_font_pdf(),
        pdf_writer::multi_page_pdf(3),
    ];
    // Twice over: the second round is read by the same helper process, kept between.
    for bytes in documents.iter().chain(documents.iter()) {
        let helper = pages_of(bytes, &by_helper).expect("the helper reads it");
        assert!(!helper.is_empty() && helper.iter().any(|(_, text)| !text.is_empty()));
        assert_eq!(helper, pages_of(bytes, &by_pdftotext).expect("pdftotext reads it"));
    }
}

#[test]
fn a_damaged_or_locked_pdf_fails_through_the_helper_and_the_next_one_still_reads() {
    let options = options();
    let damaged = pdf_writer::multi_page_pdf(2).into_iter().take(400).collect::<Vec<u8>>();
    assert!(pages_of(&damaged, &options).is_err());
    let locked = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/password-protected.pdf")).unwrap();
    let reason = pages_of(&locked, &options).unwrap_err();
    assert!(reason.contains("password"), "{reason}");
    let pages = pages_of(&pdf_writer::multi_page_pdf(2), &options).expect("the next PDF reads");
    assert!(pages[1].1.contains("This is page 2 of an honest report."), "{pages:?}");
}

#[test]
fn without_poppler_the_built_in_reader_reads_pdfs() {
    let builtin = ExtractOptions { pdftotext: None, ..options() };
    let doc = extract(PDF, &pdf_writer::multi_page_pdf(3), &builtin, &mut |_| {}, &|| false).unwrap();
    assert_eq!(doc.sections.len(), 3);
    assert!(doc.sections[2].text.contains("This is page 3 of an honest report."));
    let missing = ExtractOptions::from(
        &Config::from_overrides(json!({ "processing": { "pdftotext": "/nonexistent/pdftotext" } })).unwrap().processing,
    );
    assert!(missing.pdftotext.is_none());
}

#[actix_web::test]
async fn chunks_carry_the_pages_they_come_from() {
    let env = TestEnv::new();
    let config = env.config(json!({ "processing": { "chunk_size": 120, "chunk_overlap": 10 } }));
    let server = TestServer::start(config, Role::All).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "report.pdf", pdf_writer::multi_page_pdf(20)).await;
    let id = doc["id"].as_str().unwrap();
    server.wait_for(&alice, id, Duration::from_secs(60), |d| d["queue_status"] == "completed").await;
    let (status, page) = server.get_json(&alice, &format!("/api/documents/{id}/chunks?limit=200")).await;
    assert_eq!(status, 200, "{page}");
    let chunks = page["chunks"].as_array().unwrap();
    assert!(chunks.len() >= 20, "{page}");
    for chunk in chunks {
        let text = chunk["text"].as_str().unwrap();
        let (start, end) = (chunk["page_start"].as_i64().unwrap(), chunk["page_end"].as_i64().unwrap());
        if let Some(at) = text.find("This is page ") {
            let named: i64 = text[at + 13..].split_whitespace().next().unwrap().parse().unwrap();
            assert!(start <= named && named <= end, "chunk on pages {start}-{end} says page {named}: {text}");
        }
    }
    server.shutdown().await;
}
