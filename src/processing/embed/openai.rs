//! Any OpenAI-compatible embeddings API (OpenAI, Ollama, vLLM, text-embeddings-inference):
//! `POST {base_url}/embeddings` with `{"model", "input": [...]}`.
//!
//! Rate limits (429) and server errors (5xx) are retried with exponential back-off,
//! honouring `Retry-After`; any other 4xx is permanent and carries the server's message.
//! The API key goes in the Authorization header only: it is never logged, and it and
//! any credential fragment or account id are masked out of what the server echoes back.

use std::time::Duration;

use reqwest::header::RETRY_AFTER;
use reqwest::{Client, StatusCode};
use serde::{Deserialize, Serialize};

use super::{normalise, BoxFuture, EmbedError, Embedder};
use crate::config::EmbeddingConfig;

/// First back-off delay; doubled on each further retry.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// No single wait is longer, whatever the server asks: the job's own retry takes over.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// How much of an error body is quoted back to the user.
const MAX_MESSAGE_CHARS: usize = 300;

pub struct OpenAiEmbedder {
    /// Building the client fails only if the TLS setup does; kept as a reason so every
    /// batch reports it rather than the process panicking at start-up.
    client: Result<Client, String>,
    url: String,
    model: String,
    api_key: String,
    dimensions: usize,
    batch_size: usize,
    max_retries: u32,
}

impl OpenAiEmbedder {
    pub fn new(config: &EmbeddingConfig) -> OpenAiEmbedder {
        // reqwest is built without a default crypto provider; an Err means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .timeout(Duration::from_secs(config.timeout_secs.max(1)))
            .build()
            .map_err(|e| format!("the embedding HTTP client could not be created: {e}"));
        OpenAiEmbedder {
            client,
            url: format!("{}/embeddings", config.base_url.trim_end_matches('/')),
            model: config.model.clone(),
            api_key: config.api_key.clone(),
            dimensions: config.dimensions,
            batch_size: config.batch_size.max(1),
            max_retries: config.max_retries,
        }
    }

    /// One request, retried while the server says to try again.
    async fn embed_batch(&self, client: &Client, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut retries = 0;
        loop {
            match self.request(client, texts).await? {
                Attempt::Done(vectors) => return Ok(vectors),
                Attempt::RetryLater { reason, wait } if retries < self.max_retries => {
                    let wait = wait.unwrap_or(BACKOFF_BASE * 2u32.saturating_pow(retries)).min(MAX_WAIT);
                    log::info!("embedding request to {} will be retried in {wait:?}: {reason}", self.url);
                    tokio::time::sleep(wait).await;
                    retries += 1;
                }
                Attempt::RetryLater { reason, .. } => {
                    return Err(EmbedError::Transient(format!(
                        "the embedding service is unavailable: {reason} (after {} attempts)",
                        retries + 1
                    )))
                }
            }
        }
    }

    async fn request(&self, client: &Client, texts: &[String]) -> Result<Attempt, EmbedError> {
        let mut request = client.post(&self.url).json(&EmbeddingsRequest { model: &self.model, input: texts });
        if !self.api_key.is_empty() {
            request = request.bearer_auth(&self.api_key);
        }
        let response = request.send().await.map_err(|e| {
            EmbedError::Transient(format!("the embedding service could not be reached: {}", self.describe(e)))
        })?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let wait = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let message = self.server_message(&response.text().await.unwrap_or_default());
            return Ok(Attempt::RetryLater { reason: format!("{status}: {message}"), wait });
        }
        if !status.is_success() {
            let message = self.server_message(&response.text().await.unwrap_or_default());
            return Err(EmbedError::Permanent(format!(
                "the embedding service rejected the request ({status}): {message}"
            )));
        }
        let body: EmbeddingsResponse = response.json().await.map_err(|e| {
            EmbedError::Transient(format!("the embedding service sent an unreadable response: {}", self.describe(e)))
        })?;
        self.vectors_in_input_order(body, texts.len()).map(Attempt::Done)
    }

    fn vectors_in_input_order(&self, body: EmbeddingsResponse, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; expected];
        for item in body.data {
            if item.embedding.len() != self.dimensions {
                return Err(EmbedError::Permanent(format!(
                    "the embedding model returns {} dimensions but embedding.dimensions = {}",
                    item.embedding.len(),
                    self.dimensions
                )));
            }
            if let Some(slot) = slots.get_mut(item.index) {
                *slot = Some(item.embedding);
            }
        }
        slots
            .into_iter()
            .map(|slot| {
                let mut vector = slot.ok_or_else(|| {
                    EmbedError::Transient(format!("the embedding service returned fewer than {expected} vectors"))
                })?;
                normalise(&mut vector);
                Ok(vector)
            })
            .collect()
    }

    /// reqwest's error with its causes ("error sending request" alone does not say that
    /// the connection was refused), without reqwest's URL: see `redact`.
    fn describe(&self, error: reqwest::Error) -> String {
        let error = error.without_url();
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason = format!("{reason}: {cause}");
            source = cause.source();
        }
        self.redact(&reason)
    }

    /// The server's own explanation: OpenAI's `{"error":{"message"}}`, the
    /// `{"error":"…"}` of Ollama and TEI, or else the start of the body; see `redact`.
    fn server_message(&self, body: &str) -> String {
        let parsed: Option<ErrorBody> = serde_json::from_str(body).ok();
        let message = match parsed.map(|b| b.error) {
            Some(ErrorDetail::Object { message }) => message,
            Some(ErrorDetail::Text(message)) => message,
            None => body.trim().to_string(),
        };
        let message: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        if message.is_empty() {
            "no details given".into()
        } else {
            self.redact(&message)
        }
    }

    /// A reason reaches the document's owner, and the operator's account is not theirs:
    /// the API key goes, and so do the fragments of credentials a service echoes (OpenAI
    /// quotes a wrong key's last characters between asterisks, and names organisation
    /// and project ids), and the service's host wherever it is named (a TLS certificate
    /// "not valid for name", a proxy's error page).
    fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        if !self.api_key.is_empty() {
            text = text.replace(&self.api_key, "***");
        }
        let host = reqwest::Url::parse(&self.url).ok().and_then(|url| url.host_str().map(str::to_string));
        if let Some(host) = host.filter(|host| !host.is_empty()) {
            text = text.replace(&host, "<the embedding host>");
        }
        mask_credential_words(&text)
    }
}

/// Each word that looks like a credential or an account id (an OpenAI-style `sk-…` key,
/// `org-…` or `proj_…` id, or a key masked with asterisks but for a few characters)
/// becomes `***`; the punctuation around it stays.
fn mask_credential_words(text: &str) -> String {
    const PREFIXES: [&str; 6] = ["sk-", "sk_", "rk-", "org-", "proj_", "proj-"];
    let looks_like_credential = |word: &str| {
        // Real ids and keys are long; a word such as "org-wide" is not one.
        let long_enough = word.chars().count() >= 16;
        (long_enough && PREFIXES.iter().any(|prefix| word.starts_with(prefix))) || word.contains("****")
    };
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_end);
        let core = word.trim_matches(|c: char| !(c.is_alphanumeric() || c == '*' || c == '-' || c == '_'));
        if !core.is_empty() && looks_like_credential(core) {
            masked.push_str(&word.replacen(core, "***", 1));
        } else {
            masked.push_str(word);
        }
        let space_end = after.find(|c: char| !c.is_whitespace()).unwrap_or(after.len());
        masked.push_str(&after[..space_end]);
        rest = &after[space_end..];
    }
    masked
}

impl Embedder for OpenAiEmbedder {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// Sends the texts in requests of at most `batch_size`, one after another.
    fn embed<'a>(&'a self, texts: &'a [String]) -> BoxFuture<'a, Result<Vec<Vec<f32>>, EmbedError>> {
        Box::pin(async move {
            let client = self.client.as_ref().map_err(|reason| EmbedError::Transient(reason.clone()))?;
            let mut vectors = Vec::with_capacity(texts.len());
            for batch in texts.chunks(self.batch_size) {
                vectors.extend(self.embed_batch(client, batch).await?);
            }
            Ok(vectors)
        })
    }

    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

enum Attempt {
    Done(Vec<Vec<f32>>),
    RetryLater { reason: String, wait: Option<Duration> },
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [String],
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorDetail {
    Object { message: String },
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::mask_credential_words;

    #[test]
    fn credential_shaped_words_are_masked_and_the_rest_kept() {
        assert_eq!(
            mask_credential_words("key sk-proj-****wxyz. (org-AbCdEf1234567890, proj_QrStUv0987654321)"),
            "key ***. (***, ***)"
        );
        let plain = "an org-wide limit: This model's maximum context length is 8192 tokens\n  sk-learn";
        assert_eq!(mask_credential_words(plain), plain);
    }
}
