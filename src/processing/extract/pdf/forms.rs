//! A page may draw a Form XObject, which may draw others. Readers follow them by
//! recursion, so a form that draws itself would never end (pdf-extract overflows its
//! stack; poppler silently cuts the loop): such a PDF is malformed and refused.

use std::collections::HashMap;

use pdf_extract::content::Content;
use pdf_extract::{Dictionary, Document, Object, ObjectId, Stream};

use super::super::ExtractError;

/// Deeper form nesting than any honest PDF uses; the reader recurses once per level.
const MAX_FORM_DEPTH: usize = 32;

/// Walks the drawing graph, each form once, refusing loops and absurd depths.
/// Only pages whose resources name a form are read: most pages draw none, and parsing
/// every page's content would cost as much as extracting its text.
pub(super) fn check_form_nesting(document: &Document) -> Result<(), ExtractError> {
    let mut heights = HashMap::new();
    for page_id in document.get_pages().into_values() {
        let Ok(page) = document.get_dictionary(page_id) else { continue };
        let resources = inherited_resources(document, page);
        if !names_a_form(document, resources) {
            continue;
        }
        let Ok(content) = document.get_page_content(page_id) else { continue };
        form_height(document, &content, resources, &mut Vec::new(), &mut heights)?;
    }
    Ok(())
}

/// Whether `resources` has a Form XObject among its XObjects.
fn names_a_form(document: &Document, resources: Option<&Dictionary>) -> bool {
    let Some(xobjects) =
        resources.and_then(|r| r.get(b"XObject").ok()).and_then(|x| resolve(document, x).as_dict().ok())
    else {
        return false;
    };
    xobjects.iter().any(|(name, _)| form_named(document, resources, name).is_some())
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
