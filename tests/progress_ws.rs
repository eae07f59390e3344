//! Real-time progress over real WebSocket connections: order of events, isolation
//! between users, several tabs, resume after a drop, two processes, a lost pub/sub
//! connection, and silent clients.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::processors::ScriptedProcessor;
use common::ws::{is_event, WsClient};
use common::{token, OwnRedis, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::progress::hub::CountSessions;
use futures_util::SinkExt;
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(30);

async fn server(env: &TestEnv, processor: ScriptedProcessor, overrides: Value) -> TestServer {
    TestServer::start_with(env.config(overrides), Role::All, Arc::new(processor)).await
}

/// Stops the server once the test's sockets are closed: a graceful stop waits for open
/// WebSockets until its shutdown timeout.
async fn stop(server: TestServer, sockets: Vec<WsClient>) {
    drop(sockets);
    server.shutdown().await;
}

fn of_document<'a>(frames: &'a [Value], id: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["document_id"] == id).collect()
}

fn assert_increasing_seq(frames: &[&Value]) {
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().expect("every event has a seq")).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq increases: {seqs:?}");
}

#[actix_web::test]
async fn a_documents_events_arrive_in_order_through_completion() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    let snapshot = socket.snapshot().await;
    let doc = server.upload_one(&alice, "notes.txt", b"some notes".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    let frames = socket.collect_until(LIMIT, |f| is_event(f, "document.completed", id)).await;
    let events = of_document(&frames, id);
    assert_eq!(events.first().unwrap()["type"], "document.queued");
    // A new user's snapshot starts the sequence: no hole between it and the first event.
    assert_eq!(events.first().unwrap()["seq"].as_u64(), snapshot["seq"].as_u64().map(|seq| seq + 1));
    // Under the REST API's name, and under the name earlier clients read.
    assert_eq!(events.first().unwrap()["queue_position"], 1);
    assert_eq!(events.first().unwrap()["position"], 1);
    assert_eq!(events.last().unwrap()["chunk_count"], 4);
    let progress: Vec<&&Value> = events.iter().filter(|f| f["type"] == "document.progress").collect();
    let percents: Vec<i64> = progress.iter().map(|f| f["progress"].as_i64().unwrap()).collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "monotone: {percents:?}");
    let stages: Vec<&str> = progress.iter().map(|f| f["stage"].as_str().unwrap()).collect();
    let mut distinct = stages.clone();
    distinct.dedup();
    assert_eq!(distinct, vec!["extracting", "chunking", "embedding", "storing"], "every stage change: {stages:?}");
    for event in &events {
        assert_eq!(event["job_id"], doc["job_id"]);
        assert!(event["ts"].as_i64().unwrap() > 1_700_000_000_000);
    }
    assert_increasing_seq(&events);
    stop(server, vec![socket]).await;
}

/// Redis often keeps nothing on disk. When it loses its data, each user's seq starts
/// again; a socket that stayed open drops what is not above what it last sent, so the
/// new sequence must start above the old one.
#[actix_web::test]
async fn a_socket_left_open_while_redis_loses_its_data_hears_the_events_after() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    socket.snapshot().await;
    let first = server.upload_one(&alice, "first.txt", b"some notes".to_vec()).await;
    let first_id = first["id"].as_str().unwrap();
    let before = socket.collect_until(LIMIT, |f| is_event(f, "document.completed", first_id)).await;
    let mut redis = env.redis();
    let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}*", env.redis_prefix)).query(&mut redis).unwrap();
    let _: () = redis::cmd("DEL").arg(&keys).query(&mut redis).unwrap();

    let second = server.upload_one(&alice, "second.txt", b"more notes".to_vec()).await;
    let id = second["id"].as_str().unwrap();
    let frames = socket.collect_until(LIMIT, |f| is_event(f, "document.completed", id)).await;
    let events = of_document(&frames, id);
    assert_eq!(events.first().unwrap()["type"], "document.queued");
    let last_before = before.last().unwrap()["seq"].as_u64().unwrap();
    assert!(events[0]["seq"].as_u64().unwrap() > last_before, "the new sequence starts above the old");
    assert_increasing_seq(&events);
    stop(server, vec![socket]).await;
}

#[actix_web::test]
async fn a_failure_arrives_with_its_reason() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({ "document_queue": { "retry_attempts": 1 } })).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    socket.snapshot().await;
    let doc = server.upload_one(&alice, "permanent.txt", b"x".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    let frames = socket.collect_until(LIMIT, |f| is_event(f, "document.failed", id)).await;
    let failed = frames.last().unwrap();
    assert_eq!(failed["error"], "the document is not readable (simulated)");
    assert_eq!(failed["will_retry"], false);
    assert_eq!(failed["attempt"], 1);

    let flaky = server.upload_one(&alice, "fail2.txt", b"x".to_vec()).await;
    let flaky_id = flaky["id"].as_str().unwrap();
    let frames =
        socket.collect_until(LIMIT, |f| is_event(f, "document.failed", flaky_id) && f["will_retry"] == false).await;
    let failures: Vec<&Value> = frames.iter().filter(|f| is_event(f, "document.failed", flaky_id)).collect();
    assert_eq!(failures.len(), 2);
    assert_eq!((failures[0]["will_retry"].clone(), failures[0]["attempt"].clone()), (json!(true), json!(1)));
    assert_eq!((failures[1]["will_retry"].clone(), failures[1]["attempt"].clone()), (json!(false), json!(2)));
    stop(server, vec![socket]).await;
}

#[actix_web::test]
async fn cancelling_by_rest_and_by_websocket_message_arrives_as_cancelled() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({ "document_queue": { "concurrency": 2 } })).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    socket.snapshot().await;
    let by_rest = server.upload_one(&alice, "slow-rest.txt", b"x".to_vec()).await;
    let by_ws = server.upload_one(&alice, "slow-ws.txt", b"x".to_vec()).await;
    let (rest_id, ws_id) = (by_rest["id"].as_str().unwrap(), by_ws["id"].as_str().unwrap());
    socket.collect_until(LIMIT, |f| is_event(f, "document.progress", rest_id)).await;

    let response = server
        .client
        .delete(server.url(&format!("/api/documents/cancel/{rest_id}")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    socket.collect_until(LIMIT, |f| is_event(f, "document.cancelled", rest_id)).await;

    socket.send_json(json!({ "type": "cancel", "document_id": ws_id })).await;
    let mut frames = socket.collect_until(LIMIT, |f| is_event(f, "document.cancelled", ws_id)).await;
    if !frames.iter().any(|f| f["type"] == "cancel.accepted") {
        frames.extend(socket.collect_until(LIMIT, |f| f["type"] == "cancel.accepted").await);
    }
    let accepted = frames.iter().find(|f| f["type"] == "cancel.accepted" && f["document_id"] == ws_id);
    assert!(accepted.is_some_and(|f| f["ts"].as_i64() > Some(1_700_000_000_000)), "{frames:#?}");
    assert_eq!(server.document(&alice, ws_id).await["queue_status"], "cancelled");
    stop(server, vec![socket]).await;
}

async fn until_all_completed(socket: &mut WsClient, ids: &[String]) -> Vec<Value> {
    let mut frames = Vec::new();
    while !ids.iter().all(|id| frames.iter().any(|f| is_event(f, "document.completed", id))) {
        frames.push(socket.next_json(LIMIT).await.expect("events until every document completed"));
    }
    frames
}

#[actix_web::test]
async fn users_never_see_each_others_events_nor_cancel_each_others_documents() {
    let env = TestEnv::new();
    // Bob's documents run for 2 s: Alice's cancel, sent at once, finds them unfinished.
    let processor = ScriptedProcessor { slow_steps: 20, ..ScriptedProcessor::new() };
    let server = server(&env, processor, json!({ "document_queue": { "concurrency": 4 } })).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let mut alice_socket = WsClient::connect(&server.base, &alice).await;
    let mut bob_socket = WsClient::connect(&server.base, &bob).await;
    alice_socket.snapshot().await;
    bob_socket.snapshot().await;
    let files =
        |who: &str| -> Vec<(String, Vec<u8>)> { (0..3).map(|i| (format!("{who}-{i}.txt"), b"x".to_vec())).collect() };
    let (alice_files, bob_files) = (files("alice"), files("bob-slow"));
    let alice_refs: Vec<(&str, Vec<u8>)> = alice_files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let bob_refs: Vec<(&str, Vec<u8>)> = bob_files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let (a, b) = tokio::join!(server.upload(&alice, &alice_refs, None), server.upload(&bob, &bob_refs, None));
    let alice_docs: Value = a.json().await.unwrap();
    let bob_docs: Value = b.json().await.unwrap();
    let ids = |v: &Value| -> Vec<String> {
        v["documents"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()).collect()
    };
    let (alice_ids, bob_ids) = (ids(&alice_docs), ids(&bob_docs));

    // Alice tries to cancel one of Bob's documents through her socket.
    alice_socket.send_json(json!({ "type": "cancel", "document_id": bob_ids[0] })).await;
    let mut alice_frames = until_all_completed(&mut alice_socket, &alice_ids).await;
    let bob_frames = until_all_completed(&mut bob_socket, &bob_ids).await;
    if !alice_frames.iter().any(|f| f["type"] == "error") {
        alice_frames.extend(alice_socket.collect_until(LIMIT, |f| f["type"] == "error").await);
    }
    assert!(alice_frames
        .iter()
        .any(|f| f["type"] == "error" && f["code"] == "not_found" && f["ts"].as_i64() > Some(1_700_000_000_000)));
    for frame in &alice_frames {
        if let Some(id) = frame["document_id"].as_str() {
            assert!(!bob_ids.iter().any(|b| b == id), "alice saw bob's event {frame}");
        }
        assert_ne!(frame["user_id"], "bob");
    }
    for frame in &bob_frames {
        if let Some(id) = frame["document_id"].as_str() {
            assert!(!alice_ids.iter().any(|a| a == id), "bob saw alice's event {frame}");
        }
    }
    assert_eq!(server.document(&bob, &bob_ids[0]).await["queue_status"], "completed");
    stop(server, vec![alice_socket, bob_socket]).await;
}

#[actix_web::test]
async fn two_sockets_of_one_user_both_receive_every_event() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let alice = token("alice");
    let mut first = WsClient::connect(&server.base, &alice).await;
    let mut second = WsClient::connect(&server.base, &alice).await;
    first.snapshot().await;
    second.snapshot().await;
    let doc = server.upload_one(&alice, "both.txt", b"x".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    let a = first.collect_until(LIMIT, |f| is_event(f, "document.completed", id)).await;
    let b = second.collect_until(LIMIT, |f| is_event(f, "document.completed", id)).await;
    let seqs = |frames: &[Value]| -> Vec<u64> { frames.iter().filter_map(|f| f["seq"].as_u64()).collect() };
    assert_eq!(seqs(&a), seqs(&b));
    assert!(seqs(&a).len() >= 3);
    stop(server, vec![first, second]).await;
}

/// A slow document's events until its progress passes 10 %, on `socket`; then the
/// socket goes, and `other_tab` (same user) sees two more events go by. Returns the
/// document id and the last seq the dropped socket saw.
async fn miss_some_events(
    server: &TestServer,
    alice: &str,
    mut socket: WsClient,
    other_tab: &mut WsClient,
) -> (String, u64) {
    let doc = server.upload_one(alice, "slow.txt", b"x".to_vec()).await;
    let id = doc["id"].as_str().unwrap().to_string();
    let seen = socket
        .collect_until(LIMIT, |f| is_event(f, "document.progress", &id) && f["progress"].as_i64() > Some(10))
        .await;
    let last_seq = seen.last().unwrap()["seq"].as_u64().unwrap();
    drop(socket);
    other_tab.collect_until(LIMIT, |f| f["seq"].as_u64() >= Some(last_seq + 2)).await;
    (id, last_seq)
}

/// Every seq after `since`, each exactly once: the user's seqs have no holes.
fn assert_each_seq_once_after(frames: &[Value], since: u64) {
    let mut seqs: Vec<u64> = frames.iter().filter_map(|f| f["seq"].as_u64()).filter(|s| *s > since).collect();
    let received = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), received, "no seq twice");
    assert_eq!(seqs, (since + 1..=since + seqs.len() as u64).collect::<Vec<_>>(), "no seq missing");
}

#[actix_web::test]
async fn a_socket_opened_with_since_gets_exactly_the_missed_events_then_live_ones() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor { slow_steps: 30, ..ScriptedProcessor::new() };
    let server = server(&env, processor, json!({})).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    socket.snapshot().await;
    let mut other_tab = WsClient::connect(&server.base, &alice).await;
    other_tab.snapshot().await;
    let (id, last_seq) = miss_some_events(&server, &alice, socket, &mut other_tab).await;

    let url = format!("{}/ws?token={alice}&since={last_seq}", server.base.replacen("http", "ws", 1));
    let mut resumed = WsClient { socket: tokio_tungstenite::connect_async(url).await.unwrap().0 };
    let frames = resumed.collect_until(LIMIT, |f| is_event(f, "document.completed", &id)).await;
    assert!(frames.iter().all(|f| f["type"] != "snapshot"), "a resume, not a snapshot: {frames:#?}");
    assert_eq!(frames[0]["seq"], last_seq + 1, "the first missed event comes first");
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] + 1 == w[1]), "in order, none twice, none missing: {seqs:?}");
    // The other tab saw at least these go by while no socket was open: they were replayed.
    assert!(seqs.len() >= 3, "{seqs:?}");
    stop(server, vec![other_tab, resumed]).await;
}

#[actix_web::test]
async fn a_socket_opened_with_since_past_the_kept_events_gets_a_snapshot() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({ "progress": { "stream_max_len": 3 } })).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    socket.snapshot().await;
    let doc = server.upload_one(&alice, "first.txt", b"x".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    let frames = socket.collect_until(LIMIT, |f| is_event(f, "document.completed", id)).await;
    let early_seq = frames.first().unwrap()["seq"].as_u64().unwrap();
    let url = format!("{}/ws?token={alice}&since={}", server.base.replacen("http", "ws", 1), early_seq - 1);
    let mut resumed = WsClient { socket: tokio_tungstenite::connect_async(url).await.unwrap().0 };
    let reply = resumed.snapshot().await;
    assert_eq!(reply["documents"][0]["queue_status"], "completed");
    stop(server, vec![socket, resumed]).await;
}

#[actix_web::test]
async fn a_fresh_sockets_live_events_are_not_held_back_for_a_resume() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let alice = token("alice");
    let mut fresh = WsClient::connect(&server.base, &alice).await;
    fresh.snapshot().await;
    // A second socket, opened with `since` (so it starts with nothing to replay), tells
    // when the Hub has the event; a message to the Hub after that returns once the Hub
    // has handed it to every session of the user: the fresh session then has it in its
    // mailbox, which an actor empties before it reads the ping sent below.
    let events = docqueue::progress::Publisher::new(server.app().queue.clone(), 100);
    let seq = events.current_seq("alice").await.unwrap();
    let url = format!("{}/ws?token={alice}&since={seq}", server.base.replacen("http", "ws", 1));
    let mut witness = WsClient { socket: tokio_tungstenite::connect_async(url).await.unwrap().0 };
    // A session answers frames only once it has joined the Hub.
    witness.send_json(json!({ "type": "ping" })).await;
    witness.collect_until(LIMIT, |f| f["type"] == "pong").await;

    let published = std::time::Instant::now();
    let event = docqueue::progress::Subject::new("alice", "01JDOCUMENT", "01JJOB").queued(Some(1));
    let seq = events.publish(event).await.unwrap();
    witness.collect_until(LIMIT, |f| f["seq"] == seq).await;
    server.app().hub.clone().unwrap().send(CountSessions).await.unwrap();

    // Held back, the event would come after the pong (the old hold was a second long).
    fresh.send_json(json!({ "type": "ping" })).await;
    let first = fresh.next_json(LIMIT).await.unwrap();
    println!("the fresh socket's first live event arrived {:?} after it was published", published.elapsed());
    assert_eq!((first["type"].as_str(), first["seq"].as_u64()), (Some("document.queued"), Some(seq)), "{first}");
    assert_eq!(fresh.next_json(LIMIT).await.unwrap()["type"], "pong");
    stop(server, vec![fresh, witness]).await;
}

#[actix_web::test]
async fn a_reconnecting_client_that_sends_resume_gets_exactly_the_events_it_missed() {
    let env = TestEnv::new();
    let processor = ScriptedProcessor { slow_steps: 30, ..ScriptedProcessor::new() };
    let server = server(&env, processor, json!({})).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    socket.snapshot().await;
    // Another tab of the same user sees the same seqs and tells when events went by.
    let mut other_tab = WsClient::connect(&server.base, &alice).await;
    other_tab.snapshot().await;
    let (id, last_seq) = miss_some_events(&server, &alice, socket, &mut other_tab).await;

    // The way clients resumed before `?since=`: a snapshot, then a `resume` frame. Live
    // events flow from the snapshot on, so some may come before the replay; none twice.
    let mut again = WsClient::connect(&server.base, &alice).await;
    let snapshot = again.snapshot().await;
    again.send_json(json!({ "type": "resume", "since": last_seq })).await;
    let resumed = again.collect_until(LIMIT, |f| is_event(f, "document.completed", &id)).await;
    assert_each_seq_once_after(&resumed, last_seq);
    let replayed: Vec<u64> = resumed
        .iter()
        .filter_map(|f| f["seq"].as_u64())
        .filter(|seq| *seq > last_seq && *seq <= snapshot["seq"].as_u64().unwrap())
        .collect();
    assert!(replayed.len() >= 2, "missed events were replayed: {replayed:?}");
    stop(server, vec![other_tab, again]).await;
}

#[actix_web::test]
async fn resuming_past_a_trimmed_stream_gets_a_snapshot() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({ "progress": { "stream_max_len": 3 } })).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    socket.snapshot().await;
    let doc = server.upload_one(&alice, "first.txt", b"x".to_vec()).await;
    let frames = socket.collect_until(LIMIT, |f| is_event(f, "document.queued", doc["id"].as_str().unwrap())).await;
    let early_seq = frames.last().unwrap()["seq"].as_u64().unwrap();
    socket.collect_until(LIMIT, |f| f["type"] == "document.completed").await;
    socket.send_json(json!({ "type": "resume", "since": early_seq })).await;
    let reply = socket.next_json(LIMIT).await.unwrap();
    assert_eq!(reply["type"], "snapshot", "{reply}");
    assert_eq!(reply["documents"][0]["queue_status"], "completed");
    stop(server, vec![socket]).await;
}

#[actix_web::test]
async fn unknown_and_malformed_frames_get_an_error_and_the_socket_stays_up() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    socket.snapshot().await;
    socket.send_json(json!({ "type": "dance" })).await;
    assert_eq!(socket.next_json(LIMIT).await.unwrap()["type"], "error");
    socket.socket.send(tokio_tungstenite::tungstenite::Message::Text("{not json".into())).await.unwrap();
    assert_eq!(socket.next_json(LIMIT).await.unwrap()["type"], "error");
    socket.send_json(json!({ "type": "ping" })).await;
    assert_eq!(socket.next_json(LIMIT).await.unwrap()["type"], "pong");
    stop(server, vec![socket]).await;
}

#[actix_web::test]
async fn a_bad_token_is_refused_before_the_upgrade() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let url = format!("{}/ws?token=forged", server.base.replacen("http", "ws", 1));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("expected a 401, got {:?}", other.map(|_| "an upgrade")),
    }
    server.shutdown().await;
}

#[actix_web::test]
async fn an_empty_since_starts_with_a_snapshot_and_a_malformed_one_is_refused_with_400() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let alice = token("alice");
    let ws = server.base.replacen("http", "ws", 1);
    let (socket, _) = tokio_tungstenite::connect_async(format!("{ws}/ws?token={alice}&since=")).await.unwrap();
    let mut fresh = WsClient { socket };
    assert_eq!(fresh.next_json(LIMIT).await.unwrap()["type"], "snapshot");
    match tokio_tungstenite::connect_async(format!("{ws}/ws?token={alice}&since=undefined")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 400);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert!(body["error"]["message"].as_str().unwrap().contains("since"), "{body}");
        }
        other => panic!("expected a 400, got {:?}", other.map(|_| "an upgrade")),
    }
    stop(server, vec![fresh]).await;
}

/// A user has at most `server.ws_max_sockets_per_user` sockets open: one more is
/// refused with 429, or, opened with a ticket as a browser does, closed with 4029.
/// Another user's socket opens, and closing one of the user's makes room.
#[actix_web::test]
async fn a_user_past_the_socket_limit_is_refused_and_a_closed_socket_makes_room() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({ "server": { "ws_max_sockets_per_user": 3 } })).await;
    let alice = token("alice");
    let ws = server.base.replacen("http", "ws", 1);
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut socket = WsClient::connect(&server.base, &alice).await;
        socket.snapshot().await;
        open.push(socket);
    }
    match tokio_tungstenite::connect_async(format!("{ws}/ws?token={alice}")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert!(body["error"]["message"].as_str().unwrap().contains("ws_max_sockets_per_user"), "{body}");
        }
        other => panic!("expected a 429, got {:?}", other.map(|_| "an upgrade")),
    }
    let ticket: Value = server
        .client
        .post(server.url("/api/ws-ticket"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{ws}/ws?ticket={}", ticket["ticket"].as_str().unwrap());
    let mut refused = WsClient { socket: tokio_tungstenite::connect_async(url).await.unwrap().0 };
    assert_eq!(refused.close_code(LIMIT).await, Some(4029));

    let mut bob = WsClient::connect(&server.base, &token("bob")).await;
    bob.snapshot().await;
    let mut closed = open.remove(0);
    closed.socket.close(None).await.unwrap();
    let mut again = common::eventually(LIMIT, "room for another of alice's sockets", || {
        let url = format!("{ws}/ws?token={alice}");
        async move { tokio_tungstenite::connect_async(url).await.ok().map(|(socket, _)| WsClient { socket }) }
    })
    .await;
    again.snapshot().await;
    open.extend([bob, again]);
    stop(server, open).await;
}

#[actix_web::test]
async fn a_socket_whose_client_stops_reading_is_dropped_after_the_send_timeout_and_frees_its_place() {
    use tokio_tungstenite::tungstenite::Message;
    let env = TestEnv::new();
    let overrides = json!({ "server": {
        "ws_max_sockets_per_user": 1,
        "send_timeout_ms": 1000,
        "ws_frames_per_sec": 1_000_000,
        "ws_frame_burst": 1_000_000,
    } });
    let server = server(&env, ScriptedProcessor::new(), overrides).await;
    let alice = token("alice");
    let ws = server.base.replacen("http", "ws", 1);

    // A client that only writes: pings whose pongs it never reads, until the pongs fill
    // every buffer between it and the server and the server stops reading in turn.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.base.trim_start_matches("http://").parse().unwrap()).await.unwrap();
    let (mut stalled, _) = tokio_tungstenite::client_async(format!("{ws}/ws?token={alice}"), stream).await.unwrap();
    let ping = Message::Ping(vec![b'p'; 125].into());
    let mut pings = 0_u64;
    while let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(2), stalled.send(ping.clone())).await {
        pings += 1;
        assert!(pings < 2_000_000, "the server kept taking pings from a client that reads nothing");
    }
    println!("the server stopped reading after {pings} pings");

    let mut again = common::eventually(LIMIT, "room for another of alice's sockets", || {
        let url = format!("{ws}/ws?token={alice}");
        async move { tokio_tungstenite::connect_async(url).await.ok().map(|(socket, _)| WsClient { socket }) }
    })
    .await;
    again.snapshot().await;
    let ended = tokio::time::timeout(LIMIT, async {
        while let Some(Ok(_)) = futures_util::StreamExt::next(&mut stalled).await {}
    })
    .await;
    assert!(ended.is_ok(), "the stalled client's connection was dropped, so its reads end");
    stop(server, vec![again]).await;
}

#[actix_web::test]
async fn progress_from_a_worker_process_reaches_a_client_of_an_api_process() {
    let env = TestEnv::new();
    let api = TestServer::start(env.config(json!({})), Role::Api).await;
    let mut worker = Command::new(env!("CARGO_BIN_EXE_docqueue"))
        .args(["serve", "--role", "worker"])
        .envs(env.env_vars())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let alice = token("alice");
    let mut socket = WsClient::connect(&api.base, &alice).await;
    socket.snapshot().await;
    let doc = api.upload_one(&alice, "chapter.html", common::fixture("python-tutorial-errors.html")).await;
    let id = doc["id"].as_str().unwrap();
    let frames = socket.collect_until(Duration::from_secs(60), |f| is_event(f, "document.completed", id)).await;
    assert!(frames.iter().any(|f| is_event(f, "document.progress", id)), "{frames:#?}");
    let row = api.document(&alice, id).await;
    assert!(row["worker_id"].as_str().unwrap().contains(&format!(":{}:", worker.id())));
    let _ = worker.kill();
    let _ = worker.wait();
    stop(api, vec![socket]).await;
}

#[actix_web::test]
async fn a_killed_pubsub_connection_keeps_sockets_open_and_a_snapshot_fills_the_gap() {
    let own = OwnRedis::start();
    let env = TestEnv::with_redis(&own.url);
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.base, &alice).await;
    socket.snapshot().await;
    let mut redis = env.redis();
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query(&mut redis).unwrap();
    assert_eq!(killed, 1, "the Hub's one pub/sub connection");
    // An upload right away: its first events may be lost with the connection; the
    // refreshed snapshot and the later events must still bring the full picture.
    let doc = server.upload_one(&alice, "during-gap.txt", b"x".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    let frames = socket
        .collect_until(LIMIT, |f| {
            is_event(f, "document.completed", id)
                || (f["type"] == "snapshot"
                    && f["documents"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|d| d["id"] == id && d["queue_status"] == "completed"))
        })
        .await;
    assert!(frames.iter().any(|f| f["type"] == "snapshot"), "the Hub asked for a refresh: {frames:#?}");
    // Still the same socket, and live events flow again.
    let next = server.upload_one(&alice, "after-gap.txt", b"x".to_vec()).await;
    let next_id = next["id"].as_str().unwrap();
    socket.collect_until(LIMIT, |f| is_event(f, "document.completed", next_id)).await;
    stop(server, vec![socket]).await;
}

#[actix_web::test]
async fn a_client_that_stops_answering_pings_is_closed_with_1001_and_forgotten() {
    let env = TestEnv::new();
    let quick = json!({ "server": { "ws_ping_interval_ms": 200, "ws_silence_limit_ms": 1000 } });
    let server = server(&env, ScriptedProcessor::new(), quick).await;
    let hub = server.app().hub.clone().unwrap();
    let alice = token("alice");
    let mut silent = WsClient::connect(&server.base, &alice).await;
    silent.snapshot().await;
    assert_eq!(hub.send(CountSessions).await.unwrap().sessions, 1);
    // Not reading means not answering pings: the client is silent from here on.
    common::eventually(LIMIT, "the silent session to be dropped", || {
        let hub = hub.clone();
        async move { (hub.send(CountSessions).await.unwrap().sessions == 0).then_some(()) }
    })
    .await;
    assert_eq!(silent.close_code(LIMIT).await, Some(1001), "reading again, it finds why it was closed");
    server.shutdown().await;
}

/// A client that stops reading while its user's events keep coming: once its socket's
/// buffers and its session's mailbox are full, the session is dropped, so its events
/// cannot pile up in the server without bound. The user's other socket gets every
/// event; the stalled one, when it reads again, finds the close code that says resume.
#[actix_web::test]
async fn a_socket_whose_client_stops_reading_is_dropped_before_its_events_pile_up() {
    use docqueue::progress::{Publisher, Subject};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let env = TestEnv::new();
    let quick = json!({ "server": {
        "ws_ping_interval_ms": 200, "ws_silence_limit_ms": 600000, "ws_max_pending_events": 256
    } });
    let server = server(&env, ScriptedProcessor::new(), quick).await;
    let hub = server.app().hub.clone().unwrap();
    let alice = token("alice");
    let mut stalled = WsClient::connect(&server.base, &alice).await;
    stalled.snapshot().await;
    let mut reader = WsClient::connect(&server.base, &alice).await;
    reader.snapshot().await;

    let total = 3_000;
    let reading = tokio::spawn(async move {
        let seen = AtomicUsize::new(0);
        reader
            .collect_until(LIMIT, |f| {
                f["type"] == "document.failed" && seen.fetch_add(1, Ordering::Relaxed) + 1 == total
            })
            .await;
        reader
    });
    let config = env.config(json!({}));
    let events = Publisher::new(docqueue::queue::Queue::new(&config.redis, &config.document_queue).unwrap(), 100);
    let subject = Subject::new("alice", "01JDOCUMENT", "01JJOB");
    let reason = "x".repeat(8 * 1024);
    for _ in 0..total / 100 {
        let batch: Vec<_> = (0..100).map(|_| subject.failed(&reason, true, 1)).collect();
        events.publish_all(&batch).await.unwrap();
    }
    let reader = reading.await.unwrap();
    common::eventually(LIMIT, "the stalled session to be dropped", || {
        let hub = hub.clone();
        async move { (hub.send(CountSessions).await.unwrap().sessions == 1).then_some(()) }
    })
    .await;
    assert_eq!(stalled.close_code(LIMIT).await, Some(docqueue::web::ws::TOO_FAR_BEHIND));
    stop(server, vec![reader, stalled]).await;
}

fn token_expiring_in(user: &str, seconds: u64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({ "sub": user, "role": "user", "exp": now + seconds, "iat": now });
    let key = jsonwebtoken::EncodingKey::from_secret(common::SECRET.as_bytes()).unwrap();
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).unwrap()
}

#[actix_web::test]
async fn a_session_is_closed_with_4001_when_its_token_expires_and_a_fresh_token_resumes() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let mut socket = WsClient::connect(&server.base, &token_expiring_in("alice", 2)).await;
    socket.snapshot().await;
    let code = socket.close_code(Duration::from_secs(10)).await;
    assert_eq!(code, Some(docqueue::web::ws::TOKEN_EXPIRED), "the session outlived its token");

    let mut again = WsClient::connect(&server.base, &token("alice")).await;
    again.snapshot().await;
    again.send_json(json!({ "type": "resume", "since": 0 })).await;
    let doc = server.upload_one(&token("alice"), "after.md", b"# After\n\nreconnected".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    again.collect_until(LIMIT, |f| is_event(f, "document.completed", id)).await;
    stop(server, vec![again]).await;
}

/// Pongs nobody asked for are frames like any other: a flood of them closes the
/// session as a flood of text frames does.
#[actix_web::test]
async fn a_flood_of_unasked_pongs_closes_the_session_with_1008() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let mut flooder = WsClient::connect(&server.base, &token("alice")).await;
    flooder.snapshot().await;
    for _ in 0..5000 {
        let pong = tokio_tungstenite::tungstenite::Message::Pong(b"x".to_vec().into());
        if flooder.socket.send(pong).await.is_err() {
            break;
        }
    }
    assert_eq!(flooder.close_code(LIMIT).await, Some(1008));
    stop(server, vec![flooder]).await;
}

#[actix_web::test]
async fn a_frame_flood_closes_only_that_session_and_another_users_upload_completes() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    let (alice, bob) = (token("alice"), token("bob"));
    let mut flooder = WsClient::connect(&server.base, &alice).await;
    flooder.snapshot().await;
    let mut other = WsClient::connect(&server.base, &bob).await;
    other.snapshot().await;

    let frame = json!({ "type": "cancel", "document_id": "01JNOSUCHDOCUMENT0000000000" }).to_string();
    for _ in 0..5000 {
        if flooder.socket.send(tokio_tungstenite::tungstenite::Message::Text(frame.clone().into())).await.is_err() {
            break;
        }
    }
    let doc = server.upload_one(&bob, "notes.md", b"# Notes\n\nwhile alice floods".to_vec()).await;
    let mut saw_rate_limited = false;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(10), futures_util::StreamExt::next(&mut flooder.socket)).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text)))) => {
                saw_rate_limited |= text.contains("rate_limited");
            }
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame)))) => {
                break frame.map(|f| u16::from(f.code))
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("the flooding socket was not closed with a reason: {other:?}"),
        }
    };
    assert!(saw_rate_limited, "an error frame should say why");
    assert_eq!(code, Some(1008));

    let id = doc["id"].as_str().unwrap();
    other.collect_until(LIMIT, |f| is_event(f, "document.completed", id)).await;
    other.send_json(json!({ "type": "ping" })).await;
    other.collect_until(Duration::from_secs(5), |f| f["type"] == "pong").await;
    stop(server, vec![other]).await;
}

#[actix_web::test]
async fn users_whose_ids_look_like_key_names_both_get_their_events() {
    let env = TestEnv::new();
    let server = server(&env, ScriptedProcessor::new(), json!({})).await;
    for user in ["bob", "seq:bob", "stream:bob"] {
        let user = token(user);
        let mut socket = WsClient::connect(&server.base, &user).await;
        socket.snapshot().await;
        let doc = server.upload_one(&user, "note.md", b"# Note\n\nmine".to_vec()).await;
        let id = doc["id"].as_str().unwrap();
        socket.collect_until(LIMIT, |f| is_event(f, "document.completed", id)).await;
    }
    server.shutdown().await;
}

/// alice's job `i` (job-1, job-2, …), as the tests below enqueue it.
fn job(i: usize) -> docqueue::queue::NewJob {
    common::text_job(&format!("job-{i}"), "alice")
}

/// A queue and a publisher on `env`'s Redis, with alice's job-1 and job-2 enqueued as an
/// upload does before announcing them; returns their positions too.
async fn two_jobs_enqueued_before_announcing(
    env: &TestEnv,
) -> (docqueue::queue::Queue, docqueue::progress::Publisher, Vec<Option<u64>>) {
    let config = env.config(json!({}));
    let queue = docqueue::queue::Queue::new(&config.redis, &config.document_queue).unwrap();
    let events = docqueue::progress::Publisher::new(queue.clone(), 100);
    let positions = queue.enqueue_before_announcing(&[job(1), job(2)]).await.unwrap();
    (queue, events, positions)
}

/// An uploader enqueues its jobs, then announces them (`document.queued` carries the
/// position); a busy worker can claim one in between. Whatever the worker reports
/// about that job is held back until the announcement is out, so the owner hears
/// "queued" first; and a job whose announcement never comes (its uploader stopped)
/// holds its events back for a second only.
#[actix_web::test]
async fn a_jobs_events_wait_for_its_queued_announcement() {
    use docqueue::progress::Subject;
    let env = TestEnv::new();
    let (queue, events, positions) = two_jobs_enqueued_before_announcing(&env).await;
    let mut claimer = queue.dedicated_connection().await.unwrap();
    let claimed = queue.claim(&mut claimer, "busy-worker").await.unwrap().unwrap();
    assert_eq!(claimed.job_id, "job-1");

    // The worker reports progress and completion before the uploader announces.
    let worker_events = tokio::spawn({
        let events = events.clone();
        async move {
            let subject = Subject::new("alice", "doc-job-1", "job-1");
            events.publish(subject.progress(10, "extracting")).await.unwrap();
            events.publish(subject.completed(1, None, None)).await.unwrap()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events.current_seq("alice").await.unwrap(), 0, "nothing published before the announcement");
    events.announce_enqueued(&[job(1)], &positions[..1]).await;
    let completed_seq = worker_events.await.unwrap();

    let kinds = |missed| match missed {
        docqueue::progress::publisher::Missed::Events(payloads) => payloads
            .iter()
            .map(|p| serde_json::from_str::<Value>(p).unwrap()["type"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        docqueue::progress::publisher::Missed::Gap => panic!("the stream lost events"),
    };
    // The user's first three events, in this order: their seqs end at completed_seq.
    assert_eq!(
        kinds(events.missed_since("alice", completed_seq - 3).await.unwrap()),
        ["document.queued", "document.progress", "document.completed"]
    );

    // job-2's uploader never announces: its first event goes out after a second, and
    // the next one at once.
    let started = std::time::Instant::now();
    let subject = Subject::new("alice", "doc-job-2", "job-2");
    events.publish(subject.progress(10, "extracting")).await.unwrap();
    let held = started.elapsed();
    events.publish(subject.progress(20, "extracting")).await.unwrap();
    println!("held back {held:?} for an announcement that never came; the next event {:?}", started.elapsed() - held);
    assert!(held >= Duration::from_millis(900), "held back {held:?}");
    assert!(started.elapsed() - held < Duration::from_millis(500));
}

/// Events ready together (an upload's announcements, a short document's stage changes)
/// go out in one call, in order; one held back for its job's announcement holds back
/// the ones after it too, so the owner still hears everything in order.
#[actix_web::test]
async fn events_published_together_keep_their_order_behind_a_held_one() {
    use docqueue::progress::publisher::Missed;
    use docqueue::progress::Subject;
    let env = TestEnv::new();
    let (_queue, events, positions) = two_jobs_enqueued_before_announcing(&env).await;
    events.announce_enqueued(&[job(1)], &positions[..1]).await;
    let first = events.current_seq("alice").await.unwrap();

    let (one, two) = (Subject::new("alice", "doc-job-1", "job-1"), Subject::new("alice", "doc-job-2", "job-2"));
    let batch = vec![one.progress(10, "extracting"), two.progress(10, "extracting"), one.progress(20, "chunking")];
    let publishing = tokio::spawn({
        let events = events.clone();
        async move { events.publish_all(&batch).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(events.current_seq("alice").await.unwrap(), first + 1, "job-1's first event out, the rest held back");
    events.announce_enqueued(&[job(2)], &positions[1..]).await;
    assert_eq!(publishing.await.unwrap(), vec![first + 1, first + 3, first + 4]);

    let Missed::Events(payloads) = events.missed_since("alice", first - 1).await.unwrap() else { panic!("a gap") };
    let heard: Vec<(String, String, u64)> = payloads
        .iter()
        .map(|p| {
            let event: Value = serde_json::from_str(p).unwrap();
            (
                event["type"].as_str().unwrap().into(),
                event["job_id"].as_str().unwrap().into(),
                event["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("document.queued", "job-1"),
        ("document.progress", "job-1"),
        ("document.queued", "job-2"),
        ("document.progress", "job-2"),
        ("document.progress", "job-1"),
    ];
    let expected: Vec<(String, String, u64)> =
        expected.iter().zip(first..).map(|((kind, job), seq)| (kind.to_string(), job.to_string(), seq)).collect();
    assert_eq!(heard, expected);
}
