//! `GET /ws`: one `SessionActor` per WebSocket. It registers with the process's Hub
//! for its user's events, sends a snapshot on connect (or, opened with `?since=SEQ`,
//! the events after SEQ), and another whenever the Hub lost events; it answers
//! `resume`, `cancel` and `ping` frames, pings the client every
//! `server.ws_ping_interval_ms` and closes it with 1001 once silent for
//! `server.ws_silence_limit_ms`.
//! Live events are never held back longer than a snapshot or a replay takes to send.
//!
//! Browsers open it with `?ticket=` (from `POST /api/ws-ticket`); other clients with
//! the bearer token, in the header or `?token=`. A refused ticket is closed with 4401.
//! A user has at most `server.ws_max_sockets_per_user` sockets open in a process: one
//! more is refused with 429 (closed with 4029 when it came with a ticket).
//!
//! A session lives no longer than its token: at the token's `exp` it is closed with
//! code 4001 (reconnect with a fresh token and `resume`). A client that sends frames
//! faster than `server.ws_frames_per_sec` (burst `server.ws_frame_burst`) gets a
//! `rate_limited` error frame and is closed with 1008 (policy violation). A snapshot the
//! client causes (opening with a token and no `since`, `subscribe`, a `resume` from
//! before what is kept) takes `SNAPSHOT_TURNS` of the user's request pace; past it the
//! client gets 429 before the upgrade, or a `snapshot_rate_limited` error frame and the
//! socket stays. One that
//! stops reading while more than `server.ws_max_pending_events` wait for it is dropped
//! and, if it ever reads again, closed with 4008; its connection ends, and its place
//! is free, once it has taken nothing for `server.send_timeout_ms`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde::{Deserialize, Serialize};

use super::slots::Slot;
use super::{comparable_with_stored, AppState};
use crate::auth::pace::{RequestPace, TokenBucket};
use crate::auth::{authenticate, issue_ws_ticket, redeem_ws_ticket, AuthUser, WS_TICKET_TTL};
use crate::db::documents;
use crate::db::models::Document;
use crate::documents::cancel_document;
use crate::error::{AppError, ErrorBody};
use crate::job_state::JobState;
use crate::progress::hub::{Connect, Disconnect, SessionMessage};
use crate::progress::publisher::Missed;
use crate::progress::{snapshot, Hub};

/// The close code for a session whose token expired (the private-use range, 4000–4999).
pub const TOKEN_EXPIRED: u16 = 4001;
/// The close code for a socket whose ticket is unknown, expired or already used.
pub const TICKET_REFUSED: u16 = 4401;
/// The close code for a session whose client stopped reading while events kept coming:
/// more than `server.ws_max_pending_events` waited, and the Hub dropped it (without a
/// bound, every event of its user would pile up for as long as the connection stays
/// open). Reconnecting with `since` resumes.
pub const TOO_FAR_BEHIND: u16 = 4008;
/// The close code for a socket opened with a ticket while its user already has
/// `server.ws_max_sockets_per_user` open (as HTTP's 429).
pub const TOO_MANY_SOCKETS: u16 = 4029;

/// A one-time ticket for opening `/ws` from a browser.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WsTicket {
    /// Pass as `/ws?ticket=`; it opens one socket, within `expires_in` seconds.
    pub ticket: String,
    pub expires_in: u64,
}

/// Issues a one-time ticket, valid for 30 s, that opens `/ws?ticket=` as the caller.
/// Browsers cannot set headers on a WebSocket, and a long-lived token in a URL ends up
/// in logs and histories; a ticket used or expired is worthless.
#[utoipa::path(post, path = "/api/ws-ticket", tag = "progress", security(("bearer" = [])),
    responses((status = 200, body = WsTicket), (status = 401, body = ErrorBody),
        (status = 429, description = "More than 30 tickets in 30 s for this user; sent with Retry-After", body = ErrorBody),
        (status = 503, description = "Redis cannot be reached", body = ErrorBody)))]
pub async fn ticket(user: AuthUser, state: web::Data<AppState>) -> Result<web::Json<WsTicket>, AppError> {
    let ticket = issue_ws_ticket(&state.queue, &user).await?;
    Ok(web::Json(WsTicket { ticket, expires_in: WS_TICKET_TTL.as_secs() }))
}

#[derive(Deserialize)]
struct ConnectQuery {
    ticket: Option<String>,
    since: Option<String>,
}

impl ConnectQuery {
    /// `since`, when given: an empty one (a URL built before any event came) asks for
    /// nothing to resume, as no `since` does.
    fn resume_from(&self) -> Result<Option<u64>, AppError> {
        match self.since.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(seq) => seq.parse().map(Some).map_err(|_| {
                AppError::BadRequest("`since` must be the seq of an event the client received (a whole number)".into())
            }),
        }
    }
}

/// The progress socket. Frames are JSON text: the server sends a `snapshot` (or, with
/// `since`, the events after it), then events and control frames; the client may send
/// `ClientFrame`s.
#[utoipa::path(get, path = "/ws", tag = "progress",
    params(
        ("ticket" = Option<String>, Query, description = "A one-time ticket from POST /api/ws-ticket (browsers); refused tickets close the socket with 4401"),
        ("token" = Option<String>, Query, description = "The bearer token, for clients that cannot set headers and cannot use tickets"),
        ("since" = Option<u64>, Query, description = "Resume: instead of a snapshot, the events after this seq, then live ones (a snapshot if some are no longer kept); empty is the same as absent")),
    security(("bearer" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol: frames are Snapshot, Event and ControlFrame; the client sends ClientFrame"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 429, description = "The user has server.ws_max_sockets_per_user WebSockets open; opened with a ticket, the socket is closed with 4029 instead", body = ErrorBody)))]
pub async fn connect(
    request: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
    hub: web::Data<Addr<Hub>>,
    pace: web::Data<RequestPace>,
) -> Result<HttpResponse, actix_web::Error> {
    let query = web::Query::<ConnectQuery>::from_query(request.query_string())
        .map_err(|e| AppError::BadRequest(format!("bad query string: {e}")))?
        .into_inner();
    let resume_from = query.resume_from()?;
    let limits = &state.config.server;
    let take_socket = |user: &AuthUser| state.sockets.take(&user.id, limits.ws_max_sockets_per_user, usize::MAX);
    let (user, socket) = match query.ticket {
        Some(ticket) => {
            // A request that cannot become a socket must not spend the ticket.
            handshake_checked(&request)?;
            // A browser sees only close codes, never the status of a refused handshake.
            let Some(user) = redeem_ws_ticket(&state.queue, &ticket).await? else {
                return ws::start(RefusedSocket::ticket(), &request, stream);
            };
            match take_socket(&user) {
                Some(socket) => (user, socket),
                None => {
                    return ws::start(RefusedSocket::too_many_sockets(limits.ws_max_sockets_per_user), &request, stream)
                }
            }
        }
        // Checked before the upgrade: non-browser clients read the 401 or the 429.
        None => {
            let user = authenticate(&request, true)?;
            handshake_checked(&request)?;
            // The handshake took one turn; a socket opened without `since` starts with a
            // snapshot, which takes the rest of a snapshot's turns.
            if resume_from.is_none() && !pace.admit_rest_of_snapshot(&user.id) {
                return Err(AppError::Busy(pace.snapshot_refusal()).into());
            }
            let socket = take_socket(&user)
                .ok_or_else(|| AppError::TooManyRequests(too_many_sockets(limits.ws_max_sockets_per_user)))?;
            (user, socket)
        }
    };
    let frames = TokenBucket::new(limits.ws_frames_per_sec, limits.ws_frame_burst);
    let session = SessionActor {
        user,
        _socket: socket,
        frames,
        pace,
        state,
        hub: hub.get_ref().clone(),
        session_id: None,
        last_heard: Instant::now(),
        resume_from,
        held_back: None,
        snapshot_in_flight: false,
        replaying: false,
        resume_after_snapshot: None,
        sent_seq: 0,
        snapshot_seq: 0,
        dropped: Arc::new(AtomicBool::new(false)),
    };
    ws::start(session, &request, stream)
}

/// Whether `request` is a WebSocket handshake; if not, the JSON error of every other
/// bad request (actix would answer with an empty body).
fn handshake_checked(request: &HttpRequest) -> Result<(), AppError> {
    ws::handshake(request).map(|_| ()).map_err(|err| {
        AppError::BadRequest(format!("this path opens a WebSocket, and the request is no handshake: {err}"))
    })
}

/// A socket opened only to be closed at once with a code a browser can read.
struct RefusedSocket {
    code: u16,
    description: String,
}

impl RefusedSocket {
    fn ticket() -> RefusedSocket {
        RefusedSocket {
            code: TICKET_REFUSED,
            description: "ticket unknown, expired or already used; get a new one from POST /api/ws-ticket".into(),
        }
    }

    fn too_many_sockets(limit: usize) -> RefusedSocket {
        RefusedSocket { code: TOO_MANY_SOCKETS, description: too_many_sockets(limit) }
    }
}

/// Why a user's socket past `server.ws_max_sockets_per_user` (`limit`) is refused.
fn too_many_sockets(limit: usize) -> String {
    format!("this user has {limit} WebSockets open (server.ws_max_sockets_per_user); close one first")
}

/// Closes the socket with `code` and a reason its client can show, and stops the actor.
fn close_socket<A>(ctx: &mut ws::WebsocketContext<A>, code: ws::CloseCode, reason: impl Into<String>)
where
    A: Actor<Context = ws::WebsocketContext<A>>,
{
    ctx.close(Some(ws::CloseReason { code, description: Some(reason.into()) }));
    ctx.stop();
}

impl Actor for RefusedSocket {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        close_socket(ctx, ws::CloseCode::Other(self.code), std::mem::take(&mut self.description));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for RefusedSocket {
    fn handle(&mut self, _: Result<ws::Message, ws::ProtocolError>, _: &mut Self::Context) {}
}

pub struct SessionActor {
    user: AuthUser,
    /// The user's place among `server.ws_max_sockets_per_user`, held until the actor is
    /// gone: also while its client has stopped reading and the Hub has let it go.
    _socket: Slot,
    frames: TokenBucket,
    /// The user's request pace, which a `subscribe` (a snapshot) draws on.
    pace: web::Data<RequestPace>,
    state: web::Data<AppState>,
    hub: Addr<Hub>,
    session_id: Option<u64>,
    last_heard: Instant,
    /// `?since=`: the session starts with a replay of the events after it, not a snapshot.
    resume_from: Option<u64>,
    /// Live events wait here while a snapshot or a replay is on its way, so the client
    /// sees every seq once and in order.
    held_back: Option<Vec<Arc<str>>>,
    snapshot_in_flight: bool,
    replaying: bool,
    /// A resume asked for while a snapshot was on its way; served right after it.
    resume_after_snapshot: Option<u64>,
    /// The highest seq sent to the client.
    sent_seq: u64,
    /// The seq of the last snapshot sent: every event after it up to `sent_seq` has
    /// gone out live, so a `resume` does not send it again.
    snapshot_seq: u64,
    /// Set by the Hub when it gave up on this session (its mailbox was full).
    dropped: Arc<AtomicBool>,
}

#[derive(Deserialize)]
struct Seq {
    #[serde(default)]
    seq: u64,
}

fn seq_of(event: &str) -> u64 {
    serde_json::from_str::<Seq>(event).map_or(0, |e| e.seq)
}

/// Frames a client may send: `resume` (replay the events after `since`), `cancel`,
/// `subscribe` (a fresh snapshot) and `ping`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientFrame {
    Resume { since: u64 },
    Cancel { document_id: String },
    Subscribe,
    Ping,
}

/// The server's frames other than `snapshot` and events.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum ControlFrame {
    /// A frame the server could not act on; the socket stays open.
    #[serde(rename = "error")]
    Error { code: String, message: String, ts: i64 },
    #[serde(rename = "pong")]
    Pong { ts: i64 },
    /// The answer to `cancel`: the document's status after it.
    #[serde(rename = "cancel.accepted")]
    CancelAccepted {
        document_id: String,
        #[schema(schema_with = crate::job_state::document_status_schema)]
        queue_status: JobState,
        ts: i64,
    },
}

impl ControlFrame {
    fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A frame's `ts`: milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl SessionActor {
    fn send_error(ctx: &mut ws::WebsocketContext<Self>, code: &str, message: &str) {
        ctx.text(ControlFrame::Error { code: code.into(), message: message.into(), ts: now_ms() }.text());
    }

    /// A snapshot the client asked for (`subscribe`, or a resume from before what is
    /// kept): it takes `SNAPSHOT_TURNS` of the user's pace, or the client gets a
    /// `snapshot_rate_limited` error frame and the events that waited, and may ask again.
    fn send_asked_snapshot(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.pace.admit_snapshot(&self.user.id) {
            self.send_snapshot(ctx);
        } else {
            Self::send_error(ctx, "snapshot_rate_limited", &self.pace.snapshot_refusal());
            self.release_held_back(ctx);
        }
    }

    /// Sends a fresh snapshot; live events wait until it is out (no longer), and those
    /// it already reflects (seq not above its own) are dropped.
    fn send_snapshot(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if self.snapshot_in_flight {
            return;
        }
        self.snapshot_in_flight = true;
        self.held_back.get_or_insert_with(Vec::new);
        let (state, user_id) = (self.state.clone(), self.user.id.clone());
        let build = async move { snapshot::build(&state.db, &state.queue, &state.events, &user_id).await };
        ctx.spawn(build.into_actor(self).map(move |snapshot, act, ctx| {
            act.snapshot_in_flight = false;
            match snapshot {
                Ok(snapshot) => {
                    ctx.text(serde_json::to_string(&snapshot).unwrap_or_default());
                    act.sent_seq = act.sent_seq.max(snapshot.seq);
                    act.snapshot_seq = snapshot.seq;
                }
                Err(err) => {
                    // The detail (SQL, the pool) is for the log, as for every other error.
                    log::error!("snapshot for {} failed: {err}", act.user.id);
                    Self::send_error(ctx, "snapshot_unavailable", "the database is unavailable; try again shortly");
                }
            }
            if let Some(since) = act.resume_after_snapshot.take() {
                act.resume(since, ctx);
            } else if !act.replaying {
                act.release_held_back(ctx);
            }
        }));
    }

    /// Replays what the client missed since `since`, in order, before any newer live
    /// event, leaving out what this socket already sent live; when some of it is no
    /// longer kept, a snapshot instead.
    fn resume(&mut self, since: u64, ctx: &mut ws::WebsocketContext<Self>) {
        if self.snapshot_in_flight {
            self.resume_after_snapshot = Some(since);
            return;
        }
        if self.replaying {
            return;
        }
        self.replaying = true;
        self.held_back.get_or_insert_with(Vec::new);
        let (state, user_id) = (self.state.clone(), self.user.id.clone());
        let missed = async move { state.events.missed_since(&user_id, since).await };
        ctx.spawn(missed.into_actor(self).map(move |missed, act, ctx| {
            act.replaying = false;
            match missed {
                Ok(Missed::Events(events)) => {
                    for event in events {
                        let seq = seq_of(&event);
                        if seq > act.snapshot_seq && seq <= act.sent_seq {
                            continue;
                        }
                        act.sent_seq = act.sent_seq.max(seq);
                        ctx.text(event);
                    }
                    act.release_held_back(ctx);
                }
                Ok(Missed::Gap) | Err(_) => act.send_asked_snapshot(ctx),
            }
        }));
    }

    /// Sends the events that waited, except those the client already has.
    fn release_held_back(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        for event in self.held_back.take().unwrap_or_default() {
            self.deliver(event, ctx);
        }
    }

    fn deliver(&mut self, event: Arc<str>, ctx: &mut ws::WebsocketContext<Self>) {
        let seq = seq_of(&event);
        if seq > self.sent_seq {
            self.sent_seq = seq;
            ctx.text(&*event);
        }
    }

    fn cancel(&self, document_id: String, ctx: &mut ws::WebsocketContext<Self>) {
        let (state, user_id) = (self.state.clone(), self.user.id.clone());
        let cancel = async move {
            if !comparable_with_stored(&document_id) {
                return Err(AppError::NotFound("no such document".into()));
            }
            let id = document_id.clone();
            let document = state
                .db
                .run(move |conn| documents::find_for_user(conn, &user_id, &id))
                .await?
                .ok_or_else(|| AppError::NotFound("no such document".into()))?;
            Ok(cancel_document(&state.db, &state.queue, &state.events, document).await?)
        };
        ctx.spawn(cancel.into_actor(self).map(|result: Result<Document, AppError>, _, ctx| match result {
            Ok(document) => {
                ctx.text(
                    ControlFrame::CancelAccepted {
                        document_id: document.id,
                        queue_status: document.queue_status,
                        ts: now_ms(),
                    }
                    .text(),
                );
            }
            Err(err) => {
                let code = match err {
                    AppError::NotFound(_) => "not_found",
                    AppError::Conflict(_) => "conflict",
                    _ => "cancel_failed",
                };
                Self::send_error(ctx, code, &err.to_string());
            }
        }));
    }

    fn handle_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        match serde_json::from_str::<ClientFrame>(text) {
            Ok(ClientFrame::Resume { since }) => self.resume(since, ctx),
            Ok(ClientFrame::Cancel { document_id }) => self.cancel(document_id, ctx),
            Ok(ClientFrame::Subscribe) => self.send_asked_snapshot(ctx),
            Ok(ClientFrame::Ping) => {
                ctx.text(ControlFrame::Pong { ts: now_ms() }.text());
            }
            Err(err) => Self::send_error(
                ctx,
                "bad_frame",
                &format!("expected a JSON object with type resume, cancel, subscribe or ping: {err}"),
            ),
        }
    }
}

impl Actor for SessionActor {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let lifetime = Duration::from_secs(self.user.expires_at.saturating_sub(now));
        ctx.run_later(lifetime, |act, ctx| {
            log::info!("closing the WebSocket of {}: its token expired", act.user.id);
            close_socket(
                ctx,
                ws::CloseCode::Other(TOKEN_EXPIRED),
                "token expired; reconnect with a fresh token and resume",
            );
        });
        ctx.set_mailbox_capacity(self.state.config.server.ws_max_pending_events);
        let connect = Connect {
            user_id: self.user.id.clone(),
            session: ctx.address().recipient(),
            dropped: self.dropped.clone(),
        };
        self.hub
            .send(connect)
            .into_actor(self)
            .map(|id, act, ctx| match id {
                Ok(id) => act.session_id = Some(id),
                Err(_) => ctx.stop(),
            })
            .wait(ctx);
        match self.resume_from {
            Some(since) => self.resume(since, ctx),
            None => self.send_snapshot(ctx),
        }
        let server = &self.state.config.server;
        let silence_limit = Duration::from_millis(server.ws_silence_limit_ms);
        ctx.run_interval(Duration::from_millis(server.ws_ping_interval_ms), move |act, ctx| {
            if act.dropped.load(Ordering::Relaxed) {
                close_socket(
                    ctx,
                    ws::CloseCode::Other(TOO_FAR_BEHIND),
                    "this socket fell too far behind its events; reconnect with since",
                );
            } else if act.last_heard.elapsed() > silence_limit {
                log::info!("dropping silent WebSocket client of {}", act.user.id);
                // A client still there (its pongs lost) learns why, and reconnects.
                let reason = format!("nothing heard from this client for {} ms", silence_limit.as_millis());
                close_socket(ctx, ws::CloseCode::Away, reason);
            } else {
                ctx.ping(b"");
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        if let Some(session_id) = self.session_id {
            self.hub.do_send(Disconnect { user_id: self.user.id.clone(), session_id });
        }
    }
}

impl Handler<SessionMessage> for SessionActor {
    type Result = ();

    fn handle(&mut self, msg: SessionMessage, ctx: &mut Self::Context) {
        match msg {
            SessionMessage::Event(payload) => match self.held_back.as_mut() {
                Some(held_back) => held_back.push(payload),
                None => self.deliver(payload, ctx),
            },
            SessionMessage::Refresh => self.send_snapshot(ctx),
            SessionMessage::GoingAway => {
                close_socket(ctx, ws::CloseCode::Away, "the server is stopping; reconnect");
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for SessionActor {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        // Pongs too: the answers to the server's pings are one per ping interval, and
        // unasked-for ones are frames to read like any other.
        let counted = !matches!(msg, Ok(ws::Message::Close(_)));
        if counted && !self.frames.take() {
            log::warn!("closing a WebSocket of {}: over its frame rate", self.user.id);
            Self::send_error(ctx, "rate_limited", "too many frames; see server.ws_frames_per_sec");
            close_socket(ctx, ws::CloseCode::Policy, "too many frames");
            return;
        }
        match msg {
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Text(text)) => self.handle_text(&text, ctx),
            Ok(ws::Message::Binary(_)) => {
                Self::send_error(ctx, "bad_frame", "binary frames are not understood; send JSON text");
            }
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(ws::Message::Continuation(_) | ws::Message::Nop) => {}
            Err(_) => ctx.stop(),
        }
    }
}
