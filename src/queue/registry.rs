//! Live workers, as each one reports itself on every heartbeat: for the admin view,
//! and for ETAs (how many workers share the queue).

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{Queue, QueueError};

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkerInfo {
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub current_job: Option<String>,
    pub jobs_done: u32,
    pub started_at_ms: i64,
    pub last_heartbeat_ms: i64,
    /// The same instants in RFC 3339, as every JSON body has them: filled in when read
    /// back (`live_workers`), not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat: Option<DateTime<Utc>>,
}

/// A worker silent for this long is gone (its process died).
const STALE_AFTER_MS: i64 = 30_000;

impl Queue {
    pub async fn report_worker(&self, info: &WorkerInfo) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let json = serde_json::to_string(info).map_err(|e| QueueError::Reply(e.to_string()))?;
        let _: () = conn.hset(self.keys().workers(), &info.id, json).await?;
        Ok(())
    }

    pub async fn remove_worker(&self, id: &str) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let _: () = conn.hdel(self.keys().workers(), id).await?;
        Ok(())
    }

    /// Workers that reported recently; entries of dead ones are removed on the way.
    pub async fn live_workers(&self) -> Result<Vec<WorkerInfo>, QueueError> {
        let mut conn = self.connection().await?;
        let all: Vec<(String, String)> = conn.hgetall(self.keys().workers()).await?;
        let now = chrono::Utc::now().timestamp_millis();
        let mut live = Vec::new();
        for (id, json) in all {
            match serde_json::from_str::<WorkerInfo>(&json) {
                Ok(info) if now - info.last_heartbeat_ms < STALE_AFTER_MS => live.push(WorkerInfo {
                    started_at: DateTime::from_timestamp_millis(info.started_at_ms),
                    last_heartbeat: DateTime::from_timestamp_millis(info.last_heartbeat_ms),
                    ..info
                }),
                _ => {
                    let _: () = conn.hdel(self.keys().workers(), &id).await?;
                }
            }
        }
        live.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(live)
    }
}
