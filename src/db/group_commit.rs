//! Group commit for the workers' row writes. A job's start, its chunks and its end are
//! small writes that every worker makes for every document; each in a transaction of
//! its own costs a commit apiece (on PostgreSQL a WAL flush to disk, on SQLite a turn of
//! the one write lock, and on both a trip to the blocking pool). Writes handed to
//! [`GroupCommit`] are run by one thread, which takes all that are waiting and runs them
//! in one transaction. Each caller hears its result after the commit, so nothing it
//! acts on can still be rolled back.
//!
//! One write that fails must not take the others down with it. A savepoint around each
//! write would see to that, but costs two more statements per write (on PostgreSQL two
//! more round trips), for a failure that almost never happens. So a batch runs without
//! them, and when one of its writes fails, the transaction is rolled back, that write
//! is answered with its error, and the others run again without it: the outcome is the
//! one they would have had with the failed write in a transaction of its own. A write
//! may therefore run more than once; it is a closure over the database alone
//! (`FnMut`), and a rolled-back run leaves no trace.
//!
//! Nothing waits for company: a write that arrives when the thread is idle commits at
//! once. Under load, writes gather while the last batch commits, so the batch size
//! follows the load.
//!
//! A write may be marked *undurable* ([`Commit::Asynchronous`]): its loss in a crash of
//! the database server is recovered by the queue (a job's start or its chunks: the job
//! runs again, as its end row, which is durable and written after them, is lost too).
//! A batch of such writes alone commits on PostgreSQL without waiting for its WAL flush
//! to disk (`synchronous_commit = off`, for that transaction only): it is visible at
//! once and durable a moment later, and any later durable commit flushes it first, as
//! the WAL is written in order. A worker's job then waits for one flush, its end's. On
//! SQLite (WAL, `synchronous = NORMAL`) no commit waits for a flush anyway.
//!
//! SQLite has one write lock, so one thread commits. PostgreSQL commits side by side
//! (and groups WAL flushes itself), so a few threads take batches in turn: one gathers
//! the next batch while another waits for its commit's flush.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use diesel::r2d2::{ConnectionManager, Pool};

use super::{write_transaction, write_transaction_without_flush, DbConnection, DbError};

/// Writes per transaction, at most: bounds how long one commit holds the write lock.
const MAX_BATCH: usize = 64;

/// Whether a write's commit must be on disk before its caller hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Durable,
    /// Its loss in a crash of the database server is recovered by the queue.
    Asynchronous,
}

/// One write waiting for its batch: run (again, if its batch was rolled back), then
/// told its fate once the commit is known.
trait PendingWrite: Send {
    fn commit(&self) -> Commit;
    /// Runs the write inside the current transaction; false when it failed.
    fn run(&mut self, conn: &mut DbConnection) -> bool;
    /// Tells the caller the write's result, or `failure` (the commit's, or why the
    /// write never ran) when that decides it.
    fn reply(self: Box<Self>, failure: Option<&DbError>);
}

struct Pending<T, F> {
    commit: Commit,
    write: F,
    result: Option<Result<T, DbError>>,
    caller: tokio::sync::oneshot::Sender<Result<T, DbError>>,
}

impl<T, F> PendingWrite for Pending<T, F>
where
    F: FnMut(&mut DbConnection) -> Result<T, DbError> + Send,
    T: Send,
{
    fn commit(&self) -> Commit {
        self.commit
    }

    fn run(&mut self, conn: &mut DbConnection) -> bool {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.write)(conn)))
            .unwrap_or_else(|_| Err(DbError::Task("the write panicked".into())));
        let ran = result.is_ok();
        self.result = Some(result);
        ran
    }

    fn reply(self: Box<Self>, failure: Option<&DbError>) {
        let result = match (self.result, failure) {
            (Some(Ok(_)), Some(err)) => Err(DbError::Task(format!("the commit failed: {err}"))),
            (Some(result), _) => result,
            (None, failure) => Err(DbError::Unavailable(failure.map_or_else(String::new, ToString::to_string))),
        };
        let _ = self.caller.send(result);
    }
}

type Write = Box<dyn PendingWrite>;

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

    /// Runs `f` in the next batch's transaction and returns its result once the batch
    /// has committed (`commit`: on disk, or only visible). `f` may run more than once
    /// (see the module's comment). The write is handed to the writer at the call, not
    /// when the returned future is first polled, so a caller decides which of its
    /// writes goes first.
    pub fn write<T, F>(&self, commit: Commit, f: F) -> impl Future<Output = Result<T, DbError>> + Send + 'static
    where
        F: FnMut(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let (caller, result) = tokio::sync::oneshot::channel();
        let write: Write = Box::new(Pending { commit, write: f, result: None, caller });
        let sent = self.writes.send(write).map_err(|_| DbError::Task("the group-commit writer has stopped".into()));
        async move {
            sent?;
            result.await.map_err(|_| DbError::Task("the write was lost: the group-commit writer stopped".into()))?
        }
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
                    write.reply(Some(&err));
                }
                continue;
            }
        };
        counts.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        commit(&mut conn, batch, counts);
    }
}

/// Commits `batch` in one transaction. A write that fails is taken out with its error,
/// and the others run again without it: each failure costs one more transaction.
fn commit(conn: &mut DbConnection, mut batch: Vec<Write>, counts: &Counts) {
    while !batch.is_empty() {
        let mut failing = None;
        let asynchronous = batch.iter().all(|write| write.commit() == Commit::Asynchronous);
        let run_all = |conn: &mut DbConnection| {
            for (i, write) in batch.iter_mut().enumerate() {
                if !write.run(conn) {
                    failing = Some(i);
                    return Err(DbError::Task("a write of the batch failed".into()));
                }
            }
            Ok(())
        };
        let committed = match asynchronous {
            true => write_transaction_without_flush(conn, run_all),
            false => write_transaction(conn, run_all),
        };
        counts.transactions.fetch_add(1, Ordering::Relaxed);
        match (committed, failing) {
            (Ok(()), _) => {
                batch.into_iter().for_each(|write| write.reply(None));
                return;
            }
            // Its own error is its result; the rest go again, as if it had come last.
            (Err(_), Some(i)) => batch.remove(i).reply(None),
            (Err(err), None) => {
                log::warn!("group commit of {} writes failed: {err}", batch.len());
                batch.into_iter().for_each(|write| write.reply(Some(&err)));
                return;
            }
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
