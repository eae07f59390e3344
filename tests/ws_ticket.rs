//! One-time WebSocket tickets: `POST /api/ws-ticket` (bearer auth) issues a ticket that
//! opens one `/ws?ticket=` as its caller within 30 s; a used, expired or unknown ticket
//! closes the socket with 4401, which is all a browser can read of a refusal.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::processors::ScriptedProcessor;
use common::ws::{is_event, WsClient};
use common::{token, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::web::ws::{TICKET_REFUSED, TOKEN_EXPIRED};
use serde_json::{json, Value};
use sha2::Digest;

const LIMIT: Duration = Duration::from_secs(30);

async fn server(env: &TestEnv) -> TestServer {
    TestServer::start_with(env.config(json!({})), Role::All, Arc::new(ScriptedProcessor::new())).await
}

async fn ticket_answer(server: &TestServer, bearer: &str) -> (u16, Value) {
    let response = server.client.post(server.url("/api/ws-ticket")).bearer_auth(bearer).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn ticket(server: &TestServer, bearer: &str) -> String {
    let (status, body) = ticket_answer(server, bearer).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 30);
    body["ticket"].as_str().unwrap().to_string()
}

async fn open(server: &TestServer, query: &str) -> WsClient {
    let url = format!("{}/ws?{query}", server.base.replacen("http", "ws", 1));
    let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("the upgrade is accepted");
    WsClient { socket }
}

fn ticket_key(env: &TestEnv, ticket: &str) -> String {
    format!("{}ws_ticket:{}", env.redis_prefix, hex::encode(sha2::Sha256::digest(ticket.as_bytes())))
}

#[actix_web::test]
async fn a_ticket_opens_one_socket_as_its_user_and_only_once() {
    let env = TestEnv::new();
    let server = server(&env).await;
    let alice = token("alice");
    let ticket = ticket(&server, &alice).await;

    let mut socket = open(&server, &format!("ticket={ticket}")).await;
    socket.snapshot().await;
    let doc = server.upload_one(&alice, "notes.md", b"# Notes\n\nby ticket".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    socket.collect_until(LIMIT, |f| is_event(f, "document.completed", id)).await;

    let mut again = open(&server, &format!("ticket={ticket}")).await;
    assert_eq!(again.close_code(LIMIT).await, Some(TICKET_REFUSED), "a used ticket is refused");
    drop(socket);
    server.shutdown().await;
}

/// A plain GET of /ws (no upgrade) is a JSON 400, and a ticket it carries stays
/// unspent: the client can still open its socket with it.
#[actix_web::test]
async fn a_request_that_is_no_websocket_handshake_is_a_json_400_and_spends_no_ticket() {
    let env = TestEnv::new();
    let server = server(&env).await;
    let alice = token("alice");
    let ticket = ticket(&server, &alice).await;
    for query in [format!("ticket={ticket}"), format!("token={alice}")] {
        let response = server.client.get(server.url(&format!("/ws?{query}"))).send().await.unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
    }
    let mut socket = open(&server, &format!("ticket={ticket}")).await;
    socket.snapshot().await;
    drop(socket);
    server.shutdown().await;
}

/// Each ticket is a key in Redis until used or expired: one user is issued at most
/// 30 in 30 s, and the next is 429 with Retry-After; another user is unaffected.
#[actix_web::test]
async fn one_user_is_issued_a_bounded_number_of_tickets() {
    let env = TestEnv::new();
    let server = server(&env).await;
    let alice = token("alice");
    for _ in 0..docqueue::auth::MAX_WS_TICKETS_PER_TTL {
        ticket(&server, &alice).await;
    }
    let response = server.client.post(server.url("/api/ws-ticket")).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests", "{body}");
    ticket(&server, &token("bob")).await;
    server.shutdown().await;
}

#[actix_web::test]
async fn a_ticket_lives_in_redis_for_30_seconds_under_its_hash_and_expired_is_refused() {
    let env = TestEnv::new();
    let server = server(&env).await;
    let ticket = ticket(&server, &token("alice")).await;
    let mut redis = env.redis();
    let key = ticket_key(&env, &ticket);
    let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut redis).unwrap();
    assert!((1..=30).contains(&ttl), "TTL {ttl}");
    let raw: Vec<String> = redis::cmd("KEYS").arg(format!("{}*", env.redis_prefix)).query(&mut redis).unwrap();
    assert!(raw.iter().all(|k| !k.contains(&ticket)), "no key holds the usable ticket: {raw:?}");

    // Expire it as Redis would after 30 s.
    let _: () = redis::cmd("PEXPIRE").arg(&key).arg(1).query(&mut redis).unwrap();
    common::eventually(LIMIT, "the ticket to expire", || {
        let exists: bool = redis::cmd("EXISTS").arg(&key).query(&mut redis).unwrap();
        async move { (!exists).then_some(()) }
    })
    .await;
    let mut socket = open(&server, &format!("ticket={ticket}")).await;
    assert_eq!(socket.close_code(LIMIT).await, Some(TICKET_REFUSED));
    let mut forged = open(&server, "ticket=0123456789abcdef").await;
    assert_eq!(forged.close_code(LIMIT).await, Some(TICKET_REFUSED));
    server.shutdown().await;
}

#[actix_web::test]
async fn a_ticket_needs_a_valid_bearer_token_and_never_takes_one_from_the_query() {
    let env = TestEnv::new();
    let server = server(&env).await;
    let (status, body) = ticket_answer(&server, "forged").await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")));
    let response =
        server.client.post(server.url(&format!("/api/ws-ticket?token={}", token("alice")))).send().await.unwrap();
    assert_eq!(response.status(), 401);
    server.shutdown().await;
}

#[actix_web::test]
async fn a_ticket_sees_only_its_users_events() {
    let env = TestEnv::new();
    let server = server(&env).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let mut bobs = open(&server, &format!("ticket={}", ticket(&server, &bob).await)).await;
    bobs.snapshot().await;
    let alices_doc = server.upload_one(&alice, "alice.md", b"# Alice".to_vec()).await;
    let bobs_doc = server.upload_one(&bob, "bob.md", b"# Bob".to_vec()).await;
    let bob_id = bobs_doc["id"].as_str().unwrap();
    let frames = bobs.collect_until(LIMIT, |f| is_event(f, "document.completed", bob_id)).await;
    assert!(frames.iter().all(|f| f["document_id"] != alices_doc["id"]), "{frames:#?}");
    drop(bobs);
    server.shutdown().await;
}

#[actix_web::test]
async fn a_session_opened_by_ticket_ends_when_the_token_behind_it_expires() {
    let env = TestEnv::new();
    let server = server(&env).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({ "sub": "alice", "role": "user", "exp": now + 2, "iat": now });
    let key = jsonwebtoken::EncodingKey::from_secret(common::SECRET.as_bytes()).unwrap();
    let short = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap();
    let mut socket = open(&server, &format!("ticket={}", ticket(&server, &short).await)).await;
    socket.snapshot().await;
    assert_eq!(socket.close_code(Duration::from_secs(10)).await, Some(TOKEN_EXPIRED));
    server.shutdown().await;
}

#[actix_web::test]
async fn the_token_in_the_query_still_opens_a_socket() {
    let env = TestEnv::new();
    let server = server(&env).await;
    let mut socket = open(&server, &format!("token={}", token("alice"))).await;
    socket.snapshot().await;
    drop(socket);
    server.shutdown().await;
}
