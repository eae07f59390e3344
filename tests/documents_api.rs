//! The upload and document API over real HTTP: uploads of real files, type sniffing,
//! size limits, filename sanitising, listing, and isolation between users.

mod common;

use common::{token, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::{json, Value};

async fn api_server(env: &TestEnv, overrides: Value) -> TestServer {
    TestServer::start(env.config(overrides), Role::Api).await
}

#[actix_web::test]
async fn real_documents_upload_as_queued_rows() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let alice = token("alice");
    let cases = [
        ("debian-reference-excerpt.pdf", "application/pdf"),
        (
            "python-docx-blk-paras-and-tables.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("python-tutorial-errors.html", "text/html"),
        ("text-splitter-README.md", "text/markdown"),
        ("debian-reference-fr-excerpt.latin1.txt", "text/plain"),
        ("rio-noheader.csv", "text/csv"),
    ];
    for (name, content_type) in cases {
        let bytes = common::fixture(name);
        let uploaded = server.upload_one(&alice, name, bytes.clone()).await;
        assert_eq!(uploaded["filename"], name);
        assert_eq!(uploaded["content_type"], content_type, "{name}");
        assert_eq!(uploaded["size_bytes"], bytes.len());
        assert_eq!(uploaded["queue_status"], "queued");
        assert!(uploaded["job_id"].as_str().is_some_and(|j| j.len() == 26));
        assert!(uploaded["queue_position"].as_u64().is_some_and(|p| p >= 1), "{uploaded}");

        let row = server.document(&alice, uploaded["id"].as_str().unwrap()).await;
        assert_eq!(row["queue_status"], "queued");
        assert_eq!(row["job_id"], uploaded["job_id"]);
        assert_eq!(row["sha256"].as_str().unwrap().len(), 64);
    }
    let (status, listed) = server.get_json(&alice, "/api/documents").await;
    assert_eq!(status, 200);
    assert_eq!(listed["documents"].as_array().unwrap().len(), cases.len());
    server.shutdown().await;
}

#[actix_web::test]
async fn stored_file_matches_the_upload_and_its_hash() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let bytes = common::fixture("debian-reference-excerpt.pdf");
    let uploaded = server.upload_one(&token("alice"), "ref.pdf", bytes.clone()).await;
    let files = env.stored_files();
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);
    use sha2::Digest;
    assert_eq!(uploaded["sha256"], hex::encode(sha2::Sha256::digest(&bytes)));
    server.shutdown().await;
}

#[actix_web::test]
async fn over_limit_upload_is_413_and_leaves_no_file() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({ "storage": { "max_upload_bytes": 100_000 } })).await;
    let response = server.upload(&token("alice"), &[("big.txt", vec![b'a'; 300_000])], None).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(env.stored_files().is_empty(), "left behind: {:?}", env.stored_files());
    let (_, listed) = server.get_json(&token("alice"), "/api/documents").await;
    assert_eq!(listed["documents"], json!([]));
    server.shutdown().await;
}

#[actix_web::test]
async fn gif_renamed_pdf_is_415_naming_the_detected_type() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    // GIF is an image OCR does not read (PNG, JPEG, TIFF and WebP are accepted).
    let mut gif = b"GIF89a\x01\0\x01\0".to_vec();
    gif.extend_from_slice(&[0u8; 64]);
    let response = server.upload(&token("alice"), &[("photo.pdf", gif)], None).await;
    assert_eq!(response.status(), 415);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    assert!(body["error"]["message"].as_str().unwrap().contains("image/gif"), "{body}");
    assert!(env.stored_files().is_empty());
    server.shutdown().await;
}

#[actix_web::test]
async fn one_bad_file_fails_the_whole_request_with_nothing_stored() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let files =
        [("good.md", b"# Title\n\nSome text.\n".to_vec()), ("bad.pdf", b"GIF89a\x01\0\x01\0\0\0\0\0\0\0\0\0".to_vec())];
    let response = server.upload(&token("alice"), &files, None).await;
    assert_eq!(response.status(), 415);
    assert!(env.stored_files().is_empty());
    let (_, listed) = server.get_json(&token("alice"), "/api/documents").await;
    assert_eq!(listed["documents"], json!([]));
    server.shutdown().await;
}

#[actix_web::test]
async fn several_files_in_one_request_each_get_a_document() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let files = [("a.md", b"# A\n\nalpha\n".to_vec()), ("b.txt", b"beta text".to_vec())];
    let response = server.upload(&token("alice"), &files, Some(5)).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let docs = body["documents"].as_array().unwrap();
    assert_eq!(docs.len(), 2);
    assert_ne!(docs[0]["id"], docs[1]["id"]);
    let positions: Vec<u64> = docs.iter().map(|d| d["queue_position"].as_u64().unwrap()).collect();
    assert_eq!(positions, vec![1, 2]);
    let row = server.document(&token("alice"), docs[0]["id"].as_str().unwrap()).await;
    assert_eq!(row["queue_priority"], 5);
    server.shutdown().await;
}

#[actix_web::test]
async fn hostile_filename_is_stored_safely() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let uploaded = server
        .upload_one(&token("alice"), "../../etc/passwd\u{7}.pdf", common::fixture("debian-reference-excerpt.pdf"))
        .await;
    assert_eq!(uploaded["filename"], "passwd.pdf");
    let files = env.stored_files();
    assert_eq!(files.len(), 1);
    assert!(files[0].starts_with(env.storage_root()), "{files:?}");
    assert!(!files[0].to_string_lossy().contains("passwd"));
    server.shutdown().await;
}

#[actix_web::test]
async fn a_filename_with_a_right_to_left_override_cannot_pose_as_another_type() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let alice = token("alice");
    // Displayed raw, this reads "invoiceexe.txt".
    let uploaded = server.upload_one(&alice, "invoice\u{202E}txt.exe", b"plain text".to_vec()).await;
    assert_eq!(uploaded["filename"], "invoicetxt.exe");
    let listed = server.get_json(&alice, "/api/documents").await.1;
    assert_eq!(listed["documents"][0]["filename"], "invoicetxt.exe");
    server.shutdown().await;
}

#[actix_web::test]
async fn another_users_document_is_404_on_get_and_delete() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let doc = server.upload_one(&alice, "a.md", b"# A\n\nalpha\n".to_vec()).await;
    let id = doc["id"].as_str().unwrap();

    let (status, body) = server.get_json(&bob, &format!("/api/documents/{id}")).await;
    assert_eq!(status, 404);
    let (missing_status, missing_body) = server.get_json(&bob, "/api/documents/01JXXXXXXXXXXXXXXXXXXXXXXX").await;
    assert_eq!((status, &body), (missing_status, &missing_body), "same answer as a missing id");
    assert_eq!(body["error"]["code"], "not_found");

    let response =
        server.client.delete(server.url(&format!("/api/documents/{id}"))).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let (_, bobs) = server.get_json(&bob, "/api/documents").await;
    assert_eq!(bobs["documents"], json!([]));
    server.document(&alice, id).await;
    server.shutdown().await;
}

#[actix_web::test]
async fn delete_removes_row_and_stored_file() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "a.md", b"# A\n\nalpha\n".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    assert_eq!(env.stored_files().len(), 1);
    let response =
        server.client.delete(server.url(&format!("/api/documents/{id}"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(response.status(), 204);
    assert!(env.stored_files().is_empty());
    let (status, _) = server.get_json(&alice, &format!("/api/documents/{id}")).await;
    assert_eq!(status, 404);
    server.shutdown().await;
}

#[actix_web::test]
async fn list_filters_by_status_and_pages_with_a_cursor() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let alice = token("alice");
    let mut ids = Vec::new();
    for i in 0..5 {
        let doc = server.upload_one(&alice, &format!("n{i}.txt"), format!("note {i}").into_bytes()).await;
        ids.push(doc["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut path = "/api/documents?limit=2".to_string();
    loop {
        let (status, page) = server.get_json(&alice, &path).await;
        assert_eq!(status, 200);
        for d in page["documents"].as_array().unwrap() {
            seen.push(d["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/documents?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every document once");

    let (_, queued) = server.get_json(&alice, "/api/documents?status=queued").await;
    assert_eq!(queued["documents"].as_array().unwrap().len(), 5);
    let (_, completed) = server.get_json(&alice, "/api/documents?status=completed").await;
    assert_eq!(completed["documents"], json!([]));
    let (status, body) = server.get_json(&alice, "/api/documents?status=bogus").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request");
    server.shutdown().await;
}

#[actix_web::test]
async fn upload_without_a_file_part_is_400() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let form = reqwest::multipart::Form::new().text("priority", "1");
    let response = server.upload_form(&token("alice"), form).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    server.shutdown().await;
}

#[actix_web::test]
async fn unknown_route_answers_json_404() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let (status, body) = server.get_json(&token("alice"), "/api/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    server.shutdown().await;
}

/// A path the API serves, asked with a method it does not serve, is 405 naming the
/// methods it does, not 404: the client's mistake is the method, not the path.
#[actix_web::test]
async fn a_known_path_with_another_method_is_405_naming_the_allowed_ones() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "notes.txt", b"some notes".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    let cases = [
        (reqwest::Method::POST, format!("/api/documents/{id}"), "GET, DELETE"),
        (reqwest::Method::PUT, "/api/documents/upload".to_string(), "POST"),
        (reqwest::Method::GET, "/api/documents/upload".to_string(), "POST"),
        (reqwest::Method::DELETE, "/api/documents/processing-status".to_string(), "GET"),
        (reqwest::Method::GET, format!("/api/documents/cancel/{id}"), "DELETE"),
        (reqwest::Method::POST, "/api/admin/queue/status".to_string(), "GET"),
        (reqwest::Method::GET, "/api/ws-ticket".to_string(), "POST"),
        (reqwest::Method::POST, "/healthz".to_string(), "GET"),
    ];
    for (method, path, allowed) in cases {
        let response =
            server.client.request(method.clone(), server.url(&path)).bearer_auth(&alice).send().await.unwrap();
        let status = response.status().as_u16();
        let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_string());
        let body: Value = response.json().await.unwrap();
        assert_eq!((status, allow.as_deref()), (405, Some(allowed)), "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "method_not_allowed", "{method} {path}");
    }
    // The document is untouched, and its own methods still work.
    assert_eq!(server.document(&alice, id).await["id"], id);
    server.shutdown().await;
}

/// Text no stored id holds (a NUL byte, which PostgreSQL refuses in any parameter) is
/// "no such document" or a bad cursor, never a 500; an overlong search is a 400.
#[actix_web::test]
async fn ids_and_queries_no_document_could_match_are_4xx_with_a_json_error() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({})).await;
    let alice = token("alice");
    server.upload_one(&alice, "notes.txt", b"some notes".to_vec()).await;
    let long_query = format!("/api/documents/search?q={}", "a".repeat(2001));
    for (path, status) in [
        ("/api/documents/a%00b", 404),
        ("/api/documents/a%00b/chunks", 404),
        ("/api/documents?cursor=a%00b", 400),
        (long_query.as_str(), 400),
    ] {
        let (got, body) = server.get_json(&alice, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
    }
    let response =
        server.client.delete(server.url("/api/documents/cancel/a%00b")).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(response.status(), 404);
    server.shutdown().await;
}

#[actix_web::test]
async fn uploads_beyond_the_unfinished_limit_are_429_and_other_users_are_unaffected() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({ "storage": { "max_unfinished_per_user": 2 } })).await;
    let alice = token("alice");
    let two: Vec<(&str, Vec<u8>)> = vec![("a.txt", b"a".to_vec()), ("b.txt", b"b".to_vec())];
    assert_eq!(server.upload(&alice, &two, None).await.status(), 202);
    let response = server.upload(&alice, &[("c.txt", b"c".to_vec())], None).await;
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
    assert_eq!(env.stored_files().len(), 2, "nothing stored for the refused upload");
    assert_eq!(server.upload(&token("bob"), &[("d.txt", b"d".to_vec())], None).await.status(), 202);
    server.shutdown().await;
}

/// Every stored file counts, finished documents' too, until its document is deleted:
/// past `storage.max_bytes_per_user` an upload is 507 and stores nothing, at once when
/// the user is full already; deleting makes room, and another user is unaffected.
#[actix_web::test]
async fn uploads_past_the_users_stored_bytes_are_507_until_a_document_is_deleted() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({ "storage": { "max_bytes_per_user": 3000 } })).await;
    let alice = token("alice");
    let kilobytes = |n: usize| vec![b'a'; n * 1000];
    let first = server.upload(&alice, &[("one.txt", kilobytes(2))], None).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let over = server.upload(&alice, &[("two.txt", kilobytes(2))], None).await;
    assert_eq!(over.status(), 507);
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_storage");
    assert!(body["error"]["message"].as_str().unwrap().contains("storage.max_bytes_per_user"), "{body}");
    assert_eq!(env.stored_files().len(), 1, "nothing stored for the refused upload");
    assert_eq!(server.upload(&alice, &[("small.txt", kilobytes(1))], None).await.status(), 202);
    // Full: refused before the body is read.
    assert_eq!(server.upload(&alice, &[("tiny.txt", b"x".to_vec())], None).await.status(), 507);
    assert_eq!(server.upload(&token("bob"), &[("bob.txt", kilobytes(2))], None).await.status(), 202);

    let id = first["documents"][0]["id"].as_str().unwrap();
    let deleted =
        server.client.delete(server.url(&format!("/api/documents/{id}"))).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(server.upload(&alice, &[("two.txt", kilobytes(2))], None).await.status(), 202);
    server.shutdown().await;
}

#[actix_web::test]
async fn twelve_concurrent_uploads_under_a_limit_of_two_accept_exactly_two() {
    let env = TestEnv::new();
    let server = api_server(&env, json!({ "storage": { "max_unfinished_per_user": 2 } })).await;
    let alice = token("alice");
    let uploads =
        (0..12).map(|i| {
            let (server, alice) = (&server, &alice);
            async move {
                server.upload(alice, &[(&format!("{i}.txt"), format!("note {i}").into_bytes())], None).await.status()
            }
        });
    let statuses = futures_util::future::join_all(uploads).await;
    let accepted = statuses.iter().filter(|s| s.as_u16() == 202).count();
    let refused = statuses.iter().filter(|s| s.as_u16() == 429).count();
    assert_eq!((accepted, refused), (2, 10), "{statuses:?}");
    let (_, listed) = server.get_json(&alice, "/api/documents").await;
    assert_eq!(listed["documents"].as_array().unwrap().len(), 2);
    assert_eq!(env.stored_files().len(), 2, "refused uploads leave no file");
    server.shutdown().await;
}
