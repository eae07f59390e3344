//! The real pipeline through the running service: real documents become chunks with
//! their sentences intact; hostile files fail with a reason and the worker carries
//! on; a re-run never duplicates chunks; search finds the right document and only the
//! caller's.

mod common;

use std::time::Duration;

use common::{admin_token, token, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::json;

async fn all_chunk_text(server: &TestServer, user: &str, id: &str) -> String {
    let mut text = String::new();
    let mut path = format!("/api/documents/{id}/chunks?limit=50");
    loop {
        let (status, page) = server.get_json(user, &path).await;
        assert_eq!(status, 200, "{page}");
        for chunk in page["chunks"].as_array().unwrap() {
            text.push_str(chunk["text"].as_str().unwrap());
            text.push('\n');
        }
        match page["next_cursor"].as_i64() {
            Some(cursor) => path = format!("/api/documents/{id}/chunks?limit=50&cursor={cursor}"),
            None => return text,
        }
    }
}

fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[actix_web::test]
async fn real_documents_become_chunks_with_their_sentences_correctly_spaced() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let cases: [(&str, &[&str]); 6] = [
        ("debian-reference-excerpt.pdf", &[
            "Overwriting a file changes all of the mtime, ctime, and atime attributes of the file.",
            "The hardlink can be made within the same filesystem and shares the same inode number",
        ]),
        ("python-docx-par-hyperlinks.docx", &["Three hyperlinks: the first one here, the second one, and the third."]),
        ("python-tutorial-errors.html", &[
            "Syntax errors, also known as parsing errors, are perhaps the most common kind of complaint you get while you are still learning Python:",
        ]),
        ("text-splitter-README.md", &["This crate provides methods for splitting longer pieces of text into smaller chunks"]),
        ("debian-reference-fr-excerpt.latin1.txt", &["Les répertoires d'un système UNIX sont appelés dossiers sur d'autres systèmes."]),
        ("uspop-latin1.csv", &["City: Kenai; State: AK; Population: 7610"]),
    ];
    for (name, sentences) in cases {
        let doc = server.upload_one(&alice, name, common::fixture(name)).await;
        let id = doc["id"].as_str().unwrap();
        let done = server
            .wait_for(&alice, id, Duration::from_secs(60), |d| {
                d["queue_status"] != "queued" && d["queue_status"] != "processing"
            })
            .await;
        assert_eq!(done["queue_status"], "completed", "{name}: {done}");
        assert!(done["chunk_count"].as_i64().unwrap() >= 1);
        let text = squeeze(&all_chunk_text(&server, &alice, id).await);
        for sentence in sentences {
            assert!(text.contains(sentence), "{name}: missing {sentence:?}");
        }
    }
    let (_, pdf_chunks) = server.get_json(&alice, "/api/documents?status=completed").await;
    assert_eq!(pdf_chunks["documents"].as_array().unwrap().len(), 6);
    server.shutdown().await;
}

#[actix_web::test]
async fn hostile_files_fail_with_a_reason_and_the_worker_keeps_serving() {
    let env = TestEnv::new();
    let config = env.config(json!({ "document_queue": { "concurrency": 1 } }));
    let server = TestServer::start(config, Role::All).await;
    let alice = token("alice");
    let pdf = common::fixture("debian-reference-excerpt.pdf");
    let mut garbage_state = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..8192)
        .map(|_| {
            garbage_state ^= garbage_state << 13;
            garbage_state ^= garbage_state >> 7;
            garbage_state ^= garbage_state << 17;
            (garbage_state >> 32) as u8
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.txt", Vec::new(), "empty"),
        ("truncated.pdf", pdf[..pdf.len() / 3].to_vec(), "PDF"),
        ("scanned.pdf", common::fixture("ocrmypdf-trivial.pdf"), "OCR"),
        ("bomb.docx", docx_zip_bomb(), "max_docx_uncompressed_bytes"),
        ("garbage.txt", garbage, "not readable text"),
    ];
    for (name, bytes, reason) in cases {
        let doc = server.upload_one(&alice, name, bytes).await;
        let failed = server.wait_for_status(&alice, doc["id"].as_str().unwrap(), "failed").await;
        let error = failed["error"].as_str().unwrap();
        assert!(error.contains(reason), "{name}: {error}");
        assert_eq!(failed["attempts"], 1, "{name}: permanent failures are not retried");
    }
    let fine = server.upload_one(&alice, "fine.md", b"# Still here\n\nThe worker keeps serving.\n".to_vec()).await;
    server.wait_for_status(&alice, fine["id"].as_str().unwrap(), "completed").await;
    server.shutdown().await;
}

use common::zip_bomb;

/// 1 GiB of XML compressed to about 1 MB.
fn docx_zip_bomb() -> Vec<u8> {
    let (stream, inflated) = zip_bomb::deflate_bomb(1 << 30);
    zip_bomb::zip_with_entry("word/document.xml", &stream, inflated)
}

#[actix_web::test]
async fn processing_a_document_twice_leaves_one_set_of_chunks() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "errors.html", common::fixture("python-tutorial-errors.html")).await;
    let id = doc["id"].as_str().unwrap();
    let first = server.wait_for_status(&alice, id, "completed").await;
    let count = first["chunk_count"].as_i64().unwrap();
    let response = server
        .client
        .post(server.url(&format!("/api/admin/queue/retry/{}", doc["job_id"].as_str().unwrap())))
        .bearer_auth(admin_token("ops"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let second = server
        .wait_for(&alice, id, Duration::from_secs(60), |d| {
            d["queue_status"] == "completed" && d["job_id"] != doc["job_id"]
        })
        .await;
    assert_eq!(second["chunk_count"].as_i64().unwrap(), count);
    let stored = server.app().db.run({
        let id = id.to_string();
        move |conn| docqueue::db::chunks::count_for_document(conn, &id)
    });
    assert_eq!(stored.await.unwrap(), count);
    server.shutdown().await;
}

#[actix_web::test]
async fn search_ranks_the_document_on_the_subject_first_and_stays_within_the_caller() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::All).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let docs = [
        ("errors.html", common::fixture("python-tutorial-errors.html")),
        ("filesystem.pdf", common::fixture("debian-reference-excerpt.pdf")),
        ("population.csv", common::fixture("uspop-latin1.csv")),
    ];
    let mut ids = Vec::new();
    for (name, bytes) in docs {
        let doc = server.upload_one(&alice, name, bytes).await;
        ids.push(doc["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        server.wait_for_status(&alice, id, "completed").await;
    }
    let queries = [
        ("exception handling with try and except clauses", &ids[0]),
        ("hardlink inode number and file attributes mtime ctime", &ids[1]),
        ("city population latitude longitude of Alaska", &ids[2]),
    ];
    for (q, expected) in queries {
        let (status, body) = server.get_json(&alice, &format!("/api/documents/search?q={}&k=5", urlencode(q))).await;
        assert_eq!(status, 200, "{body}");
        let results = body["results"].as_array().unwrap();
        assert!(!results.is_empty() && results.len() <= 5);
        assert_eq!(&results[0]["document_id"], expected.as_str(), "{q}: {body:#}");
        for field in ["filename", "ordinal", "text", "score"] {
            assert!(!results[0][field].is_null(), "{field}");
        }
        let scores: Vec<f64> = results.iter().map(|r| r["score"].as_f64().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    }
    let (status, body) = server.get_json(&bob, "/api/documents/search?q=exception%20handling").await;
    assert_eq!(status, 200);
    assert_eq!(body["results"], json!([]), "bob sees none of alice's chunks");
    let (status, _) = server.get_json(&bob, &format!("/api/documents/{}/chunks", ids[0])).await;
    assert_eq!(status, 404);
    let (status, body) = server.get_json(&alice, "/api/documents/search?q=").await;
    assert_eq!(status, 400, "{body}");
    server.shutdown().await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn search_scores_every_chunk_a_page_at_a_time_and_keeps_the_best() {
    let env = TestEnv::new();
    let config = env.config(json!({ "processing": { "chunk_size": 60, "chunk_overlap": 0 } }));
    let server = TestServer::start(config, Role::All).await;
    let alice = token("alice");
    let text: String = (1..=30).map(|i| format!("Paragraph {i} talks about subject number {i} alone.\n\n")).collect();
    let doc = server.upload_one(&alice, "many.md", text.into_bytes()).await;
    let id = doc["id"].as_str().unwrap().to_string();
    server.wait_for_status(&alice, &id, "completed").await;
    let db = server.app().db.clone();
    let doc_id = id.clone();
    let chunks = db.run(move |conn| docqueue::db::chunks::list_for_document(conn, &doc_id, None, 1000)).await.unwrap();
    assert!(chunks.len() >= 20, "{} chunks", chunks.len());
    // Score by closeness of the ordinal to 17: the best three are 17, 16 and 18,
    // found across pages of four.
    let ordinals: std::collections::HashMap<Vec<u8>, i32> =
        chunks.iter().map(|c| (c.embedding.clone(), c.ordinal)).collect();
    let best = db
        .run(move |conn| {
            docqueue::db::chunks::top_k_for_user(conn, "alice", 3, 4, |embedding| {
                -((ordinals[embedding] - 17) as f32).abs() - ordinals[embedding] as f32 / 1000.0
            })
        })
        .await
        .unwrap();
    let found: Vec<i32> = best.iter().map(|(_, _, ordinal)| *ordinal).collect();
    assert_eq!(found, vec![17, 16, 18]);
    let others = db.run(|conn| docqueue::db::chunks::top_k_for_user(conn, "bob", 3, 4, |_| 1.0)).await.unwrap();
    assert!(others.is_empty(), "another user's chunks were scored");
    server.shutdown().await;
}

/// An embeddings API that answers each request after a second: searches overlap.
fn slow_embeddings_api() -> String {
    async fn embeddings(body: actix_web::web::Json<serde_json::Value>) -> actix_web::HttpResponse {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let count = body["input"].as_array().map_or(1, Vec::len);
        let data: Vec<_> = (0..count)
            .map(|index| json!({ "object": "embedding", "index": index, "embedding": [1.0, 0.0, 0.0] }))
            .collect();
        actix_web::HttpResponse::Ok().json(json!({ "object": "list", "data": data, "model": "slow" }))
    }
    common::embeddings_api::serve(|routes| {
        routes.route("/v1/embeddings", actix_web::web::post().to(embeddings));
    })
}

/// One user may have half of `server.max_concurrent_searches` under way; the user's
/// other searches wait for those, and another user's search gets a turn meanwhile.
#[actix_web::test]
async fn one_user_cannot_take_every_search_turn() {
    let env = TestEnv::new();
    let embedding =
        json!({ "provider": "openai", "base_url": slow_embeddings_api(), "dimensions": 3, "model": "slow" });
    let config = env.config(json!({ "server": { "max_concurrent_searches": 4 }, "embedding": embedding }));
    let server = TestServer::start(config, Role::Api).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let finished = std::sync::Mutex::new(Vec::new());
    let search = |user: String, who: &'static str| {
        let request = server.client.get(server.url("/api/documents/search?q=anything")).bearer_auth(user).send();
        let finished = &finished;
        async move {
            let status = request.await.unwrap().status().as_u16();
            finished.lock().unwrap().push((who, status));
        }
    };
    // Each search takes a second at the embeddings API. Alice's four, sent first, would
    // take every turn, and bob's, sent 0.3 s later, would wait for them to end.
    let alices = futures_util::future::join_all((0..4).map(|_| search(alice.clone(), "alice")));
    let bobs = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        search(bob.clone(), "bob").await;
    };
    tokio::join!(alices, bobs);
    let finished = finished.into_inner().unwrap();
    assert!(finished.iter().all(|(_, status)| *status == 200), "{finished:?}");
    let bob_at = finished.iter().position(|(who, _)| *who == "bob").unwrap();
    assert!(bob_at < 4, "bob's search ended before alice's last two: {finished:?}");
    server.shutdown().await;
}
