//! The picture of a user's queue: counts per status, the queued and processing
//! documents with progress, stage, queue position and ETA, and the last 20 finished.
//! Sent as the WebSocket `snapshot` and by `GET /api/documents/processing-status`.

use serde::Serialize;
use serde_json::{Map, Value};

use super::eta::EtaModel;
use super::publisher::Publisher;
use crate::db::models::DocumentView;
use crate::db::{documents, Db, DbError};
use crate::job_state::JobState;
use crate::queue::Queue;

const ACTIVE_LIMIT: i64 = 500;
const RECENT_FINISHED: i64 = 20;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SnapshotDocument {
    #[serde(flatten)]
    pub document: DocumentView,
    pub queue_position: Option<u64>,
    pub eta_seconds: Option<f64>,
}

/// The WebSocket `snapshot` frame, and `GET /api/documents/processing-status`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Snapshot {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The user's last event `seq` when the picture was taken: later events are newer.
    pub seq: u64,
    pub ts: i64,
    /// Documents per status: queued, processing, completed, failed, cancelled.
    #[schema(value_type = std::collections::HashMap<String, u64>)]
    pub counts: Map<String, Value>,
    pub documents: Vec<SnapshotDocument>,
}

/// Only the database can fail a snapshot: what Redis adds (positions, ETAs) is left
/// out while it is away.
pub async fn build(db: &Db, queue: &Queue, publisher: &Publisher, user_id: &str) -> Result<Snapshot, DbError> {
    // Read the sequence first: anything published after it is newer than the picture.
    let seq = publisher.snapshot_seq(user_id).await.unwrap_or(0);
    let user = user_id.to_string();
    let (counts, mut active, finished) = db
        .run(move |conn| {
            let counts = documents::count_by_status_for_user(conn, &user)?;
            let mut active = documents::list_for_user(conn, &user, Some(JobState::Processing), None, ACTIVE_LIMIT)?;
            let mut queued = documents::list_for_user(conn, &user, Some(JobState::Queued), None, ACTIVE_LIMIT)?;
            queued.reverse();
            active.extend(queued);
            let finished = documents::recently_finished_for_user(conn, &user, RECENT_FINISHED)?;
            Ok((counts, active, finished))
        })
        .await?;
    let job_ids: Vec<String> = active.iter().map(|d| d.job_id.clone()).collect();
    let positions = queue.positions(&job_ids).await.unwrap_or_else(|_| vec![None; job_ids.len()]);
    // Rows of running jobs are written at most once a second; every progress event
    // records its figures in Redis first, so the picture is never behind an event.
    let live = queue.live_progress(&job_ids).await.unwrap_or_else(|_| vec![None; job_ids.len()]);
    for (doc, live) in active.iter_mut().zip(live) {
        if let Some((progress, stage)) =
            live.filter(|(p, _)| doc.queue_status == JobState::Processing && *p >= doc.progress)
        {
            doc.progress = progress;
            doc.stage = Some(stage);
        }
    }
    let workers = queue.live_workers().await.map(|w| w.len()).unwrap_or(0);
    let eta = EtaModel::load(queue, workers).await.unwrap_or_default();

    let mut documents: Vec<SnapshotDocument> = active
        .drain(..)
        .zip(positions)
        .map(|(doc, position)| {
            let eta_seconds = match (doc.queue_status, position) {
                (JobState::Processing, _) => {
                    Some(eta.remaining_seconds(&doc.content_type, doc.size_bytes, doc.progress))
                }
                (_, Some(position)) => Some(eta.queued_seconds(&doc.content_type, doc.size_bytes, position)),
                _ => None,
            };
            SnapshotDocument { document: doc.into(), queue_position: position, eta_seconds }
        })
        .collect();
    documents.extend(finished.into_iter().map(|doc| SnapshotDocument {
        document: doc.into(),
        queue_position: None,
        eta_seconds: None,
    }));
    let mut by_status = Map::new();
    for status in JobState::OF_DOCUMENTS {
        let n = counts.iter().find(|(s, _)| s == status.as_str()).map_or(0, |(_, n)| *n);
        by_status.insert(status.as_str().to_string(), Value::from(n));
    }
    Ok(Snapshot { kind: "snapshot", seq, ts: chrono::Utc::now().timestamp_millis(), counts: by_status, documents })
}
