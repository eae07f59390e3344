//! Queries on `documents`. Every query a user reaches filters on `user_id`; the
//! worker-side updates filter on `job_id` too, so a stale job never rewrites a row
//! that has moved on (re-enqueued, deleted, cancelled).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::cached::cached;
use super::models::{now, Document};
use super::schema::{document_chunks, documents, job_attempts};
use super::{write_transaction, DbConnection, DbError};
use crate::job_state::JobState;

type OwnedUnfinished<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<documents::table, diesel::dsl::Eq<documents::id, &'a str>>,
        diesel::dsl::Eq<documents::job_id, &'a str>,
    >,
    diesel::dsl::EqAny<documents::queue_status, [&'static str; 2]>,
>;

/// The row while the job `job_id` still speaks for it and it is unfinished. Every
/// worker-side transition updates through this filter: a row that was re-enqueued,
/// deleted or ended (cancelled, failed) never changes again.
fn owned_unfinished<'a>(id: &'a str, job_id: &'a str) -> OwnedUnfinished<'a> {
    documents::table.filter(documents::id.eq(id)).filter(documents::job_id.eq(job_id)).filter(unfinished())
}

fn unfinished() -> diesel::dsl::EqAny<documents::queue_status, [&'static str; 2]> {
    documents::queue_status.eq_any(JobState::UNFINISHED.map(JobState::as_str))
}

/// Inserts rows as they are, with no limit (benchmarks; uploads go through
/// `insert_within_limit`).
pub fn insert_all(conn: &mut DbConnection, rows: &[Document]) -> Result<(), DbError> {
    write_transaction(conn, |conn| insert_rows(conn, rows))
}

fn insert_rows(conn: &mut DbConnection, rows: &[Document]) -> Result<(), DbError> {
    for row in rows {
        diesel::insert_into(documents::table).values(row.clone()).execute(conn)?;
    }
    Ok(())
}

/// Why a user's new rows were not inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// They would take the user past `max_unfinished` documents queued or processing.
    Unfinished,
    /// Their files would take the user's stored bytes past `max_bytes`; holds how many
    /// the user's documents take.
    StoredBytes(i64),
}

/// Inserts a user's new rows unless they would take the user past `max_unfinished`
/// documents queued or processing, or past `max_bytes` of stored files; then nothing
/// is inserted. The checks and the insert are one step: concurrent uploads of one user
/// wait for each other (a per-user advisory lock on PostgreSQL, the write lock on
/// SQLite).
pub fn insert_within_limit(
    conn: &mut DbConnection,
    user_id: &str,
    rows: &[Document],
    max_unfinished: i64,
    max_bytes: i64,
) -> Result<Result<(), OverLimit>, DbError> {
    write_transaction(conn, |conn| {
        if let DbConnection::Postgresql(pg) = conn {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind::<diesel::sql_types::Text, _>(user_id)
                .execute(pg)?;
        }
        let unfinished = count_unfinished_for_user(conn, user_id)?;
        if unfinished + rows.len() as i64 > max_unfinished {
            return Ok(Err(OverLimit::Unfinished));
        }
        let stored = stored_bytes_for_user(conn, user_id)?;
        if stored + rows.iter().map(|row| row.size_bytes).sum::<i64>() > max_bytes {
            return Ok(Err(OverLimit::StoredBytes(stored)));
        }
        insert_rows(conn, rows).map(Ok)
    })
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Document>, DbError> {
    Ok(documents::table.find(id).select(Document::as_select()).first(conn).optional()?)
}

/// A completed document with the same content (`sha256`), processed with the same
/// settings, other than `except`: the oldest, so every later twin copies the same one.
/// `owner` limits the search to one user's documents (None: everyone's).
pub fn find_completed_twin(
    conn: &mut DbConnection,
    owner: Option<&str>,
    sha256: &str,
    settings_fingerprint: &str,
    except: &str,
) -> Result<Option<String>, DbError> {
    let mut query = documents::table
        .filter(documents::sha256.eq(sha256))
        .filter(documents::settings_fingerprint.eq(settings_fingerprint))
        .filter(documents::queue_status.eq(JobState::Completed.as_str()))
        .filter(documents::id.ne(except))
        .select(documents::id)
        .order((documents::finished_at.asc(), documents::id.asc()))
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(documents::user_id.eq(owner));
    }
    Ok(query.first(conn).optional()?)
}

/// The document's state and its current job's id; None when it does not exist.
pub fn state_and_job_of(conn: &mut DbConnection, id: &str) -> Result<Option<(JobState, String)>, DbError> {
    let row: Option<(String, String)> =
        documents::table.find(id).select((documents::queue_status, documents::job_id)).first(conn).optional()?;
    Ok(row.and_then(|(state, job_id)| Some((JobState::parse(&state).ok()?, job_id))))
}

pub fn find_for_user(conn: &mut DbConnection, user_id: &str, id: &str) -> Result<Option<Document>, DbError> {
    Ok(documents::table
        .filter(documents::id.eq(id))
        .filter(documents::user_id.eq(user_id))
        .select(Document::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_job(conn: &mut DbConnection, job_id: &str) -> Result<Option<Document>, DbError> {
    Ok(documents::table.filter(documents::job_id.eq(job_id)).select(Document::as_select()).first(conn).optional()?)
}

/// A page of the caller's documents, newest first; `before` is the last id of the
/// previous page (ULIDs sort by creation time).
pub fn list_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    status: Option<JobState>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<Document>, DbError> {
    let mut query = documents::table
        .filter(documents::user_id.eq(user_id))
        .select(Document::as_select())
        .order(documents::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(documents::queue_status.eq(status.as_str()));
    }
    if let Some(before) = before {
        query = query.filter(documents::id.lt(before.to_string()));
    }
    Ok(query.load(conn)?)
}

/// Deletes the caller's document and its chunks; returns the row so its file can go too.
pub fn delete_for_user(conn: &mut DbConnection, user_id: &str, id: &str) -> Result<Option<Document>, DbError> {
    write_transaction(conn, |conn| {
        let Some(doc) = find_for_user(conn, user_id, id)? else {
            return Ok(None);
        };
        diesel::delete(document_chunks::table.filter(document_chunks::document_id.eq(id))).execute(conn)?;
        diesel::delete(job_attempts::table.filter(job_attempts::document_id.eq(id))).execute(conn)?;
        diesel::delete(documents::table.find(id)).execute(conn)?;
        Ok(Some(doc))
    })
}

/// The worker took the job: the row says so and is returned as it now is, unless it
/// has moved on (then None). One statement: the row comes back with the UPDATE. It
/// comes back as `all_columns`, read by position: `Document::as_returning()` does not
/// pass through the two-backend connection (tests/database_contention.rs checks the
/// returned row against a read of it).
pub fn mark_processing(
    conn: &mut DbConnection,
    id: &str,
    job_id: &str,
    worker_id: &str,
    attempts: i32,
) -> Result<Option<Document>, DbError> {
    write_transaction(conn, |conn| {
        let updated = cached(
            diesel::update(owned_unfinished(id, job_id))
                .set((
                    documents::queue_status.eq(JobState::Processing.as_str()),
                    documents::worker_id.eq(worker_id),
                    documents::attempts.eq(attempts),
                    documents::progress.eq(0),
                    documents::stage.eq(None::<String>),
                    documents::started_at.eq(now()),
                    documents::finished_at.eq(None::<NaiveDateTime>),
                ))
                .returning(documents::all_columns),
        )
        .get_result(conn)
        .optional()?;
        Ok(updated)
    })
}

pub fn update_progress(
    conn: &mut DbConnection,
    id: &str,
    job_id: &str,
    progress: i32,
    stage: &str,
) -> Result<(), DbError> {
    write_transaction(conn, |conn| {
        cached(
            diesel::update(
                documents::table
                    .filter(documents::id.eq(id))
                    .filter(documents::job_id.eq(job_id))
                    .filter(documents::queue_status.eq(JobState::Processing.as_str())),
            )
            .set((documents::progress.eq(progress), documents::stage.eq(stage))),
        )
        .execute(conn)?;
        Ok(())
    })
}

pub fn mark_completed(
    conn: &mut DbConnection,
    id: &str,
    job_id: &str,
    chunk_count: i32,
    warning: Option<&str>,
) -> Result<bool, DbError> {
    write_transaction(conn, |conn| {
        let updated = cached(diesel::update(owned_unfinished(id, job_id)).set((
            documents::queue_status.eq(JobState::Completed.as_str()),
            documents::chunk_count.eq(chunk_count),
            documents::warning.eq(warning),
            documents::progress.eq(100),
            documents::stage.eq(None::<String>),
            documents::error.eq(None::<String>),
            documents::finished_at.eq(now()),
        )))
        .execute(conn)?;
        Ok(updated == 1)
    })
}

/// Ends the document `failed` or `cancelled` (terminal), keeping the reason.
pub fn mark_ended(
    conn: &mut DbConnection,
    id: &str,
    job_id: &str,
    status: JobState,
    error: Option<&str>,
) -> Result<bool, DbError> {
    write_transaction(conn, |conn| {
        let updated = cached(diesel::update(owned_unfinished(id, job_id)).set((
            documents::queue_status.eq(status.as_str()),
            documents::error.eq(error),
            documents::stage.eq(None::<String>),
            documents::finished_at.eq(now()),
        )))
        .execute(conn)?;
        Ok(updated == 1)
    })
}

/// The run of `worker_id` numbered `attempt` went back to the queue (retry after a
/// transient failure, rescue of a stalled lease, hand-back at shutdown). `error` is
/// that run's, if any. The job may be running again already, claimed by another worker
/// the moment it was back in Redis: the row is left alone (false) unless it still shows
/// the run that ended.
pub fn mark_requeued(
    conn: &mut DbConnection,
    id: &str,
    job_id: &str,
    worker_id: &str,
    attempt: i32,
    error: Option<&str>,
) -> Result<bool, DbError> {
    write_transaction(conn, |conn| {
        let of_that_run = owned_unfinished(id, job_id)
            .filter(documents::worker_id.eq(worker_id))
            .filter(documents::attempts.eq(attempt));
        let updated = cached(diesel::update(of_that_run).set((
            documents::queue_status.eq(JobState::Queued.as_str()),
            documents::error.eq(error),
            documents::progress.eq(0),
            documents::stage.eq(None::<String>),
        )))
        .execute(conn)?;
        Ok(updated == 1)
    })
}

/// A terminal document sent round again (admin retry): new job id, fresh counters.
pub fn requeue_with_new_job(conn: &mut DbConnection, id: &str, new_job_id: &str) -> Result<bool, DbError> {
    write_transaction(conn, |conn| {
        let updated = cached(diesel::update(documents::table.filter(documents::id.eq(id))).set((
            documents::queue_status.eq(JobState::Queued.as_str()),
            documents::job_id.eq(new_job_id),
            documents::error.eq(None::<String>),
            documents::progress.eq(0),
            documents::stage.eq(None::<String>),
            documents::attempts.eq(0),
            documents::worker_id.eq(None::<String>),
            documents::queued_at.eq(now()),
            documents::started_at.eq(None::<NaiveDateTime>),
            documents::finished_at.eq(None::<NaiveDateTime>),
        )))
        .execute(conn)?;
        Ok(updated == 1)
    })
}

/// Job ids of documents in one status, oldest first (admin bulk actions).
pub fn job_ids_with_status(conn: &mut DbConnection, status: JobState, limit: i64) -> Result<Vec<String>, DbError> {
    Ok(documents::table
        .filter(documents::queue_status.eq(status.as_str()))
        .select(documents::job_id)
        .order(documents::id.asc())
        .limit(limit)
        .load(conn)?)
}

/// Unfinished documents in id order after `after`, a page at a time (reconciler).
pub fn list_unfinished(conn: &mut DbConnection, after: Option<&str>, limit: i64) -> Result<Vec<Document>, DbError> {
    let mut query = documents::table
        .filter(unfinished())
        .select(Document::as_select())
        .order(documents::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(documents::id.gt(after.to_string()));
    }
    Ok(query.load(conn)?)
}

/// The user's most recently finished documents (completed, failed or cancelled).
pub fn recently_finished_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    limit: i64,
) -> Result<Vec<Document>, DbError> {
    Ok(documents::table
        .filter(documents::user_id.eq(user_id))
        .filter(documents::queue_status.eq_any(JobState::TERMINAL.map(JobState::as_str)))
        .select(Document::as_select())
        .order((documents::finished_at.desc(), documents::id.desc()))
        .limit(limit)
        .into_boxed()
        .load(conn)?)
}

/// Queued documents of these users, oldest first (queue position announcements).
pub fn queued_for_users(conn: &mut DbConnection, user_ids: &[String], limit: i64) -> Result<Vec<Document>, DbError> {
    Ok(documents::table
        .filter(documents::user_id.eq_any(user_ids))
        .filter(documents::queue_status.eq(JobState::Queued.as_str()))
        .select(Document::as_select())
        .order(documents::id.asc())
        .limit(limit)
        .load(conn)?)
}

/// How many of the user's documents are queued or processing.
pub fn count_unfinished_for_user(conn: &mut DbConnection, user_id: &str) -> Result<i64, DbError> {
    Ok(documents::table.filter(documents::user_id.eq(user_id)).filter(unfinished()).count().get_result(conn)?)
}

/// The bytes of the user's stored files: every document's, whatever its status, as
/// each keeps its file until it is deleted.
pub fn stored_bytes_for_user(conn: &mut DbConnection, user_id: &str) -> Result<i64, DbError> {
    // Diesel types a sum of bigints as numeric; no user stores 2^63 bytes.
    let total: Option<i64> = documents::table
        .filter(documents::user_id.eq(user_id))
        .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>(
            "CAST(SUM(size_bytes) AS BIGINT)",
        ))
        .first(conn)?;
    Ok(total.unwrap_or(0))
}

/// Counts of the user's documents per status.
pub fn count_by_status_for_user(conn: &mut DbConnection, user_id: &str) -> Result<Vec<(String, i64)>, DbError> {
    use diesel::dsl::count_star;
    Ok(documents::table
        .filter(documents::user_id.eq(user_id))
        .group_by(documents::queue_status)
        .select((documents::queue_status, count_star()))
        .load(conn)?)
}

/// Rows from before the queue existed have no job id: give each one (a ULID).
pub fn backfill_job_ids(conn: &mut DbConnection) -> Result<usize, DbError> {
    write_transaction(conn, |conn| {
        let ids: Vec<String> = documents::table.filter(documents::job_id.eq("")).select(documents::id).load(conn)?;
        for id in &ids {
            diesel::update(documents::table.find(id))
                .set(documents::job_id.eq(ulid::Ulid::generate().to_string()))
                .execute(conn)?;
        }
        Ok(ids.len())
    })
}
