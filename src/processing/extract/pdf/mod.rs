//! PDF: the text layer, page by page. Poppler's `pdftotext` reads it where it is
//! installed (the reference other tools are measured against; run as a separate
//! program inside this sandboxed process, never linked); the built-in reader
//! (pdf-extract) does elsewhere. Both sit behind the same checks: the header, damage,
//! passwords, the page limit, and form XObjects that draw themselves.

mod builtin;
mod forms;
mod poppler;

use pdf_extract::Document;

use super::{too_many_chars, without_panics, ExtractError, ExtractOptions, ExtractedText, Section};

const NO_TEXT_LAYER: &str = "the PDF has no extractable text (scanned pages?); OCR is not supported";

pub(super) fn extract(
    bytes: &[u8],
    options: &ExtractOptions,
    on_progress: &mut dyn FnMut(f32),
    is_cancelled: &dyn Fn() -> bool,
) -> Result<ExtractedText, ExtractError> {
    // Readers accept the header anywhere in the first KiB.
    if !bytes.windows(5).take(1024).any(|window| window == b"%PDF-") {
        return Err(ExtractError::Permanent("the file is not a PDF: it has no %PDF header".into()));
    }
    // Poppler starts reading as soon as the page count is known (from the trailer and
    // page tree alone); the full load and the checks run beside it.
    let quick_count = match &options.pdftotext {
        Some(_) => Document::load_metadata_mem(bytes).ok().map(|metadata| metadata.page_count).filter(|&n| n > 0),
        None => None,
    };
    let (document, page_count) = match quick_count {
        Some(count) => (None, count),
        None => {
            let document = load_and_check(bytes)?;
            let count = document.get_pages().len() as u32;
            (Some(document), count)
        }
    };
    if page_count == 0 {
        return Err(ExtractError::Permanent("the PDF has no pages".into()));
    }
    if page_count > options.max_pages {
        return Err(ExtractError::Permanent(format!(
            "the document has {page_count} pages, more than the page limit (max_pages = {})",
            options.max_pages
        )));
    }

    let mut pages =
        PageTexts { sections: Vec::new(), chars: 0, done: 0, page_count, options, on_progress, first_failure: None };
    let read_by_poppler = match (&options.pdftotext, &document) {
        (Some(program), None) => poppler::read(program, bytes, &mut pages, || load_and_check(bytes).map(drop))?,
        (Some(program), Some(_)) => poppler::read(program, bytes, &mut pages, || Ok(()))?,
        (None, _) => false,
    };
    if !read_by_poppler {
        let document = match document {
            Some(document) => document,
            None => load_and_check(bytes)?,
        };
        builtin::read(document, &mut pages, is_cancelled)?;
    }
    let PageTexts { mut sections, first_failure, .. } = pages;
    sections.sort_by_key(|section| section.page);
    if sections.iter().all(|s| s.text.trim().is_empty()) {
        return Err(ExtractError::Permanent(match first_failure {
            Some(reason) => format!("the PDF could not be parsed: {reason}"),
            None => NO_TEXT_LAYER.into(),
        }));
    }
    Ok(ExtractedText { sections, markdown: false, pages: Some(page_count) })
}

/// Loads the whole document and refuses what no reader should read: damage the
/// loader cannot get past, a password, forms that draw themselves.
fn load_and_check(bytes: &[u8]) -> Result<Document, ExtractError> {
    let mut document = without_panics(|| Document::load_mem(bytes))
        .map_err(|panic| ExtractError::Permanent(format!("the PDF could not be parsed: {panic}")))?
        .map_err(|e| ExtractError::Permanent(format!("the PDF is damaged or truncated: {e}")))?;
    if document.is_encrypted() && document.decrypt("").is_err() {
        return Err(ExtractError::Permanent(
            "the PDF is password-protected; remove the password and upload it again".into(),
        ));
    }
    forms::check_form_nesting(&document)?;
    Ok(document)
}

/// The pages read so far, under the character limit, with progress by page.
struct PageTexts<'a> {
    sections: Vec<Section>,
    chars: usize,
    done: u32,
    page_count: u32,
    options: &'a ExtractOptions,
    on_progress: &'a mut dyn FnMut(f32),
    first_failure: Option<String>,
}

impl PageTexts<'_> {
    fn add(&mut self, page: u32, text: String) -> Result<(), ExtractError> {
        self.chars += text.chars().count();
        if self.chars > self.options.max_chars {
            return Err(too_many_chars(self.options));
        }
        self.sections.push(Section { text, page: Some(page) });
        self.advance();
        Ok(())
    }

    fn skip(&mut self, page: u32, reason: String) {
        self.first_failure.get_or_insert(format!("page {page}: {reason}"));
        self.advance();
    }

    fn advance(&mut self) {
        self.done += 1;
        (self.on_progress)((self.done as f32 / self.page_count as f32).min(1.0));
    }
}

/// A page's text with its ligatures spelled out.
fn spelled_out(text: &str) -> String {
    if !text.chars().any(|c| ('\u{FB00}'..='\u{FB06}').contains(&c)) {
        return text.to_string();
    }
    text.chars().map(|c| without_ligatures(c.encode_utf8(&mut [0; 4])).to_string()).collect()
}

/// Typeset ligatures ("ﬁ" in "ﬁle") spelled out, so the text matches what people type.
fn without_ligatures(glyph: &str) -> &str {
    match glyph {
        "\u{FB00}" => "ff",
        "\u{FB01}" => "fi",
        "\u{FB02}" => "fl",
        "\u{FB03}" => "ffi",
        "\u{FB04}" => "ffl",
        "\u{FB05}" | "\u{FB06}" => "st",
        other => other,
    }
}
