//! The real `Processor`: extract → chunk → embed → store, with progress in four
//! stages (extract 0–40, chunk 40–50, embed 50–95, store from 95; `document.completed`
//! says 100) and the per-document wall-time limit. The file is read in an extractor
//! process of its own (see `extractor`); the other CPU-bound steps run on the blocking
//! pool, never on an event loop.
//!
//! Before any of that, a document whose content was already processed with the same
//! settings copies the chunks of that twin instead; identical documents in flight at
//! once run one at a time through a claim in Redis (`queue::twins`), so only the first
//! is processed and the others copy its chunks once it has completed. They wait for it
//! in the queue (`ProcessError::Deferred`), not in a worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::chunk::chunk;
use super::embed::{self, Embedder};
use super::extract::{ExtractOptions, ExtractedText};
use super::extractor::{Extractor, ExtractorError, ExtractorOutcome, ExtractorReport, ReadProgress};
use crate::config::{Config, DedupScope, EmbeddingProvider, ProcessingConfig};
use crate::db::chunks::TwinCopy;
use crate::db::models::{ChunkRow, Document};
use crate::db::{attempts, chunks, documents, Db};
use crate::job_state::JobState;
use crate::processing::processor::{
    cancellation, BoxFuture, CancelReason, JobContext, ProcessError, Processed, Processor, ProgressUpdate, Stage,
};
use crate::processing::read_ahead::{ReadAhead, READ_AHEAD_BYTES};
use crate::processing::step_times::Step;
use crate::queue::{ClaimedJob, Queue, TwinClaim};
use crate::storage::Storage;

/// How long a claim on a content's run lives unless renewed: how long twins wait
/// for a holder that died without a word.
const TWIN_CLAIM_TTL: Duration = Duration::from_secs(30);
/// How often a holder renews its claim while it processes.
const TWIN_CLAIM_RENEWAL: Duration = Duration::from_secs(10);
/// Texts up to this size are split and hash-embedded on the worker's own thread.
const INLINE_TEXT_BYTES: usize = 64 * 1024;

#[derive(Clone)]
pub struct Pipeline {
    db: Db,
    queue: Queue,
    storage: Storage,
    extractor: Extractor,
    config: ProcessingConfig,
    embedder: Arc<dyn Embedder>,
    /// The built-in embedder computes on the CPU: it runs on the blocking pool.
    embedder_is_local: bool,
    concurrent_requests: usize,
    /// What makes chunks differ for the same bytes, hashed: a document processed with
    /// another fingerprint is never copied.
    settings_fingerprint: String,
}

impl Pipeline {
    pub fn new(
        config: &Config,
        db: Db,
        queue: Queue,
        storage: Storage,
        extractor: Extractor,
        embedder: Arc<dyn Embedder>,
    ) -> Pipeline {
        Pipeline {
            db,
            queue,
            storage,
            extractor,
            config: config.processing.clone(),
            embedder,
            embedder_is_local: config.embedding.provider == EmbeddingProvider::Hash,
            concurrent_requests: config.embedding.concurrent_requests,
            settings_fingerprint: settings_fingerprint(config),
        }
    }

    /// Copies a completed twin's chunks, or defers the job until the twin in flight
    /// has ended, or else processes the document, holding the claim on its content.
    async fn run(self, ctx: JobContext) -> Result<Processed, ProcessError> {
        let claim = self.twin_claim_key(&ctx.document);
        let checking = Instant::now();
        let twin = self.reuse_twin_or_claim(&ctx, &claim).await;
        ctx.step_took(Step::DuplicateCheck, checking);
        if let Some(reused) = twin? {
            ctx.on_progress(Stage::Storing, 100);
            return Ok(reused);
        }
        ctx.on_progress(Stage::Extracting, 0);
        let renewal = RenewClaim::start(self.queue.clone(), claim.clone(), ctx.document.id.clone());
        let result = self.clone().process(ctx.clone()).await;
        drop(renewal);
        if result.is_err() {
            // A failed original is never reused: its twins must not wait for the claim
            // to lapse before they process on their own.
            if let Err(err) = self.queue.release_twin_run(&claim, &ctx.document.id).await {
                log::warn!("document {}: claim on its content not released: {err}", ctx.document.id);
            }
        }
        // A completed run keeps its claim until it lapses: the row says `completed` only
        // once the worker has settled the job, and until then a twin that found no
        // claim would process the same content again.
        result
    }

    fn twin_claim_key(&self, document: &Document) -> String {
        let scope = match self.config.dedup_scope {
            DedupScope::User => format!("user:{}", document.user_id),
            DedupScope::Global => "global".to_string(),
        };
        self.queue.keys().twin_run(&scope, &document.sha256, &self.settings_fingerprint)
    }

    /// Some(result of copying a twin's chunks), or None when this document is to be
    /// processed: it holds the claim on its content (or Redis could not be asked, and
    /// it is processed as if it had no twin).
    async fn reuse_twin_or_claim(&self, ctx: &JobContext, claim: &str) -> Result<Option<Processed>, ProcessError> {
        let document = &ctx.document;
        loop {
            // The claim and the look for a completed twin run side by side. A twin that
            // completed after the look could only be missed if its own claim had lapsed
            // by the time of ours, but a completed run keeps its claim for
            // TWIN_CLAIM_TTL: it holds ours off, and the next look finds it.
            let (claimed, twin) = tokio::join!(
                self.queue.claim_twin_run(claim, &document.id, TWIN_CLAIM_TTL),
                self.find_completed_twin(document)
            );
            let twin = twin?;
            let holder = match claimed {
                Ok(TwinClaim::Mine) => {
                    let Some(twin) = twin else { return Ok(None) };
                    let reused = self.copy_twin(document, twin).await?;
                    if reused.is_some() {
                        let _ = self.queue.release_twin_run(claim, &document.id).await;
                    }
                    return Ok(reused);
                }
                Ok(TwinClaim::HeldBy(holder)) => holder,
                Err(err) => {
                    log::warn!("document {}: duplicates not checked, Redis did not answer: {err}", document.id);
                    return match twin {
                        Some(twin) => self.copy_twin(document, twin).await,
                        None => Ok(None),
                    };
                }
            };
            if let Some(twin) = twin {
                if let Some(reused) = self.copy_twin(document, twin).await? {
                    return Ok(Some(reused));
                }
            }
            let id = holder.clone();
            let run = self
                .db
                .run(move |conn| documents::state_and_job_of(conn, &id))
                .await
                .map_err(|e| ProcessError::Transient(format!("the database was unavailable: {e}")))?;
            match run {
                None | Some((JobState::Failed | JobState::Cancelled, _)) => {
                    // The holder will not complete: free its claim and take it.
                    let _ = self.queue.release_twin_run(claim, &holder).await;
                }
                // The wait is in the queue, not in this worker: another document can
                // use it meanwhile, and the holder's end wakes this one (one that
                // completed since the look is found by the next).
                Some((_, holder_job)) => return Err(ProcessError::Deferred { until_ended: holder_job }),
            }
            if ctx.is_cancelled() {
                return Err(ProcessError::Cancelled);
            }
        }
    }

    /// A completed twin in scope, made with the same settings.
    async fn find_completed_twin(&self, document: &Document) -> Result<Option<String>, ProcessError> {
        let owner = (self.config.dedup_scope == DedupScope::User).then(|| document.user_id.clone());
        let (sha256, fingerprint, id) =
            (document.sha256.clone(), self.settings_fingerprint.clone(), document.id.clone());
        self.db
            .run(move |conn| documents::find_completed_twin(conn, owner.as_deref(), &sha256, &fingerprint, &id))
            .await
            .map_err(database_unavailable)
    }

    /// Copies `twin`'s chunks; None when it was deleted since it was found.
    async fn copy_twin(&self, document: &Document, twin: String) -> Result<Option<Processed>, ProcessError> {
        let (from, fingerprint, id, job_id) =
            (twin, self.settings_fingerprint.clone(), document.id.clone(), document.job_id.clone());
        let copied = self
            .db
            .write(move |conn| chunks::copy_from_twin(conn, &from, &fingerprint, &id, &job_id))
            .await
            .map_err(database_unavailable)?;
        match copied {
            TwinCopy::Copied { chunk_count, warning, reused_from } => {
                Ok(Some(Processed { chunk_count, reused_from, warning }))
            }
            TwinCopy::TwinGone => Ok(None),
            TwinCopy::NotOwned => {
                Err(ProcessError::Permanent("the document was deleted while it was processed".into()))
            }
        }
    }

    async fn process(self, ctx: JobContext) -> Result<Processed, ProcessError> {
        let time_limit = Duration::from_secs(self.config.max_seconds);
        let deadline = Instant::now() + time_limit;
        let over_time = move || Instant::now() > deadline;
        let over_time_error = || {
            ProcessError::Permanent(format!(
                "processing took longer than the time limit (processing.max_seconds = {})",
                self.config.max_seconds
            ))
        };
        let document = ctx.document.clone();

        let progress = ctx.progress_fn();
        let mut on_progress = |read: ReadProgress| {
            let percent = (read.fraction.clamp(0.0, 1.0) * 40.0) as u8;
            progress(ProgressUpdate { stage: Stage::Extracting, percent, ocr_pages: read.ocr_pages });
        };
        let file = self.storage.absolute(&document.storage_path);
        let read_ahead = ctx.take_read_ahead().filter(|read| read.reads(&file, &document.content_type));
        let (extracting, extraction) = match read_ahead {
            Some(read) => (read.began(), read.finish(&mut on_progress).await),
            None => {
                let extracting = Instant::now();
                let deadline = tokio::time::Instant::from_std(deadline);
                let (owner, kind) = (&document.user_id, &document.content_type);
                (extracting, self.extractor.run(owner, &file, kind, &mut on_progress, ctx.cancelled(), deadline).await)
            }
        };
        ctx.step_took(Step::Extract, extracting);
        let extracted = match extraction.result {
            Ok(extracted) => {
                // Counted off the document's path: a clean read's count may land a moment
                // after the document ends; a failure's is counted before (below).
                let (queue, outcome) = (self.queue.clone(), extraction.report.outcome);
                tokio::spawn(async move { count_outcome(&queue, outcome).await });
                extracted
            }
            Err(err) => {
                count_outcome(&self.queue, extraction.report.outcome).await;
                self.keep_report(&document, ctx.attempt, &extraction.report).await;
                return Err(match err {
                    ExtractorError::Cancelled => ProcessError::Cancelled,
                    ExtractorError::Permanent(reason) => ProcessError::Permanent(reason),
                    // One more try, in case the machine rather than the file was to blame.
                    ExtractorError::MachineTrouble(reason) if ctx.attempt <= 1 => ProcessError::Transient(reason),
                    ExtractorError::MachineTrouble(reason) => {
                        ProcessError::Permanent(format!("{reason}; it happened again on a second try"))
                    }
                });
            }
        };
        // A clean read's report is stored with the chunks, in the same transaction.
        let stored = self.chunk_embed_store(&ctx, extracted, &extraction.report, over_time, over_time_error).await;
        if stored.is_err() {
            self.keep_report(&document, ctx.attempt, &extraction.report).await;
        }
        stored
    }

    async fn chunk_embed_store(
        &self,
        ctx: &JobContext,
        extracted: ExtractedText,
        report: &ExtractorReport,
        over_time: impl Fn() -> bool,
        over_time_error: impl Fn() -> ProcessError,
    ) -> Result<Processed, ProcessError> {
        let document = &ctx.document;
        let warning = extracted.warning.clone();
        let chunking = Instant::now();
        ctx.on_progress(Stage::Chunking, 40);
        let (size, overlap) = (self.config.chunk_size, self.config.chunk_overlap);
        // A short text is split on this thread: a hop to the blocking pool would cost
        // more than the splitting.
        let text_bytes: usize = extracted.sections.iter().map(|section| section.text.len()).sum();
        let pieces = if text_bytes <= INLINE_TEXT_BYTES {
            chunk(&extracted, size, overlap)
        } else {
            tokio::task::spawn_blocking(move || chunk(&extracted, size, overlap))
                .await
                .map_err(|_| ProcessError::Permanent("the text could not be split into chunks".into()))?
        };
        if pieces.is_empty() {
            return Err(ProcessError::Permanent("the document has no extractable text".into()));
        }
        ctx.on_progress(Stage::Chunking, 50);

        ctx.on_progress(Stage::Embedding, 50);
        // The requests' texts, copied once from the chunks (a large document's text is
        // held by its chunks and these batches, no third time).
        let batches: Vec<Vec<String>> = pieces
            .chunks(self.embedder.batch_size().max(1))
            .map(|batch| batch.iter().map(|piece| piece.text.clone()).collect())
            .collect();
        let total = batches.len();
        let mut embeddings: Vec<Vec<f32>> = Vec::with_capacity(pieces.len());
        let mut results = futures_util::stream::iter(batches)
            .map(|batch| self.embed_batch(batch))
            .buffered(self.concurrent_requests.max(1));
        let mut done = 0;
        while let Some(vectors) = results.next().await {
            embeddings.extend(vectors?);
            done += 1;
            ctx.on_progress(Stage::Embedding, 50 + (45 * done / total) as u8);
            if ctx.is_cancelled() {
                return Err(ProcessError::Cancelled);
            }
            if over_time() {
                return Err(over_time_error());
            }
        }
        if embeddings.len() != pieces.len() {
            return Err(ProcessError::Transient(format!(
                "the embedder returned {} vectors for {} chunks",
                embeddings.len(),
                pieces.len()
            )));
        }

        ctx.step_took(Step::ChunkEmbed, chunking);
        ctx.on_progress(Stage::Storing, 95);
        let rows: Vec<ChunkRow> = pieces
            .into_iter()
            .zip(embeddings)
            .map(|(piece, vector)| ChunkRow {
                document_id: document.id.clone(),
                ordinal: piece.ordinal,
                char_count: piece.text.chars().count() as i32,
                text: piece.text,
                page_start: piece.page_start,
                page_end: piece.page_end,
                embedding: embed::to_bytes(&vector),
            })
            .collect();
        let count = rows.len() as i32;
        let (doc_id, job_id, attempt, run) = (document.id.clone(), document.job_id.clone(), ctx.attempt, report.run());
        let fingerprint = self.settings_fingerprint.clone();
        let storing = Instant::now();
        // Lost in a crash of the database server, the chunks are written again: the job's
        // end row, which comes after and waits for the disk, is lost with them (the
        // document stays unfinished and its job runs again), or flushes them first.
        let stored = self
            .db
            .write_async_commit(move |conn| {
                attempts::record_extractor(conn, &job_id, attempt as i32, &run)?;
                chunks::replace_for_job(conn, &doc_id, &job_id, &fingerprint, &rows)
            })
            .await
            .map_err(|e| ProcessError::Transient(format!("the chunks could not be stored: {e}")))?;
        ctx.step_took(Step::Store, storing);
        if !stored {
            return Err(ProcessError::Permanent("the document was deleted while it was processed".into()));
        }
        // No `storing 100`: `document.completed` follows at once and says 100 itself.
        Ok(Processed { chunk_count: count, reused_from: None, warning })
    }

    /// The job's story keeps how the extractor ended; that may not fail the document.
    async fn keep_report(&self, document: &Document, attempt: u32, report: &ExtractorReport) {
        let (job_id, run) = (document.job_id.clone(), report.run());
        let saved = self.db.write(move |conn| attempts::record_extractor(conn, &job_id, attempt as i32, &run)).await;
        if let Err(err) = saved {
            log::warn!("extractor report not saved: {err}");
        }
    }

    async fn embed_batch(&self, batch: Vec<String>) -> Result<Vec<Vec<f32>>, ProcessError> {
        let batch_bytes: usize = batch.iter().map(String::len).sum();
        let result = if self.embedder_is_local && batch_bytes <= INLINE_TEXT_BYTES {
            // Hashing a few KB takes microseconds: no hop to the blocking pool.
            futures_util::FutureExt::now_or_never(self.embedder.embed(&batch))
                .ok_or_else(|| ProcessError::Transient("the local embedder did not finish synchronously".into()))?
        } else if self.embedder_is_local {
            let embedder = self.embedder.clone();
            tokio::task::spawn_blocking(move || futures_util::FutureExt::now_or_never(embedder.embed(&batch)))
                .await
                .map_err(|_| ProcessError::Transient("the embedder crashed".into()))?
                .ok_or_else(|| ProcessError::Transient("the local embedder did not finish synchronously".into()))?
        } else {
            self.embedder.embed(&batch).await
        };
        result.map_err(|e| match e {
            embed::EmbedError::Transient(m) => ProcessError::Transient(format!("embedding failed: {m}")),
            embed::EmbedError::Permanent(m) => ProcessError::Permanent(format!("embedding failed: {m}")),
        })
    }
}

/// The settings that decide a document's chunks, hashed: the readers (this build, and
/// whether poppler reads PDFs), the chunking, and the embedding model.
fn settings_fingerprint(config: &Config) -> String {
    let embedding = &config.embedding;
    let settings = format!(
        "docqueue {}; pdftotext {}; chunk_size {}; chunk_overlap {}; embedding {:?} {} {} {}",
        env!("CARGO_PKG_VERSION"),
        ExtractOptions::from(&config.processing).pdftotext.is_some(),
        config.processing.chunk_size,
        config.processing.chunk_overlap,
        embedding.provider,
        embedding.base_url,
        embedding.model,
        embedding.dimensions,
    );
    hex::encode(Sha256::digest(settings.as_bytes()))
}

/// Renews a claim on a content's run while its holder processes; dropping it stops
/// the renewals (the pipeline's task may be dropped on a timeout, mid-run).
struct RenewClaim(tokio::task::JoinHandle<()>);

impl RenewClaim {
    fn start(queue: Queue, claim: String, holder: String) -> RenewClaim {
        RenewClaim(tokio::spawn(async move {
            loop {
                tokio::time::sleep(TWIN_CLAIM_RENEWAL).await;
                match queue.claim_twin_run(&claim, &holder, TWIN_CLAIM_TTL).await {
                    Ok(TwinClaim::Mine) => {}
                    Ok(TwinClaim::HeldBy(other)) => {
                        log::warn!("document {holder}: its claim lapsed and {other} took it");
                        return;
                    }
                    Err(err) => log::warn!("document {holder}: claim on its content not renewed: {err}"),
                }
            }
        }))
    }
}

impl Drop for RenewClaim {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Processor for Pipeline {
    fn process(&self, ctx: JobContext) -> BoxFuture<Result<Processed, ProcessError>> {
        Box::pin(self.clone().run(ctx))
    }

    fn warm_up(&self) {
        self.extractor.warm_up();
    }

    fn read_ahead(&self, job: &ClaimedJob, cancel: watch::Receiver<Option<CancelReason>>) -> Option<ReadAhead> {
        if job.size_bytes > READ_AHEAD_BYTES || job.content_type.is_empty() {
            return None;
        }
        let file = self.storage.absolute(&Storage::relative_path_for(&job.document_id));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(self.config.max_seconds);
        Some(ReadAhead::begin(
            self.extractor.clone(),
            job.user_id.clone(),
            file,
            job.content_type.clone(),
            cancellation(cancel),
            deadline,
        ))
    }
}

/// `/metrics` counts how extractors ended; that may not fail the document either.
async fn count_outcome(queue: &Queue, outcome: ExtractorOutcome) {
    if let Err(err) = queue.count_extractor_outcome(outcome.as_str()).await {
        log::warn!("extractor outcome not counted: {err}");
    }
}

fn database_unavailable(err: crate::db::DbError) -> ProcessError {
    ProcessError::Transient(format!("the database was unavailable: {err}"))
}
