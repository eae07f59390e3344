//! `cargo bench --bench pipeline`: extract → chunk → embed (built-in hash embedder) over
//! every document in ../shared/corpus, or in tests/fixtures when the corpus is absent,
//! printing per format the files, pages, megabytes, throughput and peak memory, then how
//! a 1 GiB DOCX zip bomb fares, then what the extractor process costs: the overhead per
//! small document and the pages/s on every PDF, read in this process (before the sandbox)
//! and through `docqueue-extract` (as the service reads them now), then OCR: pages/s
//! at 300 DPI on a scan made from a real PDF, and how much of its text OCR recovers
//! (`cargo bench --bench pipeline -- ocr` runs that part alone), then what reusing a
//! duplicate upload costs in the database. One plain line and one JSON line per
//! measurement.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::json;

use docqueue::config::Config;
use docqueue::processing::chunk::chunk;
use docqueue::processing::embed::{self, Embedder};
use docqueue::processing::extract::{extract, ExtractError, ExtractOptions, ExtractedText};
use docqueue::processing::extractor::Extractor;

#[allow(dead_code)] // the tests' PDF writer, for the scans
#[path = "../tests/common/pdf_writer.rs"]
mod pdf_writer;
#[path = "../tests/common/scans.rs"]
mod scans;
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
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", &["xlsx"]),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet", &["ods"]),
    ("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", &["pptx"]),
    ("odt", "application/vnd.oasis.opendocument.text", &["odt"]),
    ("epub", "application/epub+zip", &["epub"]),
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
    if std::env::args().skip(1).any(|arg| arg == "ocr") {
        ocr_report();
        return;
    }
    let crate_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus = crate_root.join("../shared/corpus");
    let root = if corpus.is_dir() { corpus } else { crate_root.join("tests/fixtures") };
    println!("pipeline benchmark over {}", root.display());

    let config = Config::from_overrides(json!({ "embedding": { "provider": "hash" } })).expect("configuration");
    let limits = ExtractOptions::from(&config.processing);
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
    process_boundary_report(&root, &files);
    ocr_report();
    reuse_report(&files, &limits, &config);
}

/// Reusing a duplicate upload: finding the completed twin and copying its chunks (one
/// transaction), on a SQLite file, for the largest PDF's chunks. The worker adds one
/// Redis round trip (the claim) to this.
fn reuse_report(files: &[PathBuf], limits: &ExtractOptions, config: &Config) {
    use docqueue::db::models::{ChunkRow, Document, FileFacts};
    use docqueue::db::{chunks, documents, Db};

    const FINGERPRINT: &str = "bench";
    const RUNS: usize = 20;
    let Some(pdf) = files
        .iter()
        .filter(|path| path.extension().is_some_and(|e| e == "pdf"))
        .max_by_key(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
    else {
        return;
    };
    let bytes = std::fs::read(pdf).expect("readable corpus file");
    let Ok(doc) = extract("application/pdf", &bytes, limits, &mut |_| {}, &|| false) else {
        return;
    };
    let pieces = chunk(&doc, config.processing.chunk_size, config.processing.chunk_overlap);
    let dir = std::env::temp_dir().join(format!("docqueue-bench-reuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let database = Config::from_overrides(json!({ "database": { "url": dir.join("reuse.sqlite3") } }))
        .expect("configuration")
        .database;
    let db = Db::connect(&database).expect("SQLite");
    db.migrate().expect("migrations");
    let row = |n: usize| {
        let file = FileFacts {
            filename: "report.pdf".into(),
            content_type: "application/pdf".into(),
            size_bytes: bytes.len() as i64,
            sha256: "0".repeat(64),
            storage_path: format!("reader/{n}"),
        };
        Document::queued(ulid::Ulid::generate().to_string(), "reader", file, 0, chrono::Utc::now().naive_utc())
    };
    let original = row(0);
    let rows: Vec<ChunkRow> = pieces
        .iter()
        .map(|piece| ChunkRow {
            document_id: original.id.clone(),
            ordinal: piece.ordinal,
            text: piece.text.clone(),
            page_start: piece.page_start,
            page_end: piece.page_end,
            char_count: piece.text.chars().count() as i32,
            embedding: embed::to_bytes(&vec![0.0; config.embedding.dimensions]),
        })
        .collect();
    let count = rows.len();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let mut took = Vec::with_capacity(RUNS);
    runtime.block_on(async {
        let (id, job_id) = (original.id.clone(), original.job_id.clone());
        db.run(move |conn| {
            documents::insert_all(conn, &[original])?;
            chunks::replace_for_job(conn, &id, &job_id, FINGERPRINT, &rows)?;
            documents::mark_processing(conn, &id, &job_id, "bench", 1)?;
            documents::mark_completed(conn, &id, &job_id, count as i32, None)
        })
        .await
        .expect("the original stored");
        for n in 1..=RUNS {
            let twin = row(n);
            let (id, job_id) = (twin.id.clone(), twin.job_id.clone());
            db.run(move |conn| documents::insert_all(conn, &[twin])).await.expect("a duplicate stored");
            let started = Instant::now();
            let copied = db
                .run(move |conn| {
                    let found =
                        documents::find_completed_twin(conn, Some("reader"), &"0".repeat(64), FINGERPRINT, &id)?;
                    let found = found.expect("the completed original");
                    chunks::copy_from_twin(conn, &found, FINGERPRINT, &id, &job_id).map(|copied| (found, copied))
                })
                .await
                .expect("copied");
            took.push(started.elapsed());
            let (found, copied) = copied;
            assert_eq!(
                copied,
                chunks::TwinCopy::Copied { chunk_count: count as i32, warning: None, reused_from: Some(found) }
            );
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    let median = median_ms(&mut took);
    println!(
        "reuse     a duplicate of {} ({count} chunks): twin found and chunks copied in {median:.1} ms (median of {RUNS}, SQLite)",
        pdf.file_name().unwrap().to_string_lossy()
    );
    println!(
        "{}",
        json!({ "format": "reuse", "chunks": count, "median_ms": median, "runs": RUNS, "database": "sqlite" })
    );
}

/// Documents read through the extractor process, one after another.
struct ThroughProcess {
    extractor: Extractor,
    runtime: tokio::runtime::Runtime,
}

impl ThroughProcess {
    fn new() -> ThroughProcess {
        let config = Config::from_overrides(json!({
            "processing": { "extractor_program": env!("CARGO_BIN_EXE_docqueue-extract") }
        }))
        .expect("configuration");
        let extractor = Extractor::from_config(&config.processing).expect("the docqueue binary");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        ThroughProcess { extractor, runtime }
    }

    /// Reads one file of `owner`'s; returns its page count.
    fn read(&self, owner: &str, path: &Path, content_type: &str) -> Result<u64, String> {
        self.read_text(owner, path, content_type).map(|doc| u64::from(doc.pages.unwrap_or(0)))
    }

    fn read_text(&self, owner: &str, path: &Path, content_type: &str) -> Result<ExtractedText, String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        let mut on_progress = |_| {};
        let run = self.extractor.run(owner, path, content_type, &mut on_progress, std::future::pending(), deadline);
        let extraction = self.runtime.block_on(run);
        extraction.result.map_err(|e| e.to_string())
    }
}

/// The price of reading in a separate process: per-document overhead on a one-page
/// text document (spawn, limits, framing, reaping; or, for an owner's next document, a
/// process kept for it), and pages/s on each PDF in this process and through the
/// extractor.
fn process_boundary_report(root: &Path, files: &[PathBuf]) {
    const RUNS: usize = 200;
    let through = ThroughProcess::new();
    let limits = ExtractOptions::from(&Config::from_overrides(json!({})).expect("configuration").processing);
    let dir = std::env::temp_dir().join(format!("docqueue-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let note = dir.join("note.txt");
    let text = "A one-page note about the quarterly planning meeting, its decisions and owners.\n".repeat(30);
    std::fs::write(&note, &text).expect("a scratch file");

    let mut inside = Vec::with_capacity(RUNS);
    let mut outside = Vec::with_capacity(RUNS);
    let mut back_to_back = Vec::with_capacity(RUNS);
    let mut kept = Vec::with_capacity(RUNS);
    // One owner's documents in a row: the process that read the last one reads the next.
    // First, while no other owner's idle process fills the bound on kept processes
    // (the loops below keep one for each of their owners).
    for _ in 0..RUNS {
        let started = Instant::now();
        through.read("one-owner", &note, "text/plain").expect("the note reads through the extractor");
        kept.push(started.elapsed());
    }
    // Every document of a new owner: no process is kept for it, a spare or a new one reads.
    for run in 0..RUNS {
        let started = Instant::now();
        extract("text/plain", text.as_bytes(), &limits, &mut |_| {}, &|| false).expect("the note reads");
        inside.push(started.elapsed());
        let started = Instant::now();
        through
            .read(&format!("back-to-back-{run}"), &note, "text/plain")
            .expect("the note reads through the extractor");
        back_to_back.push(started.elapsed());
    }
    // A worker's next document comes after the chunking, embedding and storing of the
    // last one, and the spare started for it has that long to get ready: 20 ms here.
    for run in 0..RUNS {
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        through.read(&format!("spare-{run}"), &note, "text/plain").expect("the note reads through the extractor");
        outside.push(started.elapsed());
    }
    let back_to_back_ms = median_ms(&mut back_to_back);
    let kept_ms = median_ms(&mut kept);
    let _ = std::fs::remove_dir_all(&dir);
    let (inside_ms, outside_ms) = (median_ms(&mut inside), median_ms(&mut outside));
    let p95_ms = {
        outside.sort();
        outside[RUNS * 95 / 100].as_secs_f64() * 1e3
    };
    println!(
        "extractor overhead  1-page text, {RUNS} runs each: in process {inside_ms:.3} ms; through a ready spare \
         extractor {outside_ms:.2} ms (p95 {p95_ms:.2} ms): {:.2} ms per document; back to back, with no time \
         for the spare to start, {back_to_back_ms:.2} ms; the owner's next document through the process kept \
         for it {kept_ms:.2} ms",
        outside_ms - inside_ms
    );
    println!(
        "{}",
        json!({ "format": "extractor-overhead", "runs": RUNS, "in_process_ms": inside_ms,
                "through_extractor_ms": outside_ms, "through_extractor_p95_ms": p95_ms,
                "overhead_ms": outside_ms - inside_ms, "back_to_back_ms": back_to_back_ms,
                "through_kept_extractor_ms": kept_ms })
    );

    println!("PDF pages/s over {}, in process (before) and through the extractor (after):", root.display());
    // The large PDFs (50 pages or more) together: where the boundary's cost must vanish.
    let (mut large_pages, mut large_before, mut large_after) = (0u64, 0.0, 0.0);
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "pdf")) {
        let bytes = std::fs::read(path).expect("readable PDF");
        let started = Instant::now();
        let Ok(doc) = extract("application/pdf", &bytes, &limits, &mut |_| {}, &|| false) else { continue };
        let before = started.elapsed().as_secs_f64();
        let pages = u64::from(doc.pages.unwrap_or(0));
        let started = Instant::now();
        // Each PDF as a new owner's: read by a fresh process, as before.
        let owner = path.display().to_string();
        through.read(&owner, path, "application/pdf").expect("a PDF that reads in process reads through the extractor");
        let after = started.elapsed().as_secs_f64();
        if pages >= 50 {
            (large_pages, large_before, large_after) =
                (large_pages + pages, large_before + before, large_after + after);
        }
        let name = path.file_name().unwrap().to_string_lossy();
        println!(
            "  {name:<45} {pages:>5} pages  before {:>8.1} pages/s  after {:>8.1} pages/s  ({:+.1} %)",
            pages as f64 / before,
            pages as f64 / after,
            (after / before - 1.0) * 100.0
        );
        println!(
            "{}",
            json!({ "format": "pdf-through-extractor", "file": name, "pages": pages,
                    "before_pages_per_s": pages as f64 / before, "after_pages_per_s": pages as f64 / after,
                    "slower_percent": (after / before - 1.0) * 100.0 })
        );
    }
    if large_pages > 0 {
        let slower = (large_after / large_before - 1.0) * 100.0;
        println!(
            "  large PDFs together {large_pages:>5} pages  before {:>8.1} pages/s  after {:>8.1} pages/s  ({slower:+.1} %)",
            large_pages as f64 / large_before,
            large_pages as f64 / large_after,
        );
        println!(
            "{}",
            json!({ "format": "large-pdfs-through-extractor", "pages": large_pages,
                    "before_pages_per_s": large_pages as f64 / large_before,
                    "after_pages_per_s": large_pages as f64 / large_after, "slower_percent": slower })
        );
    }
}

fn median_ms(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

/// The pipeline up to storage: returns the pages (PDF) and the number of chunks embedded.
fn process(
    content_type: &str,
    bytes: &[u8],
    limits: &ExtractOptions,
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
fn zip_bomb_report(limits: &ExtractOptions) {
    let (stream, inflated) = zip_bomb::deflate_bomb(1 << 30);
    let docx = zip_bomb::zip_with_entry("word/document.xml", &stream, inflated);
    let unlimited = ExtractOptions { max_docx_uncompressed_bytes: u64::MAX, ..limits.clone() };
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

/// OCR as the service runs it: the pages of tests/fixtures/debian-reference-excerpt.pdf
/// rendered in grey at 300 DPI (what a scanner makes) into an image-only PDF, read
/// through the extractor process at the default `processing.ocr.dpi` (300). Prints
/// pages/s and the share of the words of the PDF's own text layer that OCR recovers.
fn ocr_report() {
    let config = Config::from_overrides(json!({})).expect("configuration");
    if let Some(reason) = ExtractOptions::from(&config.processing).ocr.pdf_ocr_unavailable() {
        println!("ocr       skipped: {reason}");
        return;
    }
    let source_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debian-reference-excerpt.pdf");
    let source = std::fs::read(&source_path).expect("the fixture");
    let through = ThroughProcess::new();
    let reference = through.read_text("bench-ocr-text", &source_path, "application/pdf").expect("its text layer");
    let pages = reference.pages.unwrap_or(0);
    let scan_dpi = 300;
    let rasters: Vec<scans::Raster> = (1..=pages).map(|page| scans::render_page(&source, page, scan_dpi)).collect();
    let points = |pixels: usize| pixels as f64 * 72.0 / f64::from(scan_dpi);
    let scanned = scans::image_only_pdf(&rasters, points(rasters[0].width), points(rasters[0].height));
    drop(rasters);
    let scan_path = std::env::temp_dir().join(format!("docqueue-bench-ocr-{}.pdf", std::process::id()));
    std::fs::write(&scan_path, &scanned).expect("a temporary file");
    let started = Instant::now();
    let recognised = through.read_text("bench-ocr-scan", &scan_path, "application/pdf");
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&scan_path);
    let recognised = match recognised {
        Ok(recognised) => recognised,
        Err(reason) => {
            println!("ocr       failed: {reason}");
            return;
        }
    };
    let words = |doc: &ExtractedText| -> Vec<String> {
        doc.sections
            .iter()
            .flat_map(|section| section.text.split(|c: char| !c.is_alphanumeric()))
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let found: std::collections::HashSet<String> = words(&recognised).into_iter().collect();
    let expected = words(&reference);
    let recovered = expected.iter().filter(|word| found.contains(*word)).count() as f64 / expected.len().max(1) as f64;
    let pages_per_s = f64::from(pages) / seconds;
    println!(
        "ocr       {pages} scanned pages ({:.1} MB) at 300 DPI through the extractor: {pages_per_s:.2} pages/s \
         ({:.1} s a page), {:.1} % of the text layer's words recovered",
        scanned.len() as f64 / 1e6,
        seconds / f64::from(pages),
        recovered * 100.0
    );
    println!(
        "{}",
        json!({ "format": "ocr", "pages": pages, "dpi": 300, "mb": scanned.len() as f64 / 1e6, "seconds": seconds,
                "pages_per_s": pages_per_s, "words_recovered": recovered })
    );
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
