//! PDF: the text layer, page by page, with word and line breaks recovered from where
//! the glyphs are drawn.
//!
//! Many PDFs (the Debian Reference among them) draw each word as its own positioned run
//! with no space glyph in between; an extractor that only concatenates glyphs glues the
//! words together. [`PageText`] inserts a space wherever a run starts clear of the end of
//! the previous one, and a line break wherever it starts on another line.

use std::collections::HashMap;

use pdf_extract::content::Content;
use pdf_extract::{Dictionary, Document, MediaBox, Object, ObjectId, OutputDev, OutputError, Stream, Transform};

use super::{too_many_chars, without_panics, ExtractError, ExtractLimits, ExtractedText, Section};

const NO_TEXT_LAYER: &str = "the PDF has no extractable text (scanned pages?); OCR is not supported";

pub(super) fn extract(
    bytes: &[u8],
    limits: &ExtractLimits,
    on_progress: &mut dyn FnMut(f32),
    is_cancelled: &dyn Fn() -> bool,
) -> Result<ExtractedText, ExtractError> {
    // Readers accept the header anywhere in the first KiB.
    if !bytes.windows(5).take(1024).any(|window| window == b"%PDF-") {
        return Err(ExtractError::Permanent("the file is not a PDF: it has no %PDF header".into()));
    }
    let mut document = without_panics(|| Document::load_mem(bytes))
        .map_err(|panic| ExtractError::Permanent(format!("the PDF could not be parsed: {panic}")))?
        .map_err(|e| ExtractError::Permanent(format!("the PDF is damaged or truncated: {e}")))?;
    if document.is_encrypted() && document.decrypt("").is_err() {
        return Err(ExtractError::Permanent(
            "the PDF is password-protected; remove the password and upload it again".into(),
        ));
    }

    drop_images(&mut document);
    check_form_nesting(&document)?;

    let page_numbers: Vec<u32> = document.get_pages().into_keys().collect();
    let page_count = page_numbers.len();
    if page_count == 0 {
        return Err(ExtractError::Permanent("the PDF has no pages".into()));
    }
    if page_count > limits.max_pages as usize {
        return Err(ExtractError::Permanent(format!(
            "the document has {page_count} pages, more than the page limit (max_pages = {})",
            limits.max_pages
        )));
    }

    let mut sections = Vec::new();
    let mut chars = 0;
    let mut first_failure = None;
    for (done, &page) in page_numbers.iter().enumerate() {
        if is_cancelled() {
            return Err(ExtractError::Cancelled);
        }
        match page_text(&document, page) {
            Ok(text) => {
                chars += text.chars().count();
                if chars > limits.max_chars {
                    return Err(too_many_chars(limits));
                }
                sections.push(Section { text, page: Some(page) });
            }
            // One unreadable page (an odd font, a broken stream) should not cost the
            // user the rest of the document.
            Err(reason) => {
                log::warn!("PDF page {page} skipped: {reason}");
                first_failure.get_or_insert(format!("page {page}: {reason}"));
            }
        }
        on_progress((done + 1) as f32 / page_count as f32);
    }

    if sections.iter().all(|s| s.text.trim().is_empty()) {
        return Err(ExtractError::Permanent(match first_failure {
            Some(reason) => format!("the PDF could not be parsed: {reason}"),
            None => NO_TEXT_LAYER.into(),
        }));
    }
    Ok(ExtractedText { sections, markdown: false, pages: Some(page_count as u32) })
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

/// Deeper form nesting than any honest PDF uses; the reader recurses once per level.
const MAX_FORM_DEPTH: usize = 32;

/// A page may draw a Form XObject, which may draw others. The reader follows them by
/// recursion, so a form that draws itself would overflow its stack: walk the drawing
/// graph first, each form once, and refuse loops and absurd depths.
fn check_form_nesting(document: &Document) -> Result<(), ExtractError> {
    let mut heights = HashMap::new();
    for page_id in document.get_pages().into_values() {
        let Ok(page) = document.get_dictionary(page_id) else { continue };
        let Ok(content) = document.get_page_content(page_id) else { continue };
        let resources = inherited_resources(document, page);
        form_height(document, &content, resources, &mut Vec::new(), &mut heights)?;
    }
    Ok(())
}

/// How many levels of forms a content stream draws below itself. `path` holds the forms
/// being drawn around it; `heights` remembers forms already walked, by form and by the
/// resources their names were looked up in (a form without its own inherits them).
fn form_height(
    document: &Document,
    content: &[u8],
    resources: Option<&Dictionary>,
    path: &mut Vec<ObjectId>,
    heights: &mut HashMap<(ObjectId, usize), usize>,
) -> Result<usize, ExtractError> {
    // A content stream that does not parse is the reader's to report, page by page.
    let Ok(content) = Content::decode(content) else { return Ok(0) };
    let mut height = 0;
    for operation in content.operations.iter().filter(|operation| operation.operator == "Do") {
        let Some(name) = operation.operands.first().and_then(|operand| operand.as_name().ok()) else { continue };
        let Some((id, form)) = form_named(document, resources, name) else { continue };
        if path.contains(&id) {
            return Err(ExtractError::Permanent(
                "the PDF is malformed: one of its forms draws itself, so it can never be read to the end".into(),
            ));
        }
        let own_resources = form.dict.get(b"Resources").ok().and_then(|r| resolve(document, r).as_dict().ok());
        let form_resources = own_resources.or(resources);
        let key = (id, form_resources.map_or(0, |r| r as *const Dictionary as usize));
        let below = match heights.get(&key) {
            Some(&below) => below,
            None => {
                path.push(id);
                let inner = form.decompressed_content().unwrap_or_else(|_| form.content.clone());
                let below = form_height(document, &inner, form_resources, path, heights)?;
                path.pop();
                heights.insert(key, below);
                below
            }
        };
        height = height.max(below + 1);
        if path.len() + height > MAX_FORM_DEPTH {
            return Err(ExtractError::Permanent(format!(
                "the PDF nests its forms more than {MAX_FORM_DEPTH} levels deep, more than any reader follows"
            )));
        }
    }
    Ok(height)
}

/// The Form XObject that `name` stands for in `resources`, with its object id.
fn form_named<'a>(
    document: &'a Document,
    resources: Option<&'a Dictionary>,
    name: &[u8],
) -> Option<(ObjectId, &'a Stream)> {
    let xobjects = resolve(document, resources?.get(b"XObject").ok()?).as_dict().ok()?;
    let id = xobjects.get(name).ok()?.as_reference().ok()?;
    let form = document.get_object(id).ok()?.as_stream().ok()?;
    let is_form = form.dict.get(b"Subtype").and_then(Object::as_name).is_ok_and(|subtype| subtype == b"Form");
    is_form.then_some((id, form))
}

/// A page's resources, its own or the nearest ancestor's in the page tree.
fn inherited_resources<'a>(document: &'a Document, page: &'a Dictionary) -> Option<&'a Dictionary> {
    let mut node = page;
    for _ in 0..64 {
        if let Ok(resources) = node.get(b"Resources") {
            return resolve(document, resources).as_dict().ok();
        }
        node = resolve(document, node.get(b"Parent").ok()?).as_dict().ok()?;
    }
    None
}

fn resolve<'a>(document: &'a Document, object: &'a Object) -> &'a Object {
    match object {
        Object::Reference(id) => document.get_object(*id).unwrap_or(object),
        _ => object,
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
