//! HTML: the visible text of the page, with headings kept as Markdown `#` lines so the
//! chunker can split on them. Navigation, headers, footers, scripts and styles are hidden
//! through html2text's CSS support wherever the markup tells them apart.

use html2text::render::TextDecorator;

use super::{text, without_panics, ExtractError, ExtractedText, Section};

/// Page furniture by element, ARIA role, and the class names the common generators
/// (Sphinx, DocBook, MkDocs, WordPress) give it.
const BOILERPLATE_CSS: &str = "
script, style, noscript, template, nav, header, footer, aside, form, button, dialog,
[role=navigation], [role=banner], [role=contentinfo], [role=search], [aria-hidden=true], [hidden],
.navheader, .navfooter, .sphinxsidebar, .related, .headerlink, .footer, .sidebar, .navbar,
.breadcrumb, .breadcrumbs, .skip-link, .cookie-banner { display: none }
";

/// Lines are never wrapped: a sentence must stay on one line for search and citation.
const NO_WRAP_WIDTH: usize = 1 << 20;

pub(super) fn extract(bytes: &[u8]) -> Result<ExtractedText, ExtractError> {
    let html = text::decode(bytes)?;
    let unparsable = |reason: String| ExtractError::Permanent(format!("the HTML could not be parsed: {reason}"));
    // Raw mode reads a table cell by cell: laid-out columns would wrap a cell's sentence
    // across lines interleaved with its neighbours'.
    let config = html2text::config::with_decorator(MarkdownStructure)
        .raw_mode(true)
        .add_css(BOILERPLATE_CSS)
        .map_err(|e| unparsable(e.to_string()))?;
    let rendered = without_panics(|| config.string_from_read(html.as_bytes(), NO_WRAP_WIDTH))
        .map_err(unparsable)?
        .map_err(|e| unparsable(e.to_string()))?;
    let text = rendered.lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    Ok(ExtractedText { sections: vec![Section { text, page: None }], markdown: true, pages: None })
}

/// Renders headings, lists and quotes as Markdown and everything inline as bare text:
/// link brackets or emphasis marks inside a sentence would only disturb search.
#[derive(Clone)]
struct MarkdownStructure;

impl TextDecorator for MarkdownStructure {
    type Annotation = ();

    fn decorate_link_start(&mut self, _url: &str) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_link_end(&mut self) -> String {
        String::new()
    }
    fn decorate_em_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_em_end(&self) -> String {
        String::new()
    }
    fn decorate_strong_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_strong_end(&self) -> String {
        String::new()
    }
    fn decorate_strikeout_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_strikeout_end(&self) -> String {
        String::new()
    }
    fn decorate_code_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_code_end(&self) -> String {
        String::new()
    }
    fn decorate_preformat_first(&self) {}
    fn decorate_preformat_cont(&self) {}
    fn decorate_image(&mut self, _src: &str, title: &str) -> (String, ()) {
        (title.to_string(), ())
    }
    fn header_prefix(&self, level: usize) -> String {
        "#".repeat(level) + " "
    }
    fn quote_prefix(&self) -> String {
        "> ".into()
    }
    fn unordered_item_prefix(&self) -> String {
        "- ".into()
    }
    fn ordered_item_prefix(&self, i: i64) -> String {
        format!("{i}. ")
    }
    fn make_subblock_decorator(&self) -> Self {
        MarkdownStructure
    }
    fn decorate_superscript_start(&self) -> (String, ()) {
        (String::new(), ())
    }
    fn decorate_superscript_end(&self) -> String {
        String::new()
    }
}
