//! Redis key names, all under the configured prefix so deployments can share a Redis.
//! Every key docqueue uses is named here; the Lua scripts build the same names from
//! the prefix (lua/prelude.lua lists them too). On a Redis Cluster the prefix carries
//! a hash tag (`{docq}:`), which puts every key below in one slot.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `job:<id>` | hash | one job's record (state, token, attempts, announced position, the jobs deferred until its end (`waiters`), …) |
//! | `queue` | sorted set | every waiting job, by fair slot: the claim order (fairness.md) |
//! | `waiting_since` | sorted set | every waiting job, by when (ms) it began this wait: `queue` is in fair order, not by age, so the longest wait is read here (lua/oldest_waiting.lua) |
//! | `vtime` | string | the virtual time: the slot of the last claimed job |
//! | `waiting:<user>` | sorted set | a user's waiting jobs, by priority then arrival |
//! | `users_waiting` | hash | each user with waiting jobs: how many |
//! | `delayed`, `active`, `completed`, `failed`, `cancelled` | sorted set | jobs per state |
//! | `wake` | list | one entry per new job; idle workers block on it |
//! | `paused` | string | present while the queue is paused |
//! | `stats` | hash | counters since the queue was created |
//! | `throughput:<minute>` | string | completions in that minute |
//! | `hist:types`, `hist:<name>` | set, hash | duration and wait histograms (summed up per process first: statistics.rs) |
//! | `eta` | hash | ms per KiB by content type (moving average, as above) |
//! | `seq` | string | arrival counter: orders waiting jobs of equal priority |
//! | `workers` | hash | live workers' heartbeats |
//! | `alive:<process>` | string with a TTL | present while a worker process (`host:pid`) lives |
//! | `lock:<task>` | string | one process at a time runs a maintenance task |
//! | `events` | pub/sub channel | every user's events, to every process's Hub |
//! | `events:seq:<user>` | string | the user's last event `seq` |
//! | `events:stream:<user>` | stream | the user's recent events, for resume |
//! | `ws_ticket:<sha256 of the ticket>` | string with a 30 s TTL | a one-time WebSocket ticket's user, role and token expiry (JSON); taken with GETDEL |
//! | `ws_tickets_issued:<user>` | string with a 30 s TTL | tickets issued to the user in the current 30 s: bounds the tickets one user keeps in Redis |
//! | `twin_run:<scope>:<sha256>:<settings>` | string with a TTL | the document whose run makes the chunks of this content with these settings; its twins wait for it and copy (queue/twins.rs) |

use crate::job_state::JobState;

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.to_string() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn job(&self, job_id: &str) -> String {
        format!("{}job:{job_id}", self.prefix)
    }

    pub fn waiting(&self, user_id: &str) -> String {
        format!("{}waiting:{user_id}", self.prefix)
    }

    /// Every waiting job, in the order claims take them.
    pub fn queue(&self) -> String {
        format!("{}queue", self.prefix)
    }

    /// Each user with waiting jobs: how many.
    pub fn waiting_users(&self) -> String {
        format!("{}users_waiting", self.prefix)
    }

    /// Sorted set of job ids in one state. Waiting jobs have none: they wait in
    /// `queue()` and `waiting(user)`.
    pub fn state_set(&self, state: JobState) -> String {
        format!("{}{}", self.prefix, state.redis_name())
    }

    /// Idle workers block on this list; every new waiting job pushes one entry.
    pub fn wake(&self) -> String {
        format!("{}wake", self.prefix)
    }

    pub fn paused(&self) -> String {
        format!("{}paused", self.prefix)
    }

    pub fn stats(&self) -> String {
        format!("{}stats", self.prefix)
    }

    /// Completions in one minute (minutes since the epoch).
    pub fn throughput(&self, minute: i64) -> String {
        format!("{}throughput:{minute}", self.prefix)
    }

    /// The set of content types that have a duration histogram.
    pub fn histogram_types(&self) -> String {
        format!("{}hist:types", self.prefix)
    }

    /// One histogram: `wait`, or `duration:<content type>`.
    pub fn histogram(&self, name: &str) -> String {
        format!("{}hist:{name}", self.prefix)
    }

    pub fn eta(&self) -> String {
        format!("{}eta", self.prefix)
    }

    /// Hash of live workers: id → JSON heartbeat.
    pub fn workers(&self) -> String {
        format!("{}workers", self.prefix)
    }

    /// Present while the worker process `process` (`host:pid`) is alive.
    pub fn process_alive(&self, process: &str) -> String {
        format!("{}alive:{process}", self.prefix)
    }

    /// Short lock so one process at a time runs a maintenance task.
    pub fn lock(&self, task: &str) -> String {
        format!("{}lock:{task}", self.prefix)
    }

    /// The pub/sub channel every Hub subscribes to.
    pub fn events_channel(&self) -> String {
        format!("{}events", self.prefix)
    }

    pub fn events_seq(&self, user_id: &str) -> String {
        format!("{}events:seq:{user_id}", self.prefix)
    }

    /// A WebSocket ticket, named by its hash so the key never holds a usable ticket.
    pub fn ws_ticket(&self, ticket_sha256: &str) -> String {
        format!("{}ws_ticket:{ticket_sha256}", self.prefix)
    }

    pub fn ws_tickets_issued(&self, user_id: &str) -> String {
        format!("{}ws_tickets_issued:{user_id}", self.prefix)
    }

    /// The claim on processing one content with one set of settings, within a scope
    /// ("user:<id>", or "global").
    pub fn twin_run(&self, scope: &str, sha256: &str, settings_fingerprint: &str) -> String {
        format!("{}twin_run:{scope}:{sha256}:{settings_fingerprint}", self.prefix)
    }
}
