//! The extractor process's command line: `<program> extract` and the limits of
//! `ExtractOptions` as flags. The workers write it (`arguments`); the two programs that
//! read it parse its flags with `ExtractArgs`: `docqueue-extract` (src/bin, through
//! `ExtractorProgram`), which links only what reading a document needs and so starts in
//! about a millisecond, and `docqueue extract`, for an installation that has only the
//! one executable.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::processing::extract::{ExtractOptions, OcrEngine, OcrOptions};

/// The subcommand both programs take, so that either can be the extractor.
const SUBCOMMAND: &str = "extract";

/// docqueue-extract's whole command line.
#[derive(clap::Parser, Debug)]
#[command(name = "docqueue-extract", version, about = "Reads uploaded documents for docqueue's workers.")]
pub struct ExtractorProgram {
    #[command(subcommand)]
    command: ExtractorCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ExtractorCommand {
    /// Read one request line and document from stdin at a time, write its text to
    /// stdout as JSON-line frames.
    Extract(ExtractArgs),
}

impl ExtractorProgram {
    /// The limits the command line gives.
    pub fn limits(self) -> ExtractOptions {
        let ExtractorCommand::Extract(args) = self.command;
        ExtractOptions::from(args)
    }
}

#[derive(clap::Args, Debug)]
pub struct ExtractArgs {
    /// Poppler's pdftotext; without it PDFs are read by the built-in reader.
    #[arg(long)]
    pdftotext: Option<PathBuf>,
    /// docqueue-pdftext, kept running for short PDFs; without it pdftotext reads them.
    #[arg(long)]
    pdftext_helper: Option<PathBuf>,
    #[arg(long)]
    max_pages: u32,
    #[arg(long)]
    max_chars: usize,
    #[arg(long)]
    max_docx_uncompressed_bytes: u64,
    #[arg(long)]
    max_docx_entries: usize,
    #[arg(long)]
    max_html_depth: usize,
    #[command(flatten)]
    ocr: OcrArgs,
}

/// How the extractor runs OCR (`processing.ocr`, resolved by the server at start-up).
#[derive(clap::Args, Debug)]
struct OcrArgs {
    /// The tesseract executable; without it, OCR is unavailable.
    #[arg(long)]
    tesseract: Option<PathBuf>,
    /// OCR was turned off (`processing.ocr.enabled = false`), rather than not found.
    #[arg(long)]
    ocr_disabled: bool,
    #[arg(long)]
    pdftoppm: Option<PathBuf>,
    #[arg(long)]
    ocr_languages: String,
    #[arg(long)]
    tessdata_dir: Option<PathBuf>,
    #[arg(long)]
    ocr_dpi: u32,
    #[arg(long)]
    max_pages_ocr: u32,
    #[arg(long)]
    ocr_page_timeout_secs: u64,
    #[arg(long)]
    max_image_pixels: u64,
}

impl From<ExtractArgs> for ExtractOptions {
    fn from(args: ExtractArgs) -> Self {
        let ocr = args.ocr;
        let engine = match (ocr.tesseract, ocr.ocr_disabled) {
            (_, true) => OcrEngine::Disabled,
            (Some(path), false) => OcrEngine::Tesseract(path),
            (None, false) => OcrEngine::NotInstalled,
        };
        ExtractOptions {
            pdftotext: args.pdftotext,
            pdftext_helper: args.pdftext_helper,
            max_pages: args.max_pages,
            max_chars: args.max_chars,
            max_docx_uncompressed_bytes: args.max_docx_uncompressed_bytes,
            max_docx_entries: args.max_docx_entries,
            max_html_depth: args.max_html_depth,
            ocr: OcrOptions {
                engine,
                pdftoppm: ocr.pdftoppm,
                languages: ocr.ocr_languages,
                tessdata_dir: ocr.tessdata_dir,
                dpi: ocr.ocr_dpi,
                max_pages: ocr.max_pages_ocr,
                page_timeout: std::time::Duration::from_secs(ocr.ocr_page_timeout_secs),
                max_image_pixels: ocr.max_image_pixels,
            },
        }
    }
}

/// The subcommand and flags that give an extractor process `limits`.
pub fn arguments(limits: &ExtractOptions) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![SUBCOMMAND.into()];
    let mut flag = |name: &str, value: OsString| {
        args.push(format!("--{name}").into());
        args.push(value);
    };
    flag("max-pages", limits.max_pages.to_string().into());
    flag("max-chars", limits.max_chars.to_string().into());
    flag("max-docx-uncompressed-bytes", limits.max_docx_uncompressed_bytes.to_string().into());
    flag("max-docx-entries", limits.max_docx_entries.to_string().into());
    flag("max-html-depth", limits.max_html_depth.to_string().into());
    if let Some(pdftotext) = &limits.pdftotext {
        flag("pdftotext", pdftotext.into());
    }
    if let Some(helper) = &limits.pdftext_helper {
        flag("pdftext-helper", helper.into());
    }
    let ocr = &limits.ocr;
    if let OcrEngine::Tesseract(tesseract) = &ocr.engine {
        flag("tesseract", tesseract.into());
    }
    if let Some(pdftoppm) = &ocr.pdftoppm {
        flag("pdftoppm", pdftoppm.into());
    }
    if let Some(tessdata_dir) = &ocr.tessdata_dir {
        flag("tessdata-dir", tessdata_dir.into());
    }
    flag("ocr-languages", ocr.languages.clone().into());
    flag("ocr-dpi", ocr.dpi.to_string().into());
    flag("max-pages-ocr", ocr.max_pages.to_string().into());
    flag("ocr-page-timeout-secs", ocr.page_timeout.as_secs().to_string().into());
    flag("max-image-pixels", ocr.max_image_pixels.to_string().into());
    if ocr.engine == OcrEngine::Disabled {
        args.push("--ocr-disabled".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn read_back(limits: &ExtractOptions) -> ExtractOptions {
        let line = std::iter::once(OsString::from("docqueue-extract")).chain(arguments(limits));
        ExtractorProgram::try_parse_from(line).expect("the command line parses").limits()
    }

    #[test]
    fn the_command_line_written_for_an_extractor_reads_back_as_the_same_limits() {
        let ocr = OcrOptions {
            engine: OcrEngine::Tesseract("/usr/bin/tesseract".into()),
            pdftoppm: Some("/usr/bin/pdftoppm".into()),
            languages: "eng+fra".into(),
            tessdata_dir: Some("/usr/share/tessdata dir".into()),
            dpi: 300,
            max_pages: 7,
            page_timeout: std::time::Duration::from_secs(42),
            max_image_pixels: 123_456_789,
        };
        let limits = ExtractOptions {
            pdftotext: Some("/usr/bin/pdftotext".into()),
            pdftext_helper: Some("/opt/docqueue/docqueue-pdftext".into()),
            max_pages: 500,
            max_chars: 2_000_000,
            max_docx_uncompressed_bytes: 1 << 28,
            max_docx_entries: 4096,
            max_html_depth: 300,
            ocr,
        };
        assert_eq!(format!("{:?}", read_back(&limits)), format!("{limits:?}"));
        for engine in [OcrEngine::Disabled, OcrEngine::NotInstalled] {
            let none = ExtractOptions {
                pdftotext: None,
                pdftext_helper: None,
                ocr: OcrOptions { engine, pdftoppm: None, tessdata_dir: None, ..limits.ocr.clone() },
                ..limits.clone()
            };
            assert_eq!(format!("{:?}", read_back(&none)), format!("{none:?}"));
        }
    }
}
