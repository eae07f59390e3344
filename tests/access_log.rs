//! The access log never holds a credential: tokens in `?token=` (WebSocket clients)
//! and `Authorization` headers are used, then the server's own log is read.

mod common;

use std::time::Duration;

use common::ws::WsClient;
use common::{token, ServerProcess, TestEnv};

#[actix_web::test]
async fn no_token_that_was_used_reaches_the_log() {
    let env = TestEnv::new();
    let server = ServerProcess::start(&env, &[]).await;
    let alice = token("alice");
    let mut socket = WsClient::connect(&server.http.base, &alice).await;
    socket.snapshot().await;
    let client = &server.http.client;
    let listed = client.get(server.http.url("/api/documents")).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    let in_query = client.get(server.http.url(&format!("/api/documents?limit=5&token={alice}"))).send().await.unwrap();
    assert_eq!(in_query.status(), 401, "a token in the query is only for the WebSocket");
    drop(socket);

    let log = common::eventually(Duration::from_secs(10), "the requests in the access log", || {
        let log = server.log_text();
        async move {
            (log.contains("/api/documents?limit=5&token=[redacted]") && log.contains("/ws?token=[redacted]"))
                .then_some(log)
        }
    })
    .await;
    let signature = alice.rsplit('.').next().unwrap();
    assert!(!log.contains(signature), "a token reached the log:\n{log}");
    assert!(!log.contains(&alice[..20]), "a token reached the log:\n{log}");
}
