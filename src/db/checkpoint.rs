//! SQLite's write-ahead log is copied back into the database file (a checkpoint) by a
//! thread of its own. Left to SQLite, the commit that takes the log past 1,000 pages
//! runs the checkpoint itself, two fsyncs and the page copies included, while every
//! writer behind it waits: a few times a second under load, that stall was a tenth of
//! a small document's processing time. Here the writers' own checkpoints start only at
//! [`WRITER_CHECKPOINT_PAGES`], a backstop for a log this thread could not empty, and
//! this thread runs a passive checkpoint every [`INTERVAL`]: it takes no lock that
//! writers wait for, and copies what every reader has moved past.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, Pool};

use super::DbConnection;

/// How often the log is copied back.
const INTERVAL: Duration = Duration::from_millis(1000);

/// Log pages after which the committing writer checkpoints, as SQLite does by default
/// at 1,000. A passive checkpoint that overlaps a write leaves the log unemptied, and
/// only an emptied log starts again from its beginning; under a steady stream of writes
/// this bounds the file at about 32 MB.
pub const WRITER_CHECKPOINT_PAGES: u32 = 8_192;

/// What the log file is cut back to once a checkpoint has emptied it: a burst that
/// grew it does not keep its disk space for ever (SQLite's default keeps all of it).
pub const LOG_FILE_LIMIT_BYTES: u64 = 32 * 1024 * 1024;

/// The checkpoint thread; it ends when the last clone of this (one per `Db` handle) is
/// dropped.
#[derive(Clone)]
pub struct Checkpointer {
    _running: mpsc::Sender<()>,
}

impl Checkpointer {
    pub fn start(pool: Pool<ConnectionManager<DbConnection>>) -> std::io::Result<Checkpointer> {
        let (running, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new().name("docqueue-checkpoint".into()).spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                checkpoint(&pool);
            }
        })?;
        Ok(Checkpointer { _running: running })
    }
}

fn checkpoint(pool: &Pool<ConnectionManager<DbConnection>>) {
    let Ok(mut conn) = pool.get() else { return };
    // Busy only while another connection checkpoints: the next turn tries again.
    if let Err(err) = conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE);") {
        log::debug!("WAL checkpoint skipped: {err}");
    }
}
