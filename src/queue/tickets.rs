//! One-time WebSocket tickets (`POST /api/ws-ticket`), kept under the SHA-256 of the
//! ticket (`ws_ticket:<hash>`) so Redis never holds a usable ticket. What a ticket
//! stands for is `auth`'s business; here it is an opaque string.

use std::time::Duration;

use super::{Queue, QueueError};

impl Queue {
    /// Counts one more ticket issued to `user_id` in the window of `ttl` that the
    /// user's first ticket in it opened; returns the count so far. The window's expiry
    /// is set whenever the key has none, so one lost with a dropped connection is set by
    /// the next call (EXPIRE's NX option would do it in one step, but needs Redis 7).
    pub async fn count_ws_ticket_issued(&self, user_id: &str, ttl: Duration) -> Result<u64, QueueError> {
        let mut conn = self.connection().await?;
        let key = self.keys().ws_tickets_issued(user_id);
        let (issued, expires_in): (u64, i64) =
            redis::pipe().cmd("INCR").arg(&key).cmd("TTL").arg(&key).query_async(&mut conn).await?;
        if expires_in < 0 {
            redis::cmd("EXPIRE").arg(&key).arg(ttl.as_secs().max(1)).query_async::<()>(&mut conn).await?;
        }
        Ok(issued)
    }

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
