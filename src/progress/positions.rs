//! `queue.position` events: every second each API process's `PositionSweeper` looks
//! at the queued documents of the users connected to it (it asks the Hub who they are)
//! and announces the positions that changed.

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;

use super::eta::EtaModel;
use super::event::{Event, Subject};
use super::hub::{CountSessions, Hub};
use super::publisher::Publisher;
use crate::db::{documents, Db};
use crate::queue::Queue;

const MAX_DOCUMENTS: i64 = 2_000;
/// How often queue positions of connected users are checked for changes.
const POSITION_SWEEP: Duration = Duration::from_secs(1);

pub struct PositionSweeper {
    db: Db,
    queue: Queue,
    publisher: Publisher,
    hub: Addr<Hub>,
    sweeping: bool,
}

impl PositionSweeper {
    pub fn new(db: Db, queue: Queue, publisher: Publisher, hub: Addr<Hub>) -> PositionSweeper {
        PositionSweeper { db, queue, publisher, hub, sweeping: false }
    }

    /// One sweep at a time: a slow one makes the next tick skip.
    fn sweep(&mut self, ctx: &mut Context<Self>) {
        if self.sweeping {
            return;
        }
        self.sweeping = true;
        let (db, queue, publisher, hub) =
            (self.db.clone(), self.queue.clone(), self.publisher.clone(), self.hub.clone());
        let sweep = async move {
            let users = hub.send(CountSessions).await.map_err(|e| e.to_string())?.users;
            announce_position_changes(&db, &queue, &publisher, users).await
        };
        ctx.spawn(sweep.into_actor(self).map(|result, act, _| {
            act.sweeping = false;
            if let Err(err) = result {
                log::debug!("queue position sweep failed: {err}");
            }
        }));
    }
}

impl Actor for PositionSweeper {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(POSITION_SWEEP, |act, ctx| act.sweep(ctx));
    }
}

pub async fn announce_position_changes(
    db: &Db,
    queue: &Queue,
    publisher: &Publisher,
    users: Vec<String>,
) -> Result<usize, String> {
    if users.is_empty() {
        return Ok(0);
    }
    let queued = db
        .run(move |conn| documents::queued_for_users(conn, &users, MAX_DOCUMENTS))
        .await
        .map_err(|e| e.to_string())?;
    let job_ids: Vec<String> = queued.iter().map(|d| d.job_id.clone()).collect();
    let positions = queue.positions(&job_ids).await.map_err(|e| e.to_string())?;
    let waiting: Vec<(usize, u64)> = positions.iter().enumerate().filter_map(|(i, p)| p.map(|p| (i, p))).collect();
    let pairs: Vec<(String, u64)> = waiting.iter().map(|(i, p)| (job_ids[*i].clone(), *p)).collect();
    let changed = queue.mark_announced_positions(&pairs).await.map_err(|e| e.to_string())?;
    if !changed.contains(&true) {
        return Ok(0);
    }
    let workers = queue.live_workers().await.map(|w| w.len()).unwrap_or(0);
    let eta = EtaModel::load(queue, workers).await.unwrap_or_default();
    // Each user's changes go out in one call: after a claim, every waiting job moves.
    let mut by_user: HashMap<&str, Vec<Event>> = HashMap::new();
    for ((i, position), changed) in waiting.into_iter().zip(changed) {
        if changed {
            let doc = &queued[i];
            let seconds = eta.queued_seconds(&doc.content_type, doc.size_bytes, position);
            let event = Subject::new(&doc.user_id, &doc.id, &doc.job_id).position(position, Some(seconds));
            by_user.entry(doc.user_id.as_str()).or_default().push(event);
        }
    }
    let mut announced = 0;
    for events in by_user.values() {
        publisher.announce_all(events).await;
        announced += events.len();
    }
    Ok(announced)
}
