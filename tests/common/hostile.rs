//! Hostile documents, made by the tests: each is small on disk and built to crash,
//! hang or bloat a parser.

use std::fmt::Write as _;
use std::io::Write as _;

use super::zip_bomb;

/// A PDF whose objects are `objects` (numbered from 1; object 1 is the catalog), with
/// a correct cross-reference table.
pub fn pdf(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        write!(out, "{} 0 obj\n", i + 1).unwrap();
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).unwrap();
    for offset in offsets {
        write!(out, "{offset:010} 00000 n \n").unwrap();
    }
    write!(out, "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).unwrap();
    out
}

/// A stream object with `dict` entries (without /Length) and `data`.
pub fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
    let mut body = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\nendstream");
    body
}

const FONT: &str = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";

/// One page (object 3) drawing `content` with Helvetica as /F1 (object 5) and the
/// XObjects named in `xobjects`; `extra` objects follow from number 6.
fn one_page_pdf(content: &[u8], xobjects: &str, extra: Vec<Vec<u8>>) -> Vec<u8> {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
             /Resources << /Font << /F1 5 0 R >> /XObject << {xobjects} >> >> >>"
        )
        .into_bytes(),
        stream("", content),
        FONT.as_bytes().to_vec(),
    ];
    objects.extend(extra);
    pdf(&objects)
}

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

/// A plain, honest one-page PDF with `text` (ASCII) on it.
pub fn text_pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 72 740 Td 14 TL\n");
    for line in lines {
        writeln!(content, "({}) Tj T*", line.replace('(', "\\(").replace(')', "\\)")).unwrap();
    }
    content.push_str("ET");
    one_page_pdf(content.as_bytes(), "", vec![])
}

/// An honest PDF of `pages` pages, each with a few sentences naming its page.
pub fn multi_page_pdf(pages: usize) -> Vec<u8> {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} /Resources << /Font << /F1 3 0 R >> >> /MediaBox [0 0 612 792] >>",
            (0..pages).map(|p| format!("{} 0 R", 4 + 2 * p)).collect::<Vec<_>>().join(" ")
        )
        .into_bytes(),
        FONT.as_bytes().to_vec(),
    ];
    for page in 1..=pages {
        objects.push(format!("<< /Type /Page /Parent 2 0 R /Contents {} 0 R >>", 5 + 2 * (page - 1)).into_bytes());
        let content = format!(
            "BT /F1 12 Tf 72 740 Td 14 TL (This is page {page} of an honest report.) Tj T* \
             (Its sentences are plain and its forms are few.) Tj ET"
        );
        objects.push(stream("", content.as_bytes()));
    }
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
