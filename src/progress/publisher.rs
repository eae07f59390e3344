//! Publishing events: one Lua script stamps the per-user `seq`, appends the event to
//! the user's bounded stream (for resume) and PUBLISHes it to every process's Hub.

use std::sync::Arc;
use std::time::Duration;

use redis::Script;
use serde_json::Value;
use tokio::time::Instant;

use super::event::{Event, Subject};
use crate::queue::{NewJob, Queue, QueueError};

/// How long an event about a job waits for the job's `document.queued`, which its
/// uploader publishes a moment after enqueueing it, before it goes out anyway (an
/// uploader that stopped in between never announces).
const ANNOUNCEMENT_WAIT: Duration = Duration::from_secs(1);
/// How often an event held back for that announcement is tried again.
const ANNOUNCEMENT_POLL: Duration = Duration::from_millis(1);
/// Events published by one script run at most: Redis runs nothing else meanwhile.
const EVENTS_PER_CALL: usize = 100;

#[derive(Clone)]
pub struct Publisher {
    queue: Queue,
    publish: Arc<Script>,
    resume: Arc<Script>,
    snapshot_seq: Arc<Script>,
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
            snapshot_seq: Arc::new(Script::new(include_str!("lua/snapshot_seq.lua"))),
            stream_max_len: stream_max_len.max(1),
        }
    }

    /// Publishes `event` and returns its `seq`. An event about a job whose
    /// `document.queued` is still to come (see `Queue::enqueue_before_announcing`) waits
    /// for it, up to `ANNOUNCEMENT_WAIT`.
    pub async fn publish(&self, event: Event) -> Result<u64, QueueError> {
        let seqs = self.publish_all(std::slice::from_ref(&event)).await?;
        seqs.first().copied().ok_or_else(|| QueueError::Reply("no seq for a published event".into()))
    }

    /// Publishes events in order and returns their seqs: each run of one user's events
    /// in one script call where none is held back (a call reaches one user's stream
    /// only). Held events wait as in `publish`.
    pub async fn publish_all(&self, events: &[Event]) -> Result<Vec<u64>, QueueError> {
        let mut seqs = Vec::with_capacity(events.len());
        for one_user in events.chunk_by(|a, b| a.user_id == b.user_id) {
            seqs.extend(self.publish_to_one_user(one_user).await?);
        }
        Ok(seqs)
    }

    /// `publish_all` for events of one user.
    async fn publish_to_one_user(&self, events: &[Event]) -> Result<Vec<u64>, QueueError> {
        let Some(first) = events.first() else { return Ok(Vec::new()) };
        let parts = events.iter().map(script_args).collect::<Result<Vec<_>, _>>()?;
        let mut seqs = Vec::with_capacity(events.len());
        let mut held_since = Instant::now();
        while seqs.len() < events.len() {
            let give_up = held_since.elapsed() >= ANNOUNCEMENT_WAIT;
            if give_up {
                let held = &events[seqs.len()];
                log::info!(
                    "{} about job {} published before its announcement, which never came",
                    held.kind,
                    held.job_id
                );
            }
            let mut invocation = self.queue.invocation(&self.publish);
            invocation.arg(&first.user_id).arg(self.stream_max_len).arg(if give_up { "1" } else { "0" });
            for args in parts[seqs.len()..].iter().take(EVENTS_PER_CALL) {
                invocation.arg(args);
            }
            let mut conn = self.queue.connection().await?;
            let published: Vec<i64> = invocation.invoke_async(&mut conn).await?;
            drop(conn);
            if published.is_empty() {
                return Err(QueueError::Reply("the publish script answered no seq".into()));
            }
            let before = seqs.len();
            seqs.extend(published.iter().map_while(|seq| u64::try_from(*seq).ok()));
            if published.last().is_some_and(|seq| *seq < 0) {
                if seqs.len() > before {
                    // The held event waits for its own announcement from now.
                    held_since = Instant::now();
                }
                tokio::time::sleep(ANNOUNCEMENT_POLL).await;
            }
        }
        Ok(seqs)
    }

    /// Publishes, logging instead of failing: events must never break processing.
    pub async fn announce(&self, event: Event) {
        self.announce_all(std::slice::from_ref(&event)).await;
    }

    /// `announce` for several events, each user's run of them in one script call.
    pub async fn announce_all(&self, events: &[Event]) {
        if let Err(err) = self.publish_all(events).await {
            let first = events.first().map_or("", |event| event.kind.as_str());
            log::warn!("{} event(s) not published, the first {first}: {err}", events.len());
        }
    }

    /// Announces jobs just enqueued by `Queue::enqueue_before_announcing` (each one's
    /// `document.queued` with its position), then wakes idle workers: no worker can
    /// report on a job before its owner heard it was queued. An upload's announcements
    /// go in one call.
    pub async fn announce_enqueued(&self, jobs: &[NewJob], positions: &[Option<u64>]) {
        let events: Vec<Event> = jobs
            .iter()
            .zip(positions)
            .map(|(job, position)| Subject::new(&job.user_id, &job.document_id, &job.job_id).queued(*position))
            .collect();
        self.announce_all(&events).await;
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

    /// The user's sequence number for a snapshot: the last event's, or a new sequence
    /// started now, so the first event after the snapshot is its seq + 1.
    pub async fn snapshot_seq(&self, user_id: &str) -> Result<u64, QueueError> {
        let mut conn = self.queue.connection().await?;
        let seq: String = self.queue.invocation(&self.snapshot_seq).arg(user_id).invoke_async(&mut conn).await?;
        seq.parse().map_err(|_| QueueError::Reply(format!("the user's seq is not a number: {seq}")))
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

/// An event as the publish script takes it: its type, job id, progress and stage
/// (empty unless it is a progress event), and its JSON cut where the seq goes.
fn script_args(event: &Event) -> Result<[String; 6], QueueError> {
    const SEQ_FIELD: &str = "\"seq\":";
    let json = serde_json::to_string(event).map_err(|e| QueueError::Reply(e.to_string()))?;
    // The first `"seq":` is the field: inside a JSON string a quote is always escaped.
    let at = json.find(SEQ_FIELD).ok_or_else(|| QueueError::Reply("an event without its seq field".into()))?
        + SEQ_FIELD.len();
    let digits = json[at..].bytes().take_while(u8::is_ascii_digit).count();
    let (progress, stage) = match event.kind.as_str() {
        "document.progress" => (
            event.data.get("progress").and_then(Value::as_i64).unwrap_or_default().to_string(),
            event.data.get("stage").and_then(Value::as_str).unwrap_or_default().to_string(),
        ),
        _ => (String::new(), String::new()),
    };
    let (head, tail) = (json[..at].to_string(), json[at + digits..].to_string());
    Ok([event.kind.clone(), event.job_id.clone(), progress, stage, head, tail])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_cut_for_the_script_and_joined_with_its_seq_is_the_event_with_that_seq() {
        // A user id that spells the field inside a string must not move the cut.
        let subject = Subject::new("eve\"seq\":7", "doc-1", "job-1");
        for event in [subject.progress(40, "chunking"), subject.completed(3, None, Some("a \"warning\""))] {
            let [kind, job_id, progress, stage, head, tail] = script_args(&event).unwrap();
            let joined: Event = serde_json::from_str(&format!("{head}42{tail}")).unwrap();
            assert_eq!(joined.seq, 42);
            assert_eq!((joined.kind.as_str(), joined.user_id.as_str()), (event.kind.as_str(), "eve\"seq\":7"));
            assert_eq!(joined.data, event.data);
            assert_eq!((kind, job_id), (event.kind.clone(), "job-1".to_string()));
            let expected = match event.kind.as_str() {
                "document.progress" => ("40", "chunking"),
                _ => ("", ""),
            };
            assert_eq!((progress.as_str(), stage.as_str()), expected);
        }
    }
}
