//! Office and e-book documents through the running service: the XLSX, ODS, PPTX, ODT
//! and EPUB fixtures (written by tests/fixtures/make_office_fixtures.py) are sniffed by
//! their contents whatever their names, complete, and give their text in reading
//! order, slides with their numbers as pages; every one of these archive formats is
//! held to the zip-bomb guards of DOCX.

mod common;

use std::io::{Cursor, Write};
use std::time::Duration;

use common::{token, zip_bomb, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::{json, Value};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
const ODT: &str = "application/vnd.oasis.opendocument.text";
const ODS: &str = "application/vnd.oasis.opendocument.spreadsheet";
const EPUB: &str = "application/epub+zip";

/// Small enough that each slide and sheet gets chunks of its own, so pages can be checked.
fn small_chunks() -> Value {
    json!({ "processing": { "chunk_size": 80, "chunk_overlap": 0 } })
}

async fn chunks(server: &TestServer, user: &str, id: &str) -> Vec<Value> {
    let (status, page) = server.get_json(user, &format!("/api/documents/{id}/chunks?limit=100")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page["next_cursor"].is_null(), "one page holds every chunk");
    page["chunks"].as_array().unwrap().clone()
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Uploads `bytes` under a name that says nothing of the type, waits for the end and
/// returns the document and its chunks.
async fn processed(server: &TestServer, user: &str, bytes: Vec<u8>) -> (Value, Vec<Value>) {
    let doc = server.upload_one(user, "attachment.zip", bytes).await;
    let id = doc["id"].as_str().unwrap();
    let done = server
        .wait_for(user, id, Duration::from_secs(60), |d| {
            d["queue_status"] != "queued" && d["queue_status"] != "processing"
        })
        .await;
    let chunks = if done["queue_status"] == "completed" { chunks(server, user, id).await } else { Vec::new() };
    (done, chunks)
}

/// Asserts that the chunks hold `phrases` in this order.
fn assert_in_order(name: &str, chunks: &[Value], phrases: &[&str]) {
    let text = squeeze(&chunks.iter().map(|c| c["text"].as_str().unwrap()).collect::<Vec<_>>().join("\n"));
    let mut from = 0;
    for phrase in phrases {
        match text[from..].find(phrase) {
            Some(at) => from += at + phrase.len(),
            None => panic!("{name}: {phrase:?} missing or out of order in {text:?}"),
        }
    }
}

/// The page where the chunk that holds `phrase` starts (a chunk may run on into the next).
fn page_of(chunks: &[Value], phrase: &str) -> i64 {
    let chunk = chunks
        .iter()
        .find(|c| squeeze(c["text"].as_str().unwrap()).contains(phrase))
        .unwrap_or_else(|| panic!("no chunk holds {phrase:?}"));
    chunk["page_start"].as_i64().unwrap()
}

#[actix_web::test]
async fn office_and_ebook_files_complete_with_their_text_in_reading_order() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(small_chunks()), Role::All).await;
    let alice = token("alice");

    let (doc, xlsx) = processed(&server, &alice, common::fixture("harbours.xlsx")).await;
    assert_eq!((doc["queue_status"].as_str(), doc["content_type"].as_str()), (Some("completed"), Some(XLSX)), "{doc}");
    assert_in_order(
        "xlsx",
        &xlsx,
        &[
            "Harbours",
            "Harbour: Kenai; Country: United States; Berths: 14",
            "Harbour: Bergen; Country: Norway; Berths: 31",
            "Harbour: Valparaiso; Country: Chile; Berths: 22",
            "Tide notes",
            "Spring tides flood the lower quay twice a month.",
            "Neap tides leave the slipway dry at noon.",
        ],
    );
    assert_eq!(page_of(&xlsx, "Harbour: Bergen"), 1, "a sheet is a page");
    assert_eq!(page_of(&xlsx, "Neap tides"), 2);

    let (doc, ods) = processed(&server, &alice, common::fixture("orchard.ods")).await;
    assert_eq!((doc["queue_status"].as_str(), doc["content_type"].as_str()), (Some("completed"), Some(ODS)), "{doc}");
    assert_in_order(
        "ods",
        &ods,
        &[
            "Orchard",
            "Tree: Apple; Variety: Bramley; Planted: 1998",
            "Tree: Pear; Variety: Conference; Planted: 2004",
            "Pruning",
            "Prune the apples in the dormant winter months.",
        ],
    );

    let (doc, pptx) = processed(&server, &alice, common::fixture("lighthouse.pptx")).await;
    assert_eq!((doc["queue_status"].as_str(), doc["content_type"].as_str()), (Some("completed"), Some(PPTX)), "{doc}");
    assert_in_order(
        "pptx",
        &pptx,
        &[
            "Quarterly lighthouse report",
            "Three keepers serve the northern coast.",
            "Keeper rota attached.",
            "Mention the new fog signal.",
            "Lamp maintenance",
            "The lens is cleaned every Sunday morning.",
            "Ask about spare bulbs.",
            "Next steps",
            "Repaint the gallery railing before autumn.",
        ],
    );
    assert_eq!(page_of(&pptx, "Mention the new fog signal."), 1, "notes belong to their slide");
    assert_eq!(page_of(&pptx, "The lens is cleaned every Sunday morning."), 2);
    assert_eq!(page_of(&pptx, "Repaint the gallery railing"), 3);

    let (doc, odt) = processed(&server, &alice, common::fixture("beekeeping.odt")).await;
    assert_eq!((doc["queue_status"].as_str(), doc["content_type"].as_str()), (Some("completed"), Some(ODT)), "{doc}");
    assert_in_order(
        "odt",
        &odt,
        &[
            "Beekeeping in spring",
            "Inspect the brood frames on a warm afternoon.",
            "Feed the colony sugar syrup until the first nectar flow.",
            "Swarm control",
            "Split strong colonies before queen cells appear.",
        ],
    );

    let (doc, epub) = processed(&server, &alice, common::fixture("mill.epub")).await;
    assert_eq!((doc["queue_status"].as_str(), doc["content_type"].as_str()), (Some("completed"), Some(EPUB)), "{doc}");
    // The archive holds chapter 2 first; the spine puts chapter 1 first.
    assert_in_order(
        "epub",
        &epub,
        &[
            "The miller",
            "The miller ground oats for the whole valley.",
            "The flood",
            "In March the river rose over the mill race.",
            "The rebuilding",
            "By summer a new wheel turned again.",
        ],
    );
    server.shutdown().await;
}

/// A zip whose `name` inflates to `inflated` bytes of XML, declaring `declared` of them,
/// behind `leading` entries (stored as they are) that make the archive sniff as its type.
fn bomb_archive(leading: &[(&str, &[u8])], name: &str, inflated: u64, declared: Option<u64>) -> Vec<u8> {
    let (stream, size) = zip_bomb::deflate_bomb(inflated);
    let single = zip_bomb::zip_with_entry(name, &stream, declared.unwrap_or(size));
    let mut bomb = ZipArchive::new(Cursor::new(single)).unwrap();
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for (entry, content) in leading {
        writer.start_file(*entry, SimpleFileOptions::default().compression_method(CompressionMethod::Stored)).unwrap();
        writer.write_all(content).unwrap();
    }
    writer.raw_copy_file(bomb.by_index_raw(0).unwrap()).unwrap();
    writer.finish().unwrap().into_inner()
}

/// `fixture` with one more entry, `name`, that inflates to `inflated` bytes.
fn with_extra_entry(fixture: &str, name: &str, inflated: u64) -> Vec<u8> {
    let (stream, size) = zip_bomb::deflate_bomb(inflated);
    let mut bomb = ZipArchive::new(Cursor::new(zip_bomb::zip_with_entry(name, &stream, size))).unwrap();
    let mut original = ZipArchive::new(Cursor::new(common::fixture(fixture))).unwrap();
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    for index in 0..original.len() {
        writer.raw_copy_file(original.by_index_raw(index).unwrap()).unwrap();
    }
    writer.raw_copy_file(bomb.by_index_raw(0).unwrap()).unwrap();
    writer.finish().unwrap().into_inner()
}

#[actix_web::test]
async fn every_archive_format_is_held_to_the_zip_bomb_guards() {
    let env = TestEnv::new();
    let limit: u64 = 4 << 20;
    let server = TestServer::start(
        env.config(json!({ "processing": { "max_docx_uncompressed_bytes": limit, "max_docx_entries": 4 } })),
        Role::All,
    )
    .await;
    let alice = token("alice");
    let inflated = 64 << 20;
    let stored = |kind: &'static str| [("mimetype", kind.as_bytes())];
    let cases: Vec<(&str, Vec<u8>, String)> = [
        ("XLSX", &[][..], "xl/workbook.xml"),
        ("PPTX", &[][..], "ppt/presentation.xml"),
        ("ODT", &stored(ODT)[..], "content.xml"),
        ("ODS", &stored(ODS)[..], "content.xml"),
        ("EPUB", &stored(EPUB)[..], "META-INF/container.xml"),
    ]
    .into_iter()
    .flat_map(|(format, leading, part)| {
        let too_large =
            format!("the {format} expands beyond the decompressed size limit (max_docx_uncompressed_bytes = {limit})");
        // A header that declares a kilobyte is held to it: the inflating stops there.
        let lying = "larger than its declared uncompressed size".to_string();
        [
            (format, bomb_archive(leading, part, inflated, None), too_large),
            (format, bomb_archive(leading, part, inflated, Some(1000)), lying),
        ]
    })
    .chain([("ODS", common::fixture("orchard.ods"), "more than allowed (max_docx_entries = 4)".to_string())])
    .collect();
    for (format, bytes, reason) in cases {
        let (failed, _) = processed(&server, &alice, bytes).await;
        assert_eq!(failed["queue_status"], "failed", "{format}: {failed}");
        let error = failed["error"].as_str().unwrap();
        assert!(error.starts_with(&format!("the {format} ")) && error.contains(&reason), "{format}: {error}");
        assert_eq!(failed["attempts"], 1, "{format}: a bomb fails at once, without a retry");
    }
    let scrape = common::scrape(&server).await;
    assert_eq!(
        common::value(&scrape, "docqueue_extractor_outcomes_total", Some(("outcome", "memory_limit"))),
        0.0,
        "the guards stop every bomb before the kernel has to"
    );
    server.shutdown().await;
}

#[actix_web::test]
async fn an_image_bomb_inside_a_workbook_or_deck_is_never_inflated() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(small_chunks()), Role::All).await;
    let alice = token("alice");
    // 512 MiB is twice the default allowance: reading it at all would fail the document.
    let cases = [
        ("harbours.xlsx", "xl/media/image1.png", "Harbour: Kenai; Country: United States; Berths: 14"),
        ("lighthouse.pptx", "ppt/media/image9.png", "The lens is cleaned every Sunday morning."),
    ];
    for (fixture, picture, phrase) in cases {
        let (doc, chunks) = processed(&server, &alice, with_extra_entry(fixture, picture, 512 << 20)).await;
        assert_eq!(doc["queue_status"], "completed", "{fixture}: {doc}");
        assert_in_order(fixture, &chunks, &[phrase]);
    }
    server.shutdown().await;
}
