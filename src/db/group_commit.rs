//! Group commit for the workers' row writes. A job's start, its chunks and its end are
//! small writes that every worker makes for every document; each in a transaction of
//! its own costs a commit apiece (on PostgreSQL a WAL flush to disk, on SQLite a turn of
//! the one write lock, and on both a trip to the blocking pool). Writes handed to
//! [`GroupCommit`] are run by one thread, which takes all that are waiting and runs them
//! in one transaction, each in a savepoint of its own: one write that fails rolls back
//! alone, and the others commit together. Each caller hears its result after the
//! commit, so nothing it acts on can still be rolled back.
//!
//! Nothing waits for company: a write that arrives when the thread is idle commits at
//! once. Under load, writes gather while the last batch commits, so the batch size
//! follows the load.
//!
//! SQLite has one write lock, so one thread commits. PostgreSQL commits side by side
//! (and groups WAL flushes itself), so a few threads take batches in turn: one gathers
//! the next batch while another waits for its commit's flush.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use diesel::r2d2::{ConnectionManager, Pool};

use super::{write_transaction, DbConnection, DbError};

/// Writes per transaction, at most: bounds how long one commit holds the write lock.
const MAX_BATCH: usize = 64;

/// One write: it runs in the batch's transaction, or is told why there is none, and
/// returns what tells its caller the result once the commit is known.
type Write = Box<dyn FnOnce(Result<&mut DbConnection, &DbError>) -> Reply + Send>;
/// Tells the caller its result; given the commit's error, if the commit failed.
type Reply = Box<dyn FnOnce(Option<&DbError>) + Send>;

#[derive(Clone)]
pub struct GroupCommit {
    writes: mpsc::Sender<Write>,
    counts: Arc<Counts>,
}

/// Transactions committed (or rolled back) and the writes they carried, for `/metrics`:
/// writes per commit is the batch size the load produced.
#[derive(Default)]
struct Counts {
    transactions: AtomicU64,
    writes: AtomicU64,
}

impl GroupCommit {
    /// Starts `threads` writer threads. They end when the last handle is dropped.
    pub fn start(pool: Pool<ConnectionManager<DbConnection>>, threads: usize) -> std::io::Result<GroupCommit> {
        let (writes, waiting) = mpsc::channel();
        let waiting = Arc::new(Mutex::new(waiting));
        let counts = Arc::new(Counts::default());
        for _ in 0..threads.max(1) {
            let (pool, waiting, counts) = (pool.clone(), waiting.clone(), counts.clone());
            std::thread::Builder::new()
                .name("docqueue-group-commit".into())
                .spawn(move || commit_batches(&pool, &waiting, &counts))?;
        }
        Ok(GroupCommit { writes, counts })
    }

    /// (transactions, writes) so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.counts.transactions.load(Ordering::Relaxed), self.counts.writes.load(Ordering::Relaxed))
    }

    /// Runs `f` in the next batch's transaction (in a savepoint of its own) and returns
    /// its result once the batch has committed.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let write: Write = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => write_transaction(conn, f),
                Err(err) => Err(DbError::Unavailable(err.to_string())),
            };
            Box::new(move |commit_failed: Option<&DbError>| {
                let result = match (result, commit_failed) {
                    (Ok(_), Some(err)) => Err(DbError::Task(format!("the commit failed: {err}"))),
                    (result, _) => result,
                };
                let _ = sender.send(result);
            })
        });
        self.writes.send(write).map_err(|_| DbError::Task("the group-commit writer has stopped".into()))?;
        receiver.await.map_err(|_| DbError::Task("the write was lost: a write in its batch panicked".into()))?
    }
}

fn commit_batches(
    pool: &Pool<ConnectionManager<DbConnection>>,
    waiting: &Mutex<mpsc::Receiver<Write>>,
    counts: &Counts,
) {
    while let Some(batch) = next_batch(waiting) {
        let mut conn = match pool.get() {
            Ok(conn) => conn,
            Err(err) => {
                let err = DbError::Unavailable(err.to_string());
                for write in batch {
                    write(Err(&err))(None);
                }
                continue;
            }
        };
        let mut replies = Vec::with_capacity(batch.len());
        let committed = write_transaction(&mut conn, |conn| {
            for write in batch {
                // A panic rolls the whole batch back (its savepoint cannot be trusted);
                // the thread goes on with the next batch.
                let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(Ok(conn))))
                    .map_err(|_| DbError::Task("a write panicked; its batch was rolled back".into()))?;
                replies.push(reply);
            }
            Ok(())
        });
        counts.transactions.fetch_add(1, Ordering::Relaxed);
        counts.writes.fetch_add(replies.len() as u64, Ordering::Relaxed);
        let failure = committed.err();
        if let Some(err) = &failure {
            log::warn!("group commit of {} writes failed: {err}", replies.len());
        }
        for reply in replies {
            reply(failure.as_ref());
        }
    }
}

/// Waits for a write, then takes every write waiting behind it (up to `MAX_BATCH`);
/// `None` once every handle is gone. One thread gathers at a time.
fn next_batch(waiting: &Mutex<mpsc::Receiver<Write>>) -> Option<Vec<Write>> {
    let waiting = waiting.lock().unwrap_or_else(|e| e.into_inner());
    let mut batch = vec![waiting.recv().ok()?];
    while batch.len() < MAX_BATCH {
        match waiting.try_recv() {
            Ok(write) => batch.push(write),
            Err(_) => break,
        }
    }
    Some(batch)
}
