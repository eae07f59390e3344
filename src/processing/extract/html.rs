//! HTML: the visible text of the page, with headings kept as Markdown `#` lines so the
//! chunker can split on them. Navigation, headers, footers, scripts and styles are hidden
//! through html2text's CSS support wherever the markup tells them apart.

use html2text::render::TextDecorator;

use super::{text, without_panics, ExtractError, ExtractOptions, ExtractedText, Section};

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

pub(super) fn extract(bytes: &[u8], limits: &ExtractOptions) -> Result<ExtractedText, ExtractError> {
    let html = text::decode(bytes)?;
    // The tree builder's scope checks walk the stack of open elements, so its cost grows
    // with the square of the nesting depth: refuse absurd depths before parsing.
    if deepest_nesting(&html, limits.max_html_depth) > limits.max_html_depth {
        return Err(ExtractError::Permanent(format!(
            "the HTML nests its elements deeper than the nesting limit (processing.max_html_depth = {})",
            limits.max_html_depth
        )));
    }
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
    Ok(ExtractedText { sections: vec![Section { text, page: None }], markdown: true, pages: None, warning: None })
}

/// Elements that never hold others, or whose end tag is optional and usually left out
/// (the parser closes them itself): none of them deepens the tree.
const NOT_NESTING: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr", "p",
    "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot", "colgroup", "rb", "rt", "rp",
    "html", "head", "body",
];
/// Elements whose content is raw text: a `<` inside them opens no element.
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"];

/// How deep the markup nests its elements, counting open tags against end tags in one
/// linear pass; it stops counting once past `stop_after`. An approximation of the
/// parser's tree that errs on the shallow side, so honest pages are never refused.
fn deepest_nesting(html: &str, stop_after: usize) -> usize {
    let bytes = html.as_bytes();
    let (mut at, mut depth, mut deepest) = (0, 0usize, 0usize);
    while let Some(offset) = bytes[at..].iter().position(|&b| b == b'<') {
        at += offset + 1;
        let rest = &bytes[at..];
        if rest.starts_with(b"!--") {
            at += find(rest, b"-->").map_or(rest.len(), |end| end + 3);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = at + usize::from(closing);
        let name_len = bytes[name_start..].iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'-').count();
        if name_len == 0 {
            continue;
        }
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        let (tag_end, self_closing) = end_of_tag(bytes, name_start + name_len);
        at = tag_end;
        if NOT_NESTING.contains(&name.as_str()) || self_closing {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else if RAW_TEXT.contains(&name.as_str()) {
            let close = format!("</{name}");
            at += find_ignoring_case(&bytes[at..], close.as_bytes()).unwrap_or(bytes.len() - at);
        } else {
            depth += 1;
            deepest = deepest.max(depth);
            if deepest > stop_after {
                break;
            }
        }
    }
    deepest
}

/// Where a tag that started before `from` ends (past its `>`, skipping quoted attribute
/// values), and whether it was written self-closing (`/>`).
fn end_of_tag(bytes: &[u8], from: usize) -> (usize, bool) {
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return (i + 1, i > from && bytes[i - 1] == b'/'),
            _ => {}
        }
    }
    (bytes.len(), false)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn find_ignoring_case(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window.eq_ignore_ascii_case(needle))
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
