//! EPUB: the chapters in the order of the book's spine, each read by the HTML reader
//! (headings kept as Markdown), one section per chapter. Read under the zip guards of
//! [`super::archive`]; pictures, fonts and styles are never inflated.

use quick_xml::events::Event;

use super::archive::{attribute, resolve, Archive};
use super::{html, too_many_chars, ExtractError, ExtractOptions, ExtractedText};

const CONTAINER: &str = "META-INF/container.xml";

pub(super) fn extract(
    bytes: &[u8],
    limits: &ExtractOptions,
    on_progress: &mut dyn FnMut(f32),
    is_cancelled: &dyn Fn() -> bool,
) -> Result<ExtractedText, ExtractError> {
    let mut archive = Archive::open(bytes, "EPUB", limits)?;
    if !archive.contains(CONTAINER) {
        return Err(ExtractError::Permanent(format!("the file is not an EPUB: it has no {CONTAINER}")));
    }
    let mut package = None;
    archive.read_xml(CONTAINER, is_cancelled, |event| {
        if let Event::Start(e) | Event::Empty(e) = &event {
            if e.local_name().as_ref() == "rootfile" && package.is_none() {
                package = attribute(e, "full-path");
            }
        }
        Ok(())
    })?;
    let package =
        package.and_then(|path| resolve("", &path)).filter(|path| archive.contains(path)).ok_or_else(|| {
            ExtractError::Permanent("the EPUB is damaged: its container names no package document".into())
        })?;
    let chapters = spine(&mut archive, &package, is_cancelled)?;
    archive.check_declared_sizes(&chapters)?;

    let mut sections = Vec::new();
    let mut chars = 0usize;
    for (done, chapter) in chapters.iter().enumerate() {
        if is_cancelled() {
            return Err(ExtractError::Cancelled);
        }
        let page = archive.read_bytes(chapter)?;
        let read = html::extract(&page, limits)?;
        chars += read.sections.iter().map(|s| s.text.chars().count()).sum::<usize>();
        if chars > limits.max_chars {
            return Err(too_many_chars(limits));
        }
        sections.extend(read.sections);
        on_progress((done + 1) as f32 / chapters.len() as f32);
    }
    Ok(ExtractedText { sections, markdown: true, pages: None, warning: None })
}

/// The spine's (X)HTML documents as entry names, in reading order.
fn spine(
    archive: &mut Archive<'_>,
    package: &str,
    is_cancelled: &dyn Fn() -> bool,
) -> Result<Vec<String>, ExtractError> {
    // (id, href, media type) of the manifest, and the spine's idrefs.
    let mut manifest: Vec<(String, String, String)> = Vec::new();
    let mut order: Vec<String> = Vec::new();
    archive.read_xml(package, is_cancelled, |event| {
        if let Event::Start(e) | Event::Empty(e) = &event {
            match e.local_name().as_ref() {
                "item" => {
                    if let (Some(id), Some(href)) = (attribute(e, "id"), attribute(e, "href")) {
                        manifest.push((id, href, attribute(e, "media-type").unwrap_or_default()));
                    }
                }
                "itemref" => order.extend(attribute(e, "idref")),
                _ => {}
            }
        }
        Ok(())
    })?;
    let chapters: Vec<String> = order
        .iter()
        .filter_map(|idref| manifest.iter().find(|(id, _, _)| id == idref))
        .filter(|(_, _, media_type)| matches!(media_type.as_str(), "application/xhtml+xml" | "text/html"))
        .filter_map(|(_, href, _)| resolve(package, href))
        .filter(|name| archive.contains(name))
        .collect();
    if chapters.is_empty() {
        return Err(ExtractError::Permanent("the EPUB is damaged: its spine lists no readable chapter".into()));
    }
    Ok(chapters)
}
