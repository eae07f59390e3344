//! OCR through the running service: scanned PDFs (made here: text pages rendered by
//! poppler's pdftoppm and wrapped back into PDFs as bare images), mixed PDFs, and PNG,
//! JPEG, TIFF and WebP uploads become searchable text; an image that claims too many
//! pixels is refused before anything decodes it; a server without Tesseract says which
//! package is missing; progress goes page by page.
//!
//! Needs `tesseract` (Debian: tesseract-ocr, tesseract-ocr-eng) and `pdftoppm`
//! (poppler-utils), which scripts/test.sh installs.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::pdf_writer::{pdf, stream, FONT};
use common::scans::{full_page_image, image_object, pdftoppm, render_page};
use common::ws::WsClient;
use common::{token, ServerProcess, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(120);

const HARBOUR: [&str; 4] = [
    "The harbour master wrote that seven fishing boats",
    "returned before the storm reached the northern cliffs.",
    "Their crews unloaded mackerel, herring and crab",
    "while the lighthouse signalled across the bay.",
];
const ORCHARD: [&str; 3] = [
    "In the orchard behind the mill the gardener planted",
    "twelve young apple trees and four walnut trees",
    "along the path that leads down to the river.",
];
const LIBRARY: [&str; 3] = [
    "The village library opens on Thursday evenings",
    "and lends atlases, novels and repair manuals",
    "to anyone who brings back what they borrowed.",
];

/// A letter-size page's content stream that writes `lines` in 14-point Helvetica.
fn text_content(lines: &[&str]) -> String {
    let mut content = String::from("BT /F1 14 Tf 72 720 Td 20 TL\n");
    for line in lines {
        content.push_str(&format!("({line}) Tj T*\n"));
    }
    content.push_str("ET");
    content
}

enum Page<'a> {
    /// A page with a text layer.
    Text(&'a [&'a str]),
    /// A page that is only a picture of these lines: what a scanner makes.
    Scanned(&'a [&'a str]),
}

/// A letter-size PDF of `pages`; scanned pages are rendered by pdftoppm at 150 DPI and
/// drawn as one grey image each, with no text layer.
fn pdf_of(pages: &[Page]) -> Vec<u8> {
    // Objects: 1 catalog, 2 page tree, 3 font, then per page: page, contents, image.
    let mut objects = vec![Vec::new(), Vec::new(), FONT.as_bytes().to_vec()];
    let mut kids = Vec::new();
    for page in pages {
        let page_id = objects.len() + 1;
        kids.push(format!("{page_id} 0 R"));
        let (content, image) = match page {
            Page::Text(lines) => (text_content(lines), stream("", b"")),
            Page::Scanned(lines) => {
                let raster = render_page(&pdf_of(&[Page::Text(lines)]), 1, 150);
                (full_page_image(612.0, 792.0), image_object(&raster))
            }
        };
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R /Resources << /Font << /F1 3 0 \
                 R >> /XObject << /Scan {} 0 R >> >> >>",
                page_id + 1,
                page_id + 2
            )
            .into_bytes(),
        );
        objects.push(stream("", content.as_bytes()));
        // Text pages get an empty stream in the image's place: the numbering stays regular.
        objects.push(image);
    }
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>".to_vec();
    objects[1] = format!("<< /Type /Pages /Kids [{}] /Count {} >>", kids.join(" "), pages.len()).into_bytes();
    pdf(&objects)
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// The share of the words of `lines` that appear in `text`.
fn recovered(lines: &[&str], text: &str) -> f64 {
    let found: HashSet<String> = words(text).into_iter().collect();
    let expected = words(&lines.join(" "));
    expected.iter().filter(|word| found.contains(*word)).count() as f64 / expected.len() as f64
}

async fn chunks(server: &TestServer, user: &str, id: &str) -> Vec<Value> {
    let (status, page) = server.get_json(user, &format!("/api/documents/{id}/chunks?limit=100")).await;
    assert_eq!(status, 200, "{page}");
    page["chunks"].as_array().unwrap().clone()
}

async fn text_of(server: &TestServer, user: &str, id: &str) -> String {
    chunks(server, user, id)
        .await
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Uploads one file and waits for it to finish; returns the document.
async fn processed(server: &TestServer, user: &str, name: &str, bytes: Vec<u8>) -> Value {
    let doc = server.upload_one(user, name, bytes).await;
    assert_eq!(doc["queue_status"], "queued", "{name} is accepted: {doc}");
    let id = doc["id"].as_str().unwrap();
    server.wait_for(user, id, LIMIT, |d| d["queue_status"] == "completed" || d["queue_status"] == "failed").await
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn a_scanned_pdf_is_recognised_and_found_by_search() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let scanned = pdf_of(&[Page::Scanned(&HARBOUR)]);
    // A text document beside it, so search has to choose.
    let other = processed(&server, &alice, "library.pdf", pdf_of(&[Page::Text(&LIBRARY)])).await;
    assert_eq!(other["queue_status"], "completed", "{other}");

    let doc = processed(&server, &alice, "harbour-scan.pdf", scanned).await;
    assert_eq!(doc["queue_status"], "completed", "{doc}");
    let id = doc["id"].as_str().unwrap();
    let text = text_of(&server, &alice, id).await;
    let share = recovered(&HARBOUR, &text);
    assert!(share >= 0.9, "{:.0} % of the words recovered: {text}", share * 100.0);

    let query = urlencode("seven fishing boats returned before the storm reached the northern cliffs");
    let (status, body) = server.get_json(&alice, &format!("/api/documents/search?q={query}&k=3")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["document_id"], id, "{body:#}");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_mixed_pdf_keeps_its_text_pages_and_recognises_the_scanned_one_in_order() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let mixed = pdf_of(&[Page::Text(&ORCHARD), Page::Scanned(&HARBOUR), Page::Text(&LIBRARY)]);
    let doc = processed(&server, &alice, "mixed.pdf", mixed).await;
    assert_eq!(doc["warning"], Value::Null, "nothing was left out: {doc}");
    assert_eq!(doc["queue_status"], "completed", "{doc}");
    let id = doc["id"].as_str().unwrap();
    let text = text_of(&server, &alice, id).await;
    // The text layers come back exactly; the scan as OCR reads it.
    let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let orchard_at = squeezed.find(&ORCHARD.join(" ")).unwrap_or_else(|| panic!("page 1's text layer: {text}"));
    let library_at = squeezed.find(&LIBRARY.join(" ")).unwrap_or_else(|| panic!("page 3's text layer: {text}"));
    let harbour_at = squeezed.find("harbour master").unwrap_or_else(|| panic!("page 2 recognised: {text}"));
    assert!(orchard_at < harbour_at && harbour_at < library_at, "pages in order: {text}");
    assert!(recovered(&HARBOUR, &text) >= 0.9, "{text}");
    let pages: Vec<(i64, i64)> = chunks(&server, &alice, id)
        .await
        .iter()
        .map(|c| (c["page_start"].as_i64().unwrap(), c["page_end"].as_i64().unwrap()))
        .collect();
    assert_eq!(pages.first().map(|p| p.0), Some(1), "{pages:?}");
    assert_eq!(pages.last().map(|p| p.1), Some(3), "{pages:?}");
    server.shutdown().await;
}

#[actix_web::test]
async fn png_jpeg_tiff_and_webp_uploads_are_read_by_ocr() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let page = pdf_of(&[Page::Text(&HARBOUR)]);
    let png = pdftoppm(&page, &["-r", "200", "-gray", "-png"]);
    // A photo of a page is rarely pure black on white: a colour JPEG.
    let jpeg = pdftoppm(&page, &["-r", "200", "-jpeg"]);
    let webp_lines = ["A lighthouse keeper counted seven herons", "standing in the shallow water at dawn."];
    let tiff_pages = [
        ["Page one of the ledger lists copper kettles", "sold at the harbour market on Tuesday."],
        ["Page two of the ledger lists woollen blankets", "shipped to the northern islands in winter."],
    ];
    // Names that lie: the type comes from the bytes.
    let cases: Vec<(&str, Vec<u8>, &str, Vec<&str>)> = vec![
        ("photo-of-page.pdf", png, "image/png", HARBOUR.to_vec()),
        ("phone-picture.jpg", jpeg, "image/jpeg", HARBOUR.to_vec()),
        ("herons.webp", common::fixture("lighthouse-herons.webp"), "image/webp", webp_lines.to_vec()),
        (
            "ledger.tif",
            common::fixture("ledger-two-pages.tiff"),
            "image/tiff",
            tiff_pages.iter().flatten().copied().collect(),
        ),
    ];
    for (name, bytes, content_type, lines) in cases {
        let doc = processed(&server, &alice, name, bytes).await;
        assert_eq!(doc["queue_status"], "completed", "{name}: {doc}");
        assert_eq!(doc["content_type"], content_type, "{name}");
        let text = text_of(&server, &alice, doc["id"].as_str().unwrap()).await;
        let share = recovered(&lines, &text);
        assert!(share >= 0.9, "{name}: {:.0} % of the words recovered: {text}", share * 100.0);
    }
    let ledger = server.get_json(&alice, "/api/documents?limit=10").await.1;
    let ledger_id = ledger["documents"].as_array().unwrap().iter().find(|d| d["filename"] == "ledger.tif").unwrap()
        ["id"]
        .as_str()
        .unwrap()
        .to_string();
    let text = text_of(&server, &alice, &ledger_id).await;
    assert!(text.find("copper kettles").unwrap() < text.find("woollen blankets").unwrap(), "TIFF pages in order");
    server.shutdown().await;
}

/// A PNG that claims `width` × `height` pixels: its header, then a data chunk that no
/// decoder could inflate into that many.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&width.to_be_bytes());
    png.extend_from_slice(&height.to_be_bytes());
    png.extend_from_slice(&[8, 0, 0, 0, 0, 0, 0, 0, 0]);
    png.extend_from_slice(b"\0\0\0\x10IDAT\x78\x9c\xed\xc1\x01\x0d\0\0\0\xc2\xa0\xf7\x4f\x6d\0\0\0\0");
    png.extend_from_slice(b"\0\0\0\0IEND\xaeB`\x82");
    png
}

#[actix_web::test]
async fn an_image_over_the_pixel_limit_fails_before_decoding_naming_the_limit() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let doc = processed(&server, &alice, "bomb.png", png_claiming(50_000, 50_000)).await;
    assert_eq!(doc["queue_status"], "failed", "{doc}");
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("50000 × 50000 pixels"), "{error}");
    assert!(error.contains("processing.ocr.max_image_pixels = 50000000"), "{error}");
    assert_eq!(doc["attempts"], 1, "a file that claims too much is not retried");
    // The extractor ran to its end and said why: no decoder met its memory limit.
    let story = server
        .get_json(&common::admin_token("ops"), &format!("/api/admin/queue/jobs/{}", doc["job_id"].as_str().unwrap()))
        .await
        .1;
    assert_eq!(story["attempts"][0]["extractor_outcome"], "unreadable", "{story:#}");

    // Within the pixel count but wider than Tesseract can address.
    let doc = processed(&server, &alice, "ribbon.png", png_claiming(40_000, 10)).await;
    assert_eq!(doc["queue_status"], "failed", "{doc}");
    assert!(doc["error"].as_str().unwrap().contains("1 to 32767 pixels on a side"), "{doc}");
    server.shutdown().await;
}

#[actix_web::test]
async fn without_tesseract_scans_and_images_fail_naming_the_package_and_mixed_pdfs_keep_their_text() {
    let env = TestEnv::new();
    let config = env.config(json!({ "processing": { "ocr": { "tesseract": "/nonexistent/tesseract" } } }));
    let server = TestServer::start(config, Role::All).await;
    let alice = token("alice");
    let scanned = processed(&server, &alice, "scan.pdf", pdf_of(&[Page::Scanned(&HARBOUR)])).await;
    assert_eq!(scanned["queue_status"], "failed", "{scanned}");
    let error = scanned["error"].as_str().unwrap();
    assert!(error.starts_with("the PDF has no extractable text (scanned pages?)"), "{error}");
    assert!(error.contains("install the tesseract-ocr and tesseract-ocr-eng packages"), "{error}");

    let png = pdftoppm(&pdf_of(&[Page::Text(&HARBOUR)]), &["-r", "100", "-gray", "-png"]);
    let image = processed(&server, &alice, "page.png", png).await;
    assert_eq!(image["queue_status"], "failed", "{image}");
    assert!(image["error"].as_str().unwrap().contains("tesseract-ocr"), "{image}");

    let mixed = processed(&server, &alice, "mixed.pdf", pdf_of(&[Page::Text(&ORCHARD), Page::Scanned(&HARBOUR)])).await;
    assert_eq!(mixed["queue_status"], "completed", "{mixed}");
    let text = text_of(&server, &alice, mixed["id"].as_str().unwrap()).await;
    assert!(text.contains("walnut trees") && !text.contains("harbour"), "{text}");
    // The owner is told what was left out, with the document.
    let warning = mixed["warning"].as_str().unwrap_or_else(|| panic!("a warning: {mixed}"));
    assert!(warning.starts_with("1 of its 2 pages have no text layer and were not read"), "{warning}");
    assert!(warning.contains("tesseract-ocr"), "{warning}");
    server.shutdown().await;
}

#[actix_web::test]
async fn ocr_progress_is_reported_for_every_page() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    socket.snapshot().await;
    let scan =
        pdf_of(&[Page::Scanned(&ORCHARD), Page::Text(&LIBRARY), Page::Scanned(&HARBOUR), Page::Scanned(&ORCHARD)]);
    let doc = server.upload_one(&alice, "three-scanned-pages.pdf", scan).await;
    let id = doc["id"].as_str().unwrap().to_string();
    let frames = socket
        .collect_until(LIMIT, |f| {
            f["document_id"] == id.as_str() && (f["type"] == "document.completed" || f["type"] == "document.failed")
        })
        .await;
    assert_eq!(frames.last().unwrap()["type"], "document.completed", "{frames:#?}");
    let ocr: Vec<(u64, u64, &str)> = frames
        .iter()
        .filter(|f| f["document_id"] == id.as_str() && f["type"] == "document.progress" && !f["ocr_pages"].is_null())
        .map(|f| {
            (f["ocr_pages_done"].as_u64().unwrap(), f["ocr_pages"].as_u64().unwrap(), f["stage"].as_str().unwrap())
        })
        .collect();
    let mut done: Vec<u64> = ocr.iter().map(|&(done, _, _)| done).collect();
    done.dedup();
    assert_eq!(done, vec![0, 1, 2, 3], "one event as OCR starts and one per page: {ocr:?}");
    assert!(ocr.iter().all(|&(_, total, stage)| total == 3 && stage == "extracting"), "{ocr:?}");
    let percents: Vec<i64> = frames
        .iter()
        .filter(|f| f["document_id"] == id.as_str() && f["type"] == "document.progress")
        .map(|f| f["progress"].as_i64().unwrap())
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "monotone: {percents:?}");
    drop(socket);
    server.shutdown().await;
}

#[actix_web::test]
async fn a_pdf_with_more_scanned_pages_than_max_pages_ocr_fails_naming_the_key() {
    let env = TestEnv::new();
    let server =
        TestServer::start(env.config(json!({ "processing": { "ocr": { "max_pages_ocr": 1 } } })), Role::All).await;
    let alice = token("alice");
    let scan = pdf_of(&[Page::Scanned(&ORCHARD), Page::Scanned(&HARBOUR)]);
    let doc = processed(&server, &alice, "two-scans.pdf", scan).await;
    assert_eq!(doc["queue_status"], "failed", "{doc}");
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains("2 pages without a text layer") && error.contains("max_pages_ocr = 1"), "{error}");
    server.shutdown().await;
}

#[actix_web::test]
async fn start_up_names_the_engine_and_languages_and_what_to_install() {
    let env = TestEnv::new();
    let worker = ServerProcess::start(&env, &[("DOCQUEUE_PROCESSING__OCR__LANGUAGES", "eng+xyz".into())]).await;
    let log = worker.log_text();
    assert!(log.contains("OCR: tesseract") && log.contains("languages eng+xyz"), "{log}");
    assert!(log.contains("install the tesseract-ocr-xyz package"), "a missing language is named: {log}");
    drop(worker);

    let env = TestEnv::new();
    let missing =
        ServerProcess::start(&env, &[("DOCQUEUE_PROCESSING__OCR__TESSERACT", "/nonexistent/tesseract".into())]).await;
    let log = missing.log_text();
    assert!(log.contains("OCR is off") && log.contains("tesseract-ocr package"), "{log}");
    drop(missing);

    // An API-only process reads no file: it says nothing about readers it need not have.
    let env = TestEnv::new();
    let api = ServerProcess::start_as(
        &env,
        "api",
        &[("DOCQUEUE_PROCESSING__OCR__TESSERACT", "/nonexistent/tesseract".into())],
    )
    .await;
    let log = api.log_text();
    assert!(!log.contains("OCR") && !log.contains("PDFs are read"), "{log}");
}

#[actix_web::test]
async fn with_ocr_turned_off_an_image_fails_saying_so() {
    let env = TestEnv::new();
    let server =
        TestServer::start(env.config(json!({ "processing": { "ocr": { "enabled": false } } })), Role::All).await;
    let alice = token("alice");
    let png = pdftoppm(&pdf_of(&[Page::Text(&HARBOUR)]), &["-r", "100", "-gray", "-png"]);
    let image = processed(&server, &alice, "page.png", png).await;
    assert_eq!(image["queue_status"], "failed", "{image}");
    let error = image["error"].as_str().unwrap();
    assert!(error.contains("OCR is turned off on this server (processing.ocr.enabled = false)"), "{error}");
    server.shutdown().await;
}
