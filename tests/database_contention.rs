//! Many writers at once on the default SQLite database: uploads, three workers'
//! row updates and chunk replacements all wait their turn for the write lock
//! (`BEGIN IMMEDIATE` plus `busy_timeout`) instead of failing with "database is locked".
//! The workers' writes share transactions (group commit), where one failing write rolls
//! back alone: the batch runs again without it. On PostgreSQL a batch of job starts
//! alone commits without waiting for the disk.

mod common;

use std::time::Duration;

use common::{migrated_db, queued_row, scrape, token, value, TestEnv, TestServer};
use diesel::{Connection, SqliteConnection};
use docqueue::app::Role;
use docqueue::db::models::Document;
use docqueue::db::{documents, Db, DbConnection, DbError};
use serde_json::json;

/// Starts a write that runs `first`, then holds the group-commit writer until the
/// returned sender is sent to: writes made meanwhile wait together behind it. Returns
/// once the writer is held, with the write's task.
async fn hold_the_writer(
    db: &Db,
    mut first: impl FnMut(&mut DbConnection) -> Result<(), DbError> + Send + 'static,
) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<Result<(), DbError>>) {
    let (started, has_started) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(move |conn| {
                first(conn)?;
                let _ = started.send(());
                let _ = released.recv();
                Ok(())
            })
            .await
        }
    });
    tokio::task::spawn_blocking(move || has_started.recv()).await.unwrap().unwrap();
    (release, holder)
}

#[actix_web::test]
async fn writes_waiting_together_commit_in_one_transaction_where_a_failing_one_rolls_back_alone() {
    let env = TestEnv::new();
    // A pool of 4 gives PostgreSQL one group-commit thread too, so the batches are certain.
    let db = migrated_db(&env, json!({ "database": { "pool_size": 4 } }));
    let (before_transactions, before_writes) = db.group_commit_counts();

    // The first write holds the writer until the other 59 are waiting behind it.
    let (release, first) = hold_the_writer(&db, |conn| documents::insert_all(conn, &[queued_row("doc-first")])).await;
    let writes: Vec<_> = (1..60)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |conn| {
                    documents::insert_all(conn, &[queued_row(&format!("doc-{i:02}"))])?;
                    // Every seventh write fails after its insert: only its insert is undone.
                    if i % 7 == 0 {
                        return Err(DbError::Task(format!("write {i} gives up")));
                    }
                    Ok(i)
                })
                .await
            })
        })
        .collect();
    // Each spawned task is polled once (and so hands its write over) before this one runs on.
    tokio::task::yield_now().await;
    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    for (i, write) in (1..60).zip(writes) {
        match write.await.unwrap() {
            Ok(value) => assert_eq!(value, i),
            Err(err) => assert!(i % 7 == 0 && err.to_string().contains("gives up"), "write {i}: {err}"),
        }
    }

    let (transactions, writes) = db.group_commit_counts();
    assert_eq!(
        (transactions - before_transactions, writes - before_writes),
        (10, 60),
        "the first write alone, then the 59 that waited behind it together, once more for each of the 8 that failed"
    );
    let stored = db
        .run(|conn| {
            (1..60)
                .map(|i| documents::find(conn, &format!("doc-{i:02}")).map(|row| row.is_some()))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
    for (i, stored) in (1..60).zip(stored) {
        assert_eq!(stored, i % 7 != 0, "doc-{i:02}: stored unless its write failed");
    }
}

#[actix_web::test]
async fn twelve_concurrent_uploaders_of_twenty_files_never_see_a_locked_database() {
    let env = TestEnv::new();
    let config = env.config(json!({ "document_queue": { "concurrency": 3 } }));
    let server = TestServer::start(config, Role::All).await;
    let uploads = (0..12).map(|user| {
        let server = &server;
        async move {
            let user = token(&format!("user-{user}"));
            let mut ids = Vec::new();
            for file in 0..20 {
                let text = format!("# Note {file} of user {user}\n\nA short note with a few sentences.\n").repeat(20);
                let response = server.upload(&user, &[(&format!("note-{file}.md"), text.into_bytes())], None).await;
                assert_eq!(response.status(), 202);
                let body: serde_json::Value = response.json().await.unwrap();
                ids.push(body["documents"][0]["id"].as_str().unwrap().to_string());
            }
            (user, ids)
        }
    });
    let uploaded = futures_util::future::join_all(uploads).await;
    for (user, ids) in uploaded {
        for id in ids {
            let doc = server
                .wait_for(&user, &id, Duration::from_secs(120), |d| {
                    d["queue_status"] != "queued" && d["queue_status"] != "processing"
                })
                .await;
            assert_eq!(doc["queue_status"], "completed", "{doc}");
            assert_eq!(doc["attempts"], 1, "a document was retried: {doc}");
        }
    }
    let metrics = scrape(&server).await;
    assert_eq!(value(&metrics, "docqueue_jobs_total", Some(("outcome", "completed"))), 240.0);
    assert_eq!(value(&metrics, "docqueue_jobs_total", Some(("outcome", "retried"))), 0.0, "no job was retried");
    server.shutdown().await;
}

/// Rows committed on SQLite reach the database file itself within about a second,
/// with the writers' own checkpoints far off (8,192 log pages): the checkpoint thread
/// copied them, not a commit that made the writers behind it wait.
#[actix_web::test]
async fn sqlite_commits_reach_the_database_file_through_the_background_checkpoint() {
    if common::uses_postgres() {
        return;
    }
    let env = TestEnv::new();
    let db = migrated_db(&env, json!({}));
    db.write(|conn| documents::insert_all(conn, &[queued_row("doc-checkpointed")])).await.unwrap();

    // The database file alone, copied while the pool stays open (closing the last
    // connection would checkpoint too): a copy without its log holds only what a
    // checkpoint has copied back.
    let copied_rows = |attempt: u32| {
        let copy = env.dir.join(format!("copy-{attempt}.sqlite3"));
        std::fs::copy(&env.database_url, &copy).unwrap();
        let mut conn = DbConnection::Sqlite(SqliteConnection::establish(copy.to_str().unwrap()).unwrap());
        // Before the first checkpoint the file does not even hold the tables.
        matches!(documents::find(&mut conn, "doc-checkpointed"), Ok(Some(_)))
    };
    let started = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        if copied_rows(attempt) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the committed row never reached the database file");
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("in the database file after {:?}", started.elapsed());
    drop(db);
}

/// A burst that grows SQLite's log file past its limit (one 40 MB transaction) leaves
/// no more than 32 MB of it on disk once a checkpoint has emptied it.
#[actix_web::test]
async fn sqlite_log_file_is_cut_back_after_a_burst() {
    if common::uses_postgres() {
        return;
    }
    let env = TestEnv::new();
    let db = migrated_db(&env, json!({}));
    db.write(|conn| {
        let rows: Vec<Document> = (0..40)
            .map(|i| {
                let mut row = queued_row(&format!("doc-big-{i}"));
                row.filename = "x".repeat(1024 * 1024);
                row
            })
            .collect();
        documents::insert_all(conn, &rows)
    })
    .await
    .unwrap();
    let log = std::path::PathBuf::from(format!("{}-wal", env.database_url));
    let peak = std::fs::metadata(&log).unwrap().len();
    assert!(peak > 40 * 1024 * 1024, "the burst grew the log to {peak} bytes");

    // A write after the log was emptied starts it again from the beginning, and cuts
    // the file back.
    let limit = 32 * 1024 * 1024;
    let started = std::time::Instant::now();
    let mut i = 0;
    loop {
        i += 1;
        db.write(move |conn| documents::insert_all(conn, &[queued_row(&format!("doc-small-{i}"))])).await.unwrap();
        let size = std::fs::metadata(&log).unwrap().len();
        if size <= limit {
            println!("log file {peak} → {size} bytes after {:?}", started.elapsed());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the log file stayed at {size} bytes");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `synchronous_commit` a write's transaction commits with, as the write sees it;
/// SQLite has no such setting (its commits never wait for the disk in WAL mode).
fn synchronous_commit(conn: &mut DbConnection) -> Result<String, DbError> {
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    match conn {
        DbConnection::Postgresql(pg) => {
            use diesel::RunQueryDsl;
            let setting: Setting =
                diesel::sql_query("SELECT current_setting('synchronous_commit') AS value").get_result(pg)?;
            Ok(setting.value)
        }
        DbConnection::Sqlite(_) => Ok("sqlite".into()),
    }
}

#[actix_web::test]
async fn job_starts_commit_without_waiting_for_the_disk_unless_a_durable_write_shares_their_batch() {
    let env = TestEnv::new();
    let db = migrated_db(&env, json!({ "database": { "pool_size": 4 } }));
    let (on, off) = if common::uses_postgres() { ("on", "off") } else { ("sqlite", "sqlite") };
    assert_eq!(db.write_async_commit(synchronous_commit).await.unwrap(), off, "an asynchronous write alone");
    assert_eq!(db.write(synchronous_commit).await.unwrap(), on, "a durable write alone");

    // Two writes that wait together behind a held one share a batch.
    for (first_is_durable, expected) in [(false, off), (true, on)] {
        let (release, holder) = hold_the_writer(&db, |_| Ok(())).await;
        let first = tokio::spawn({
            let db = db.clone();
            async move {
                match first_is_durable {
                    true => db.write(synchronous_commit).await,
                    false => db.write_async_commit(synchronous_commit).await,
                }
            }
        });
        let second = tokio::spawn({
            let db = db.clone();
            async move { db.write_async_commit(synchronous_commit).await }
        });
        tokio::task::yield_now().await;
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert_eq!(first.await.unwrap().unwrap(), expected, "first write, durable: {first_is_durable}");
        assert_eq!(second.await.unwrap().unwrap(), expected, "second write, beside a durable one: {first_is_durable}");
    }
}

/// A job's start is one statement (`UPDATE … RETURNING`): the row it returns must be
/// the row as stored, column for column, and a row that moved on returns nothing.
#[actix_web::test]
async fn a_job_start_returns_the_row_as_stored_and_nothing_once_the_row_moved_on() {
    let env = TestEnv::new();
    let db = migrated_db(&env, json!({}));
    let row = queued_row("doc-started");
    let (id, job) = (row.id.clone(), row.job_id.clone());
    let (started, stored, moved_on) = db
        .write(move |conn| {
            documents::insert_all(conn, std::slice::from_ref(&row))?;
            let started = documents::mark_processing(conn, &id, &job, "host:1:0", 3)?;
            let stored = documents::find(conn, &id)?;
            documents::mark_completed(conn, &id, &job, 2, None)?;
            let moved_on = documents::mark_processing(conn, &id, &job, "host:1:1", 4)?;
            Ok((started, stored, moved_on))
        })
        .await
        .unwrap();
    let (started, stored) = (started.expect("the queued row starts"), stored.unwrap());
    assert_eq!(format!("{started:?}"), format!("{stored:?}"));
    assert_eq!(
        (started.queue_status.as_str(), started.worker_id.as_deref(), started.attempts),
        ("processing", Some("host:1:0"), 3)
    );
    assert!(moved_on.is_none(), "a completed row does not start again");
}
