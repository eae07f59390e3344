//! The real `Processor`: extract → chunk → embed → store, with progress in four
//! stages (extract 0–40, chunk 40–50, embed 50–95, store 95–100) and the per-document
//! wall-time limit. The file is read in an extractor process of its own (see
//! `extractor`); the other CPU-bound steps run on the blocking pool, never on an event
//! loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::chunk::chunk;
use super::embed::{self, Embedder};
use super::extract::ExtractedText;
use super::extractor::{Extractor, ExtractorError, ExtractorReport, ReadProgress};
use crate::config::{Config, EmbeddingProvider, ProcessingConfig};
use crate::db::models::{ChunkRow, Document};
use crate::db::{attempts, chunks, Db};
use crate::processing::processor::{BoxFuture, JobContext, ProcessError, Processed, Processor, ProgressUpdate, Stage};
use crate::queue::Queue;
use crate::storage::Storage;

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
        }
    }

    async fn run(self, ctx: JobContext) -> Result<Processed, ProcessError> {
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

        ctx.on_progress(Stage::Extracting, 0);
        let progress = ctx.progress_fn();
        let mut on_progress = |read: ReadProgress| {
            let percent = (read.fraction.clamp(0.0, 1.0) * 40.0) as u8;
            progress(ProgressUpdate { stage: Stage::Extracting, percent, ocr_pages: read.ocr_pages });
        };
        let extraction = self
            .extractor
            .run(
                &document.user_id,
                &self.storage.absolute(&document.storage_path),
                &document.content_type,
                &mut on_progress,
                ctx.cancelled(),
                tokio::time::Instant::from_std(deadline),
            )
            .await;
        self.count_outcome(&extraction.report).await;
        let extracted = match extraction.result {
            Ok(extracted) => extracted,
            Err(err) => {
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
        ctx.on_progress(Stage::Chunking, 40);
        let (size, overlap) = (self.config.chunk_size, self.config.chunk_overlap);
        let pieces = tokio::task::spawn_blocking(move || chunk(&extracted, size, overlap))
            .await
            .map_err(|_| ProcessError::Permanent("the text could not be split into chunks".into()))?;
        if pieces.is_empty() {
            return Err(ProcessError::Permanent("the document has no extractable text".into()));
        }
        ctx.on_progress(Stage::Chunking, 50);

        ctx.on_progress(Stage::Embedding, 50);
        let texts: Vec<String> = pieces.iter().map(|c| c.text.clone()).collect();
        let batches: Vec<Vec<String>> =
            texts.chunks(self.embedder.batch_size().max(1)).map(<[String]>::to_vec).collect();
        let total = batches.len();
        let mut embeddings: Vec<Vec<f32>> = Vec::with_capacity(texts.len());
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
        let stored = self
            .db
            .write(move |conn| {
                attempts::record_extractor(conn, &job_id, attempt as i32, &run)?;
                chunks::replace_for_job(conn, &doc_id, &job_id, &rows)
            })
            .await
            .map_err(|e| ProcessError::Transient(format!("the chunks could not be stored: {e}")))?;
        if !stored {
            return Err(ProcessError::Permanent("the document was deleted while it was processed".into()));
        }
        ctx.on_progress(Stage::Storing, 100);
        Ok(Processed { chunk_count: count })
    }

    /// The job's story keeps how the extractor ended; that may not fail the document.
    async fn keep_report(&self, document: &Document, attempt: u32, report: &ExtractorReport) {
        let (job_id, run) = (document.job_id.clone(), report.run());
        let saved = self.db.write(move |conn| attempts::record_extractor(conn, &job_id, attempt as i32, &run)).await;
        if let Err(err) = saved {
            log::warn!("extractor report not saved: {err}");
        }
    }

    /// `/metrics` counts how extractors ended; that may not fail the document either.
    async fn count_outcome(&self, report: &ExtractorReport) {
        if let Err(err) = self.queue.count_extractor_outcome(report.outcome.as_str()).await {
            log::warn!("extractor outcome not counted: {err}");
        }
    }

    async fn embed_batch(&self, batch: Vec<String>) -> Result<Vec<Vec<f32>>, ProcessError> {
        let result = if self.embedder_is_local {
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

impl Processor for Pipeline {
    fn process(&self, ctx: JobContext) -> BoxFuture<Result<Processed, ProcessError>> {
        Box::pin(self.clone().run(ctx))
    }

    fn warm_up(&self) {
        self.extractor.warm_up();
    }
}
