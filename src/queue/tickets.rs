//! One-time WebSocket tickets (`POST /api/ws-ticket`), kept under the SHA-256 of the
//! ticket (`ws_ticket:<hash>`) so Redis never holds a usable ticket. What a ticket
//! stands for is `auth`'s business; here it is an opaque string.

use std::time::Duration;

use super::{Queue, QueueError};

impl Queue {
    /// Keeps `holder` under the ticket's hash for `ttl`.
    pub async fn keep_ws_ticket(&self, ticket_hash: &str, holder: &str, ttl: Duration) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        redis::cmd("SET")
            .arg(self.keys().ws_ticket(ticket_hash))
            .arg(holder)
            .arg("EX")
            .arg(ttl.as_secs().max(1))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Takes the holder kept under the ticket's hash (GETDEL: a second use finds nothing).
    pub async fn take_ws_ticket(&self, ticket_hash: &str) -> Result<Option<String>, QueueError> {
        let mut conn = self.connection().await?;
        Ok(redis::cmd("GETDEL").arg(self.keys().ws_ticket(ticket_hash)).query_async(&mut conn).await?)
    }
}
