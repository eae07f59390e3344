//! Embeddings: the `Embedder` trait, the configured implementation, and the vector
//! helpers used to store and compare vectors.

mod hash;
mod openai;
pub mod rank;

use std::sync::Arc;

use crate::config::{EmbeddingConfig, EmbeddingProvider};

use hash::HashEmbedder;
use openai::OpenAiEmbedder;
pub use rank::{cosine, cosine_with_bytes};

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

pub(crate) fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

/// Scales `v` to unit length (a zero vector stays zero).
fn normalise(v: &mut [f32]) {
    let length = norm(v);
    if length > 0.0 {
        v.iter_mut().for_each(|x| *x /= length);
    }
}
