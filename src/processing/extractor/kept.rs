//! Extractor processes kept for their owner's next document. Starting a process costs
//! more than reading a small document, so after a clean read a process may read more of
//! the same user's documents, within bounds:
//!
//! - never another user's: whatever a hostile file does to its reader can reach only
//!   its own owner's later documents, never someone else's;
//! - at most `processing.max_documents_per_extractor` documents (1 turns reuse off);
//! - never once it has used [`CPU_BUDGET`] of CPU or [`PEAK_MEMORY_KB`] of memory
//!   (with its kept PDF helper's), so each document still gets almost all of the
//!   kernel's limits, which count per process;
//! - never after a document it could not read (`unreadable`), a crash or a kill;
//! - closed after [`IDLE_LIMIT`] without work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::process::{Started, Usage};

/// CPU a process may have used and still read another document.
pub const CPU_BUDGET: Duration = Duration::from_secs(1);
/// Peak resident memory a process may have reached and still read another document.
pub const PEAK_MEMORY_KB: i64 = 128 * 1024;
/// How long a kept process waits for its owner's next document.
pub const IDLE_LIMIT: Duration = Duration::from_secs(2);
/// Kept processes per owner and in all: bounds what idle readers hold.
const PER_OWNER: usize = 4;
const IN_ALL: usize = 16;

/// An extractor ready to read, and what it has done before.
pub struct Reader {
    pub process: Started,
    /// Documents it has read before this one.
    pub documents_read: u32,
    /// Its CPU time before this document.
    pub cpu_before: Duration,
}

impl Reader {
    pub fn fresh(process: Started) -> Reader {
        Reader { process, documents_read: 0, cpu_before: Duration::ZERO }
    }
}

#[derive(Clone, Default)]
pub struct Kept {
    idle: Arc<Mutex<HashMap<String, Vec<Idle>>>>,
    next_id: Arc<AtomicU64>,
}

struct Idle {
    id: u64,
    reader: Reader,
}

impl Kept {
    /// A live process kept for `owner`, the most recently used first.
    pub fn take(&self, owner: &str) -> Option<Reader> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.get_mut(owner)?;
        let mut found = None;
        while let Some(candidate) = kept.pop() {
            if !candidate.reader.process.watched.has_exited() {
                found = Some(candidate.reader);
                break;
            }
        }
        if kept.is_empty() {
            idle.remove(owner);
        }
        found
    }

    /// Keeps `reader` for `owner`'s next document, when the bounds allow it; otherwise
    /// it is dropped, which kills it. `usage` is what it has used so far.
    pub fn put(&self, owner: &str, reader: Reader, usage: Usage, max_documents: u32) {
        if reader.documents_read >= max_documents || usage.cpu >= CPU_BUDGET || usage.peak_memory_kb >= PEAK_MEMORY_KB {
            return;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let in_all: usize = idle.values().map(Vec::len).sum();
            let kept = idle.entry(owner.to_string()).or_default();
            if kept.len() >= PER_OWNER || in_all >= IN_ALL {
                return;
            }
            kept.push(Idle { id, reader });
        }
        // Closed when its wait is over, unless a document took it first.
        let (this, owner) = (self.clone(), owner.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(IDLE_LIMIT).await;
            this.close(&owner, id);
        });
    }

    fn close(&self, owner: &str, id: u64) {
        let closed = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let Some(kept) = idle.get_mut(owner) else { return };
            let closed = kept.iter().position(|k| k.id == id).map(|at| kept.remove(at));
            if kept.is_empty() {
                idle.remove(owner);
            }
            closed
        };
        // Dropped outside the lock: dropping kills the process.
        drop(closed);
    }
}
