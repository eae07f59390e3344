//! Hostile documents, made by the tests: each is small on disk and built to crash,
//! hang or bloat a parser.

use super::pdf_writer::{one_page_pdf, pdf, stream};
use super::zip_bomb;

/// A page that draws a Form XObject that draws itself: a reader that follows forms
/// by recursion never comes back.
pub fn self_drawing_form_pdf() -> Vec<u8> {
    let form = stream(
        "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /XObject << /Fm1 6 0 R >> >>",
        b"/Fm1 Do",
    );
    one_page_pdf(b"BT /F1 12 Tf 72 720 Td (A page that draws itself.) Tj ET /Fm1 Do", "/Fm1 6 0 R", vec![form])
}

/// A page that draws a form ten times, which draws the next ten times, `levels` deep:
/// 10^levels draws of a tiny text, from a file of a few kilobytes.
pub fn form_chain_pdf(levels: usize) -> Vec<u8> {
    form_chain_pdf_with(levels, 10)
}

/// Forms `levels` deep, each drawing the next `fanout` times; the last shows "x".
pub fn form_chain_pdf_with(levels: usize, fanout: usize) -> Vec<u8> {
    let first = 6;
    let forms = (0..levels)
        .map(|level| {
            let (resources, content) = if level + 1 < levels {
                let next = first + level + 1;
                (format!("/XObject << /Fm{next} {next} 0 R >>"), format!("/Fm{next} Do ").repeat(fanout))
            } else {
                (String::new(), "BT /F1 1 Tf (x) Tj ET".to_string())
            };
            stream(
                &format!(
                    "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> {resources} >>"
                ),
                content.as_bytes(),
            )
        })
        .collect();
    let content = format!(
        "BT /F1 12 Tf 72 720 Td (Ten to the power of many.) Tj ET {}",
        format!("/Fm{first} Do ").repeat(fanout)
    );
    one_page_pdf(content.as_bytes(), &format!("/Fm{first} {first} 0 R"), forms)
}

/// A page whose content stream is a few megabytes of Flate that inflate to `inflated`
/// bytes.
pub fn inflating_pdf(inflated: u64) -> Vec<u8> {
    let (deflated, _) = zip_bomb::deflate_bomb(inflated);
    // A zlib wrapper around the raw stream; its checksum is never reached.
    let mut zlib = vec![0x78, 0x9c];
    zlib.extend_from_slice(&deflated);
    zlib.extend_from_slice(&[0, 0, 0, 1]);
    let objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_vec(),
        stream("/Filter /FlateDecode", &zlib),
    ];
    pdf(&objects)
}

/// A CSV with one column whose name is `header_chars` long and `rows` rows of `1`:
/// naming each value by its column multiplies the text by the header's length.
pub fn huge_header_csv(header_chars: usize, rows: usize) -> Vec<u8> {
    let mut csv = "h".repeat(header_chars);
    csv.push('\n');
    csv.push_str(&"1\n".repeat(rows));
    csv.into_bytes()
}

/// HTML with `depth` nested elements.
pub fn deeply_nested_html(depth: usize) -> Vec<u8> {
    let mut html = String::from("<!DOCTYPE html><html><body>");
    html.push_str(&"<div>".repeat(depth));
    html.push_str("deep");
    html.push_str(&"</div>".repeat(depth));
    html.push_str("</body></html>");
    html.into_bytes()
}

/// A DOCX whose document part inflates to a gigabyte.
pub fn docx_zip_bomb() -> Vec<u8> {
    let (stream, inflated) = zip_bomb::deflate_bomb(1 << 30);
    zip_bomb::zip_with_entry("word/document.xml", &stream, inflated)
}

/// The first half of a real PDF.
pub fn truncated_pdf() -> Vec<u8> {
    let whole = super::fixture("debian-reference-excerpt.pdf");
    whole[..whole.len() / 2].to_vec()
}

/// A real spreadsheet whose first sheet is one cell with a type (`t`) of `chars`
/// letters: a few KB compressed, and its reader's error quotes the whole attribute.
pub fn xlsx_with_a_long_cell_type(chars: usize) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(super::fixture("harbours.xlsx"))).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            bytes = format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="{}"><v>1</v></c></row></sheetData></worksheet>"#,
                "A".repeat(chars)
            )
            .into_bytes();
        }
        out.start_file(name, options).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}
