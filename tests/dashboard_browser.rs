//! The admin dashboard in a real browser (headless Chromium through chromedriver):
//! log in with an admin token, see a failed job, click Retry, watch it complete. And
//! the CSRF guard: a POST without the form's token is refused.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::processors::ScriptedProcessor;
use common::webdriver::Browser;
use common::{admin_token, token, TestEnv, TestServer};
use docqueue::app::Role;
use serde_json::json;

/// Screenshots land here (target/test-output/), for a person to look at.
fn output_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[actix_web::test]
async fn an_admin_logs_in_retries_a_failed_job_and_watches_it_complete() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::All, Arc::new(ScriptedProcessor::new())).await;
    let alice = token("alice");
    let doc = server.upload_one(&alice, "broken-invoice.txt", b"x".to_vec()).await;
    let id = doc["id"].as_str().unwrap();
    server.wait_for_status(&alice, id, "failed").await;
    let ok = server.upload_one(&alice, "fine-notes.txt", b"x".to_vec()).await;
    server.wait_for_status(&alice, ok["id"].as_str().unwrap(), "completed").await;

    let browser = Browser::start().await;
    browser.goto(&server.url("/admin")).await;
    assert!(browser.url().await.ends_with("/admin/login"), "the dashboard asks for a login first");
    browser.type_into("textarea[name=token]", &admin_token("ops")).await;
    browser.click("form[action='/admin/login'] button[type=submit]").await;
    let page = browser.wait_for_text("Queue overview", Duration::from_secs(10)).await;
    assert!(
        page.contains("broken-invoice.txt") && page.contains("the parser rejected the file (simulated)"),
        "the failed job and its reason"
    );
    std::fs::write(output_dir().join("dashboard-failed-job.png"), browser.screenshot_png().await).unwrap();

    let job_id = doc["job_id"].as_str().unwrap();
    browser.click(&format!("#failed-jobs tr[data-job-id='{job_id}'] button[type=submit]")).await;
    browser.wait_for_text("Retrying broken-invoice.txt", Duration::from_secs(10)).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        browser.goto(&server.url("/admin/jobs?q=broken-invoice")).await;
        if browser.source().await.contains("state completed") {
            break;
        }
        assert!(Instant::now() < deadline, "the retried job did not reach completed in the dashboard");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(server.document(&alice, id).await["queue_status"], "completed");
    browser.goto(&server.url("/admin")).await;
    std::fs::write(output_dir().join("dashboard.png"), browser.screenshot_png().await).unwrap();
    browser.quit().await;
    server.shutdown().await;
}

#[actix_web::test]
async fn a_dashboard_post_without_the_csrf_token_is_403_and_the_session_cookie_is_guarded() {
    let env = TestEnv::new();
    let server = TestServer::start_with(env.config(json!({})), Role::Api, Arc::new(ScriptedProcessor::new())).await;
    common::http_client();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client.post(server.url("/admin/login")).form(&[("token", admin_token("ops"))]).send().await.unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP keeps a cookie the browser can send back: {cookie}");
    let behind_tls = client
        .post(server.url("/admin/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", admin_token("ops"))])
        .send()
        .await
        .unwrap();
    let tls_cookie = behind_tls.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(tls_cookie.contains("Secure"), "over HTTPS the token never goes back over plain HTTP: {tls_cookie}");
    let session = cookie.split(';').next().unwrap().to_string();

    let page = client.get(server.url("/admin")).header("cookie", &session).send().await.unwrap().text().await.unwrap();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();

    let forged = client
        .post(server.url("/admin/actions/pause"))
        .header("cookie", &session)
        .form(&[("back", "/admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let wrong = client
        .post(server.url("/admin/actions/pause"))
        .header("cookie", &session)
        .form(&[("csrf", "0000")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let (_, status) = server.get_json(&admin_token("ops"), "/api/admin/queue/status").await;
    assert_eq!(status["paused"], false, "nothing happened");

    let genuine = client
        .post(server.url("/admin/actions/pause"))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str()), ("back", "/admin\n")])
        .send()
        .await
        .unwrap();
    assert_eq!(genuine.status(), 303, "a `back` no header can hold falls back to the overview");
    let location = genuine.headers().get("location").unwrap().to_str().unwrap();
    assert!(location.starts_with("/admin?flash="), "{location}");
    let (_, status) = server.get_json(&admin_token("ops"), "/api/admin/queue/status").await;
    assert_eq!(status["paused"], true);

    let user_login = client.post(server.url("/admin/login")).form(&[("token", token("alice"))]).send().await.unwrap();
    assert_eq!(user_login.status(), 403, "a user token does not open the dashboard");
    server.shutdown().await;
}
