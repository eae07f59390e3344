//! Bearer-token authentication and the admin role, over real HTTP.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{admin_token, token, TestEnv, TestServer, SECRET};
use docqueue::app::Role;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

fn signed(claims: Value, secret: &str) -> String {
    encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes()).unwrap()).unwrap()
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn status_with(server: &TestServer, path: &str, auth: Option<&str>) -> (u16, Value) {
    let mut request = server.client.get(server.url(path));
    if let Some(value) = auth {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn missing_malformed_expired_and_wrongly_signed_tokens_are_401() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let expired = signed(json!({ "sub": "alice", "role": "user", "exp": now() - 120 }), SECRET);
    let wrong_key = signed(json!({ "sub": "alice", "role": "user", "exp": now() + 600 }), "another-secret");
    let no_subject = signed(json!({ "role": "user", "exp": now() + 600 }), SECRET);
    let cases = [
        ("missing", None),
        ("malformed", Some("Bearer not.a.jwt".to_string())),
        ("wrong scheme", Some(format!("Basic {}", token("alice")))),
        ("expired", Some(format!("Bearer {expired}"))),
        ("wrongly signed", Some(format!("Bearer {wrong_key}"))),
        ("no subject", Some(format!("Bearer {no_subject}"))),
    ];
    for (case, header) in cases {
        let (status, body) = status_with(&server, "/api/documents", header.as_deref()).await;
        assert_eq!(status, 401, "{case}");
        assert_eq!(body["error"]["code"], "unauthorized", "{case}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let (status, _) = status_with(&server, "/api/documents", Some(&format!("Bearer {}", token("alice")))).await;
    assert_eq!(status, 200);
    server.shutdown().await;
}

#[actix_web::test]
async fn user_token_on_admin_route_is_403_and_admin_token_passes() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let (status, body) =
        status_with(&server, "/api/admin/queue/status", Some(&format!("Bearer {}", token("alice")))).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = status_with(&server, "/api/admin/queue/status", None).await;
    assert_eq!(status, 401);
    let (status, body) =
        status_with(&server, "/api/admin/queue/status", Some(&format!("Bearer {}", admin_token("root")))).await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_token_not_valid_before_a_future_time_is_401() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let tomorrow =
        signed(json!({ "sub": "alice", "role": "user", "exp": now() + 2 * 86400, "nbf": now() + 86400 }), SECRET);
    let (status, body) = status_with(&server, "/api/documents", Some(&format!("Bearer {tomorrow}"))).await;
    assert_eq!(status, 401, "{body}");
    let valid_since_yesterday =
        signed(json!({ "sub": "alice", "role": "user", "exp": now() + 600, "nbf": now() - 86400 }), SECRET);
    let (status, body) = status_with(&server, "/api/documents", Some(&format!("Bearer {valid_since_yesterday}"))).await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await;
}
