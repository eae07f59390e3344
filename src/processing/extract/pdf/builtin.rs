//! The built-in reader (pdf-extract), used where poppler's pdftotext is not installed:
//! the text layer page by page, with word and line breaks recovered from where the
//! glyphs are drawn.
//!
//! Many PDFs (the Debian Reference among them) draw each word as its own positioned run
//! with no space glyph in between; an extractor that only concatenates glyphs glues the
//! words together. [`PageText`] inserts a space wherever a run starts clear of the end of
//! the previous one, and a line break wherever it starts on another line.

use pdf_extract::{Document, MediaBox, Object, OutputDev, OutputError, Transform};

use super::super::{without_panics, ExtractError};
use super::{without_ligatures, PageTexts};

/// Reads every page of a loaded document.
pub(super) fn read(
    mut document: Document,
    pages: &mut PageTexts,
    is_cancelled: &dyn Fn() -> bool,
) -> Result<(), ExtractError> {
    drop_images(&mut document);
    for page in document.get_pages().into_keys() {
        if is_cancelled() {
            return Err(ExtractError::Cancelled);
        }
        match page_text(&document, page) {
            Ok(text) => pages.add(page, text)?,
            // One unreadable page (an odd font, a broken stream) should not cost the
            // user the rest of the document.
            Err(reason) => {
                log::warn!("PDF page {page} skipped: {reason}");
                pages.skip(page, reason);
            }
        }
    }
    Ok(())
}

/// Images carry no text, but pdf-extract inflates every XObject a page draws and parses
/// it as page content: a scanned page would cost hundreds of megabytes for nothing.
fn drop_images(document: &mut Document) {
    for object in document.objects.values_mut() {
        if let Object::Stream(stream) = object {
            if stream.dict.get(b"Subtype").and_then(Object::as_name).is_ok_and(|name| name == b"Image") {
                stream.dict.remove(b"Filter");
                stream.dict.remove(b"DecodeParms");
                stream.set_content(Vec::new());
            }
        }
    }
}

fn page_text(document: &Document, page: u32) -> Result<String, String> {
    let mut output = PageText::default();
    match without_panics(|| pdf_extract::output_doc_page(document, &mut output, page)) {
        Ok(Ok(())) => Ok(output.text.trim().to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(panic),
    }
}

/// Collects one page's text from the glyphs pdf-extract reports, in drawing order.
#[derive(Default)]
struct PageText {
    text: String,
    /// Where the previous glyph ended, in page space.
    last_end: f64,
    last_y: f64,
    /// Set at the start of each text-showing run: breaks are only inferred between runs,
    /// since glyphs inside one run are laid out by the font itself.
    run_starts: bool,
}

impl PageText {
    fn push_break(&mut self, separator: &str) {
        if !self.text.is_empty() && !self.text.ends_with(char::is_whitespace) {
            self.text.push_str(separator);
        } else if separator.contains('\n') && self.text.ends_with(' ') {
            self.text.pop();
            self.text.push_str(separator);
        }
    }
}

impl OutputDev for PageText {
    fn begin_page(
        &mut self,
        _page: u32,
        _media_box: &MediaBox,
        _art_box: Option<(f64, f64, f64, f64)>,
    ) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_page(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn output_character(
        &mut self,
        trm: &Transform,
        width: f64,
        _spacing: f64,
        font_size: f64,
        glyph: &str,
    ) -> Result<(), OutputError> {
        // The font size as drawn: the text matrix scales it (sqrt of the area scale keeps
        // this right for rotated text too).
        let scale = (trm.m11 * trm.m22 - trm.m12 * trm.m21).abs().sqrt();
        let size = match font_size * scale {
            size if size.is_finite() && size > 0.0 => size,
            _ => 1.0,
        };
        let (x, y) = (trm.m31, trm.m32);
        if self.run_starts && !self.text.is_empty() {
            let rise = (y - self.last_y).abs();
            if rise > size * 1.6 {
                self.push_break("\n\n");
            } else if rise > size * 0.5 {
                self.push_break("\n");
            } else if x > self.last_end + size * 0.1 || x < self.last_end - size * 0.5 {
                // A gap is a word break; so is a run starting well inside the previous
                // one, which happens where a table cell's text overflows into the next.
                self.push_break(" ");
            }
        }
        self.run_starts = false;
        self.text.push_str(without_ligatures(glyph));
        self.last_y = y;
        self.last_end = x + width * size;
        Ok(())
    }

    fn begin_word(&mut self) -> Result<(), OutputError> {
        self.run_starts = true;
        Ok(())
    }

    fn end_word(&mut self) -> Result<(), OutputError> {
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}
