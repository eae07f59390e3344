//! The OpenAPI description: generated from the code, served at /api/openapi.json, kept
//! in docs/openapi.json, and true to the routes the server really has.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{admin_token, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::{json, Value};

fn committed() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// (method, path) of every route registered in src/web: the top-level routes and
/// scopes of web/mod.rs and the admin API's routes, read from the source.
fn registered_routes() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut routes = BTreeSet::new();
    for (file, mut prefix) in [("mod.rs", String::new()), ("admin/api.rs", "/api/admin".to_string())] {
        for line in std::fs::read_to_string(root.join(file)).unwrap().lines() {
            let quoted = |marker: &str| line.split(marker).nth(1).and_then(|rest| rest.split('"').next());
            if let Some(scope) = quoted("web::scope(\"") {
                prefix = scope.to_string();
            }
            // The method is the first `web::` after `.route(`: a scope and its one route
            // may share a line.
            let method = line.split(".route(\"").nth(1).and_then(|route| route.split("web::").nth(1));
            if let (Some(path), Some(method)) = (quoted(".route(\""), method) {
                let method = method.split("()").next().unwrap().to_string();
                routes.insert((method, format!("{prefix}{path}")));
            }
        }
    }
    routes
}

#[actix_web::test]
async fn the_served_description_is_openapi_3_1_and_the_committed_copy() {
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let response = server.client.get(server.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let served: Value = response.json().await.unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    assert!(
        served == committed(),
        "docs/openapi.json is out of date: regenerate it with `cargo run -q -- openapi > docs/openapi.json`"
    );
    for frame in ["Snapshot", "Event", "ControlFrame", "ClientFrame", "ErrorBody"] {
        assert!(served["components"]["schemas"][frame].is_object(), "the {frame} schema is described");
    }
    assert_eq!(served["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    server.shutdown().await;
}

#[actix_web::test]
async fn every_route_is_described_and_every_described_route_exists() {
    let description = committed();
    let paths = description["paths"].as_object().unwrap();
    let registered = registered_routes();
    assert!(registered.len() >= 20, "routes read from src/web: {registered:?}");
    for (method, path) in &registered {
        if path == "/api/openapi.json" {
            continue;
        }
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not described");
    }

    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            assert!(registered.contains(&(method.clone(), path.clone())), "{method} {path} is described, not routed");
            let url = server.url(&path.replace("{id}", "no-such-id").replace("{job_id}", "no-such-job"));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response =
                server.client.request(method.clone(), url).bearer_auth(admin_token("ops")).send().await.unwrap();
            let body = response.text().await.unwrap();
            assert!(!body.contains("no such route"), "{method} {path} is described but the server has no such route");
        }
    }
    server.shutdown().await;
}
