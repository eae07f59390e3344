//! A job deferred until another job ends (an identical document in flight) waits in
//! the queue, not in a worker: the other job's end puts it back at once, whether that
//! job completed, failed for good, went back to retry or was cancelled; through the
//! other job's rescue it keeps waiting; a fallback bounds the wait should a wake be
//! missed; the deferral is not counted as a try. An API-only
//! server has no workers or maintenance, so only the test moves jobs.

mod common;

use std::time::Duration;

use common::{text_job, TestEnv, TestServer};
use docqueue::app::Role;
use docqueue::job_state::JobState;
use docqueue::queue::{ClaimedJob, DedicatedConnection, JobRecord, Queue, RetryDecision};
use redis::Commands;
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(600);

async fn record(queue: &Queue, id: &str) -> JobRecord {
    queue.job_records(&[id.to_string()]).await.unwrap().pop().expect("the job's record")
}

/// Claims the next job, which must be `id`.
async fn claim(queue: &Queue, conn: &mut DedicatedConnection, id: &str) -> ClaimedJob {
    let job = queue.claim(conn, "test-worker").await.unwrap().expect("a job to claim");
    assert_eq!(job.job_id, id);
    job
}

/// An API-only server (no workers, no maintenance) with two jobs claimed: alice's
/// `holder`, then bob's `twin`.
async fn holder_and_twin(env: &TestEnv, config: Value) -> (TestServer, DedicatedConnection, ClaimedJob, ClaimedJob) {
    let server = TestServer::start(env.config(config), Role::Api).await;
    let queue = &server.app().queue;
    let mut conn = queue.dedicated_connection().await.unwrap();
    queue.enqueue(&[text_job("holder", "alice"), text_job("twin", "bob")]).await.unwrap();
    let holder = claim(queue, &mut conn, "holder").await;
    let twin = claim(queue, &mut conn, "twin").await;
    (server, conn, holder, twin)
}

#[actix_web::test]
async fn a_deferred_job_waits_again_when_the_job_it_waits_for_completes() {
    let env = TestEnv::new();
    let (server, mut conn, holder, twin) = holder_and_twin(&env, json!({})).await;
    let queue = &server.app().queue;

    assert!(queue.defer(&twin, "holder", LONG).await.unwrap());
    let deferred = record(queue, "twin").await;
    assert_eq!(deferred.state, JobState::Delayed);
    assert_eq!(deferred.attempts, 0, "the deferred claim does not count");
    assert!(queue.claim(&mut conn, "test-worker").await.unwrap().is_none(), "nothing waits meanwhile");
    assert!(!queue.defer(&twin, "holder", LONG).await.unwrap(), "a token that no longer owns the job");

    let (accepted, _) = queue.end_job_and_claim(&holder, JobState::Completed, "", None).await.unwrap();
    assert!(accepted);
    assert_eq!(record(queue, "twin").await.state, JobState::Queued);
    let again = claim(queue, &mut conn, "twin").await;
    assert_eq!(again.attempts, 1);
    server.shutdown().await;
}

#[actix_web::test]
async fn a_deferred_job_waits_again_when_the_job_it_waits_for_fails_or_goes_back_to_retry() {
    let env = TestEnv::new();
    let (server, mut conn, holder, twin) =
        holder_and_twin(&env, json!({ "document_queue": { "retry_attempts": 1 } })).await;
    let queue = &server.app().queue;

    // A transient failure: the holder will retry, its twin runs now.
    assert!(queue.defer(&twin, "holder", LONG).await.unwrap());
    assert!(matches!(queue.retry_or_fail(&holder, "outage").await.unwrap(), RetryDecision::Retrying { .. }));
    assert_eq!(record(queue, "twin").await.state, JobState::Queued);

    // Failed for good, after its retry.
    let twin = claim(queue, &mut conn, "twin").await;
    let mut redis = env.redis();
    let _: () = redis.zadd(format!("{}delayed", env.redis_prefix), "holder", 0).unwrap();
    assert_eq!(queue.promote_delayed().await.unwrap(), 1);
    let holder = claim(queue, &mut conn, "holder").await;
    assert!(queue.defer(&twin, "holder", LONG).await.unwrap());
    assert!(matches!(queue.retry_or_fail(&holder, "outage").await.unwrap(), RetryDecision::Failed { .. }));
    assert_eq!(record(queue, "holder").await.state, JobState::Failed);
    assert_eq!(record(queue, "twin").await.state, JobState::Queued);
    server.shutdown().await;
}

#[actix_web::test]
async fn a_deferral_is_bounded_by_its_fallback_and_short_when_the_other_job_has_ended() {
    let env = TestEnv::new();
    let (server, mut conn, holder, twin) = holder_and_twin(&env, json!({})).await;
    let queue = &server.app().queue;

    // The holder never ends (its process died, say): the fallback brings the twin back.
    assert!(queue.defer(&twin, "holder", Duration::from_millis(300)).await.unwrap());
    assert_eq!(queue.promote_delayed().await.unwrap(), 0, "not due yet");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(queue.promote_delayed().await.unwrap(), 1);
    let twin = claim(queue, &mut conn, "twin").await;

    // Deferred on a job that has ended already: only until its row says so.
    assert!(queue.end_job_and_claim(&holder, JobState::Completed, "", None).await.unwrap().0);
    let before = chrono::Utc::now().timestamp_millis();
    assert!(queue.defer(&twin, "holder", LONG).await.unwrap());
    let retry_at = record(queue, "twin").await.retry_at_ms.expect("a time to wait again");
    assert!(retry_at - before <= 1_000, "waits {} ms", retry_at - before);
    server.shutdown().await;
}

#[actix_web::test]
async fn a_deferred_job_can_be_cancelled_and_the_end_it_waited_for_leaves_it_cancelled() {
    let env = TestEnv::new();
    let (server, mut conn, holder, twin) = holder_and_twin(&env, json!({})).await;
    let queue = &server.app().queue;
    assert!(queue.defer(&twin, "holder", LONG).await.unwrap());

    queue.cancel("twin").await.unwrap();
    assert_eq!(record(queue, "twin").await.state, JobState::Cancelled);
    assert!(queue.end_job_and_claim(&holder, JobState::Completed, "", None).await.unwrap().0);
    assert_eq!(record(queue, "twin").await.state, JobState::Cancelled);
    assert!(queue.claim(&mut conn, "test-worker").await.unwrap().is_none());
    server.shutdown().await;
}

#[actix_web::test]
async fn a_deferred_job_keeps_waiting_through_a_rescue_and_wakes_when_the_rescued_job_ends() {
    let env = TestEnv::new();
    let (server, mut conn, holder, twin) =
        holder_and_twin(&env, json!({ "document_queue": { "max_stalls": 1 } })).await;
    let queue = &server.app().queue;
    let mut redis = env.redis();
    let expire_lease = |redis: &mut redis::Connection| {
        let _: () = redis.zadd(format!("{}active", env.redis_prefix), "holder", 0).unwrap();
    };
    assert!(queue.defer(&twin, "holder", LONG).await.unwrap());

    // The holder's worker died: rescued, it waits to run again, and so does its twin.
    expire_lease(&mut redis);
    assert_eq!(queue.rescue_stalled().await.unwrap().len(), 1);
    assert_eq!(record(queue, "holder").await.state, JobState::Queued);
    assert_eq!(record(queue, "twin").await.state, JobState::Delayed);
    drop(holder);

    // Its second run stalls too, beyond max_stalls: it fails, and the twin runs.
    claim(queue, &mut conn, "holder").await;
    expire_lease(&mut redis);
    assert_eq!(queue.rescue_stalled().await.unwrap().len(), 1);
    assert_eq!(record(queue, "holder").await.state, JobState::Failed);
    assert_eq!(record(queue, "twin").await.state, JobState::Queued);
    server.shutdown().await;
}

#[actix_web::test]
async fn a_deferred_job_wakes_when_the_job_it_waits_for_is_cancelled_while_it_waits() {
    let env = TestEnv::new();
    let (server, _conn, holder, twin) = holder_and_twin(&env, json!({})).await;
    let queue = &server.app().queue;
    assert!(queue.defer(&twin, "holder", LONG).await.unwrap());
    assert!(queue.release(&holder).await.unwrap(), "the holder's process shut down");
    assert_eq!(record(queue, "twin").await.state, JobState::Delayed);

    queue.cancel("holder").await.unwrap();
    assert_eq!(record(queue, "holder").await.state, JobState::Cancelled);
    assert_eq!(record(queue, "twin").await.state, JobState::Queued);
    server.shutdown().await;
}
