//! The embedders through the library API. The `openai` embedder talks to a real HTTP
//! server started here that speaks the OpenAI embeddings API and records what it got.

#[path = "common/embeddings_api.rs"]
mod embeddings_api;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::FutureExt;
use serde_json::{json, Value};

use docqueue::config::{Config, EmbeddingConfig, EmbeddingProvider};
use docqueue::processing::chunk::chunk;
use docqueue::processing::embed::{self, EmbedError, Embedder};
use docqueue::processing::extract::{extract, ExtractOptions};

const API_KEY: &str = "sk-test-0123456789";

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Received {
    inputs: usize,
    model: String,
    authorization: Option<String>,
}

/// A response the fake server gives instead of embeddings, once, in order.
struct Canned {
    status: u16,
    retry_after: Option<&'static str>,
    body: Value,
}

#[derive(Default)]
struct FakeEmbeddingsApi {
    received: Mutex<Vec<Received>>,
    canned: Mutex<VecDeque<Canned>>,
}

impl FakeEmbeddingsApi {
    fn with_canned(canned: Vec<Canned>) -> Arc<FakeEmbeddingsApi> {
        Arc::new(FakeEmbeddingsApi { canned: Mutex::new(canned.into()), ..Default::default() })
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Embeds text `i` as the unnormalised vector (length of text, 1, 1), and lists the
/// results in reverse order so that the client has to sort them by `index`.
async fn embeddings(api: web::Data<FakeEmbeddingsApi>, request: HttpRequest, body: web::Json<Value>) -> HttpResponse {
    let inputs: Vec<String> =
        body["input"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    api.received.lock().unwrap().push(Received {
        inputs: inputs.len(),
        model: body["model"].as_str().unwrap_or_default().to_string(),
        authorization: request.headers().get("authorization").map(|v| v.to_str().unwrap().to_string()),
    });
    if let Some(canned) = api.canned.lock().unwrap().pop_front() {
        let mut response = HttpResponse::build(actix_web::http::StatusCode::from_u16(canned.status).unwrap());
        if let Some(seconds) = canned.retry_after {
            response.insert_header(("Retry-After", seconds));
        }
        return response.json(canned.body);
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(index, text)| json!({"object": "embedding", "index": index, "embedding": [text.len() as f32, 1.0, 1.0]}))
        .collect();
    HttpResponse::Ok().json(json!({"object": "list", "data": data, "model": "test-model"}))
}

/// Serves the fake API on a free local port; returns the base URL (ending in /v1).
fn serve(api: Arc<FakeEmbeddingsApi>) -> String {
    let data = web::Data::from(api);
    embeddings_api::serve(move |routes| {
        routes.app_data(data.clone()).route("/v1/embeddings", web::post().to(embeddings));
    })
}

fn openai_config(base_url: &str, batch_size: usize, max_retries: u32) -> EmbeddingConfig {
    EmbeddingConfig {
        provider: EmbeddingProvider::Openai,
        dimensions: 3,
        base_url: base_url.to_string(),
        model: "test-model".into(),
        api_key: API_KEY.into(),
        batch_size,
        concurrent_requests: 1,
        timeout_secs: 10,
        max_retries,
    }
}

fn texts(count: usize) -> Vec<String> {
    (1..=count).map(|n| "x".repeat(n)).collect()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[actix_web::test]
async fn openai_embedder_sends_batches_of_the_configured_size_and_keeps_input_order() {
    let api = FakeEmbeddingsApi::with_canned(vec![]);
    let embedder = embed::from_config(&openai_config(&serve(api.clone()), 4, 0));
    assert_eq!(embedder.batch_size(), 4);
    assert_eq!(embedder.dimensions(), 3);

    let inputs = texts(10);
    let vectors = embedder.embed(&inputs).await.expect("embeds");

    let received = api.received();
    assert_eq!(received.iter().map(|r| r.inputs).collect::<Vec<_>>(), vec![4, 4, 2]);
    assert!(received.iter().all(|r| r.model == "test-model"));
    assert!(received.iter().all(|r| r.authorization.as_deref() == Some(&format!("Bearer {API_KEY}")[..])));
    assert_eq!(vectors.len(), 10);
    for (text, vector) in inputs.iter().zip(&vectors) {
        assert!((norm(vector) - 1.0).abs() < 1e-5, "normalised: {vector:?}");
        let length = vector[0] / vector[1];
        assert!((length - text.len() as f32).abs() < 1e-3, "vector of {text:?} is {vector:?}");
    }
}

#[actix_web::test]
async fn openai_embedder_waits_as_retry_after_says_on_429_then_succeeds() {
    let api = FakeEmbeddingsApi::with_canned(vec![Canned {
        status: 429,
        retry_after: Some("1"),
        body: json!({"error": {"message": "Rate limit reached", "type": "requests"}}),
    }]);
    let embedder = embed::from_config(&openai_config(&serve(api.clone()), 8, 3));
    let started = Instant::now();
    let vectors = embedder.embed(&texts(3)).await.expect("embeds after the retry");
    assert_eq!(vectors.len(), 3);
    assert_eq!(api.received().len(), 2, "one rate-limited request, one retry");
    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
}

#[actix_web::test]
async fn openai_embedder_gives_up_on_server_errors_after_max_retries_as_transient() {
    let unavailable = || Canned { status: 503, retry_after: Some("0"), body: json!({"error": "model is loading"}) };
    let api = FakeEmbeddingsApi::with_canned(vec![unavailable(), unavailable(), unavailable()]);
    let embedder = embed::from_config(&openai_config(&serve(api.clone()), 8, 2));
    match embedder.embed(&texts(2)).await {
        Err(EmbedError::Transient(message)) => {
            assert!(message.contains("503") && message.contains("model is loading"), "{message}");
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert_eq!(api.received().len(), 3, "the first try and max_retries = 2 retries");
}

#[actix_web::test]
async fn openai_embedder_fails_permanently_on_400_with_the_servers_message() {
    let api = FakeEmbeddingsApi::with_canned(vec![Canned {
        status: 400,
        retry_after: None,
        body: json!({"error": {"message": "This model's maximum context length is 8192 tokens", "type": "invalid_request_error"}}),
    }]);
    let embedder = embed::from_config(&openai_config(&serve(api.clone()), 8, 3));
    match embedder.embed(&texts(2)).await {
        Err(EmbedError::Permanent(message)) => {
            assert!(message.contains("This model's maximum context length is 8192 tokens"), "{message}");
            assert!(message.contains("400"), "{message}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert_eq!(api.received().len(), 1, "a 400 is not retried");
}

#[actix_web::test]
async fn openai_embedder_keeps_the_api_key_out_of_error_messages() {
    let api = FakeEmbeddingsApi::with_canned(vec![Canned {
        status: 401,
        retry_after: None,
        body: json!({"error": {"message": format!("Incorrect API key provided: {API_KEY}.")}}),
    }]);
    let embedder = embed::from_config(&openai_config(&serve(api), 8, 3));
    match embedder.embed(&texts(1)).await {
        Err(EmbedError::Permanent(message)) => {
            assert!(!message.contains(API_KEY), "{message}");
            assert!(message.contains("Incorrect API key provided: ***."), "{message}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[actix_web::test]
async fn openai_embedder_masks_key_fragments_and_account_ids_the_service_echoes() {
    // What OpenAI answers for a wrong key: its last characters, and the account's ids.
    let api = FakeEmbeddingsApi::with_canned(vec![Canned {
        status: 401,
        retry_after: None,
        body: json!({"error": {"message": "Incorrect API key provided: sk-proj-****************************wxyz. \
            You can find your API key at https://platform.openai.com/account/api-keys. \
            (organization org-AbCdEf1234567890, project proj_QrStUv0987654321)"}}),
    }]);
    let embedder = embed::from_config(&openai_config(&serve(api), 8, 3));
    match embedder.embed(&texts(1)).await {
        Err(EmbedError::Permanent(message)) => {
            for secret in ["wxyz", "sk-proj", "AbCdEf1234567890", "QrStUv0987654321"] {
                assert!(!message.contains(secret), "{secret} in {message}");
            }
            assert!(message.contains("Incorrect API key provided: ***. You can find"), "{message}");
            assert!(message.contains("(organization ***, project ***)"), "{message}");
            assert!(message.contains("401"), "{message}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[actix_web::test]
async fn openai_embedder_fails_permanently_when_the_model_has_other_dimensions() {
    let api = FakeEmbeddingsApi::with_canned(vec![]);
    let config = EmbeddingConfig { dimensions: 768, ..openai_config(&serve(api), 8, 3) };
    match embed::from_config(&config).embed(&texts(1)).await {
        Err(EmbedError::Permanent(message)) => {
            assert!(message.contains("embedding.dimensions = 768"), "{message}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[actix_web::test]
async fn openai_embedder_reports_an_unreachable_service_as_transient_without_its_address() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let embedder = embed::from_config(&openai_config(&format!("http://127.0.0.1:{port}/v1"), 8, 3));
    match embedder.embed(&texts(1)).await {
        Err(EmbedError::Transient(message)) => {
            assert!(message.contains("could not be reached"), "{message}");
            // The reason reaches the document's owner; the service's address is not theirs.
            assert!(!message.contains(&port.to_string()) && !message.contains("/v1"), "{message}");
            assert!(!message.contains("127.0.0.1"), "{message}");
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

// --- the built-in hash embedder ---------------------------------------------------------

fn hash_config() -> EmbeddingConfig {
    Config::from_overrides(json!({})).expect("the default configuration loads").embedding
}

fn hash_embed(embedder: &dyn Embedder, texts: &[String]) -> Vec<Vec<f32>> {
    embedder.embed(texts).now_or_never().expect("computed without waiting").expect("embeds")
}

#[test]
fn hash_embedder_is_deterministic_and_normalised() {
    let config = hash_config();
    assert_eq!(config.provider, EmbeddingProvider::Hash);
    let inputs = vec![
        "Hard links share the inode of the original file.".to_string(),
        "Symbolic links point to a path.".to_string(),
    ];
    let first = hash_embed(embed::from_config(&config).as_ref(), &inputs);
    let second = hash_embed(embed::from_config(&config).as_ref(), &inputs);
    assert_eq!(first, second, "the same text gives the same vector in another embedder");
    assert_eq!(first[0].len(), 384);
    for vector in &first {
        assert!((norm(vector) - 1.0).abs() < 1e-5);
    }
    assert_ne!(first[0], first[1]);
    // Fixed hashing: the same components in every process and every release.
    let word = &hash_embed(embed::from_config(&config).as_ref(), &["links".to_string()])[0];
    let nonzero: Vec<(usize, f32)> = word.iter().copied().enumerate().filter(|(_, x)| *x != 0.0).collect();
    let expected = [
        (56, 0.218_217_88),
        (180, 0.218_217_88),
        (206, 0.872_871_5),
        (223, 0.218_217_88),
        (239, 0.218_217_88),
        (263, 0.218_217_88),
    ];
    assert_eq!(nonzero.len(), expected.len(), "{nonzero:?}");
    for ((index, value), (expected_index, expected_value)) in nonzero.into_iter().zip(expected) {
        assert_eq!(index, expected_index);
        assert!((value - expected_value).abs() < 1e-6, "{value} at {index}");
    }
}

#[test]
fn vectors_round_trip_through_bytes_and_compare_by_cosine() {
    let v = vec![0.6f32, -0.8, 0.0];
    let bytes = embed::to_bytes(&v);
    assert_eq!(bytes.len(), 12);
    assert_eq!(&bytes[..4], &0.6f32.to_le_bytes());
    assert_eq!(embed::from_bytes(&bytes), v);
    assert!((embed::cosine(&v, &v) - 1.0).abs() < 1e-6);
    assert!((embed::cosine(&v, &[-0.6, 0.8, 0.0]) + 1.0).abs() < 1e-6);
    assert_eq!(embed::cosine(&v, &[0.0, 0.0, 0.0]), 0.0);
    assert_eq!(embed::cosine(&v, &[1.0]), 0.0);
    // Search scores stored bytes directly: the same figure.
    let w = [0.3f32, -0.2, 0.9];
    let from_bytes = embed::cosine_with_bytes(&w, w.iter().map(|x| x * x).sum::<f32>().sqrt(), &bytes);
    assert!((from_bytes - embed::cosine(&w, &v)).abs() < 1e-6);
    assert_eq!(embed::cosine_with_bytes(&w, 1.0, &bytes[..8]), 0.0);
}

#[test]
fn hash_embedder_ranks_a_chunk_of_the_document_on_the_query_subject_first() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let processing = Config::from_overrides(json!({})).unwrap().processing;
    let limits = ExtractOptions::from(&processing);
    let documents = [
        ("debian-reference-excerpt.pdf", "application/pdf"),
        ("python-tutorial-errors.html", "text/html"),
        ("uspop-latin1.csv", "text/csv"),
    ];
    let embedder = embed::from_config(&hash_config());
    let mut index: Vec<(&str, Vec<f32>)> = Vec::new();
    for (name, content_type) in documents {
        let bytes = std::fs::read(fixtures.join(name)).unwrap();
        let doc = extract(content_type, &bytes, &limits, &mut |_| {}, &|| false).unwrap();
        let texts: Vec<String> =
            chunk(&doc, processing.chunk_size, processing.chunk_overlap).into_iter().map(|c| c.text).collect();
        for vector in hash_embed(embedder.as_ref(), &texts) {
            index.push((name, vector));
        }
    }
    for (query, expected) in [
        ("how do hard links and symbolic links to a file differ", "debian-reference-excerpt.pdf"),
        ("how to handle an exception raised in a try clause", "python-tutorial-errors.html"),
        ("population and latitude of cities in Alabama", "uspop-latin1.csv"),
    ] {
        let q = &hash_embed(embedder.as_ref(), &[query.to_string()])[0];
        let best = index.iter().max_by(|a, b| embed::cosine(q, &a.1).total_cmp(&embed::cosine(q, &b.1))).unwrap();
        assert_eq!(best.0, expected, "query {query:?}");
    }
}
