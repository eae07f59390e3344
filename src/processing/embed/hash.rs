//! The built-in embedder: feature hashing of words and character trigrams into a fixed
//! number of dimensions. No model, no download, the same vector for the same text in
//! every process; good enough to rank a document on the query's subject first.

use super::{normalise, BoxFuture, EmbedError, Embedder};

/// Words too common to tell subjects apart.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "in", "is", "it", "its",
    "not", "of", "on", "or", "that", "the", "this", "to", "was", "were", "which", "will", "with",
];

/// A word counts fully; its trigrams (which let "network" match "networking") together
/// about as much again.
const WORD_WEIGHT: f32 = 1.0;
const TRIGRAM_WEIGHT: f32 = 0.25;

pub struct HashEmbedder {
    dimensions: usize,
    batch_size: usize,
}

impl HashEmbedder {
    pub fn new(dimensions: usize, batch_size: usize) -> HashEmbedder {
        HashEmbedder { dimensions: dimensions.max(1), batch_size: batch_size.max(1) }
    }

    fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0.0f32; self.dimensions];
        let lowercase = text.to_lowercase();
        for word in lowercase.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            if STOP_WORDS.contains(&word) {
                continue;
            }
            self.add(&mut vector, word.as_bytes(), WORD_WEIGHT);
            // Boundary markers make "net" at a word's start differ from "net" inside one.
            let marked: Vec<char> = std::iter::once('<').chain(word.chars()).chain(std::iter::once('>')).collect();
            let mut trigram = String::new();
            for window in marked.windows(3) {
                trigram.clear();
                trigram.extend(window);
                self.add(&mut vector, trigram.as_bytes(), TRIGRAM_WEIGHT);
            }
        }
        normalise(&mut vector);
        vector
    }

    /// Signed hashing: the sign bit makes colliding features cancel out on average
    /// instead of piling up.
    fn add(&self, vector: &mut [f32], feature: &[u8], weight: f32) {
        let hash = fnv1a(feature);
        let index = (hash % self.dimensions as u64) as usize;
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        vector[index] += sign * weight;
    }
}

impl Embedder for HashEmbedder {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        // Computed before the future is returned: callers may poll it once, on a blocking thread.
        let vectors = texts.iter().map(|text| self.embed_one(text)).collect();
        Box::pin(std::future::ready(Ok(vectors)))
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

/// 64-bit FNV-1a: fixed, so vectors stay comparable across processes and releases
/// (std's hasher is randomly seeded per process).
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}
