//! Redis key names, all under the configured prefix so deployments can share a Redis.
//! The Lua scripts build the same names from the prefix (see lua/prelude.lua).

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

    /// Sorted set of job ids in one state (`active`, `delayed`, `completed`, …).
    pub fn state_set(&self, state: &str) -> String {
        format!("{}{state}", self.prefix)
    }

    /// Hash of live workers: id → JSON heartbeat.
    pub fn workers(&self) -> String {
        format!("{}workers", self.prefix)
    }

    /// Short lock so one process at a time runs a maintenance task.
    pub fn lock(&self, task: &str) -> String {
        format!("{}lock:{task}", self.prefix)
    }
}
