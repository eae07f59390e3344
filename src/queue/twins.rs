//! Claims on processing one content with one set of settings, so that identical
//! uploads in flight run once: the first document to claim `twin_run:…` processes, the
//! others (its twins) wait until it has completed and copy its chunks. A claim names
//! its holder, lives `ttl` unless renewed (a crashed holder frees it), and is
//! re-entrant (a holder's job run again after a lost lease still holds it).

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{Queue, QueueError};

/// Sets the claim when it is free or already the caller's, renewing its TTL; answers
/// the other holder otherwise. KEYS[1] is a key under the prefix, so a Redis Cluster
/// runs it on the node of every docqueue key.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local holder = redis.call('GET', KEYS[1])
        if holder and holder ~= ARGV[1] then return holder end
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        return false",
    )
});

/// Deletes the claim only if `holder` still holds it.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0",
    )
});

/// Who holds a claim after trying to take it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwinClaim {
    /// The caller holds it (newly, or still).
    Mine,
    /// This other document holds it.
    HeldBy(String),
}

impl Queue {
    /// Takes or renews the claim `key` for `holder` (a document id) for `ttl`.
    pub async fn claim_twin_run(&self, key: &str, holder: &str, ttl: Duration) -> Result<TwinClaim, QueueError> {
        let mut conn = self.connection().await?;
        let other: Option<String> =
            CLAIM.key(key).arg(holder).arg(ttl.as_millis() as u64).invoke_async(&mut conn).await?;
        Ok(other.map_or(TwinClaim::Mine, TwinClaim::HeldBy))
    }

    /// Frees the claim `key` if `holder` holds it: after a failed run (a failed
    /// original is never reused, so its twins must not wait for it), or by a twin that
    /// found the holder failed, cancelled or deleted.
    pub async fn release_twin_run(&self, key: &str, holder: &str) -> Result<(), QueueError> {
        let mut conn = self.connection().await?;
        let _: i64 = RELEASE.key(key).arg(holder).invoke_async(&mut conn).await?;
        Ok(())
    }
}
