//! Publishing events: one Lua script stamps the per-user `seq`, appends the event to
//! the user's bounded stream (for resume) and PUBLISHes it to every process's Hub.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use super::event::{Event, Subject};
use crate::queue::{NewJob, Queue, QueueError};

/// How long an event about a job waits for the job's `document.queued`, which its
/// uploader publishes a moment after enqueueing it, before it goes out anyway (an
/// uploader that stopped in between never announces).
const ANNOUNCEMENT_WAIT: Duration = Duration::from_secs(1);
/// How often an event held back for that announcement is tried again.
const ANNOUNCEMENT_POLL: Duration = Duration::from_millis(1);

#[derive(Clone)]
pub struct Publisher {
    queue: Queue,
    publish: Arc<Script>,
    resume: Arc<Script>,
    stream_max_len: usize,
}

/// What a reconnecting client gets: the events it missed, or the news that some are
/// gone and it needs a fresh snapshot.
#[derive(Debug)]
pub enum Missed {
    Events(Vec<String>),
    Gap,
}

impl Publisher {
    pub fn new(queue: Queue, stream_max_len: usize) -> Publisher {
        Publisher {
            queue,
            publish: Arc::new(Script::new(include_str!("lua/publish.lua"))),
            resume: Arc::new(Script::new(include_str!("lua/resume.lua"))),
            stream_max_len: stream_max_len.max(1),
        }
    }

    /// Publishes `event` and returns its `seq`. An event about a job whose
    /// `document.queued` is still to come (see `Queue::enqueue_before_announcing`) waits
    /// for it, up to `ANNOUNCEMENT_WAIT`.
    pub async fn publish(&self, event: Event) -> Result<u64, QueueError> {
        let body = serde_json::to_string(&event).map_err(|e| QueueError::Reply(e.to_string()))?;
        let held_since = Instant::now();
        loop {
            let give_up = held_since.elapsed() >= ANNOUNCEMENT_WAIT;
            if give_up {
                log::info!(
                    "{} about job {} published before its announcement, which never came",
                    event.kind,
                    event.job_id
                );
            }
            let mut conn = self.queue.connection().await?;
            let seq: i64 = self
                .queue
                .invocation(&self.publish)
                .arg(&event.user_id)
                .arg(&body)
                .arg(self.stream_max_len)
                .arg(if give_up { "1" } else { "0" })
                .invoke_async(&mut conn)
                .await?;
            if let Ok(seq) = u64::try_from(seq) {
                return Ok(seq);
            }
            drop(conn);
            tokio::time::sleep(ANNOUNCEMENT_POLL).await;
        }
    }

    /// Publishes, logging instead of failing: events must never break processing.
    pub async fn announce(&self, event: Event) {
        let kind = event.kind.clone();
        if let Err(err) = self.publish(event).await {
            log::warn!("event {kind} not published: {err}");
        }
    }

    /// Announces jobs just enqueued by `Queue::enqueue_before_announcing` (each one's
    /// `document.queued` with its position), then wakes idle workers: no worker can
    /// report on a job before its owner heard it was queued.
    pub async fn announce_enqueued(&self, jobs: &[NewJob], positions: &[Option<u64>]) {
        for (job, position) in jobs.iter().zip(positions) {
            self.announce(Subject::new(&job.user_id, &job.document_id, &job.job_id).queued(*position)).await;
        }
        // Idle workers also look for work every second: a lost wake costs that.
        if let Err(err) = self.queue.wake_workers(jobs.len()).await {
            log::warn!("workers not woken for {} newly queued jobs: {err}", jobs.len());
        }
    }

    /// The user's current sequence number (the last event's `seq`).
    pub async fn current_seq(&self, user_id: &str) -> Result<u64, QueueError> {
        let mut conn = self.queue.connection().await?;
        let seq: Option<u64> =
            redis::cmd("GET").arg(self.queue.keys().events_seq(user_id)).query_async(&mut conn).await?;
        Ok(seq.unwrap_or(0))
    }

    pub async fn missed_since(&self, user_id: &str, since: u64) -> Result<Missed, QueueError> {
        let mut conn = self.queue.connection().await?;
        let reply: Vec<String> =
            self.queue.invocation(&self.resume).arg(user_id).arg(since).invoke_async(&mut conn).await?;
        Ok(match reply.split_first() {
            Some((status, events)) if status == "events" => Missed::Events(events.to_vec()),
            _ => Missed::Gap,
        })
    }
}
