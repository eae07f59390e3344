//! Text extraction: turns an uploaded document's bytes into text, format by format.
//!
//! Every way a document can be unreadable ends as [`ExtractError::Permanent`] with a
//! sentence the user can act on; nothing here may panic or run unbounded on hostile input.

mod archive;
mod csv;
mod docx;
mod epub;
mod html;
mod image;
mod ocr;
mod odt;
mod pdf;
mod pptx;
mod spreadsheet;
mod text;
mod tool;

pub use image::{JPEG, PNG, TIFF, WEBP};
pub use ocr::{OcrEngine, OcrOptions, OcrPages};

use crate::config::ProcessingConfig;

/// How to read a document: the per-document limits (exceeding one fails the document
/// with a message naming its key) and the PDF reader.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Poppler's pdftotext, when installed; None reads PDFs with the built-in reader.
    pub pdftotext: Option<std::path::PathBuf>,
    /// With `pdftotext`: the kept helper that reads short PDFs (see `pdf/pdftext_helper`);
    /// None: pdftotext reads them all.
    pub pdftext_helper: Option<std::path::PathBuf>,
    pub max_pages: u32,
    pub max_chars: usize,
    pub max_docx_uncompressed_bytes: u64,
    pub max_docx_entries: usize,
    pub max_html_depth: usize,
    /// Pages without a text layer and images.
    pub ocr: OcrOptions,
}

impl From<&ProcessingConfig> for ExtractOptions {
    fn from(config: &ProcessingConfig) -> Self {
        ExtractOptions {
            pdftotext: find_program(&config.pdftotext),
            pdftext_helper: pdf::find_pdftext_helper(&config.pdftext_helper),
            max_pages: config.max_pages,
            max_chars: config.max_chars,
            max_docx_uncompressed_bytes: config.max_docx_uncompressed_bytes,
            max_docx_entries: config.max_docx_entries,
            max_html_depth: config.max_html_depth,
            ocr: OcrOptions::from(&config.ocr),
        }
    }
}

/// One piece of extracted text; `page` is 1-based for PDFs, None otherwise.
#[derive(Debug, Clone)]
pub struct Section {
    pub text: String,
    pub page: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct ExtractedText {
    pub sections: Vec<Section>,
    /// true when the text carries Markdown structure (Markdown input, HTML headings rendered
    /// as `#`), so chunking is markdown-aware
    pub markdown: bool,
    pub pages: Option<u32>,
    /// What the reader had to leave out, for the user (pages without a text layer
    /// when OCR is unavailable); the document still completes with the rest.
    pub warning: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The document cannot be processed, ever: the message is shown to the user as-is.
    #[error("{0}")]
    Permanent(String),
    #[error("the job was cancelled")]
    Cancelled,
}

pub const PDF: &str = "application/pdf";
pub const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
pub const HTML: &str = "text/html";
pub const MARKDOWN: &str = "text/markdown";
pub const PLAIN_TEXT: &str = "text/plain";
pub const CSV: &str = "text/csv";
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
pub const ODT: &str = "application/vnd.oasis.opendocument.text";
pub const ODS: &str = "application/vnd.oasis.opendocument.spreadsheet";
pub const EPUB: &str = "application/epub+zip";

/// Extracts the text of a document whose type was sniffed at upload.
///
/// `on_progress(fraction)` is called as extraction advances (per page for PDFs);
/// `is_cancelled()` is polled between pages and parts. Runs synchronously. The service
/// never calls it in its own process: the extractor process (`processing::extractor`)
/// does, under kernel limits, because no guard here can promise that a hostile file
/// cannot crash or hang a parser.
pub fn extract(
    content_type: &str,
    bytes: &[u8],
    limits: &ExtractOptions,
    on_progress: &mut dyn FnMut(f32),
    is_cancelled: &dyn Fn() -> bool,
) -> Result<ExtractedText, ExtractError> {
    extract_reporting_ocr(content_type, bytes, limits, on_progress, &mut |_| {}, is_cancelled)
}

/// As [`extract`], also telling `on_ocr_pages` how many pages OCR has recognised of
/// how many it will (OCR takes seconds a page, so users see each one).
pub fn extract_reporting_ocr(
    content_type: &str,
    bytes: &[u8],
    limits: &ExtractOptions,
    on_progress: &mut dyn FnMut(f32),
    on_ocr_pages: &mut dyn FnMut(OcrPages),
    is_cancelled: &dyn Fn() -> bool,
) -> Result<ExtractedText, ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::Permanent("the file is empty".into()));
    }
    // Tolerate parameters such as "; charset=utf-8" after the media type.
    let media_type = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let mut extracted = match media_type.as_str() {
        PDF => pdf::extract(bytes, limits, on_progress, on_ocr_pages, is_cancelled)?,
        PNG | JPEG | TIFF | WEBP => image::extract(&media_type, bytes, limits, on_progress, on_ocr_pages)?,
        DOCX => docx::extract(bytes, limits, on_progress, is_cancelled)?,
        HTML => html::extract(bytes, limits)?,
        MARKDOWN => text::extract(bytes, true)?,
        PLAIN_TEXT => text::extract(bytes, false)?,
        CSV => csv::extract(bytes, limits)?,
        XLSX => spreadsheet::extract(spreadsheet::Workbook::Xlsx, bytes, limits, on_progress, is_cancelled)?,
        ODS => spreadsheet::extract(spreadsheet::Workbook::Ods, bytes, limits, on_progress, is_cancelled)?,
        PPTX => pptx::extract(bytes, limits, on_progress, is_cancelled)?,
        ODT => odt::extract(bytes, limits, is_cancelled)?,
        EPUB => epub::extract(bytes, limits, on_progress, is_cancelled)?,
        _ => {
            return Err(ExtractError::Permanent(format!(
            "documents of type {content_type:?} are not supported (PDF, DOCX, XLSX, PPTX, ODT, ODS, EPUB, HTML, Markdown, plain text, CSV and PNG, JPEG, TIFF and WebP images are)"
        )))
        }
    };
    on_progress(1.0);

    // NUL cannot be stored in a PostgreSQL text column, and is never meaningful text.
    for section in &mut extracted.sections {
        section.text.retain(|c| c != '\0');
    }
    extracted.sections.retain(|section| !section.text.trim().is_empty());
    if extracted.sections.is_empty() {
        return Err(ExtractError::Permanent("the document contains no text (it is blank or whitespace only)".into()));
    }
    let chars: usize = extracted.sections.iter().map(|s| s.text.chars().count()).sum();
    if chars > limits.max_chars {
        return Err(too_many_chars(limits));
    }
    Ok(extracted)
}

/// The file `name` in the directory of this executable, when there is one.
pub(crate) fn beside_this_executable(name: &str) -> Option<std::path::PathBuf> {
    let executable = std::env::current_exe().ok()?;
    Some(executable.parent()?.join(name)).filter(|path| path.is_file())
}

/// `name` as a path, or found on PATH; None when empty or not found.
pub(crate) fn find_program(name: &str) -> Option<std::path::PathBuf> {
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    if name.contains('/') {
        return std::path::Path::new(name).is_file().then(|| name.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// The error for a document whose text outgrows `max_chars`; extractors that stream
/// raise it as soon as they cross the limit.
fn too_many_chars(limits: &ExtractOptions) -> ExtractError {
    ExtractError::Permanent(format!(
        "the extracted text exceeds the character limit (max_chars = {})",
        limits.max_chars
    ))
}

/// Runs a third-party parser, catching a panic as its message: hostile input must fail
/// one document, never the worker.
fn without_panics<T>(parse: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "internal parser error".into())
    })
}
