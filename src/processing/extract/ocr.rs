//! OCR with Tesseract, the engine OCRmyPDF and Unstructured use, driven as OCRmyPDF
//! drives it: the `tesseract` executable, run per page from inside the extractor
//! process. A program (not a linked library) inherits the extractor's kernel limits,
//! can be killed on its own when a page takes too long, and keeps Tesseract's and
//! Leptonica's C++ image decoders out of our address space; the image goes in on stdin
//! and the text comes back on stdout, since the extractor may not write files.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::tool::{die_like, run_piped, ToolError};
use super::{find_program, ExtractError};
use crate::config::OcrConfig;

/// Which OCR engine the extractor may use, decided at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OcrEngine {
    Tesseract(PathBuf),
    /// `processing.ocr.enabled = false`.
    Disabled,
    /// `processing.ocr.tesseract` was not found.
    NotInstalled,
}

#[derive(Debug, Clone)]
pub struct OcrOptions {
    pub engine: OcrEngine,
    /// Poppler's pdftoppm, which renders PDF pages for the engine.
    pub pdftoppm: Option<PathBuf>,
    /// Tesseract's `-l`: codes joined by `+`.
    pub languages: String,
    pub tessdata_dir: Option<PathBuf>,
    pub dpi: u32,
    pub max_pages: u32,
    pub page_timeout: Duration,
    pub max_image_pixels: u64,
}

impl From<&OcrConfig> for OcrOptions {
    fn from(config: &OcrConfig) -> Self {
        let engine = match (config.enabled, find_program(&config.tesseract)) {
            (Some(false), _) => OcrEngine::Disabled,
            (_, Some(path)) => OcrEngine::Tesseract(path),
            (_, None) => OcrEngine::NotInstalled,
        };
        let tessdata_dir = config.tessdata_dir.trim();
        OcrOptions {
            engine,
            pdftoppm: find_program(&config.pdftoppm),
            languages: config.languages.clone(),
            tessdata_dir: (!tessdata_dir.is_empty()).then(|| tessdata_dir.into()),
            dpi: config.dpi,
            max_pages: config.max_pages_ocr,
            page_timeout: Duration::from_secs(config.page_timeout_secs),
            max_image_pixels: config.max_image_pixels,
        }
    }
}

/// How far OCR has come in one document: `done` of `total` pages recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OcrPages {
    pub done: u32,
    pub total: u32,
}

impl OcrOptions {
    /// Why images cannot be recognised here, as the end of a sentence for the user;
    /// None when they can.
    pub fn image_ocr_unavailable(&self) -> Option<String> {
        match &self.engine {
            OcrEngine::Tesseract(_) => None,
            OcrEngine::Disabled => Some("OCR is turned off on this server (processing.ocr.enabled = false)".into()),
            OcrEngine::NotInstalled => Some(format!(
                "OCR is not available: Tesseract is not installed on this server (install the {} packages, or \
                 set processing.ocr.tesseract)",
                self.tesseract_packages()
            )),
        }
    }

    /// As `image_ocr_unavailable`, for PDF pages, which also need pdftoppm.
    pub fn pdf_ocr_unavailable(&self) -> Option<String> {
        self.image_ocr_unavailable().or_else(|| {
            self.pdftoppm.is_none().then(|| {
                "OCR is not available: pdftoppm, which renders pages for it, is not installed on this server \
                 (install the poppler-utils package, or set processing.ocr.pdftoppm)"
                    .to_string()
            })
        })
    }

    /// The Debian packages for the engine and the configured languages.
    fn tesseract_packages(&self) -> String {
        let languages = self.languages.split('+').filter(|code| !code.is_empty());
        let packages: Vec<String> = std::iter::once("tesseract-ocr".to_string())
            .chain(languages.map(|code| format!("tesseract-ocr-{}", code.to_ascii_lowercase().replace('_', "-"))))
            .collect();
        packages.join(" and ")
    }

    /// Recognises the text of an image (PNG, JPEG, TIFF, WebP, PGM). `dpi` is the
    /// resolution it was rendered at, when known (a raster without one makes Tesseract
    /// guess, badly). A multi-page TIFF comes back with its pages separated by form feeds.
    ///
    /// `image` must have been checked to start with the signature of one of those
    /// formats: Tesseract reads stdin it does not recognise as an image as a list of
    /// file names to open and recognise, which would read the machine's files into the
    /// user's document.
    pub(super) fn recognise(&self, image: &[u8], dpi: Option<u32>, what: &str) -> Result<String, ExtractError> {
        let OcrEngine::Tesseract(tesseract) = &self.engine else {
            let reason = self.image_ocr_unavailable().unwrap_or_default();
            return Err(ExtractError::Permanent(format!("{what} cannot be read: {reason}")));
        };
        let mut command = Command::new(tesseract);
        command.args(["stdin", "stdout", "-l", &self.languages]);
        if let Some(dir) = &self.tessdata_dir {
            command.arg("--tessdata-dir").arg(dir);
        }
        if let Some(dpi) = dpi {
            command.args(["--dpi", &dpi.to_string()]);
        }
        // One thread: workers already run documents in parallel, and each OpenMP thread
        // would reserve its own malloc arena out of the extractor's address-space limit.
        command.env("OMP_THREAD_LIMIT", "1");
        match run_piped(command, image, self.page_timeout) {
            Ok(text) => Ok(String::from_utf8_lossy(&text).into_owned()),
            Err(ToolError::Signal(signal)) => die_like("tesseract", signal),
            Err(ToolError::TimedOut) => Err(self.page_timed_out(what)),
            Err(ToolError::NotStarted(err)) => Err(ExtractError::Permanent(format!(
                "{what} cannot be read: Tesseract ({}) could not be started: {err}",
                tesseract.display()
            ))),
            Err(ToolError::Failed { stderr, .. }) if stderr.contains("Failed loading language") => {
                Err(ExtractError::Permanent(format!(
                    "{what} cannot be read: a language of processing.ocr.languages ({:?}) is not installed on this \
                     server (install the {} packages)",
                    self.languages,
                    self.tesseract_packages()
                )))
            }
            Err(ToolError::Failed { stderr, .. }) => Err(ExtractError::Permanent(format!(
                "{what} could not be recognised: {}",
                last_line(&stderr).unwrap_or("Tesseract failed")
            ))),
        }
    }

    /// Renders one page of a PDF in grey at `dpi` (PGM: uncompressed, so neither side
    /// spends time on PNG).
    pub(super) fn render_pdf_page(&self, pdf: &[u8], page: u32, dpi: u32) -> Result<Vec<u8>, ExtractError> {
        let what = format!("page {page}");
        let Some(pdftoppm) = &self.pdftoppm else {
            let reason = self.pdf_ocr_unavailable().unwrap_or_default();
            return Err(ExtractError::Permanent(format!("{what} cannot be read: {reason}")));
        };
        let mut command = Command::new(pdftoppm);
        let page_number = page.to_string();
        // -singlefile without an output root: the one page goes to stdout.
        command.args([
            "-q",
            "-gray",
            "-singlefile",
            "-r",
            &dpi.to_string(),
            "-f",
            &page_number,
            "-l",
            &page_number,
            "-",
        ]);
        match run_piped(command, pdf, self.page_timeout) {
            Ok(raster) if raster.starts_with(b"P5") => Ok(raster),
            Ok(_) => Err(ExtractError::Permanent(format!("{what} of the PDF could not be rendered for OCR"))),
            Err(ToolError::Signal(signal)) => die_like("pdftoppm", signal),
            Err(ToolError::TimedOut) => Err(self.page_timed_out(&what)),
            Err(ToolError::NotStarted(err)) => Err(ExtractError::Permanent(format!(
                "{what} cannot be read: pdftoppm ({}) could not be started: {err}",
                pdftoppm.display()
            ))),
            Err(ToolError::Failed { stderr, .. }) => Err(ExtractError::Permanent(format!(
                "{what} of the PDF could not be rendered for OCR: {}",
                last_line(&stderr).unwrap_or("pdftoppm failed")
            ))),
        }
    }

    fn page_timed_out(&self, what: &str) -> ExtractError {
        ExtractError::Permanent(format!(
            "recognising {what} took longer than the OCR time limit per page (processing.ocr.page_timeout_secs = {})",
            self.page_timeout.as_secs()
        ))
    }
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|line| !line.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(engine: OcrEngine, languages: &str) -> OcrOptions {
        OcrOptions {
            engine,
            pdftoppm: None,
            languages: languages.into(),
            tessdata_dir: None,
            dpi: 300,
            max_pages: 10,
            page_timeout: Duration::from_secs(10),
            max_image_pixels: 1000,
        }
    }

    #[test]
    fn a_missing_engine_is_explained_by_the_debian_packages_to_install() {
        let reason = options(OcrEngine::NotInstalled, "eng+chi_sim").image_ocr_unavailable().unwrap();
        assert!(reason.contains("install the tesseract-ocr and tesseract-ocr-eng and tesseract-ocr-chi-sim packages"));
        let disabled = options(OcrEngine::Disabled, "eng").image_ocr_unavailable().unwrap();
        assert!(disabled.contains("processing.ocr.enabled = false"), "{disabled}");
    }

    #[test]
    fn pdf_pages_also_need_pdftoppm() {
        let options = options(OcrEngine::Tesseract("/usr/bin/tesseract".into()), "eng");
        assert_eq!(options.image_ocr_unavailable(), None);
        assert!(options.pdf_ocr_unavailable().unwrap().contains("poppler-utils"));
    }
}
