//! A figure anyone may ask for without a token (`/metrics`, `/readyz`) but that costs
//! the shared Redis and database to make: it is made one at a time per process, and a
//! request that arrives while one is being made is answered by the next one begun
//! after it arrived. Every answer is as fresh as its request, and a flood of requests
//! costs one making at a time, not one each.

use std::future::Future;
use std::time::Instant;

pub struct Coalesced<T> {
    latest: tokio::sync::Mutex<Option<(Instant, T)>>,
}

impl<T> Default for Coalesced<T> {
    fn default() -> Self {
        Coalesced { latest: tokio::sync::Mutex::new(None) }
    }
}

impl<T: Clone> Coalesced<T> {
    /// A value made no earlier than this call: the last one when it qualifies, else
    /// one `make`s now (waiting for the one under way first). A failure is a value
    /// like any other (`T` may be a `Result`): the requests that waited for it share it
    /// instead of each trying again, one after another, while a dependency is down.
    pub async fn fresh<F, Fut>(&self, make: F) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let arrived = Instant::now();
        let mut latest = self.latest.lock().await;
        if let Some((began, value)) = &*latest {
            if *began >= arrived {
                return value.clone();
            }
        }
        let began = Instant::now();
        let value = make().await;
        *latest = Some((began, value.clone()));
        value
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[actix_web::test]
    async fn requests_during_a_making_share_the_next_one_and_later_requests_get_a_new_one() {
        let latest = Coalesced::default();
        let made = AtomicUsize::new(0);
        let make = || async {
            let n = made.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            n
        };
        let answers = futures_util::future::join_all((0..20).map(|_| latest.fresh(make))).await;
        assert!(answers.iter().all(|n| *n <= 2), "{answers:?}");
        let made_for_the_flood = made.load(Ordering::SeqCst);
        assert!(made_for_the_flood <= 2, "20 requests at once made {made_for_the_flood}");
        let later = latest.fresh(make).await;
        assert_eq!(later, made_for_the_flood + 1, "a later request is never answered with an older one");
    }
}
