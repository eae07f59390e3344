//! `cargo bench --bench pipeline`: extract → chunk → embed (built-in hash embedder) over
//! every document in ../shared/corpus, or in tests/fixtures when the corpus is absent,
//! printing per format the files, pages, megabytes, throughput and peak memory, then how
//! a 1 GiB DOCX zip bomb fares. One plain line and one JSON line per measurement.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::json;

use docqueue::config::Config;
use docqueue::processing::chunk::chunk;
use docqueue::processing::embed::{self, Embedder};
use docqueue::processing::extract::{extract, ExtractError, ExtractLimits};

#[path = "../tests/fixtures/zip_bomb.rs"]
mod zip_bomb;

/// The formats in print order: (name, content type, file extensions).
const FORMATS: &[(&str, &str, &[&str])] = &[
    ("pdf", "application/pdf", &["pdf"]),
    ("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", &["docx"]),
    ("html", "text/html", &["html", "htm"]),
    ("markdown", "text/markdown", &["md"]),
    ("text", "text/plain", &["txt", "rst"]),
    ("csv", "text/csv", &["csv"]),
];

#[derive(Default)]
struct Totals {
    files: usize,
    failed: usize,
    pages: u64,
    bytes: u64,
    chunks: usize,
    time: Duration,
}

fn main() {
    let crate_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus = crate_root.join("../shared/corpus");
    let root = if corpus.is_dir() { corpus } else { crate_root.join("tests/fixtures") };
    println!("pipeline benchmark over {}", root.display());

    let config = Config::from_overrides(json!({ "embedding": { "provider": "hash" } })).expect("configuration");
    let limits = ExtractLimits::from(&config.processing);
    let embedder = embed::from_config(&config.embedding);

    let mut files = Vec::new();
    collect_files(&root, &mut files);
    for &(format, content_type, extensions) in FORMATS {
        let mine: Vec<&PathBuf> = files
            .iter()
            .filter(|path| path.extension().and_then(|e| e.to_str()).is_some_and(|e| extensions.contains(&e)))
            .collect();
        if mine.is_empty() {
            continue;
        }
        reset_peak_rss();
        let mut totals = Totals::default();
        let mut failures = BTreeMap::new();
        for path in mine {
            let bytes = std::fs::read(path).expect("readable corpus file");
            totals.files += 1;
            totals.bytes += bytes.len() as u64;
            let started = Instant::now();
            let outcome = process(content_type, &bytes, &limits, &config, embedder.as_ref());
            totals.time += started.elapsed();
            match outcome {
                Ok((pages, chunks)) => {
                    totals.pages += pages;
                    totals.chunks += chunks;
                }
                Err(reason) => {
                    totals.failed += 1;
                    failures.insert(path.file_name().unwrap().to_string_lossy().into_owned(), reason);
                }
            }
        }
        report(format, &totals);
        for (name, reason) in failures {
            println!("    failed: {name}: {reason}");
        }
    }
    zip_bomb_report(&limits);
}

/// The pipeline up to storage: returns the pages (PDF) and the number of chunks embedded.
fn process(
    content_type: &str,
    bytes: &[u8],
    limits: &ExtractLimits,
    config: &Config,
    embedder: &dyn Embedder,
) -> Result<(u64, usize), String> {
    let doc = extract(content_type, bytes, limits, &mut |_| {}, &|| false).map_err(|e| e.to_string())?;
    let chunks = chunk(&doc, config.processing.chunk_size, config.processing.chunk_overlap);
    let texts: Vec<String> = chunks.into_iter().map(|c| c.text).collect();
    for batch in texts.chunks(embedder.batch_size()) {
        // The hash embedder computes before returning its future.
        let vectors = embedder.embed(batch).now_or_never().expect("the hash embedder is synchronous");
        vectors.map_err(|e| e.to_string())?;
    }
    Ok((u64::from(doc.pages.unwrap_or(0)), texts.len()))
}

fn report(format: &str, totals: &Totals) {
    let seconds = totals.time.as_secs_f64().max(1e-9);
    let megabytes = totals.bytes as f64 / 1e6;
    let peak_rss_mb = peak_rss_kib().map(|kib| kib as f64 / 1024.0);
    let pages_per_s = (totals.pages > 0).then(|| totals.pages as f64 / seconds);
    println!(
        "{format:<9} files {:>3} (failed {:>2})  pages {:>5}  chunks {:>6}  {:>7.2} MB  {:>8} pages/s  {:>7.2} MB/s  peak RSS {} MB",
        totals.files,
        totals.failed,
        totals.pages,
        totals.chunks,
        megabytes,
        pages_per_s.map_or("-".to_string(), |p| format!("{p:.1}")),
        megabytes / seconds,
        peak_rss_mb.map_or("?".to_string(), |mb| format!("{mb:.1}")),
    );
    println!(
        "{}",
        json!({
            "format": format, "files": totals.files, "failed": totals.failed, "pages": totals.pages,
            "chunks": totals.chunks, "mb": megabytes, "seconds": seconds, "pages_per_s": pages_per_s,
            "mb_per_s": megabytes / seconds, "peak_rss_mb": peak_rss_mb,
        })
    );
}

/// A 1 GiB DOCX bomb: rejected from its declared size with the default limits, and stopped
/// while inflating when the size limit is lifted. Memory must stay flat in both.
fn zip_bomb_report(limits: &ExtractLimits) {
    let (stream, inflated) = zip_bomb::deflate_bomb(1 << 30);
    let docx = zip_bomb::zip_with_entry("word/document.xml", &stream, inflated);
    let unlimited = ExtractLimits { max_docx_uncompressed_bytes: u64::MAX, ..limits.clone() };
    for (case, limits) in [("docx-bomb", limits), ("docx-bomb-no-size-limit", &unlimited)] {
        reset_peak_rss();
        let started = Instant::now();
        let outcome = extract(
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            &docx,
            limits,
            &mut |_| {},
            &|| false,
        );
        let elapsed = started.elapsed();
        let reason = match outcome {
            Err(ExtractError::Permanent(reason)) => reason,
            other => format!("NOT REJECTED: {:?}", other.map(|doc| doc.sections.len())),
        };
        let peak_rss_mb = peak_rss_kib().map(|kib| kib as f64 / 1024.0);
        println!(
            "{case:<9} {:.2} MB inflating to {:.0} MB: rejected in {:.1} ms, peak RSS {} MB: {reason}",
            docx.len() as f64 / 1e6,
            inflated as f64 / 1e6,
            elapsed.as_secs_f64() * 1e3,
            peak_rss_mb.map_or("?".to_string(), |mb| format!("{mb:.1}")),
        );
        println!(
            "{}",
            json!({ "format": case, "mb": docx.len() as f64 / 1e6, "inflated_mb": inflated as f64 / 1e6,
                    "seconds": elapsed.as_secs_f64(), "peak_rss_mb": peak_rss_mb, "error": reason })
        );
    }
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// The process's peak resident set size (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0), so each format reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
