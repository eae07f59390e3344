//! PDFs written by hand for the tests: a few objects, a correct cross-reference table,
//! and content streams that use exactly the operators a test is about.

use std::fmt::Write as _;
use std::io::Write as _;

/// A PDF whose objects are `objects` (numbered from 1; object 1 is the catalog), with
/// a correct cross-reference table.
pub fn pdf(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        writeln!(out, "{} 0 obj", i + 1).unwrap();
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).unwrap();
    for offset in offsets {
        writeln!(out, "{offset:010} 00000 n ").unwrap();
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

pub const FONT: &str = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";

/// One page (object 3) drawing `content` with Helvetica as /F1 (object 5) and the
/// XObjects named in `xobjects`; `extra` objects follow from number 6.
pub fn one_page_pdf(content: &[u8], xobjects: &str, extra: Vec<Vec<u8>>) -> Vec<u8> {
    page_pdf(content, &format!("/Font << /F1 5 0 R >> /XObject << {xobjects} >>"), extra)
}

/// One page (object 3) drawing `content` with `resources` (the dictionary's entries);
/// object 5 is Helvetica, `extra` objects follow from number 6.
pub fn page_pdf(content: &[u8], resources: &str, extra: Vec<Vec<u8>>) -> Vec<u8> {
    let mut objects = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << {resources} >> >>")
            .into_bytes(),
        stream("", content),
        FONT.as_bytes().to_vec(),
    ];
    objects.extend(extra);
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

/// Lines shown with the `'` operator (next line, then show), the way the PDF
/// specification's own examples set running text.
pub fn quote_operator_pdf() -> Vec<u8> {
    one_page_pdf(
        b"BT /F1 12 Tf 72 740 Td 14 TL\n(The quick brown fox jumps over the lazy dog.) '\n\
          (Second line of honest text here.) '\nET",
        "",
        vec![],
    )
}

/// Lines shown with the `"` operator (word and character spacing, next line, show).
pub fn double_quote_operator_pdf() -> Vec<u8> {
    one_page_pdf(
        b"BT /F1 12 Tf 72 740 Td 14 TL\n0 0 (Spacing set by the double quote operator.) \"\n\
          1 0.5 (Another line with wider letters.) \"\nET",
        "",
        vec![],
    )
}

/// A TJ array whose small offsets are kerning inside words and whose large ones are
/// the gaps between them (no space glyph anywhere).
pub fn kerned_tj_pdf() -> Vec<u8> {
    one_page_pdf(
        b"BT /F1 12 Tf 72 740 Td\n[(Ke) 30 (rning) -320 (ke) 20 (eps) -320 (wo) 10 (rds) -320 (who) 15 (le)] TJ\nET",
        "",
        vec![],
    )
}

/// Text in a Type 3 font: glyphs drawn by content streams, named by an encoding.
pub fn type3_font_pdf() -> Vec<u8> {
    let word = "Glyphs";
    let glyph = |_: char| stream("", b"600 0 0 0 500 700 d1 0 0 500 700 re f");
    // Objects 6.. are the glyph procedures, in the word's letter order (unique letters).
    let mut letters: Vec<char> = Vec::new();
    for c in word.chars() {
        if !letters.contains(&c) {
            letters.push(c);
        }
    }
    let procs: Vec<Vec<u8>> = letters.iter().map(|&c| glyph(c)).collect();
    let font_id = 6 + procs.len();
    let char_procs: String = letters.iter().enumerate().map(|(i, c)| format!("/{c} {} 0 R ", 6 + i)).collect();
    let (first, last) = (word.bytes().min().unwrap(), word.bytes().max().unwrap());
    let differences: String = letters.iter().map(|&c| format!("{} /{c} ", c as u8)).collect();
    let widths: String = (first..=last).map(|_| "600 ").collect();
    let font = format!(
        "<< /Type /Font /Subtype /Type3 /FontBBox [0 0 600 700] /FontMatrix [0.001 0 0 0.001 0 0] \
         /CharProcs << {char_procs}>> /Encoding << /Type /Encoding /Differences [{differences}] >> \
         /FirstChar {first} /LastChar {last} /Widths [{widths}] /Resources << >> >>"
    );
    let content = format!("BT /F1 12 Tf 72 760 Td (A page in Helvetica.) Tj ET BT /T3 24 Tf 72 700 Td ({word}) Tj ET");
    let mut extra = procs;
    extra.push(font.into_bytes());
    page_pdf(content.as_bytes(), &format!("/Font << /F1 5 0 R /T3 {font_id} 0 R >>"), extra)
}

/// A font whose codes mean nothing by themselves (0x01, 0x02, …): only its ToUnicode
/// CMap says which characters they are. Shows "Unicode" and "Café".
pub fn to_unicode_cmap_pdf() -> Vec<u8> {
    let mapping = [
        (1, 'U'),
        (2, 'n'),
        (3, 'i'),
        (4, 'c'),
        (5, 'o'),
        (6, 'd'),
        (7, 'e'),
        (8, 'C'),
        (9, 'a'),
        (10, 'f'),
        (11, 'é'),
    ];
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n\
         /CMapName /Docqueue-Test def /CMapType 2 def\n\
         1 begincodespacerange <00> <FF> endcodespacerange\n",
    );
    writeln!(cmap, "{} beginbfchar", mapping.len()).unwrap();
    for (code, c) in mapping {
        writeln!(cmap, "<{code:02X}> <{:04X}>", c as u32).unwrap();
    }
    cmap.push_str("endbfchar\nendcmap CMapName currentdict /CMap defineresource pop end end");
    let font = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R \
                /FirstChar 1 /LastChar 11 /Widths [600 600 600 600 600 600 600 600 600 600 600] >>";
    page_pdf(
        b"BT /U1 14 Tf 72 740 Td <01020304050607> Tj 0 -20 Td <08090A0B> Tj ET",
        "/Font << /U1 7 0 R >>",
        vec![stream("", cmap.as_bytes()), font.as_bytes().to_vec()],
    )
}

/// A two-column page whose content draws each row left then right, as a naive reader
/// would read straight across.
pub fn two_column_pdf(rows: usize) -> Vec<u8> {
    let mut content = String::from("BT /F1 11 Tf\n");
    for row in 1..=rows {
        let y = 740 - 16 * row;
        writeln!(content, "1 0 0 1 72 {y} Tm (Left column sentence number {row} reads on.) Tj").unwrap();
        writeln!(content, "1 0 0 1 330 {y} Tm (Right column sentence number {row} reads on.) Tj").unwrap();
    }
    content.push_str("ET");
    one_page_pdf(content.as_bytes(), "", vec![])
}

/// Japanese set vertically (a Type 0 font with Identity-V encoding, a ToUnicode CMap):
/// two columns, read from the right: "縦書きの" then "文章です".
pub fn vertical_cjk_pdf() -> Vec<u8> {
    let chars: Vec<char> = "縦書きの文章です".chars().collect();
    let code = |c: char| chars.iter().position(|&k| k == c).unwrap() + 1;
    let hex = |text: &str| text.chars().map(|c| format!("{:04X}", code(c))).collect::<String>();
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n/CMapName /Docqueue-V def /CMapType 2 def\n\
         1 begincodespacerange <0000> <FFFF> endcodespacerange\n",
    );
    writeln!(cmap, "{} beginbfchar", chars.len()).unwrap();
    for &c in &chars {
        writeln!(cmap, "<{:04X}> <{:04X}>", code(c), c as u32).unwrap();
    }
    cmap.push_str("endbfchar\nendcmap CMapName currentdict /CMap defineresource pop end end");
    let content = format!(
        "BT /C1 20 Tf 500 700 Td <{}> Tj ET BT /C1 20 Tf 460 700 Td <{}> Tj ET",
        hex("縦書きの"),
        hex("文章です")
    );
    page_pdf(
        content.as_bytes(),
        "/Font << /C1 6 0 R >>",
        vec![
            b"<< /Type /Font /Subtype /Type0 /BaseFont /DocqueueCJK /Encoding /Identity-V /DescendantFonts [7 0 R] \
               /ToUnicode 9 0 R >>"
                .to_vec(),
            b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /DocqueueCJK /CIDSystemInfo << /Registry (Adobe) \
               /Ordering (Identity) /Supplement 0 >> /FontDescriptor 8 0 R /DW 1000 /DW2 [880 -1000] >>"
                .to_vec(),
            b"<< /Type /FontDescriptor /FontName /DocqueueCJK /Flags 4 /FontBBox [0 -200 1000 800] /ItalicAngle 0 \
               /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 >>"
                .to_vec(),
            stream("", cmap.as_bytes()),
        ],
    )
}
