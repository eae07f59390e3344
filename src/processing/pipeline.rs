//! The real `Processor`: extract → chunk → embed → store, with progress in four
//! stages (extract 0–40, chunk 40–50, embed 50–95, store 95–100) and the per-document
//! wall-time limit. CPU-bound steps run on the blocking pool, never on an event loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::chunk::chunk;
use super::embed::{self, Embedder};
use super::extract::{extract, ExtractError, ExtractLimits};
use crate::config::{Config, EmbeddingProvider, ProcessingConfig};
use crate::db::chunks;
use crate::db::models::ChunkRow;
use crate::db::Db;
use crate::storage::Storage;
use crate::workers::processor::{BoxFuture, JobContext, ProcessError, Processed, Processor, ProgressUpdate, Stage};

#[derive(Clone)]
pub struct Pipeline {
    db: Db,
    storage: Storage,
    config: ProcessingConfig,
    embedder: Arc<dyn Embedder>,
    /// The built-in embedder computes on the CPU: it runs on the blocking pool.
    embedder_is_local: bool,
    concurrent_requests: usize,
}

impl Pipeline {
    pub fn new(config: &Config, db: Db, storage: Storage, embedder: Arc<dyn Embedder>) -> Pipeline {
        Pipeline {
            db,
            storage,
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
        let bytes =
            tokio::fs::read(self.storage.absolute(&document.storage_path)).await.map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    ProcessError::Permanent("the uploaded file is missing from storage".into())
                }
                _ => ProcessError::Transient(format!("the uploaded file could not be read: {}", e.kind())),
            })?;
        let limits = ExtractLimits::from(&self.config);
        let progress = ctx.progress_fn();
        let cancelled = ctx.cancel_check();
        let content_type = document.content_type.clone();
        let extracted = tokio::task::spawn_blocking(move || {
            let mut on_progress = |fraction: f32| {
                let percent = (fraction.clamp(0.0, 1.0) * 40.0) as u8;
                progress(ProgressUpdate { stage: Stage::Extracting, percent });
            };
            extract(&content_type, &bytes, &limits, &mut on_progress, &|| cancelled() || over_time())
        })
        .await
        .map_err(|_| ProcessError::Permanent("the document could not be read (its parser crashed)".into()))?;
        let extracted = match extracted {
            Ok(extracted) => extracted,
            Err(ExtractError::Cancelled) if over_time() => return Err(over_time_error()),
            Err(ExtractError::Cancelled) => return Err(ProcessError::Cancelled),
            Err(ExtractError::Permanent(reason)) => return Err(ProcessError::Permanent(reason)),
        };

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
        let batches: Vec<Vec<String>> = texts.chunks(self.embedder.batch_size().max(1)).map(|b| b.to_vec()).collect();
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
        let (doc_id, job_id) = (document.id.clone(), document.job_id.clone());
        let stored = self
            .db
            .run(move |conn| chunks::replace_for_job(conn, &doc_id, &job_id, &rows))
            .await
            .map_err(|e| ProcessError::Transient(format!("the chunks could not be stored: {e}")))?;
        if !stored {
            return Err(ProcessError::Permanent("the document was deleted while it was processed".into()));
        }
        ctx.on_progress(Stage::Storing, 100);
        Ok(Processed { chunk_count: count })
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
}
