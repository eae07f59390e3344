//! Assembles a running docqueue process from its configuration: database, queue,
//! storage, auth, then the HTTP server and/or the worker pool, depending on the role.
//! Tests start it in-process through `start`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::dev::Service;
use actix_web::{web, App, HttpServer};

use crate::auth::pace::RequestPace;
use crate::auth::{Role as TokenRole, TokenKeys};
use crate::config::{Config, ProcessingMode};
use crate::db::Db;
use crate::processing::embed::{self, Embedder};
use crate::processing::extractor::Extractor;
use crate::processing::pipeline::Pipeline;
use crate::processing::Processor;
use crate::progress::hub::CloseSessions;
use crate::progress::{Hub, PositionSweeper, Publisher};
use crate::queue::Queue;
use crate::storage::Storage;
use crate::web::health::LatestReadiness;
use crate::web::metrics::{HttpMetrics, LatestScrape};
use crate::web::AppState;
use crate::workers::metrics::WorkerMetrics;
use crate::workers::supervisor::Shutdown;
use crate::workers::{PoolSupervisor, WorkerDeps};

/// What a process does: HTTP, workers, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    All,
    Api,
    Worker,
}

impl Role {
    fn serves_http(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }
    fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] crate::db::DbError),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthSetupError),
    #[error(transparent)]
    Queue(#[from] crate::queue::QueueError),
    #[error("storage root {path}: {source}")]
    Storage { path: String, source: std::io::Error },
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("start-up task failed: {0}")]
    Task(String),
    #[error("the extractor program cannot be found: {0}")]
    Extractor(std::io::Error),
    #[error(
        "auth.jwt_secret is not set, and development mode (auth.dev_mode) serves only on a loopback address \
         (127.0.0.0/8, ::1), not on server.host = {0}: set DOCQUEUE_AUTH__JWT_SECRET"
    )]
    DevModeNotLoopback(String),
}

/// A started process; `shutdown` drains it.
pub struct RunningApp {
    pub http_addr: Option<SocketAddr>,
    pub token_keys: TokenKeys,
    pub db: Db,
    pub queue: Queue,
    pub hub: Option<Addr<Hub>>,
    /// Kept so the sweeper lives as long as the process.
    _sweeper: Option<Addr<PositionSweeper>>,
    server: Option<actix_web::dev::ServerHandle>,
    supervisor: Option<Addr<PoolSupervisor>>,
}

impl RunningApp {
    /// Stops claiming, lets running jobs finish within the grace period (handing the
    /// rest back to the queue), closes the WebSockets (their clients reconnect
    /// elsewhere; an open socket would hold the stop for the whole grace period), then
    /// stops the HTTP server.
    pub async fn shutdown(self) {
        if let Some(supervisor) = self.supervisor {
            let _ = supervisor.send(Shutdown).await;
        }
        if let Err(err) = self.queue.flush_statistics().await {
            log::warn!("the last queue statistics were not recorded: {err}");
        }
        if let Some(hub) = &self.hub {
            let _ = hub.send(CloseSessions).await;
        }
        if let Some(server) = self.server {
            server.stop(true).await;
        }
    }
}

/// Starts a process with the real processing pipeline.
pub async fn start(config: Config, role: Role) -> Result<RunningApp, StartError> {
    let config = Arc::new(config);
    let pipeline_config = config.clone();
    let extractor = Extractor::from_config(&config.processing).map_err(StartError::Extractor)?;
    if role != Role::Api || config.processing.mode == ProcessingMode::Inline {
        extractor.log_readers(&config.processing);
    }
    start_inner(config, role, move |db, queue, storage, embedder| {
        Arc::new(Pipeline::new(&pipeline_config, db.clone(), queue.clone(), storage.clone(), extractor, embedder))
    })
    .await
}

/// Starts a process whose workers run `processor` (tests plug in their own).
pub async fn start_with_processor(
    config: Arc<Config>,
    role: Role,
    processor: Arc<dyn Processor>,
) -> Result<RunningApp, StartError> {
    start_inner(config, role, move |_, _, _, _| processor).await
}

async fn start_inner(
    config: Arc<Config>,
    role: Role,
    make_processor: impl FnOnce(&Db, &Queue, &Storage, Arc<dyn Embedder>) -> Arc<dyn Processor>,
) -> Result<RunningApp, StartError> {
    let db = {
        let database = config.database.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let db = Db::connect(&database)?;
            db.migrate()?;
            Ok::<_, crate::db::DbError>(db)
        })
        .await
        .map_err(|e| StartError::Task(e.to_string()))??
    };
    let queue = Queue::new(&config.redis, &config.document_queue)?;
    warn_if_redis_may_evict(&queue).await;
    let storage = Storage::open(&config.storage.root)
        .map_err(|source| StartError::Storage { path: config.storage.root.display().to_string(), source })?;
    if role.serves_http() && config.auth.jwt_secret.is_empty() && !is_loopback(&config.server.host) {
        return Err(StartError::DevModeNotLoopback(config.server.host.clone()));
    }
    let token_keys = TokenKeys::from_config(&config.auth)?;
    let embedder = embed::from_config(&config.embedding);
    let processor = make_processor(&db, &queue, &storage, embedder.clone());
    let events = Publisher::new(queue.clone(), config.progress.stream_max_len);
    let worker_metrics = WorkerMetrics::new();

    let supervisor = role.runs_workers().then(|| {
        processor.warm_up();
        let deps = WorkerDeps {
            queue: queue.clone(),
            db: db.clone(),
            processor: processor.clone(),
            config: config.clone(),
            events: events.clone(),
            metrics: worker_metrics.clone(),
        };
        PoolSupervisor::new(deps).start()
    });

    let mut hub_addr = None;
    let mut sweeper = None;
    let (server, http_addr) = if role.serves_http() {
        if token_keys.generated {
            log_demo_tokens(&token_keys);
        }
        let hub = Hub::new(&queue).start();
        hub_addr = Some(hub.clone());
        sweeper = Some(PositionSweeper::new(db.clone(), queue.clone(), events.clone(), hub.clone()).start());
        let hub = web::Data::new(hub);
        let state = web::Data::new(AppState {
            config: config.clone(),
            db: db.clone(),
            queue: queue.clone(),
            storage,
            events,
            embedder,
            processor,
            uploads: Default::default(),
            searchers: Default::default(),
            sockets: Default::default(),
            searches: Arc::new(tokio::sync::Semaphore::new(config.server.max_concurrent_searches)),
        });
        let keys = web::Data::new(token_keys.clone());
        let pace = web::Data::new(RequestPace::new(
            config.server.requests_per_sec_per_user,
            config.server.request_burst_per_user,
        ));
        let http_metrics = web::Data::new(HttpMetrics::new());
        let latest_scrape = web::Data::new(LatestScrape::default());
        let latest_readiness = web::Data::new(LatestReadiness::default());
        let worker_metrics = web::Data::new(worker_metrics);
        let address = format!("{}:{}", config.server.host, config.server.port);
        let cors_allowed_origins = config.server.cors_allowed_origins.clone();
        let send_timeout = Duration::from_millis(config.server.send_timeout_ms);
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(keys.clone())
                .app_data(pace.clone())
                .app_data(hub.clone())
                .app_data(http_metrics.clone())
                .app_data(latest_scrape.clone())
                .app_data(latest_readiness.clone())
                .app_data(worker_metrics.clone())
                .wrap_fn(|request, service| {
                    let metrics = request.app_data::<web::Data<HttpMetrics>>().cloned();
                    let response = service.call(request);
                    async move {
                        let response = response.await?;
                        if let Some(metrics) = metrics {
                            metrics.observe(&response);
                        }
                        Ok(response)
                    }
                })
                .wrap(crate::web::access_logger())
                .configure(|routes| crate::web::routes(routes, &cors_allowed_origins))
        })
        .on_connect(move |connection, _| crate::web::limit_unacknowledged_sends(connection, send_timeout))
        .disable_signals()
        // Progress frames are small and latency matters: no Nagle delay on sockets.
        .tcp_nodelay(true)
        .shutdown_timeout(config.document_queue.shutdown_grace_secs.max(1));
        if config.server.workers > 0 {
            server = server.workers(config.server.workers);
        }
        let server = server.bind(&address).map_err(|source| StartError::Bind { address: address.clone(), source })?;
        let http_addr = server.addrs().first().copied();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        log::info!("docqueue listening on http://{}", http_addr.map(|a| a.to_string()).unwrap_or(address));
        (Some(handle), http_addr)
    } else {
        (None, None)
    };

    Ok(RunningApp { http_addr, token_keys, db, queue, hub: hub_addr, _sweeper: sweeper, server, supervisor })
}

/// Whether `host` only ever listens on this machine: 127.0.0.0/8, ::1, localhost.
fn is_loopback(host: &str) -> bool {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Development mode: the secret was made for this process, so print tokens to try it.
fn log_demo_tokens(keys: &TokenKeys) {
    let day = Duration::from_secs(24 * 3600);
    if let (Ok(user), Ok(admin)) =
        (keys.issue("demo-user", TokenRole::User, day), keys.issue("demo-admin", TokenRole::Admin, day))
    {
        log::warn!("development mode: no auth.jwt_secret set; a secret was made for this process");
        log::warn!("demo user token (24h):  {user}");
        log::warn!("demo admin token (24h): {admin}");
    }
}

/// An evicting Redis drops jobs silently (the reconciler only recovers them later).
async fn warn_if_redis_may_evict(queue: &Queue) {
    match queue.redis_memory().await {
        Ok(memory) if !memory.policy.is_empty() && memory.policy != "noeviction" => log::warn!(
            "Redis maxmemory-policy is {}: under memory pressure it evicts keys, jobs included; \
             set maxmemory-policy noeviction",
            memory.policy
        ),
        Ok(_) => {}
        Err(err) => {
            log::warn!("Redis not reachable at start-up ({err}); uploads are kept and enqueued when it is back");
        }
    }
}
