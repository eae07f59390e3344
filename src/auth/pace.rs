//! How fast a signed-in caller may send requests: a token bucket per user, in this
//! process. Every request a token authenticates takes one turn; past the pace it is
//! answered 429 with Retry-After and costs nothing more. A snapshot takes
//! `SNAPSHOT_TURNS`: it reads every waiting document's position and sends them all.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub use crate::config::SNAPSHOT_TURNS;

/// A token bucket: `per_sec` turns a second, at most `burst` saved up.
pub struct TokenBucket {
    per_sec: f64,
    burst: f64,
    available: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    pub fn new(per_sec: u32, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket { per_sec: f64::from(per_sec), burst, available: burst, refilled_at: Instant::now() }
    }

    /// Takes one turn; false when the caller is over its pace.
    pub fn take(&mut self) -> bool {
        self.take_turns(1)
    }

    /// Takes `turns` at once, or none (false) when fewer are left.
    fn take_turns(&mut self, turns: u32) -> bool {
        self.refill(Instant::now());
        let turns = f64::from(turns);
        if self.available < turns {
            return false;
        }
        self.available -= turns;
        true
    }

    fn refill(&mut self, now: Instant) {
        let refill = now.duration_since(self.refilled_at).as_secs_f64() * self.per_sec;
        self.available = (self.available + refill).min(self.burst);
        self.refilled_at = now;
    }

    /// Whether the bucket would be full now: its owner has been quiet long enough that
    /// forgetting it changes nothing.
    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.available >= self.burst
    }
}

/// Each user's bucket (`server.requests_per_sec_per_user`, burst
/// `server.request_burst_per_user`); a pace of 0 admits everything.
pub struct RequestPace {
    per_sec: u32,
    burst: u32,
    buckets: Mutex<Buckets>,
}

struct Buckets {
    by_user: HashMap<String, TokenBucket>,
    /// The number of buckets at which full ones are forgotten: doubles with the users
    /// actually sending, so that forgetting stays rare however many there are.
    forget_at: usize,
}

const FORGET_AT_LEAST: usize = 4096;

impl RequestPace {
    pub fn new(per_sec: u32, burst: u32) -> RequestPace {
        let buckets = Buckets { by_user: HashMap::new(), forget_at: FORGET_AT_LEAST };
        RequestPace { per_sec, burst, buckets: Mutex::new(buckets) }
    }

    /// Why a request past the pace is refused.
    pub fn refusal(&self) -> String {
        format!(
            "more than {} requests a second from one user (bursts of up to {}); slow down",
            self.per_sec, self.burst
        )
    }

    /// Why a snapshot past the pace is refused.
    pub fn snapshot_refusal(&self) -> String {
        format!(
            "a snapshot counts as {SNAPSHOT_TURNS} of the {} requests a second one user may send; ask for them less \
             often, or follow the WebSocket's events",
            self.per_sec
        )
    }

    /// Takes one request's turn for `user`; false when the user is over the pace.
    pub fn admit(&self, user: &str) -> bool {
        self.admit_turns(user, 1)
    }

    /// Takes a snapshot's turns for `user`, asked for on a socket already open; false
    /// (taking none) when the user is over the pace.
    pub fn admit_snapshot(&self, user: &str) -> bool {
        self.admit_turns(user, SNAPSHOT_TURNS)
    }

    /// The rest of a snapshot's turns, for a request whose own turn `authenticate`
    /// took already; false (taking none) when the user is over the pace.
    pub fn admit_rest_of_snapshot(&self, user: &str) -> bool {
        self.admit_turns(user, SNAPSHOT_TURNS - 1)
    }

    /// Takes `turns` of `user`'s pace at once; false (taking none) when the user is
    /// over the pace.
    fn admit_turns(&self, user: &str, turns: u32) -> bool {
        if self.per_sec == 0 {
            return true;
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.by_user.len() >= buckets.forget_at {
            let now = Instant::now();
            buckets.by_user.retain(|_, bucket| !bucket.is_full(now));
            buckets.forget_at = (buckets.by_user.len() * 2).max(FORGET_AT_LEAST);
        }
        if let Some(bucket) = buckets.by_user.get_mut(user) {
            return bucket.take_turns(turns);
        }
        let mut bucket = TokenBucket::new(self.per_sec, self.burst);
        let admitted = bucket.take_turns(turns);
        buckets.by_user.insert(user.to_string(), bucket);
        admitted
    }

    /// Users with a bucket in memory.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.buckets.lock().unwrap().by_user.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_the_burst_then_is_refused_while_others_are_not() {
        let pace = RequestPace::new(1, 3);
        assert!((0..3).all(|_| pace.admit("alice")));
        assert!(!pace.admit("alice"));
        assert!(pace.admit("bob"));
    }

    #[test]
    fn a_costlier_request_takes_its_turns_or_none() {
        let pace = RequestPace::new(1, 25);
        assert!(pace.admit_snapshot("alice"));
        assert!(pace.admit_snapshot("alice"));
        assert!(!pace.admit_snapshot("alice"), "5 turns left");
        assert!((0..5).all(|_| pace.admit("alice")), "the refused one took none");
        assert!(!pace.admit("alice"));
    }

    #[test]
    fn a_pace_of_zero_admits_everything() {
        let pace = RequestPace::new(0, 1);
        assert!((0..10_000).all(|_| pace.admit("alice")));
        assert_eq!(pace.remembered(), 0);
    }

    #[test]
    fn quiet_users_are_forgotten_and_busy_ones_kept() {
        // 1,000,000 a second: a bucket is full again a microsecond after its last turn.
        let pace = RequestPace::new(1_000_000, 1);
        for user in 0..FORGET_AT_LEAST {
            assert!(pace.admit(&format!("user-{user}")));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(pace.admit("newcomer"));
        assert_eq!(pace.remembered(), 1, "the quiet users' full buckets are dropped");

        // One a second: every user is still short of a full bucket, so none is dropped.
        let pace = RequestPace::new(1, 1);
        for user in 0..FORGET_AT_LEAST {
            assert!(pace.admit(&format!("user-{user}")));
        }
        assert!(pace.admit("newcomer"));
        assert_eq!(pace.remembered(), FORGET_AT_LEAST + 1, "busy users keep their buckets");
        assert!(!pace.admit("user-0"), "and their pace");
    }
}
