//! PDF: the text layer, page by page. Poppler reads it where it is installed (the
//! reference other tools are measured against): short documents by `docqueue-pdftext`,
//! a poppler program this sandboxed process keeps running, long ones by two
//! `pdftotext` programs in parallel; the built-in reader (pdf-extract) does elsewhere. Both sit behind the same checks: the header, damage,
//! passwords, the page limit, and form XObjects that draw themselves. Pages with no
//! text layer, or almost none (scans), are then rendered by pdftoppm and recognised by
//! OCR (`ocr`), each in its place among the others.

mod builtin;
mod forms;
mod pdftext_helper;
mod poppler;

use pdf_extract::{Dictionary, Document, Object, ObjectId};

use super::ocr::OcrPages;
use super::{too_many_chars, without_panics, ExtractError, ExtractOptions, ExtractedText, Section};

const NO_TEXT_LAYER: &str = "the PDF has no extractable text (scanned pages?)";
const PASSWORD_PROTECTED: &str = "the PDF is password-protected; remove the password and upload it again";
/// What poppler's readers say when poppler cannot open the document.
const POPPLER_CANNOT_READ: &str = "the PDF is damaged: poppler could not read it";

/// A page whose text layer has fewer letters and digits than this, and which draws an
/// image, is treated as scanned: a scan often carries a page number or a stamp as text,
/// and nothing else. A short page of real text (a title, a line of CJK) draws no image.
const MIN_TEXT_LAYER_CHARS: usize = 20;
/// How deep form XObjects are searched for an image.
const MAX_FORM_DEPTH: usize = 8;

/// The share of the extraction's progress given to reading text layers when OCR may
/// follow: OCR takes seconds a page where the text layer takes milliseconds.
const TEXT_LAYER_SHARE_BEFORE_OCR: f32 = 0.5;

pub(super) use pdftext_helper::find as find_pdftext_helper;

pub(super) fn extract(
    bytes: &[u8],
    options: &ExtractOptions,
    on_progress: &mut dyn FnMut(f32),
    on_ocr_pages: &mut dyn FnMut(OcrPages),
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

    let ocr_unavailable = options.ocr.pdf_ocr_unavailable();
    let text_layer_share = if ocr_unavailable.is_none() { TEXT_LAYER_SHARE_BEFORE_OCR } else { 1.0 };
    let mut text_layer_progress = |fraction: f32| on_progress(fraction * text_layer_share);
    let mut pages = PageTexts {
        sections: Vec::new(),
        chars: 0,
        done: 0,
        page_count,
        options,
        on_progress: &mut text_layer_progress,
        first_failure: None,
    };
    // The document the checks parsed is kept: finding scanned pages may need it.
    let checked_here = document.is_some();
    let checks = || if checked_here { Ok(None) } else { load_and_check(bytes).map(Some) };
    let read_by_helper = match (&options.pdftext_helper, &options.pdftotext) {
        (Some(helper), Some(_)) if page_count < poppler::PARALLEL_FROM_PAGES => {
            pdftext_helper::read(helper, bytes, &mut pages, checks)?
        }
        _ => None,
    };
    let read_by_poppler = match (read_by_helper, &options.pdftotext) {
        (Some(checked), _) => Some(checked),
        (None, Some(program)) => poppler::read(program, bytes, &mut pages, checks)?,
        (None, None) => None,
    };
    let document = match read_by_poppler {
        Some(checked) => document.or(checked),
        None => {
            let document = match document {
                Some(document) => document,
                None => load_and_check(bytes)?,
            };
            // The built-in reader drops the document's images as it reads.
            builtin::read(document, &mut pages, is_cancelled)?;
            None
        }
    };
    let PageTexts { mut sections, first_failure, chars, .. } = pages;
    sections.sort_by_key(|section| section.page);
    let scanned = scanned_pages(bytes, document.as_ref(), &sections, page_count);
    let mut warning = None;
    if !scanned.is_empty() {
        match ocr_unavailable {
            // A mixed PDF keeps its text pages; a wholly scanned one cannot be read.
            Some(reason) => {
                if sections.iter().all(|s| s.text.trim().is_empty()) {
                    return Err(ExtractError::Permanent(match first_failure {
                        Some(failure) => format!("the PDF could not be parsed: {failure}"),
                        None => format!("{NO_TEXT_LAYER} and {reason}"),
                    }));
                }
                warning = Some(format!(
                    "{} of its {page_count} pages have no text layer and were not read: {reason}",
                    scanned.len()
                ));
            }
            None => {
                let mut on_ocr_progress = |recognised: OcrPages| {
                    let ocr_share =
                        (1.0 - TEXT_LAYER_SHARE_BEFORE_OCR) * recognised.done as f32 / recognised.total as f32;
                    on_progress(TEXT_LAYER_SHARE_BEFORE_OCR + ocr_share);
                    on_ocr_pages(recognised);
                };
                recognise_pages(bytes, options, &scanned, &mut sections, chars, &mut on_ocr_progress)?;
            }
        }
    }
    if sections.iter().all(|s| s.text.trim().is_empty()) {
        return Err(ExtractError::Permanent(match first_failure {
            Some(reason) => format!("the PDF could not be parsed: {reason}"),
            None if scanned.is_empty() => NO_TEXT_LAYER.into(),
            None => "the PDF has no text: its pages have no text layer and OCR found no text on them".into(),
        }));
    }
    Ok(ExtractedText { sections, markdown: false, pages: Some(page_count), warning })
}

/// The pages to recognise: those with no text at all, and those with almost none that
/// draw an image. `document` is the parsed PDF when reading left it whole.
fn scanned_pages(bytes: &[u8], document: Option<&Document>, sections: &[Section], page_count: u32) -> Vec<u32> {
    let candidates: Vec<u32> = (1..=page_count).filter(|&page| !has_text_layer(sections, page)).collect();
    if candidates.iter().all(|&page| !has_any_text(sections, page)) {
        return candidates;
    }
    let parsed;
    let document = match document {
        Some(document) => document,
        None => match load_and_check(bytes) {
            Ok(document) => {
                parsed = document;
                &parsed
            }
            Err(_) => return candidates,
        },
    };
    let pages = document.get_pages();
    candidates
        .into_iter()
        .filter(|page| !has_any_text(sections, *page) || pages.get(page).is_none_or(|&id| draws_an_image(document, id)))
        .collect()
}

fn has_any_text(sections: &[Section], page: u32) -> bool {
    sections
        .iter()
        .filter(|section| section.page == Some(page))
        .any(|section| section.text.chars().any(char::is_alphanumeric))
}

/// Whether the page's resources (its own or inherited, and those of the forms it
/// draws) hold an image XObject.
fn draws_an_image(document: &Document, page: ObjectId) -> bool {
    let Ok((own, inherited)) = document.get_page_resources(page) else { return true };
    let mut seen = std::collections::HashSet::new();
    own.into_iter()
        .chain(inherited.into_iter().filter_map(|id| document.get_dictionary(id).ok()))
        .any(|resources| resources_hold_an_image(document, resources, 0, &mut seen))
}

fn resources_hold_an_image(
    document: &Document,
    resources: &Dictionary,
    depth: usize,
    seen: &mut std::collections::HashSet<ObjectId>,
) -> bool {
    let Some(xobjects) = resources
        .get(b"XObject")
        .ok()
        .and_then(|object| document.dereference(object).ok())
        .and_then(|(_, object)| object.as_dict().ok())
    else {
        return false;
    };
    xobjects.iter().any(|(_, value)| {
        let Ok(id) = value.as_reference() else { return false };
        let Some(stream) = document.get_object(id).ok().and_then(|object| object.as_stream().ok()) else {
            return false;
        };
        match stream.dict.get(b"Subtype").and_then(Object::as_name) {
            Ok(b"Image") => true,
            Ok(b"Form") if depth < MAX_FORM_DEPTH && seen.insert(id) => stream
                .dict
                .get(b"Resources")
                .ok()
                .and_then(|object| document.dereference(object).ok())
                .and_then(|(_, object)| object.as_dict().ok())
                .is_some_and(|inner| resources_hold_an_image(document, inner, depth + 1, seen)),
            _ => false,
        }
    })
}

fn has_text_layer(sections: &[Section], page: u32) -> bool {
    sections.iter().filter(|section| section.page == Some(page)).any(|section| {
        section.text.chars().filter(|c| c.is_alphanumeric()).take(MIN_TEXT_LAYER_CHARS).count() >= MIN_TEXT_LAYER_CHARS
    })
}

/// Renders and recognises each page of `scanned`, replacing what text layer it had;
/// `chars` is the length of the text so far, held to `max_chars` with the new text.
fn recognise_pages(
    bytes: &[u8],
    options: &ExtractOptions,
    scanned: &[u32],
    sections: &mut Vec<Section>,
    mut chars: usize,
    on_ocr_progress: &mut dyn FnMut(OcrPages),
) -> Result<(), ExtractError> {
    let ocr = &options.ocr;
    let total = scanned.len() as u32;
    if total > ocr.max_pages {
        return Err(ExtractError::Permanent(format!(
            "the PDF has {total} pages without a text layer, more than OCR reads (processing.ocr.max_pages_ocr = {})",
            ocr.max_pages
        )));
    }
    // Page sizes come from the document's own page tree; one that cannot be loaded was
    // already refused by the checks, so None here only means "render at the set DPI".
    let document = without_panics(|| Document::load_mem(bytes)).ok().and_then(Result::ok);
    let page_ids = document.as_ref().map(Document::get_pages).unwrap_or_default();
    on_ocr_progress(OcrPages { done: 0, total });
    for (done, &page) in scanned.iter().enumerate() {
        let size = document.as_ref().zip(page_ids.get(&page)).and_then(|(doc, &id)| page_size_points(doc, id));
        let dpi = dpi_within_pixel_limit(ocr.dpi, size, ocr.max_image_pixels);
        if dpi < ocr.dpi {
            log::info!("PDF page {page} rendered at {dpi} DPI, not {}: processing.ocr.max_image_pixels", ocr.dpi);
        }
        let raster = ocr.render_pdf_page(bytes, page, dpi)?;
        let text = ocr.recognise(&raster, Some(dpi), &format!("page {page} of the PDF"))?;
        drop(raster);
        let text = text.trim().to_string();
        chars += text.chars().count();
        if chars > options.max_chars {
            return Err(too_many_chars(options));
        }
        sections.retain(|section| section.page != Some(page));
        sections.push(Section { text, page: Some(page) });
        on_ocr_progress(OcrPages { done: done as u32 + 1, total });
    }
    sections.sort_by_key(|section| section.page);
    Ok(())
}

/// The page's MediaBox (its own or inherited from the page tree), in points.
fn page_size_points(document: &Document, page: ObjectId) -> Option<(f64, f64)> {
    let mut node = document.get_dictionary(page).ok()?;
    // The page tree is acyclic in a sound file; the bound stops a looping one.
    for _ in 0..64 {
        if let Ok(media_box) = node.get_deref(b"MediaBox", document).and_then(Object::as_array) {
            let corners: Vec<f64> = media_box
                .iter()
                .filter_map(|corner| document.dereference(corner).ok()?.1.as_float().ok())
                .map(f64::from)
                .collect();
            return match corners[..] {
                [x0, y0, x1, y1] => Some(((x1 - x0).abs(), (y1 - y0).abs())),
                _ => None,
            };
        }
        node = node.get_deref(b"Parent", document).and_then(Object::as_dict).ok()?;
    }
    None
}

/// The configured DPI, lowered as far as needed for the page's raster to stay within
/// `max_pixels` (a poster-sized page at 300 DPI would be billions of pixels).
fn dpi_within_pixel_limit(dpi: u32, size_points: Option<(f64, f64)>, max_pixels: u64) -> u32 {
    let Some((width, height)) = size_points else { return dpi };
    let pixels_at = |dpi: f64| (width / 72.0 * dpi) * (height / 72.0 * dpi);
    if pixels_at(f64::from(dpi)) <= max_pixels as f64 {
        return dpi;
    }
    let fitting = f64::from(dpi) * (max_pixels as f64 / pixels_at(f64::from(dpi))).sqrt();
    (fitting.floor() as u32).clamp(1, dpi)
}

/// Loads the whole document and refuses what no reader should read: damage the
/// loader cannot get past, a password, forms that draw themselves.
fn load_and_check(bytes: &[u8]) -> Result<Document, ExtractError> {
    let mut document = without_panics(|| Document::load_mem(bytes))
        .map_err(|panic| ExtractError::Permanent(format!("the PDF could not be parsed: {panic}")))?
        .map_err(|e| ExtractError::Permanent(format!("the PDF is damaged or truncated: {e}")))?;
    if document.is_encrypted() && document.decrypt("").is_err() {
        return Err(ExtractError::Permanent(PASSWORD_PROTECTED.into()));
    }
    forms::check_form_nesting(&document)?;
    Ok(document)
}

/// What the checks running beside a reader returned, once their thread has ended: a
/// crash in them fails the document.
fn checks_result<T>(checking: std::thread::ScopedJoinHandle<'_, Result<T, ExtractError>>) -> Result<T, ExtractError> {
    checking
        .join()
        .unwrap_or_else(|_| Err(ExtractError::Permanent("the PDF could not be parsed (its checks crashed)".into())))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_too_large_for_the_pixel_limit_is_rendered_at_a_lower_dpi() {
        let letter = Some((612.0, 792.0));
        assert_eq!(dpi_within_pixel_limit(300, letter, 50_000_000), 300);
        assert_eq!(dpi_within_pixel_limit(300, None, 50_000_000), 300);
        // A 200-inch square page: 60,000 pixels a side at 300 DPI.
        let poster = Some((14_400.0, 14_400.0));
        let dpi = dpi_within_pixel_limit(300, poster, 50_000_000);
        assert_eq!(dpi, 35, "200 in × 35 DPI = 7,000 pixels a side, 49 million in all");
    }

    #[test]
    fn a_page_with_only_a_page_number_as_text_counts_as_scanned() {
        let sections = vec![
            Section { text: "12".into(), page: Some(1) },
            Section { text: "A page with a real text layer on it.".into(), page: Some(2) },
        ];
        assert!(!has_text_layer(&sections, 1));
        assert!(has_text_layer(&sections, 2));
        assert!(!has_text_layer(&sections, 3), "a page the reader skipped");
    }
}
