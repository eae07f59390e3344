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

/// Every path `serve`d in src/web: the top-level paths and scopes of web/mod.rs, the
/// admin API's paths and the dashboard's, read from the source.
fn served_paths() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut paths = BTreeSet::new();
    for (file, mut prefix) in [
        ("mod.rs", String::new()),
        ("admin/api.rs", "/api/admin".to_string()),
        ("admin/dashboard.rs", "/admin".to_string()),
    ] {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        // In source order: a scope sets the prefix of the paths served after it.
        let mut rest = source.as_str();
        while let Some(at) = rest.find("serve(").into_iter().chain(rest.find("web::scope(")).min() {
            let is_scope = rest[at..].starts_with("web::scope(");
            rest = &rest[at + rest[at..].find('(').unwrap() + 1..];
            let Some(quoted) = rest.trim_start().strip_prefix('"') else { continue };
            let name = quoted.split('"').next().unwrap();
            if is_scope {
                prefix = name.to_string();
            } else {
                paths.insert(format!("{prefix}{name}"));
            }
        }
    }
    paths
}

/// (method, path) of every route the server has: each served path asked with a method
/// no route serves answers 405 with the methods it does serve in `Allow`.
async fn registered_routes(server: &TestServer) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for path in served_paths() {
        let url = server.url(&path.replace("{id}", "no-such-id").replace("{job_id}", "no-such-job"));
        let response = server.client.patch(url).send().await.unwrap();
        assert_eq!(response.status(), 405, "PATCH {path}");
        let allow = response.headers().get("allow").unwrap().to_str().unwrap().to_string();
        for method in allow.split(", ") {
            routes.insert((method.to_lowercase(), path.clone()));
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
    let env = TestEnv::new();
    let server = TestServer::start(env.config(json!({})), Role::Api).await;
    let registered = registered_routes(&server).await;
    assert!(registered.len() >= 20, "routes read from src/web: {registered:?}");
    assert!(registered.contains(&("get".into(), "/admin/login".into())), "the dashboard's routes: {registered:?}");
    for (method, path) in &registered {
        // The dashboard is described by its entry, GET /admin: the rest are its pages
        // and forms, for a browser.
        if path.starts_with("/admin/") {
            continue;
        }
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not described");
    }

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
