//! Embeddings: the `Embedder` trait, the configured implementation, and the vector
//! helpers used to store and compare vectors.

mod hash;
mod openai;

use std::sync::Arc;

use crate::config::{EmbeddingConfig, EmbeddingProvider};

use hash::HashEmbedder;
use openai::OpenAiEmbedder;

pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Worth retrying later: rate limits, server errors, unreachable service.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: the service rejected the request or the configuration is wrong.
    #[error("{0}")]
    Permanent(String),
}

pub trait Embedder: Send + Sync + 'static {
    fn dimensions(&self) -> usize;
    /// Embeds one batch; vectors are L2-normalised, in input order.
    fn embed<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>>;
    /// How many texts to send per `embed` call.
    fn batch_size(&self) -> usize;
}

pub fn from_config(config: &EmbeddingConfig) -> Arc<dyn Embedder> {
    match config.provider {
        EmbeddingProvider::Hash => Arc::new(HashEmbedder::new(config.dimensions, config.batch_size)),
        EmbeddingProvider::Openai => Arc::new(OpenAiEmbedder::new(config)),
    }
}

/// f32 little-endian, for the `embedding` column.
pub fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn from_bytes(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Cosine similarity of `query` (whose norm is given) with a vector stored as f32 LE
/// bytes, without decoding the stored one into a vector first.
pub fn cosine_with_bytes(query: &[f32], query_norm: f32, stored: &[u8]) -> f32 {
    if stored.len() != query.len() * 4 || query_norm == 0.0 {
        return 0.0;
    }
    let (mut dot, mut norm) = (0.0f32, 0.0f32);
    for (x, bytes) in query.iter().zip(stored.chunks_exact(4)) {
        let y = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        dot += x * y;
        norm += y * y;
    }
    if norm == 0.0 {
        0.0
    } else {
        dot / (query_norm * norm.sqrt())
    }
}

/// Cosine similarity; 0 for vectors of different lengths or of zero length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norms = norm(a) * norm(b);
    if norms == 0.0 {
        0.0
    } else {
        dot / norms
    }
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// Scales `v` to unit length (a zero vector stays zero).
fn normalise(v: &mut [f32]) {
    let length = norm(v);
    if length > 0.0 {
        v.iter_mut().for_each(|x| *x /= length);
    }
}
