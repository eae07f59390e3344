//! Each signed-in user's request pace (`server.requests_per_sec_per_user`, burst
//! `server.request_burst_per_user`): past it a request gets 429 with Retry-After and
//! the JSON error body, costs nothing (an upload stores no file), and other users are
//! served as before. The pace refills with time. A snapshot, over HTTP or asked for on
//! the WebSocket, counts as `SNAPSHOT_TURNS` (10) requests.

mod common;

use std::time::Duration;

use common::ws::WsClient;
use common::{token, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::{json, Value};

async fn list(server: &TestServer, user_token: &str) -> (u16, Option<String>, Value) {
    let response = server.client.get(server.url("/api/documents")).bearer_auth(user_token).send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn a_user_past_the_pace_gets_429_with_retry_after_while_others_are_served() {
    let env = TestEnv::new();
    let config = env.config(json!({ "server": { "requests_per_sec_per_user": 2, "request_burst_per_user": 5 } }));
    let server = TestServer::start(config, Role::Api).await;
    let (alice, bob) = (token("alice"), token("bob"));
    for n in 1..=5 {
        let (status, _, body) = list(&server, &alice).await;
        assert_eq!(status, 200, "request {n} of the burst: {body}");
    }
    let (status, retry_after, body) = list(&server, &alice).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("2 requests a second")), "{body}");
    let retry_after: u64 = retry_after.expect("Retry-After is sent").parse().expect("Retry-After in seconds");
    assert!(retry_after >= 1);

    let (status, _, body) = list(&server, &bob).await;
    assert_eq!(status, 200, "another user is not held back: {body}");

    // Two turns a second: after Retry-After, alice has at least one again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let (status, _, body) = list(&server, &alice).await;
    assert_eq!(status, 200, "the pace refills: {body}");
    server.shutdown().await;
}

#[actix_web::test]
async fn an_upload_past_the_pace_stores_nothing() {
    let env = TestEnv::new();
    let config = env.config(json!({ "server": { "requests_per_sec_per_user": 1, "request_burst_per_user": 1 } }));
    let server = TestServer::start(config, Role::Api).await;
    let alice = token("alice");
    let (status, _, _) = list(&server, &alice).await;
    assert_eq!(status, 200);
    let response = server.upload(&alice, &[("notes.md", b"# Notes\n\nPaced.".to_vec())], None).await;
    assert_eq!(response.status().as_u16(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    assert!(env.stored_files().is_empty(), "a refused upload leaves no file: {:?}", env.stored_files());

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _, body) = list(&server, &alice).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["documents"].as_array().map(Vec::len), Some(0), "no document was made: {body}");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_snapshot_counts_as_ten_requests_over_http_and_on_the_websocket() {
    let env = TestEnv::new();
    let config = env.config(json!({ "server": { "requests_per_sec_per_user": 1, "request_burst_per_user": 26 } }));
    let server = TestServer::start(config, Role::Api).await;
    let alice = token("alice");
    for n in 1..=2 {
        let (status, body) = server.get_json(&alice, "/api/documents/processing-status").await;
        assert_eq!(status, 200, "snapshot {n}: {body}");
    }
    // 6 turns left: not enough for a third snapshot, which takes none of them.
    let (status, body) = server.get_json(&alice, "/api/documents/processing-status").await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("snapshot")), "{body}");

    // The socket's handshake takes one; its first snapshot is part of opening it.
    let mut socket = WsClient::connect(&server.url(""), &alice).await;
    assert_eq!(socket.snapshot().await["type"], "snapshot");
    socket.send_json(json!({ "type": "subscribe" })).await;
    let refused = socket.next_json(Duration::from_secs(5)).await.expect("an answer to subscribe");
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("rate_limited")),
        "{refused}"
    );
    socket.send_json(json!({ "type": "ping" })).await;
    let pong = socket.next_json(Duration::from_secs(5)).await.expect("the socket stays open");
    assert_eq!(pong["type"], "pong", "{pong}");

    // Of the 26: 20 for two snapshots, 1 for the refused third's request, 1 for the
    // handshake. The refused subscribe took none of the 4 left (the pace refills one a
    // second meanwhile), and the pace still holds after them.
    for n in 1..=4 {
        let (status, _, body) = list(&server, &alice).await;
        assert_eq!(status, 200, "plain request {n}: {body}");
    }
    let mut refused = false;
    for _ in 0..10 {
        refused |= list(&server, &alice).await.0 == 429;
    }
    assert!(refused, "past its turns the user is refused again");
    server.shutdown().await;
}
