//! A small file's read begins at its job's claim, beside the start row and the
//! duplicate check (`processing::read_ahead`): it gives what a read begun later gives,
//! and one left unused (a twin's, or a job whose row moved on) stops soon after, its
//! extractor process killed, never running on to the document's limits.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{hostile, TestEnv};
use docqueue::processing::extractor::{Extraction, Extractor};
use docqueue::processing::read_ahead::ReadAhead;
use serde_json::json;

/// Limits far beyond the tests' waits, so only the read ahead's own stop can end a read.
fn extractor(env: &TestEnv) -> Extractor {
    let config = env.config(json!({ "processing": { "extractor_spares": 0, "max_cpu_seconds": 300 } }));
    Extractor::from_config(&config.processing).expect("extractor")
}

fn write(env: &TestEnv, name: &str, bytes: &[u8]) -> PathBuf {
    let file = env.dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    file
}

fn far_deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(300)
}

fn texts(extraction: Extraction) -> Vec<String> {
    let extracted = extraction.result.expect("the file is read");
    extracted.sections.into_iter().map(|section| section.text).collect()
}

#[tokio::test]
async fn a_file_read_ahead_gives_the_text_a_read_begun_later_gives() {
    let env = TestEnv::new();
    let note = "# Harbour notes\n\nThe ferry leaves at nine.\n\n## Tides\n\nLow water is at noon on Tuesday.\n";
    let file = write(&env, "note.md", note.as_bytes());
    let extractor = extractor(&env);

    let ahead = ReadAhead::begin(
        extractor.clone(),
        "alice".into(),
        file.clone(),
        "text/markdown".into(),
        std::future::pending(),
        far_deadline(),
    );
    assert!(ahead.reads(&file, "text/markdown"));
    assert!(!ahead.reads(&file, "text/html"), "a read ahead of another type is not the row's read");
    assert!(!ahead.reads(&env.dir.join("other.md"), "text/markdown"), "nor one of another file");
    let early = ahead.finish(&mut |_| {}).await;
    let later =
        extractor.run("alice", &file, "text/markdown", &mut |_| {}, std::future::pending(), far_deadline()).await;

    let early = texts(early);
    assert!(early.concat().contains("Low water is at noon on Tuesday."), "{early:?}");
    assert_eq!(early, texts(later));
}

#[tokio::test]
async fn a_read_ahead_left_unused_stops_its_extractor_soon_after() {
    let env = TestEnv::new();
    // Endless for a reader: only a kill ends it within the test's wait.
    let file = write(&env, "endless.pdf", &hostile::form_chain_pdf(10));
    let ahead = ReadAhead::begin(
        extractor(&env),
        "alice".into(),
        file,
        "application/pdf".into(),
        std::future::pending(),
        far_deadline(),
    );
    // The reader is the descendant that keeps a core busy: a spare, another test's
    // extractor, or one waiting for its pdftotext stays idle.
    let me = std::process::id();
    let reader = common::eventually(Duration::from_secs(10), "the read ahead's reader to be busy", || {
        let busy = common::descendants_of(me).into_iter().find(|&pid| common::cpu_ticks(pid) >= 20);
        async move { busy }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(common::descendants_of(me).contains(&reader), "the endless read goes on while the read ahead is held");

    let dropped = Instant::now();
    drop(ahead);
    while common::descendants_of(me).contains(&reader) {
        assert!(dropped.elapsed() < Duration::from_secs(10), "the unused read ahead's reader still runs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("reader gone {} ms after the read ahead was dropped", dropped.elapsed().as_millis());
}
