//! How long an upload's body may take. No gap may be longer than
//! `server.body_timeout_secs`; as Apache's mod_reqtimeout does (`body=30-3600,
//! MinRate=500`), the whole body may take that long plus one second per
//! `server.min_body_bytes_per_sec` bytes received, and never more than
//! `server.max_body_secs`. Without these a client that sends a byte every few seconds,
//! or 500 bytes a second of a 100 MB file, would hold its upload slot, its connection
//! and its staging file for days.

use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};

use crate::error::AppError;

pub struct BodyPace {
    idle: Duration,
    min_bytes_per_sec: u64,
    most: Option<Duration>,
    started: Instant,
    received: u64,
}

impl BodyPace {
    /// `min_bytes_per_sec` 0: no rate; `most` None: no ceiling.
    pub fn new(idle: Duration, min_bytes_per_sec: u64, most: Option<Duration>) -> BodyPace {
        BodyPace { idle, min_bytes_per_sec, most, started: Instant::now(), received: 0 }
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
                    "the upload arrived slower than {} bytes a second (server.min_body_bytes_per_sec), or took \
                     longer than server.max_body_secs",
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
        let earned = (self.min_bytes_per_sec > 0)
            .then(|| self.idle + Duration::from_secs_f64(self.received as f64 / self.min_bytes_per_sec as f64));
        let allowed = [earned, self.most].into_iter().flatten().min()?;
        Some(allowed.saturating_sub(self.started.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_byte_received_earns_time_at_the_minimum_rate_up_to_the_ceiling() {
        let mut pace = BodyPace::new(Duration::from_secs(30), 500, Some(Duration::from_secs(3600)));
        let at_start = pace.time_left().unwrap();
        assert!(at_start <= Duration::from_secs(30) && at_start > Duration::from_secs(29));
        pace.count(5_000);
        let later = pace.time_left().unwrap();
        assert!(later > Duration::from_secs(39) && later <= Duration::from_secs(40), "{later:?}");
        pace.count(100 * 1024 * 1024);
        let most = pace.time_left().unwrap();
        assert!(most > Duration::from_secs(3599) && most <= Duration::from_secs(3600), "{most:?}");

        assert_eq!(BodyPace::new(Duration::from_secs(30), 0, None).time_left(), None);
        let ceiling_alone = BodyPace::new(Duration::from_secs(30), 0, Some(Duration::from_secs(60)));
        assert!(ceiling_alone.time_left().unwrap() > Duration::from_secs(59));
    }
}
