//! CORS for chat apps served from another origin: origins listed in
//! `server.cors_allowed_origins` get CORS headers on the API and upload routes and
//! their preflights answered; any other origin gets none, and no origin is ever told
//! it may send credentials.

mod common;

use common::{token, TestEnv, TestServer};
use docqueue::app::Role;
use reqwest::header::HeaderMap;
use serde_json::json;

const CHAT_APP: &str = "http://chat.example.test:5173";
const OTHER: &str = "https://evil.example.test";

async fn server(env: &TestEnv, origins: &[&str]) -> TestServer {
    TestServer::start(env.config(json!({ "server": { "cors_allowed_origins": origins } })), Role::Api).await
}

async fn preflight(server: &TestServer, path: &str, origin: &str, method: &str) -> (u16, HeaderMap) {
    let (status, headers, _) = preflight_with_body(server, path, origin, method).await;
    (status, headers)
}

async fn preflight_with_body(server: &TestServer, path: &str, origin: &str, method: &str) -> (u16, HeaderMap, String) {
    let response = server
        .client
        .request(reqwest::Method::OPTIONS, server.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

async fn get(server: &TestServer, path: &str, origin: &str) -> (u16, HeaderMap) {
    let response =
        server.client.get(server.url(path)).header("Origin", origin).bearer_auth(token("alice")).send().await.unwrap();
    (response.status().as_u16(), response.headers().clone())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

fn no_cors_headers(headers: &HeaderMap) -> bool {
    headers.keys().all(|name| !name.as_str().starts_with("access-control-"))
}

#[actix_web::test]
async fn an_allowed_origin_gets_preflights_answered_and_the_headers_on_answers() {
    let env = TestEnv::new();
    let server = server(&env, &[CHAT_APP]).await;
    for (path, method) in [
        ("/api/documents/upload", "POST"),
        ("/api/documents", "GET"),
        ("/api/documents/cancel/some-id", "DELETE"),
        ("/api/ws-ticket", "POST"),
        ("/api/admin/queue/status", "GET"),
    ] {
        let (status, headers) = preflight(&server, path, CHAT_APP, method).await;
        assert_eq!(status, 200, "preflight of {method} {path}");
        assert_eq!(header(&headers, "access-control-allow-origin"), Some(CHAT_APP));
        assert!(header(&headers, "access-control-allow-methods").unwrap().contains(method), "{headers:?}");
        let allowed_headers = header(&headers, "access-control-allow-headers").unwrap().to_lowercase();
        assert!(allowed_headers.contains("authorization") && allowed_headers.contains("content-type"));
        assert_eq!(header(&headers, "access-control-allow-credentials"), None, "credentials are never allowed");
    }
    let (status, headers) = get(&server, "/api/documents", CHAT_APP).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "access-control-allow-origin"), Some(CHAT_APP));
    assert_eq!(header(&headers, "access-control-allow-credentials"), None);
    assert!(header(&headers, "vary").unwrap().to_lowercase().contains("origin"), "caches keep answers per origin");
    server.shutdown().await;
}

#[actix_web::test]
async fn another_origin_gets_no_cors_header_at_all() {
    let env = TestEnv::new();
    let server = server(&env, &[CHAT_APP]).await;
    let (status, headers) = preflight(&server, "/api/documents/upload", OTHER, "POST").await;
    assert_ne!(status, 200, "the preflight of an unlisted origin fails");
    assert!(no_cors_headers(&headers), "{headers:?}");
    // A request its browser sends anyway is answered (curl has no origin to trust),
    // but without the headers the browser needs to hand the answer to the page.
    let (status, headers) = get(&server, "/api/documents", OTHER).await;
    assert_eq!(status, 200);
    assert!(no_cors_headers(&headers), "{headers:?}");
    server.shutdown().await;
}

#[actix_web::test]
async fn a_refused_preflight_says_why_in_the_json_error_body() {
    let env = TestEnv::new();
    let server = server(&env, &[CHAT_APP]).await;
    for (path, origin, method) in [
        ("/api/documents/upload", OTHER, "POST"),
        ("/api/ws-ticket", OTHER, "POST"),
        ("/api/admin/queue/status", OTHER, "GET"),
        ("/api/documents", CHAT_APP, "PATCH"),
    ] {
        let (status, headers, body) = preflight_with_body(&server, path, origin, method).await;
        assert_eq!(status, 400, "preflight of {method} {path} from {origin}");
        assert_eq!(header(&headers, "content-type"), Some("application/json"), "{body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().starts_with("CORS: "), "{body}");
        assert!(no_cors_headers(&headers), "{headers:?}");
    }
    server.shutdown().await;
}

#[actix_web::test]
async fn by_default_no_origin_is_allowed() {
    let env = TestEnv::new();
    let server = server(&env, &[]).await;
    let (status, headers) = preflight(&server, "/api/documents/upload", CHAT_APP, "POST").await;
    assert_ne!(status, 200);
    assert!(no_cors_headers(&headers), "{headers:?}");
    let (_, headers) = get(&server, "/api/documents", CHAT_APP).await;
    assert!(no_cors_headers(&headers), "{headers:?}");
    server.shutdown().await;
}

#[test]
fn an_origin_with_a_path_or_a_wildcard_stops_start_up_naming_the_key() {
    for bad in ["http://chat.example.test/", "*", "chat.example.test", "https://chat.example.test/app"] {
        let overrides = json!({ "server": { "cors_allowed_origins": [bad] } });
        let err = docqueue::config::Config::from_overrides(overrides).err().unwrap_or_else(|| panic!("{bad} accepted"));
        assert!(err.to_string().contains("server.cors_allowed_origins"), "{err}");
    }
}
