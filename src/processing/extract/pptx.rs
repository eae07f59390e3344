//! PPTX: each slide's text and then its speaker notes, slide by slide in the order the
//! presentation shows them (its `p:sldIdLst`, not the part names), one section per
//! slide with `page` = the slide's number. Read under the zip guards of
//! [`super::archive`]; pictures and media are never inflated.

use quick_xml::events::Event;

use super::archive::{attribute, event_text, numbered, resolve, Archive, CharBudget};
use super::{ExtractError, ExtractOptions, ExtractedText, Section};

const PRESENTATION: &str = "ppt/presentation.xml";

pub(super) fn extract(
    bytes: &[u8],
    limits: &ExtractOptions,
    on_progress: &mut dyn FnMut(f32),
    is_cancelled: &dyn Fn() -> bool,
) -> Result<ExtractedText, ExtractError> {
    let mut archive = Archive::open(bytes, "PPTX", limits)?;
    if !archive.contains(PRESENTATION) {
        return Err(ExtractError::Permanent(format!(
            "the file is not a PowerPoint presentation: it has no {PRESENTATION}"
        )));
    }
    let slides = slide_order(&mut archive, is_cancelled)?;
    let mut parts = Vec::new();
    for slide in &slides {
        let notes = relationship_targets(&mut archive, slide, "/notesSlide", is_cancelled)?.into_iter().next();
        parts.push((slide.clone(), notes.filter(|name| archive.contains(name))));
    }
    let all_parts: Vec<String> =
        parts.iter().flat_map(|(slide, notes)| std::iter::once(slide).chain(notes)).cloned().collect();
    archive.check_declared_sizes(&all_parts)?;

    let mut chars = CharBudget::new(limits);
    let mut sections = Vec::new();
    for (index, (slide, notes)) in parts.iter().enumerate() {
        if is_cancelled() {
            return Err(ExtractError::Cancelled);
        }
        let mut text = String::new();
        for part in std::iter::once(slide).chain(notes) {
            let mut state = DrawingText::default();
            archive.read_xml(part, is_cancelled, |event| state.read(&event, &mut text, &mut chars))?;
            if !text.ends_with("\n\n") {
                text.push('\n');
            }
        }
        sections.push(Section { text: text.trim().to_string(), page: u32::try_from(index + 1).ok() });
        on_progress((index + 1) as f32 / parts.len() as f32);
    }
    Ok(ExtractedText { sections, markdown: false, pages: u32::try_from(slides.len()).ok(), warning: None })
}

/// The slide parts in the order the presentation lists them; the numbered slide parts
/// when it lists none (a damaged or hand-made file).
fn slide_order(archive: &mut Archive<'_>, is_cancelled: &dyn Fn() -> bool) -> Result<Vec<String>, ExtractError> {
    let mut ids = Vec::new();
    archive.read_xml(PRESENTATION, is_cancelled, |event| {
        if let Event::Start(e) | Event::Empty(e) = &event {
            if e.local_name().as_ref() == "sldId" {
                ids.extend(relationship_id(e));
            }
        }
        Ok(())
    })?;
    let targets = relationships(archive, PRESENTATION, is_cancelled)?;
    let ordered: Vec<String> = ids
        .iter()
        .filter_map(|id| targets.iter().find(|(rid, _, _)| rid == id))
        .map(|(_, _, target)| target.clone())
        .filter(|name| archive.contains(name))
        .collect();
    if ordered.is_empty() {
        return Ok(numbered(&archive.names(), "ppt/slides/slide", ".xml"));
    }
    Ok(ordered)
}

/// `r:id`, the relationship a `p:sldId` points through (its plain `id` is a number).
fn relationship_id(element: &quick_xml::events::BytesStart<'_>) -> Option<String> {
    element
        .attributes()
        .filter_map(Result::ok)
        .find(|a| a.key.as_ref().ends_with(":id"))
        .and_then(|a| a.normalized_value(quick_xml::XmlVersion::Implicit1_0).ok().map(|v| v.into_owned()))
}

/// The targets of `part`'s relationships whose type ends with `kind`.
fn relationship_targets(
    archive: &mut Archive<'_>,
    part: &str,
    kind: &str,
    is_cancelled: &dyn Fn() -> bool,
) -> Result<Vec<String>, ExtractError> {
    Ok(relationships(archive, part, is_cancelled)?
        .into_iter()
        .filter(|(_, kind_of, _)| kind_of.ends_with(kind))
        .map(|(_, _, target)| target)
        .collect())
}

/// `part`'s relationships as (id, type, entry name); none when it has no `_rels` part.
fn relationships(
    archive: &mut Archive<'_>,
    part: &str,
    is_cancelled: &dyn Fn() -> bool,
) -> Result<Vec<(String, String, String)>, ExtractError> {
    let (dir, file) = part.rsplit_once('/').unwrap_or(("", part));
    let rels = format!("{dir}/_rels/{file}.rels");
    if !archive.contains(&rels) {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    archive.read_xml(&rels, is_cancelled, |event| {
        if let Event::Start(e) | Event::Empty(e) = &event {
            if e.local_name().as_ref() == "Relationship" {
                let external = attribute(e, "TargetMode").is_some_and(|mode| mode == "External");
                if let (false, Some(id), Some(kind), Some(target)) =
                    (external, attribute(e, "Id"), attribute(e, "Type"), attribute(e, "Target"))
                {
                    found.extend(resolve(part, &target).map(|name| (id, kind, name)));
                }
            }
        }
        Ok(())
    })?;
    Ok(found)
}

/// The text of DrawingML: `a:t` runs; paragraphs end with a newline, a blank line after
/// each shape. Fields (`a:fld`: the slide number, the date) are filled in by
/// PowerPoint, not written by the author, so they are left out.
#[derive(Default)]
struct DrawingText {
    in_run: bool,
    fields: usize,
}

impl DrawingText {
    fn read(&mut self, event: &Event<'_>, text: &mut String, chars: &mut CharBudget<'_>) -> Result<(), ExtractError> {
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "t" => self.in_run = true,
                "fld" => self.fields += 1,
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "br" => text.push('\n'),
                "tab" => text.push('\t'),
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "t" => self.in_run = false,
                "fld" => self.fields = self.fields.saturating_sub(1),
                "p" if !text.is_empty() && !text.ends_with('\n') => text.push('\n'),
                "sp" | "graphicFrame" if !text.is_empty() && !text.ends_with("\n\n") => text.push('\n'),
                _ => {}
            },
            _ if self.in_run && self.fields == 0 => {
                if let Some(content) = event_text(event) {
                    chars.append(text, &content)?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
