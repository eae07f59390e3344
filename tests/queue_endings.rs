//! Job endings from many workers of one process: sent to Redis together when they meet
//! (src/queue/endings.rs), each answered as it would be alone.

mod common;

use std::collections::HashSet;

use common::TestEnv;
use docqueue::job_state::JobState;
use docqueue::queue::Queue;
use redis::Commands;
use serde_json::json;

#[actix_web::test]
async fn endings_that_meet_are_each_answered_for_their_own_job_and_worker() {
    let env = TestEnv::new();
    let config = env.config(json!({}));
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    let jobs = |name: &str| -> Vec<_> {
        (0..40).map(|i| common::text_job(&format!("{name}-{i:02}"), &format!("user-{}", i % 4))).collect()
    };
    let (first, later) = (jobs("run"), jobs("next"));
    queue.enqueue(&first).await.unwrap();
    let mut conn = queue.dedicated_connection().await.unwrap();
    let mut running = Vec::new();
    for w in 0..40 {
        running.push(queue.claim(&mut conn, &format!("w{w}")).await.unwrap().unwrap());
    }
    queue.enqueue(&later).await.unwrap();
    let later_ids: Vec<String> = later.iter().map(|job| job.job_id.clone()).collect();
    let positions = queue.positions(&later_ids).await.unwrap();
    let last_in_line = later_ids[positions.iter().position(|p| *p == Some(40)).unwrap()].clone();
    // Worker 7 lost its job's lease: its token no longer owns the job.
    running[7].token = "a token that lost its lease".into();

    // Forty endings at once: more than can be on their way at once, so most wait and
    // share calls.
    let endings = running.iter().enumerate().map(|(w, job)| {
        let queue = queue.clone();
        async move {
            let state = if w % 3 == 0 { JobState::Failed } else { JobState::Completed };
            let worker = format!("w{w}");
            let (accepted, next) = queue.end_job_and_claim(job, state, "", Some((&worker, ""))).await.unwrap();
            (w, state, accepted, next)
        }
    });
    let results = futures_util::future::join_all(endings).await;

    let mut redis = env.redis();
    let mut claimed = HashSet::new();
    let (mut completed, mut failed) = (0, 0);
    for (w, state, accepted, next) in results {
        if w == 7 {
            assert!(!accepted && next.is_none(), "a stale token ends nothing and claims nothing");
            continue;
        }
        assert!(accepted, "worker {w}'s ending");
        match state {
            JobState::Completed => completed += 1,
            _ => failed += 1,
        }
        let ended: String = redis.hget(queue.keys().job(&running[w].job_id), "state").unwrap();
        assert_eq!(ended, state.redis_name(), "worker {w}'s job");
        let next = next.unwrap_or_else(|| panic!("worker {w} claimed its next job"));
        let owner: String = redis.hget(queue.keys().job(&next.job_id), "worker").unwrap();
        assert_eq!(owner, format!("w{w}"), "the job claimed for worker {w} is worker {w}'s");
        assert!(claimed.insert(next.job_id.clone()), "{} claimed twice", next.job_id);
    }
    let stale: String = redis.hget(queue.keys().job(&running[7].job_id), "state").unwrap();
    assert_eq!(stale, "active", "the job whose token was stale still belongs to its lease");
    // 39 claims took the first 39 jobs in fair order: the last in line still waits.
    let waiting: Vec<String> = later_ids.iter().filter(|id| !claimed.contains(*id)).cloned().collect();
    assert_eq!(waiting, [last_in_line]);
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.completed, counts.failed, counts.processing, counts.queued), (completed, failed, 40, 1));
    let stats = queue.stats().await.unwrap();
    assert_eq!((stats["completed"], stats["failed"]), (completed, failed), "{stats:?}");
}

#[actix_web::test]
async fn an_ending_that_fails_in_redis_fails_alone_and_the_endings_beside_it_are_kept() {
    let env = TestEnv::new();
    let config = env.config(json!({}));
    let queue = Queue::new(&config.redis, &config.document_queue).unwrap();
    let jobs: Vec<_> = (0..12).map(|i| common::text_job(&format!("run-{i:02}"), &format!("user-{i}"))).collect();
    queue.enqueue(&jobs).await.unwrap();
    let mut conn = queue.dedicated_connection().await.unwrap();
    let mut running = Vec::new();
    for w in 0..12 {
        running.push(queue.claim(&mut conn, &format!("w{w}")).await.unwrap().unwrap());
    }
    // Job 10 has a deferred twin whose hash lacks its place in line: waking it when job
    // 10 ends raises an error inside the script, after job 10 itself has ended.
    let mut redis = env.redis();
    let _: () = redis.hset(queue.keys().job(&running[10].job_id), "waiters", "broken-twin").unwrap();
    let _: () = redis.hset(queue.keys().job("broken-twin"), "user_id", "user-10").unwrap();
    let _: () = redis.zadd(queue.keys().state_set(JobState::Delayed), "broken-twin", 0).unwrap();

    let endings = running.iter().map(|job| queue.end_job(job, JobState::Completed, ""));
    let results = futures_util::future::join_all(endings).await;
    for (w, result) in results.into_iter().enumerate() {
        match (w, result) {
            (10, Err(err)) => assert!(!err.to_string().is_empty()),
            (10, Ok(accepted)) => panic!("the failing ending was answered {accepted}"),
            (_, result) => assert!(result.unwrap(), "worker {w}'s ending"),
        }
    }
    // Every job ended, the failing one included (its end came before the error), and
    // the counts written once for the whole call say so.
    let counts = queue.counts().await.unwrap();
    assert_eq!((counts.completed, counts.processing), (12, 0));
    assert_eq!(queue.stats().await.unwrap()["completed"], 12);
}
