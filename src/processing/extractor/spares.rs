//! Extractor processes started ahead of need. Starting one costs a few milliseconds
//! (exec, dynamic linking); a spare started while the last document was read makes
//! the next one pay only for handing over its bytes.

use std::sync::{Arc, Mutex};

use super::process::Started;

#[derive(Clone, Default)]
pub struct Spares {
    waiting: Arc<Mutex<Vec<Started>>>,
}

impl Spares {
    /// The oldest spare still alive (the likeliest to have finished starting), if any.
    pub fn take(&self) -> Option<Started> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        while !waiting.is_empty() {
            let spare = waiting.remove(0);
            if !spare.watched.has_exited() {
                return Some(spare);
            }
        }
        None
    }

    /// Starts spares until `target` wait; a failure to start is left for the next
    /// document to report.
    pub fn refill(&self, target: usize, start: impl Fn() -> std::io::Result<Started>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.retain(|spare| !spare.watched.has_exited());
        while waiting.len() < target {
            match start() {
                Ok(spare) => waiting.push(spare),
                Err(err) => {
                    log::warn!("no spare extractor process: {err}");
                    return;
                }
            }
        }
    }
}
