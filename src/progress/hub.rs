//! `Hub`: one actor per process that holds the Redis pub/sub subscription and routes
//! each event only to the WebSocket sessions of that event's user. Its subscription
//! reconnects with back-off; after a gap it asks every session to refresh its snapshot.
//! The Hub only routes: it does no I/O of its own (the subscription runs in a task that
//! sends it messages; the queue-position sweep is `PositionSweeper`'s).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::dev::SendError;
use actix::prelude::*;
use futures_util::StreamExt;
use serde::Deserialize;

use crate::queue::Queue;

/// Sent to a session.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum SessionMessage {
    /// One event, already JSON.
    Event(Arc<str>),
    /// Events may have been missed: send a fresh snapshot.
    Refresh,
    /// This process is stopping: close the socket (1001, going away), so the client
    /// reconnects to another process instead of the stop waiting for it.
    GoingAway,
}

#[derive(Message)]
#[rtype(result = "u64")]
pub struct Connect {
    pub user_id: String,
    pub session: Recipient<SessionMessage>,
    /// Set when the Hub gives up on the session: its mailbox was full (the client
    /// stopped reading), so it gets no more events and must close (`TOO_FAR_BEHIND`).
    pub dropped: Arc<AtomicBool>,
}

/// A session as the Hub holds it.
struct Listener {
    session: Recipient<SessionMessage>,
    dropped: Arc<AtomicBool>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    pub user_id: String,
    pub session_id: u64,
}

/// Closes every session: the process is stopping (after its jobs were drained, so
/// their last events went out).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSessions;

/// How many sessions this process holds, and for which users.
#[derive(Message)]
#[rtype(result = "SessionCounts")]
pub struct CountSessions;

#[derive(Debug, Clone, Default)]
pub struct SessionCounts {
    pub sessions: usize,
    pub users: Vec<String>,
}

#[derive(Message)]
#[rtype(result = "()")]
struct Incoming(String);

#[derive(Message)]
#[rtype(result = "()")]
struct Resubscribed;

#[derive(Deserialize)]
struct Routing {
    user_id: String,
}

pub struct Hub {
    queue: Queue,
    channel: String,
    sessions: HashMap<String, HashMap<u64, Listener>>,
    next_id: u64,
}

impl Hub {
    pub fn new(queue: &Queue) -> Hub {
        Hub { queue: queue.clone(), channel: queue.keys().events_channel(), sessions: HashMap::new(), next_id: 0 }
    }
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        actix::spawn(subscribe_forever(self.queue.clone(), self.channel.clone(), ctx.address()));
    }
}

/// Keeps one pub/sub connection subscribed, reconnecting with back-off.
async fn subscribe_forever(queue: Queue, channel: String, hub: Addr<Hub>) {
    let mut backoff = Duration::from_millis(100);
    let mut subscribed_before = false;
    while hub.connected() {
        match queue.pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    if subscribed_before {
                        log::info!("progress hub resubscribed");
                        hub.do_send(Resubscribed);
                    }
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        if let Ok(payload) = message.get_payload::<String>() {
                            hub.do_send(Incoming(payload));
                        }
                    }
                    log::warn!("progress hub lost its pub/sub connection; reconnecting");
                }
                Err(err) => log::warn!("progress hub cannot subscribe: {err}"),
            },
            Err(err) => log::warn!("progress hub cannot reach Redis: {err}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
        // Whatever was published meanwhile is lost to this process: sessions refresh.
        subscribed_before = true;
    }
}

impl Handler<Connect> for Hub {
    type Result = u64;

    fn handle(&mut self, msg: Connect, _: &mut Self::Context) -> u64 {
        self.next_id += 1;
        let listener = Listener { session: msg.session, dropped: msg.dropped };
        self.sessions.entry(msg.user_id).or_default().insert(self.next_id, listener);
        self.next_id
    }
}

impl Handler<Disconnect> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Disconnect, _: &mut Self::Context) {
        if let Some(sessions) = self.sessions.get_mut(&msg.user_id) {
            sessions.remove(&msg.session_id);
            if sessions.is_empty() {
                self.sessions.remove(&msg.user_id);
            }
        }
    }
}

impl Handler<Incoming> for Hub {
    type Result = ();

    fn handle(&mut self, msg: Incoming, _: &mut Self::Context) {
        let Ok(routing) = serde_json::from_str::<Routing>(&msg.0) else {
            log::warn!("progress hub dropped a malformed event");
            return;
        };
        let Some(sessions) = self.sessions.get_mut(&routing.user_id) else { return };
        let payload: Arc<str> = Arc::from(msg.0);
        // A session whose mailbox is full has a client that stopped reading: its events
        // would pile up without bound. It is dropped and told so; its client resumes
        // from its last seq when it reconnects.
        sessions.retain(|_, listener| match listener.session.try_send(SessionMessage::Event(payload.clone())) {
            Ok(()) => true,
            Err(SendError::Full(_)) => {
                log::warn!("a WebSocket session of {} fell too far behind; dropped", routing.user_id);
                listener.dropped.store(true, Ordering::Relaxed);
                false
            }
            Err(SendError::Closed(_)) => false,
        });
        if sessions.is_empty() {
            self.sessions.remove(&routing.user_id);
        }
    }
}

impl Handler<Resubscribed> for Hub {
    type Result = ();

    fn handle(&mut self, _: Resubscribed, _: &mut Self::Context) {
        for listener in self.sessions.values().flat_map(|s| s.values()) {
            listener.session.do_send(SessionMessage::Refresh);
        }
    }
}

impl Handler<CloseSessions> for Hub {
    type Result = ();

    fn handle(&mut self, _: CloseSessions, _: &mut Self::Context) {
        for listener in self.sessions.values().flat_map(|s| s.values()) {
            listener.session.do_send(SessionMessage::GoingAway);
        }
    }
}

impl Handler<CountSessions> for Hub {
    type Result = MessageResult<CountSessions>;

    fn handle(&mut self, _: CountSessions, _: &mut Self::Context) -> Self::Result {
        MessageResult(SessionCounts {
            sessions: self.sessions.values().map(|s| s.len()).sum(),
            users: self.sessions.keys().cloned().collect(),
        })
    }
}
