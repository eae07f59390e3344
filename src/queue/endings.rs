//! The job endings of this process, sent to Redis together.
//!
//! A finished job ends in `lua/complete.lua`, which also claims its worker's next job.
//! Part of what a call costs single-threaded Redis is paid once per call, not per job:
//! reading the call, setting up the script, writing the reply, and the commands a run
//! does once however many jobs it ends (the pause check, the virtual time, the process's
//! liveness key, the counters). Up to `CALLS_AT_ONCE` calls are on their way at once.
//! A worker whose ending finds fewer out makes a call itself, with its ending alone, so a
//! pool of a few workers sends as before. Endings that arrive while all those calls are
//! out wait, and go together in the next call, made by a task; they are stamped as
//! finished when that call runs, less than a round trip later.

use std::sync::Mutex;

use tokio::sync::oneshot;

use super::{Queue, QueueError};

/// At most this many endings go in one call, so that no call holds Redis for long.
const MOST_PER_CALL: usize = 64;
/// Calls on their way at once. Fewer made a small pool slower: an ending that waits
/// is sent by a task and answered across tasks, which cost more than the call saved.
const CALLS_AT_ONCE: usize = 8;

/// One job's ending, and the claim of its worker's next job when `next` is given.
pub(super) struct Ending {
    pub job_id: String,
    pub token: String,
    pub state: &'static str,
    pub error: String,
    pub next: Option<NextClaim>,
}

/// Who claims the next job, with which token (see `Queue::claim_for_process`).
pub(super) struct NextClaim {
    pub worker_id: String,
    pub process: String,
    pub token: String,
}

/// The script's reply for one ending (see `lua/complete.lua`).
type Reply = Result<Vec<String>, QueueError>;

type Waiting = (Ending, oneshot::Sender<Reply>);

/// This process's endings that wait for a call, and the calls on their way.
#[derive(Default)]
pub(super) struct Endings {
    state: Mutex<EndingsState>,
}

#[derive(Default)]
struct EndingsState {
    waiting: Vec<Waiting>,
    calls: usize,
}

impl Endings {
    fn state(&self) -> std::sync::MutexGuard<'_, EndingsState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Queue {
    /// Ends a job, in one call with the endings of other workers of this process that
    /// wait meanwhile. When a call may start, this caller makes it: no task in between.
    pub(super) async fn send_ending(&self, ending: Ending) -> Reply {
        let (answer, answered) = oneshot::channel();
        let batch = {
            let mut state = self.endings.state();
            state.waiting.push((ending, answer));
            (state.calls < CALLS_AT_ONCE).then(|| {
                state.calls += 1;
                take_batch(&mut state.waiting)
            })
        };
        if let Some(batch) = batch {
            let call = Call { queue: self.clone() };
            self.end_jobs(batch).await;
            drop(call);
        }
        answered.await.unwrap_or_else(|_| Err(QueueError::Pool("the call that held this job's ending stopped".into())))
    }

    /// One script call for `batch`; each ending gets its reply.
    async fn end_jobs(&self, batch: Vec<Waiting>) {
        match self.invoke_complete(&batch).await {
            Ok(replies) => {
                for ((_, answer), reply) in batch.into_iter().zip(replies) {
                    let _ = answer.send(Ok(reply));
                }
            }
            Err(err) => {
                for (_, answer) in batch {
                    let _ = answer.send(Err(err.clone()));
                }
            }
        }
    }

    async fn invoke_complete(&self, batch: &[Waiting]) -> Result<Vec<Vec<String>>, QueueError> {
        let mut invocation = self.invocation(&self.scripts.complete);
        for (ending, _) in batch {
            let (worker_id, process, token) = match &ending.next {
                Some(next) => (next.worker_id.as_str(), next.process.as_str(), next.token.as_str()),
                None => ("", "", ""),
            };
            invocation
                .arg(&ending.job_id)
                .arg(&ending.token)
                .arg(ending.state)
                .arg(&ending.error)
                .arg(worker_id)
                .arg(token)
                .arg(self.config.lease_ms)
                .arg(process)
                .arg(self.config.process_liveness_ms);
        }
        let mut conn = self.connection().await?;
        let replies: Vec<Vec<String>> = invocation.invoke_async(&mut conn).await?;
        if replies.len() != batch.len() {
            return Err(QueueError::Reply(format!("{} replies to {} job endings", replies.len(), batch.len())));
        }
        Ok(replies)
    }
}

/// The next call's endings. An ending whose caller stopped waiting is left out, as it
/// would never have been sent had its caller made the call: it would claim a job for a
/// worker that is gone.
fn take_batch(waiting: &mut Vec<Waiting>) -> Vec<Waiting> {
    waiting.retain(|(_, answer)| !answer.is_closed());
    let rest = waiting.split_off(waiting.len().min(MOST_PER_CALL));
    std::mem::replace(waiting, rest)
}

/// A call on its way. When it ends (or its caller stops waiting for it), endings that
/// waited meanwhile are sent by a task, since their callers wait for a call, not to make
/// one. So a worker's own call carries its ending alone (endings wait only while all
/// calls are out), and a worker that stops waiting, its actor stopped, drops no one
/// else's ending. The task's call is a `Call` too, so its slot is handed on or given
/// back even when the task is dropped before it runs.
struct Call {
    queue: Queue,
}

impl Drop for Call {
    fn drop(&mut self) {
        let batch = {
            let mut state = self.queue.endings.state();
            let batch = take_batch(&mut state.waiting);
            if batch.is_empty() {
                state.calls -= 1;
                return;
            }
            batch
        };
        let call = Call { queue: self.queue.clone() };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    call.queue.end_jobs(batch).await;
                    drop(call);
                });
            }
            // No runtime to send them from: their callers hear that the call stopped, and
            // dropping `call` does the same for the endings still waiting.
            Err(_) => drop((batch, call)),
        }
    }
}
