//! `cargo bench --bench fidelity` (`scripts/bench.sh fidelity`): how close docqueue's
//! PDF text is to poppler's `pdftotext`, and how fast the whole pipeline reads PDFs
//! next to it, over every PDF in ../shared/corpus and tests/fixtures.
//!
//! Agreement: 500 runs of four consecutive alphabetic words, drawn with a fixed seed
//! from pdftotext's output, and the share of them found in docqueue's chunks. Characters:
//! docqueue's non-blank characters as a ratio to pdftotext's. Speed: pages/s of the full
//! pipeline (extractor process, chunking, hash embedding) next to pdftotext alone. The
//! built-in reader (pdf-extract, used where poppler is not installed) is measured the
//! same way, for comparison. Files pdftotext cannot read, or that have no text, are
//! skipped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use serde_json::json;

use docqueue::config::Config;
use docqueue::processing::chunk::chunk;
use docqueue::processing::embed;
use docqueue::processing::extractor::Extractor;

const SAMPLES: usize = 500;
const SEED: u64 = 20261129;

fn main() {
    let crate_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in [crate_root.join("../shared/corpus"), crate_root.join("tests/fixtures")] {
        collect_pdfs(&dir, &mut files);
    }
    let config = Config::from_overrides(json!({
        "processing": { "extractor_program": env!("CARGO_BIN_EXE_docqueue-extract") },
        "embedding": { "provider": "hash" },
    }))
    .expect("configuration");
    let extractor = Extractor::from_config(&config.processing).expect("the docqueue binary");
    let builtin_config = Config::from_overrides(json!({
        "processing": { "extractor_program": env!("CARGO_BIN_EXE_docqueue-extract"), "pdftotext": "" },
    }))
    .expect("configuration");
    let builtin = Extractor::from_config(&builtin_config.processing).expect("the docqueue binary");
    let embedder = embed::from_config(&config.embedding);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        extractor.warm_up();
        builtin.warm_up();
    });

    println!("PDF fidelity against pdftotext ({SAMPLES} four-word runs each, seed {SEED}):");
    let (mut pages_total, mut ours_total, mut poppler_total) = (0u64, Duration::ZERO, Duration::ZERO);
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let started = Instant::now();
        let output = Command::new("pdftotext").arg(&path).arg("-").output().expect("pdftotext (poppler-utils)");
        let poppler_time = started.elapsed();
        let reference = String::from_utf8_lossy(&output.stdout).into_owned();
        let reference_words = words(&reference);
        if !output.status.success() || reference_words.len() < 4 {
            println!("  {name:<45} skipped: pdftotext reads no text from it");
            continue;
        }

        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        let mut on_progress = |_| {};
        let run = extractor.run(&name, &path, "application/pdf", &mut on_progress, std::future::pending(), deadline);
        let extracted = match runtime.block_on(run).result {
            Ok(extracted) => extracted,
            Err(err) => {
                println!("  {name:<45} FAILED in docqueue: {err}");
                continue;
            }
        };
        let extract_time = started.elapsed();
        let chunks = chunk(&extracted, config.processing.chunk_size, config.processing.chunk_overlap);
        let texts: Vec<String> = chunks.iter().map(|c| c.text.clone()).collect();
        for batch in texts.chunks(embedder.batch_size()) {
            embedder.embed(batch).now_or_never().expect("the hash embedder is synchronous").expect("embeddings");
        }
        let ours_time = started.elapsed();

        let agreement = agreement_with(&reference_words, &texts);
        let builtin_agreement = {
            let mut on_progress = |_| {};
            let run = builtin.run(&name, &path, "application/pdf", &mut on_progress, std::future::pending(), deadline);
            match runtime.block_on(run).result {
                Ok(doc) => {
                    let texts: Vec<String> = doc.sections.into_iter().map(|s| s.text).collect();
                    format!("{:.1} %", agreement_with(&reference_words, &texts))
                }
                Err(err) => format!("failed ({err})"),
            }
        };
        // The built-in reader's next spare starts now: let it finish before the next
        // file is timed.
        std::thread::sleep(Duration::from_millis(500));
        let our_chars: usize = extracted.sections.iter().map(|s| non_blank(&s.text)).sum();
        let char_ratio = our_chars as f64 / non_blank(&reference).max(1) as f64;
        let pages = u64::from(extracted.pages.unwrap_or(0));
        let (ours_rate, poppler_rate) =
            (pages as f64 / ours_time.as_secs_f64(), pages as f64 / poppler_time.as_secs_f64());
        (pages_total, ours_total, poppler_total) =
            (pages_total + pages, ours_total + ours_time, poppler_total + poppler_time);
        println!(
            "  {name:<45} agreement {agreement:>5.1} %  chars {char_ratio:>5.3}×  pages {pages:>4}  \
             pipeline {ours_rate:>7.1} pages/s  pdftotext {poppler_rate:>7.1} pages/s  \
             (extract {:.0} ms, chunk + embed {:.0} ms)  built-in reader: agreement {builtin_agreement}",
            extract_time.as_secs_f64() * 1e3,
            (ours_time - extract_time).as_secs_f64() * 1e3,
        );
        println!(
            "{}",
            json!({ "bench": "fidelity", "file": name, "agreement_percent": agreement, "char_ratio": char_ratio,
                    "builtin_reader_agreement": builtin_agreement,
                    "pages": pages, "pipeline_pages_per_s": ours_rate, "pdftotext_pages_per_s": poppler_rate })
        );
    }
    let (ours_rate, poppler_rate) =
        (pages_total as f64 / ours_total.as_secs_f64(), pages_total as f64 / poppler_total.as_secs_f64());
    println!(
        "  all PDFs: {pages_total} pages, pipeline {ours_rate:.1} pages/s, pdftotext {poppler_rate:.1} pages/s \
         ({:.2}×)",
        ours_rate / poppler_rate
    );
    println!(
        "{}",
        json!({ "bench": "fidelity", "file": "all", "pages": pages_total, "pipeline_pages_per_s": ours_rate,
                "pdftotext_pages_per_s": poppler_rate, "ratio": ours_rate / poppler_rate })
    );
}

/// The share (in %) of `SAMPLES` four-word runs of the reference, drawn with the fixed
/// seed, that occur in `texts`.
fn agreement_with(reference_words: &[&str], texts: &[String]) -> f64 {
    let joined: Vec<&str> = texts.iter().flat_map(|t| words(t)).collect();
    let runs: HashSet<[&str; 4]> = joined.windows(4).map(|w| [w[0], w[1], w[2], w[3]]).collect();
    let mut rng = fastrand::Rng::with_seed(SEED);
    let hits = (0..SAMPLES)
        .filter(|_| {
            let at = rng.usize(0..reference_words.len() - 3);
            let run = &reference_words[at..at + 4];
            runs.contains(&[run[0], run[1], run[2], run[3]])
        })
        .count();
    hits as f64 / SAMPLES as f64 * 100.0
}

/// Alphabetic words, ligatures spelled out, as both sides are compared.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_alphabetic()).filter(|w| !w.is_empty()).collect()
}

fn non_blank(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

fn collect_pdfs(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_pdfs(&path, files);
        } else if path.extension().is_some_and(|e| e == "pdf") {
            files.push(path);
        }
    }
}
