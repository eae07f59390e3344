//! The `docqueue` binary: subcommands, configuration from files and the environment,
//! and start-up refusals that name the bad key.

mod common;

use std::process::{Command, Output};

use common::TestEnv;

fn docqueue(args: &[&str], env: &[(String, String)]) -> Output {
    let dir = std::env::temp_dir().join("docqueue-cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    Command::new(env!("CARGO_BIN_EXE_docqueue"))
        .args(args)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_subcommand_has_help() {
    for args in [vec!["--help"], vec!["serve", "--help"], vec!["migrate", "--help"], vec!["token", "--help"]] {
        let out = docqueue(&args, &[]);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage"), "{args:?}");
    }
    assert!(text(&docqueue(&["serve", "--help"], &[]).stdout).contains("--role"));
}

#[test]
fn token_prints_a_jwt_signed_with_the_configured_secret() {
    let env = vec![("DOCQUEUE_AUTH__JWT_SECRET".to_string(), common::SECRET.to_string())];
    let out = docqueue(&["token", "--user", "alice", "--admin", "--ttl", "2h"], &env);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let jwt = text(&out.stdout).trim().to_string();
    let keys = docqueue::auth::TokenKeys::from_config(&docqueue::config::AuthConfig {
        jwt_secret: common::SECRET.into(),
        dev_mode: false,
    })
    .unwrap();
    let claims = keys.verify(&jwt).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.role, docqueue::auth::Role::Admin);
    assert!(claims.exp > claims.iat + 7000 && claims.exp <= claims.iat + 7200);
}

#[test]
fn token_without_a_secret_is_refused() {
    let out = docqueue(&["token", "--user", "alice"], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("jwt_secret"));
}

#[test]
fn a_wrong_value_stops_start_up_naming_the_key() {
    let cases = [
        ("DOCQUEUE_SERVER__PORT", "not-a-port", "port"),
        ("DOC_WORKER_CONCURRENCY", "0", "document_queue.concurrency"),
        ("QUEUE_MAX_RETRIES", "-2", "retry_attempts"),
        ("DOCQUEUE_PROCESSING__MODE", "sideways", "mode"),
    ];
    for (name, value, key) in cases {
        let out = docqueue(&["migrate"], &[(name.to_string(), value.to_string())]);
        assert!(!out.status.success(), "{name}={value} accepted");
        let stderr = text(&out.stderr);
        assert!(stderr.to_lowercase().contains(key), "{name}={value}: {stderr}");
    }
}

#[test]
fn serve_refuses_to_start_without_a_secret_outside_dev_mode() {
    let env = TestEnv::new();
    let mut vars = env.env_vars();
    vars.retain(|(k, _)| k != "DOCQUEUE_AUTH__JWT_SECRET");
    vars.push(("DOCQUEUE_SERVER__PORT".into(), "0".into()));
    let out = docqueue(&["serve", "--role", "api"], &vars);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("jwt_secret"), "{}", text(&out.stderr));
}

#[test]
fn migrations_run_twice_without_error() {
    let env = TestEnv::new();
    let vars = env.env_vars();
    let first = docqueue(&["migrate"], &vars);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let all = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite")).unwrap().count();
    assert!(text(&first.stdout).contains(&format!("migrations applied: {all}")), "{}", text(&first.stdout));
    let second = docqueue(&["migrate"], &vars);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(text(&second.stdout).contains("migrations applied: 0"));
}

#[test]
fn config_file_and_legacy_environment_names_are_read() {
    let env = TestEnv::new();
    let file = env.dir.join("custom.toml");
    std::fs::write(&file, format!("[database]\nurl = \"{}\"\n", env.database_url.replace('\\', "/"))).unwrap();
    let out = docqueue(&["migrate", "--config", file.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let broken = env.dir.join("broken.toml");
    std::fs::write(&broken, "[storage]\nmax_upload_bytes = \"lots\"\n").unwrap();
    let out = docqueue(&["migrate", "--config", broken.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("max_upload_bytes"), "{}", text(&out.stderr));
}

#[test]
fn migrate_backfills_rows_from_before_the_queue() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let env = TestEnv::new();
    // A database as the synchronous pipeline left it: only the first migration applied.
    let engine = if common::uses_postgres() { "postgres" } else { "sqlite" };
    let first = std::fs::read_to_string(format!(
        "{}/migrations/{engine}/2026-11-01-000000_create_documents/up.sql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let legacy = format!(
        "{first}
         CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20261101000000');
         INSERT INTO documents VALUES ('01JOLDPROCESSED00000000000', 'alice', 'done.pdf', 'application/pdf', 10, 'x', 'documents/a', 4, '2026-01-01 00:00:00');
         INSERT INTO documents VALUES ('01JOLDNEVERPROCESSED000000', 'alice', 'todo.pdf', 'application/pdf', 10, 'x', 'documents/b', 0, '2026-01-01 00:00:00');"
    );
    if common::uses_postgres() {
        diesel::PgConnection::establish(&env.database_url).unwrap().batch_execute(&legacy).unwrap();
    } else {
        diesel::SqliteConnection::establish(&env.database_url).unwrap().batch_execute(&legacy).unwrap();
    }

    let out = docqueue(&["migrate"], &env.env_vars());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let db = docqueue::db::Db::connect(&docqueue::config::DatabaseConfig {
        url: env.database_url.clone(),
        pool_size: 1,
        sqlite_busy_timeout_ms: 1000,
    })
    .unwrap();
    let row = |id: &'static str| db.run_blocking(move |c| docqueue::db::documents::find(c, id)).unwrap().unwrap();
    let (done, todo) = (row("01JOLDPROCESSED00000000000"), row("01JOLDNEVERPROCESSED000000"));
    assert_eq!((done.queue_status.as_str(), done.progress), ("completed", 100));
    assert_eq!(todo.queue_status, "queued", "left for the reconciler to enqueue");
    assert_eq!(done.job_id.len(), 26, "a ULID job id");
    assert_ne!(done.job_id, todo.job_id);
}

#[test]
fn serve_without_a_secret_on_a_public_address_refuses_to_start_naming_the_key() {
    let env = TestEnv::new();
    let mut vars = env.env_vars();
    vars.retain(|(k, _)| {
        k != "DOCQUEUE_AUTH__JWT_SECRET" && k != "DOCQUEUE_AUTH__DEV_MODE" && k != "DOCQUEUE_SERVER__HOST"
    });
    vars.push(("DOCQUEUE_SERVER__HOST".into(), "0.0.0.0".into()));
    vars.push(("DOCQUEUE_SERVER__PORT".into(), "0".into()));
    let out = docqueue(&["serve", "--role", "api"], &vars);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("auth.dev_mode") && stderr.contains("loopback") && stderr.contains("0.0.0.0"), "{stderr}");
    assert!(!stderr.contains("demo user token"), "no token may be made: {stderr}");
}

#[test]
fn a_secret_shorter_than_32_bytes_is_refused_by_serve_and_token() {
    let env = TestEnv::new();
    let mut vars = env.env_vars();
    vars.retain(|(k, _)| k != "DOCQUEUE_AUTH__JWT_SECRET");
    vars.push(("DOCQUEUE_AUTH__JWT_SECRET".into(), "0123456789".into()));
    vars.push(("DOCQUEUE_SERVER__PORT".into(), "0".into()));
    for args in [vec!["serve", "--role", "api"], vec!["token", "--user", "alice"]] {
        let out = docqueue(&args, &vars);
        assert!(!out.status.success(), "{args:?} accepted a 10-byte secret");
        let stderr = text(&out.stderr);
        assert!(stderr.contains("auth.jwt_secret is 10 bytes long") && stderr.contains("32"), "{args:?}: {stderr}");
    }
}
