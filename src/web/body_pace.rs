//! How long an upload's body may take. No gap may be longer than
//! `server.body_timeout_secs`, and, as Apache's mod_reqtimeout does, the whole body may
//! take that long plus one second per `server.min_body_bytes_per_sec` bytes received.
//! Without the second rule a client that sends a byte every few seconds would hold its
//! upload slot, its connection and its staging file for ever.

use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};

use crate::error::AppError;

pub struct BodyPace {
    idle: Duration,
    min_bytes_per_sec: u64,
    started: Instant,
    received: u64,
}

impl BodyPace {
    /// `min_bytes_per_sec` 0: only the gaps are limited.
    pub fn new(idle: Duration, min_bytes_per_sec: u64) -> BodyPace {
        BodyPace { idle, min_bytes_per_sec, started: Instant::now(), received: 0 }
    }

    /// Counts body bytes received, each of which earns the body more time.
    pub fn count(&mut self, bytes: usize) {
        self.received += bytes as u64;
    }

    /// The stream's next item, unless the client sends nothing for the idle limit or
    /// falls behind the minimum rate. What has arrived already is always taken.
    pub async fn next<S: Stream + Unpin>(&self, stream: &mut S) -> Result<Option<S::Item>, AppError> {
        let left = self.time_left();
        let wait = left.map_or(self.idle, |left| left.min(self.idle));
        tokio::time::timeout(wait, stream.next()).await.map_err(|_| {
            if left.is_some_and(|left| left < self.idle) {
                AppError::RequestTimeout(format!(
                    "the upload arrived slower than {} bytes a second (server.min_body_bytes_per_sec)",
                    self.min_bytes_per_sec
                ))
            } else {
                AppError::RequestTimeout(format!(
                    "the upload sent nothing for {} s (server.body_timeout_secs)",
                    self.idle.as_secs()
                ))
            }
        })
    }

    /// What is left of the body's whole allowance; None when only gaps are limited.
    fn time_left(&self) -> Option<Duration> {
        if self.min_bytes_per_sec == 0 {
            return None;
        }
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_bytes_per_sec as f64);
        Some((self.idle + earned).saturating_sub(self.started.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_byte_received_earns_time_at_the_minimum_rate() {
        let mut pace = BodyPace::new(Duration::from_secs(30), 500);
        let at_start = pace.time_left().unwrap();
        assert!(at_start <= Duration::from_secs(30) && at_start > Duration::from_secs(29));
        pace.count(5_000);
        let later = pace.time_left().unwrap();
        assert!(later > Duration::from_secs(39) && later <= Duration::from_secs(40), "{later:?}");
        assert_eq!(BodyPace::new(Duration::from_secs(30), 0).time_left(), None);
    }
}
