//! The database: one Diesel `MultiConnection` over PostgreSQL and SQLite, an r2d2
//! pool, embedded migrations, and `Db::run`, which keeps every blocking query off the
//! actix event loops.

pub mod attempts;
mod cached;
mod checkpoint;
pub mod chunks;
pub mod documents;
mod group_commit;
pub mod models;
pub mod schema;
mod stable_plans;

use std::future::Future;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::config::DatabaseConfig;
use checkpoint::Checkpointer;
use group_commit::{Commit, GroupCommit};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// PostgreSQL comes first: SQLite accepts any string as a file name.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database task failed: {0}")]
    Task(String),
}

/// SQLite's writers in this process take turns here before `BEGIN IMMEDIATE`. SQLite
/// has one write lock per database, and a writer that finds it taken waits in its busy
/// handler, which sleeps in steps of up to 100 ms: three workers and an upload then
/// spend more time asleep than writing. A mutex hands the turn over at once; the busy
/// handler is left for writers in other processes.
static SQLITE_WRITE_TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a transaction that writes. On SQLite it starts with `BEGIN IMMEDIATE`,
/// taking the write lock up front where `busy_timeout` waits for it: a deferred
/// transaction that reads first fails at once with "database is locked" when another
/// writer commits between its read and its write, which is what concurrent uploads and
/// workers do all day.
///
/// Inside another transaction `f` simply runs in it, and that transaction's end commits
/// or rolls it back: every caller passes a failure on (with `?`), so a savepoint of its
/// own would only cost two more statements per write (on PostgreSQL, two round trips).
pub fn write_transaction<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    if in_transaction(conn)? {
        return f(conn);
    }
    match conn {
        DbConnection::Sqlite(_) => {
            let _turn = SQLITE_WRITE_TURN.lock().unwrap_or_else(|e| e.into_inner());
            begun_with(conn, "BEGIN IMMEDIATE", f)
        }
        DbConnection::Postgresql(_) => conn.transaction(f),
    }
}

/// As `write_transaction`, for writes whose loss in a crash of the database server the
/// queue recovers from: on PostgreSQL the transaction commits without waiting for its
/// WAL flush (`synchronous_commit = off`, for this transaction only), and that setting
/// goes with its `BEGIN` in one round trip. SQLite (WAL, `synchronous = NORMAL`) never
/// waits for a flush at commit anyway.
pub fn write_transaction_without_flush<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    if matches!(conn, DbConnection::Postgresql(_)) && !in_transaction(conn)? {
        return begun_with(conn, "BEGIN; SET LOCAL synchronous_commit = off", f);
    }
    write_transaction(conn, f)
}

fn in_transaction(conn: &mut DbConnection) -> Result<bool, DbError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let depth = match conn {
        DbConnection::Postgresql(pg) => {
            AnsiTransactionManager::transaction_manager_status_mut(pg).transaction_depth()?
        }
        DbConnection::Sqlite(sqlite) => {
            AnsiTransactionManager::transaction_manager_status_mut(sqlite).transaction_depth()?
        }
    };
    Ok(depth.is_some())
}

/// Runs `f` in a transaction begun by the SQL `begin`, then commits, or rolls back when
/// `f` fails. Begun through the inner connection's transaction manager, so that a
/// `write_transaction` or `transaction` inside `f` sees it.
fn begun_with<T>(
    conn: &mut DbConnection,
    begin: &str,
    f: impl FnOnce(&mut DbConnection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    use diesel::connection::{AnsiTransactionManager as Manager, TransactionManager};
    let begun = match conn {
        DbConnection::Postgresql(pg) => Manager::begin_transaction_sql(pg, begin),
        DbConnection::Sqlite(sqlite) => Manager::begin_transaction_sql(sqlite, begin),
    };
    if let Err(err) = begun {
        // `begin` may hold more than BEGIN: when a later statement of it failed, the
        // transaction it began must end here, or the connection goes back to the pool
        // inside an aborted transaction that Diesel does not know of.
        if let DbConnection::Postgresql(pg) = conn {
            let _ = pg.batch_execute("ROLLBACK");
        }
        return Err(err.into());
    }
    let result = f(conn);
    let ended = match (conn, result.is_ok()) {
        (DbConnection::Postgresql(pg), true) => Manager::commit_transaction(pg),
        (DbConnection::Sqlite(sqlite), true) => Manager::commit_transaction(sqlite),
        (DbConnection::Postgresql(pg), false) => Manager::rollback_transaction(pg),
        (DbConnection::Sqlite(sqlite), false) => Manager::rollback_transaction(sqlite),
    };
    match (result, ended) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(commit)) => Err(commit.into()),
        (Err(err), rolled_back) => {
            if let Err(rollback) = rolled_back {
                log::warn!("rollback failed: {rollback}");
            }
            Err(err)
        }
    }
}

/// Which engine a `database.url` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(String),
}

impl DatabaseUrl {
    /// `postgres://…` and `postgresql://…` are PostgreSQL; `sqlite://PATH`, `sqlite:PATH`
    /// and a plain path are SQLite files.
    pub fn parse(url: &str) -> DatabaseUrl {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return DatabaseUrl::Postgres(url.to_string());
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        DatabaseUrl::Sqlite(path.to_string())
    }
}

#[derive(Debug)]
struct SqlitePragmas {
    busy_timeout_ms: u32,
}

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(conn) = conn {
            // WAL is a property of the file, set once in Db::connect.
            conn.batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                 PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {};",
                self.busy_timeout_ms,
                checkpoint::WRITER_CHECKPOINT_PAGES,
                checkpoint::LOG_FILE_LIMIT_BYTES
            ))
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// A cheap handle to the connection pool; clone it freely.
#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<DbConnection>>,
    group_commit: GroupCommit,
    /// SQLite only: copies the write-ahead log back off the writers' path.
    _checkpointer: Option<Checkpointer>,
}

impl Db {
    /// Opens the pool. A PostgreSQL URL is tried once directly first, so a wrong
    /// address or password is reported as such at once instead of after the pool's
    /// retries.
    pub fn connect(config: &DatabaseConfig) -> Result<Db, DbError> {
        let engine = DatabaseUrl::parse(&config.url);
        let is_sqlite = matches!(engine, DatabaseUrl::Sqlite(_));
        let url = match engine {
            DatabaseUrl::Postgres(url) => {
                diesel::PgConnection::establish(&url).map_err(|e| DbError::Unavailable(format!("PostgreSQL: {e}")))?;
                url
            }
            DatabaseUrl::Sqlite(path) => {
                stable_plans::enable_for_new_connections();
                if let Some(parent) = std::path::Path::new(&path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| DbError::Unavailable(format!("SQLite directory: {e}")))?;
                    }
                }
                // Readers and the writer work side by side in WAL mode. Set once, on one
                // connection, before the pool opens its others (switching needs the lock).
                let mut first = diesel::SqliteConnection::establish(&path)
                    .map_err(|e| DbError::Unavailable(format!("SQLite: {e}")))?;
                first.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL;",
                    config.sqlite_busy_timeout_ms
                ))?;
                path
            }
        };
        let pool = Pool::builder()
            .max_size(config.pool_size)
            .connection_timeout(Duration::from_secs(5))
            .connection_customizer(Box::new(SqlitePragmas { busy_timeout_ms: config.sqlite_busy_timeout_ms }))
            .build(ConnectionManager::<DbConnection>::new(url))
            .map_err(|e| DbError::Unavailable(e.to_string()))?;
        // SQLite: one writer (one write lock). PostgreSQL: a few, a quarter of the pool.
        let writers = if is_sqlite { 1 } else { (config.pool_size as usize / 4).clamp(1, 4) };
        let group_commit = GroupCommit::start(pool.clone(), writers)
            .map_err(|e| DbError::Unavailable(format!("the group-commit writer did not start: {e}")))?;
        let checkpointer = if is_sqlite {
            Some(
                Checkpointer::start(pool.clone())
                    .map_err(|e| DbError::Unavailable(format!("the WAL checkpoint thread did not start: {e}")))?,
            )
        } else {
            None
        };
        Ok(Db { pool, group_commit, _checkpointer: checkpointer })
    }

    /// Runs the write `f` in a transaction shared with the other writes waiting at the
    /// moment (group commit: see `group_commit.rs`); returns once that transaction has
    /// committed to disk. For the workers' small writes per job. `f` runs again if
    /// another write of its batch fails: it must act on the database only.
    pub fn write<T, F>(&self, f: F) -> impl Future<Output = Result<T, DbError>> + Send + 'static
    where
        F: FnMut(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.group_commit.write(Commit::Durable, f)
    }

    /// As `write`, for a write whose loss in a crash of the database server the queue
    /// recovers from (a job's start, its progress): on PostgreSQL its batch, when no
    /// durable write shares it, returns once committed without waiting for the disk.
    pub fn write_async_commit<T, F>(&self, f: F) -> impl Future<Output = Result<T, DbError>> + Send + 'static
    where
        F: FnMut(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.group_commit.write(Commit::Asynchronous, f)
    }

    /// Group-commit transactions so far, and the writes they carried.
    pub fn group_commit_counts(&self) -> (u64, u64) {
        self.group_commit.counts()
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| DbError::Unavailable(e.to_string()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// Runs `f` with a pooled connection on the current thread: for code that is
    /// already off the event loop (CLI commands, blocking workers).
    pub fn run_blocking<T>(&self, f: impl FnOnce(&mut DbConnection) -> Result<T, DbError>) -> Result<T, DbError> {
        let mut conn = self.pool.get().map_err(|e| DbError::Unavailable(e.to_string()))?;
        f(&mut conn)
    }

    /// Applies pending migrations, then fills in what they cannot (job ids of rows that
    /// predate the queue). Safe to run any number of times, from several processes.
    pub fn migrate(&self) -> Result<usize, DbError> {
        self.run_blocking(|conn| {
            let applied = match conn {
                DbConnection::Postgresql(pg) => {
                    // Two processes starting together must not both migrate.
                    pg.batch_execute("SELECT pg_advisory_lock(7262551)")?;
                    let result = pg
                        .run_pending_migrations(POSTGRES_MIGRATIONS)
                        .map(|v| v.len())
                        .map_err(|e| DbError::Migration(e.to_string()));
                    pg.batch_execute("SELECT pg_advisory_unlock(7262551)")?;
                    result?
                }
                // An exclusive transaction makes a second process wait, then find nothing to do.
                DbConnection::Sqlite(sqlite) => sqlite.exclusive_transaction(|sqlite| {
                    sqlite
                        .run_pending_migrations(SQLITE_MIGRATIONS)
                        .map(|v| v.len())
                        .map_err(|e| DbError::Migration(e.to_string()))
                })?,
            };
            documents::backfill_job_ids(conn)?;
            Ok(applied)
        })
    }

    /// Answers whether a trivial query succeeds (readiness).
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| {
            conn.batch_execute("SELECT 1")?;
            Ok(())
        })
        .await
    }

    pub fn backend_name(&self) -> Result<&'static str, DbError> {
        self.run_blocking(|conn| {
            Ok(match conn {
                DbConnection::Postgresql(_) => "postgresql",
                DbConnection::Sqlite(_) => "sqlite",
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::DatabaseUrl;

    #[test]
    fn postgres_urls_name_postgres_and_everything_else_a_sqlite_file() {
        let cases = [
            ("postgres://u@h/db", DatabaseUrl::Postgres("postgres://u@h/db".into())),
            ("  postgresql://u@h:5433/db ", DatabaseUrl::Postgres("postgresql://u@h:5433/db".into())),
            ("sqlite://data/dq.sqlite3", DatabaseUrl::Sqlite("data/dq.sqlite3".into())),
            ("sqlite:///var/dq.sqlite3", DatabaseUrl::Sqlite("/var/dq.sqlite3".into())),
            ("sqlite:dq.sqlite3", DatabaseUrl::Sqlite("dq.sqlite3".into())),
            ("data/docqueue.sqlite3", DatabaseUrl::Sqlite("data/docqueue.sqlite3".into())),
            ("postgres.sqlite3", DatabaseUrl::Sqlite("postgres.sqlite3".into())),
        ];
        for (url, expected) in cases {
            assert_eq!(DatabaseUrl::parse(url), expected, "{url}");
        }
    }
}
