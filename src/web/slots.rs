//! Requests of one kind at work, per user and in all. A slow or stalled upload holds a
//! connection and a staging file, a search a turn at scoring, a WebSocket its buffers
//! and mailbox; these caps keep one user (or a crowd) from holding all of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Slots {
    taken: Mutex<Taken>,
}

#[derive(Default)]
struct Taken {
    total: usize,
    by_user: HashMap<String, usize>,
}

/// One request's place; given back when dropped.
pub struct Slot {
    slots: Arc<Slots>,
    user: String,
}

impl Slots {
    /// A place for one more request of `user`, unless the user has `per_user` already or
    /// the process `total`.
    pub fn take(self: &Arc<Self>, user: &str, per_user: usize, total: usize) -> Option<Slot> {
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        let mine = taken.by_user.get(user).copied().unwrap_or(0);
        if mine >= per_user || taken.total >= total {
            return None;
        }
        taken.total += 1;
        taken.by_user.insert(user.to_string(), mine + 1);
        Some(Slot { slots: self.clone(), user: user.to_string() })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut taken = self.slots.taken.lock().unwrap_or_else(|e| e.into_inner());
        taken.total -= 1;
        if let Some(mine) = taken.by_user.get_mut(&self.user) {
            *mine -= 1;
            if *mine == 0 {
                taken.by_user.remove(&self.user);
            }
        }
    }
}
