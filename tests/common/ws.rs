//! A WebSocket client for tests: connects with a token, reads JSON frames with a
//! time limit.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct WsClient {
    pub socket: Socket,
}

impl WsClient {
    pub async fn connect(base: &str, token: &str) -> WsClient {
        let url = format!("{}/ws?token={token}", base.replacen("http", "ws", 1));
        let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket connects");
        WsClient { socket }
    }

    /// The next JSON frame, or None if none came within `limit`.
    pub async fn next_json(&mut self, limit: Duration) -> Option<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => return Some(serde_json::from_str(&text).expect("JSON frame")),
                Ok(Some(Ok(_))) => continue,
                _ => return None,
            }
        }
    }

    /// Frames until one satisfies `done` (included); panics after `limit`.
    pub async fn collect_until(&mut self, limit: Duration, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        let mut frames = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(frame) = self.next_json(left).await else {
                panic!("no frame satisfied the condition; got {frames:#?}");
            };
            let stop = done(&frame);
            frames.push(frame);
            if stop {
                return frames;
            }
        }
    }

    /// The snapshot every connection starts with.
    pub async fn snapshot(&mut self) -> Value {
        let frame = self.next_json(Duration::from_secs(10)).await.expect("a snapshot on connect");
        assert_eq!(frame["type"], "snapshot", "{frame}");
        frame
    }

    /// Reads until the server closes the socket; returns the close code, or None if
    /// it did not close within `limit`.
    pub async fn close_code(&mut self, limit: Duration) -> Option<u16> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match tokio::time::timeout(left, self.socket.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return Some(frame.map_or(1005, |f| u16::from(f.code))),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return Some(1006),
                Err(_) => return None,
            }
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.socket.send(Message::Text(value.to_string().into())).await.unwrap();
    }
}

/// Is this the event of `kind` for document `id`?
pub fn is_event(frame: &Value, kind: &str, id: &str) -> bool {
    frame["type"] == kind && frame["document_id"] == id
}
