//! The worker side: a `PoolSupervisor` actor owns a pool of `DocumentWorker` actors that
//! claim jobs from the queue and run them through a `Processor`, plus the maintenance
//! timers that keep the queue healthy.

pub mod document_worker;
pub mod inline;
pub mod maintenance;
pub mod metrics;
pub mod run_job;
pub mod supervisor;

use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;
use crate::processing::Processor;
use crate::progress::Publisher;
use crate::queue::Queue;

pub use supervisor::PoolSupervisor;

/// What every worker needs, shared by the pool.
#[derive(Clone)]
pub struct WorkerDeps {
    pub queue: Queue,
    pub db: Db,
    pub processor: Arc<dyn Processor>,
    pub config: Arc<Config>,
    pub events: Publisher,
    pub metrics: metrics::WorkerMetrics,
}

/// `host:pid`, unique per process across machines and restarts.
pub fn process_id() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{host}:{}", std::process::id())
}

/// `host:pid:n`, unique per worker actor across machines and restarts.
pub fn worker_id(n: usize) -> String {
    format!("{}:{n}", process_id())
}
