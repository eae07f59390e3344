//! Connections to Redis: one server, or a Redis Cluster (`redis.cluster`).
//!
//! One server: short commands take a connection from a bb8 pool of multiplexed
//! connections. A cluster: short commands share one multiplexed cluster connection,
//! which keeps a connection to each master, routes each command to the node that owns
//! its key's slot and follows MOVED/ASK when slots move; a pool of them would only
//! multiply connections to every node.
//!
//! Every docqueue key carries the prefix's hash tag (config.rs checks it in cluster
//! mode), so all of them live in one slot on one node: the scripts declare the prefix
//! as their key so the cluster sends them to that node (see lua/prelude.lua).

use std::time::{Duration, Instant};

use bb8_redis::RedisConnectionManager;
use redis::aio::{ConnectionLike, MultiplexedConnection, PubSub};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::sync::OnceCell;

use super::QueueError;
use crate::config::RedisConfig;

/// How long connecting to a server may take before a command fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A short command's answer, per server: the default of the redis crate's connections,
/// which the pool's connections use too.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// A short command's answer on a cluster, redirections and a refresh of the slot map
/// included.
const CLUSTER_OVERALL_TIMEOUT: Duration = Duration::from_secs(2);
/// A pooled connection that answered this recently is handed out without a PING.
const TRUSTED_AFTER_ANSWER: Duration = Duration::from_secs(1);

/// bb8-redis's manager, minus a PING per checkout. bb8 tests every connection it hands
/// out, and bb8-redis tests with a PING: one more round trip before every command, which
/// was half of all commands Redis served. Here only a connection idle for longer than
/// `TRUSTED_AFTER_ANSWER` is tested, and one whose command failed on the connection
/// itself (dropped, refused, timed out) is thrown away when it comes back: bb8-redis
/// never reports a connection broken.
pub struct PoolManager {
    inner: RedisConnectionManager,
}

pub struct PooledConnection {
    connection: MultiplexedConnection,
    answered_at: Instant,
    broken: bool,
}

impl PooledConnection {
    fn note<T>(&mut self, result: &redis::RedisResult<T>) {
        match result {
            Ok(_) => self.answered_at = Instant::now(),
            Err(err) if err.is_io_error() || err.is_connection_dropped() || err.is_timeout() => self.broken = true,
            // An error reply (a script's error, NOSCRIPT, …): the connection is fine.
            Err(_) => {}
        }
    }
}

impl bb8::ManageConnection for PoolManager {
    type Connection = PooledConnection;
    type Error = redis::RedisError;

    async fn connect(&self) -> Result<PooledConnection, redis::RedisError> {
        let connection = bb8::ManageConnection::connect(&self.inner).await?;
        Ok(PooledConnection { connection, answered_at: Instant::now(), broken: false })
    }

    async fn is_valid(&self, pooled: &mut PooledConnection) -> Result<(), redis::RedisError> {
        if pooled.answered_at.elapsed() < TRUSTED_AFTER_ANSWER {
            return Ok(());
        }
        let result = bb8::ManageConnection::is_valid(&self.inner, &mut pooled.connection).await;
        pooled.note(&result);
        result
    }

    fn has_broken(&self, pooled: &mut PooledConnection) -> bool {
        pooled.broken
    }
}

pub(super) enum Backend {
    Single {
        pool: bb8::Pool<PoolManager>,
        client: redis::Client,
    },
    Cluster {
        /// For short commands, with response timeouts.
        client: Box<ClusterClient>,
        /// For blocking waits: no response timeout at all (a ClusterConfig given to
        /// `client` would lift the per-node timeout, not the overall one).
        blocking_client: Box<ClusterClient>,
        /// The nodes named in the configuration, tried in turn for pub/sub.
        seeds: Vec<redis::Client>,
        /// Made on first use, so the server starts while the cluster is down (as the
        /// pool does for one server); a failed attempt is retried by the next command.
        shared: OnceCell<ClusterConnection>,
    },
}

impl Backend {
    /// Builds the clients without connecting.
    pub(super) fn new(config: &RedisConfig) -> Result<Backend, QueueError> {
        if config.cluster {
            let nodes = config.node_urls();
            let builder =
                || ClusterClient::builder(nodes.iter().map(String::as_str)).connection_timeout(CONNECT_TIMEOUT);
            let blocking_client = Box::new(builder().build()?);
            let client = Box::new(
                builder()
                    .response_timeout(RESPONSE_TIMEOUT)
                    .overall_response_timeout(Some(CLUSTER_OVERALL_TIMEOUT))
                    .build()?,
            );
            let seeds = nodes.iter().map(|url| redis::Client::open(url.as_str())).collect::<Result<_, _>>()?;
            return Ok(Backend::Cluster { client, blocking_client, seeds, shared: OnceCell::new() });
        }
        let url = config.connection_url();
        let client = redis::Client::open(url.as_str())?;
        let manager = PoolManager { inner: RedisConnectionManager::new(url.as_str())? };
        let pool = bb8::Pool::builder()
            .max_size(config.pool_size)
            .connection_timeout(CONNECT_TIMEOUT)
            .build_unchecked(manager);
        Ok(Backend::Single { pool, client })
    }

    pub(super) async fn connection(&self) -> Result<Connection<'_>, QueueError> {
        match self {
            Backend::Single { pool, .. } => match pool.get().await {
                Ok(connection) => Ok(Connection::Pooled(connection)),
                // A pool that holds no connection at all timed out making one: Redis
                // is away, not busy.
                Err(bb8::RunError::TimedOut) if pool.state().connections == 0 => {
                    Err(QueueError::Unreachable("no connection could be made before the pool's timeout".into()))
                }
                Err(err) => Err(err.into()),
            },
            Backend::Cluster { client, shared, .. } => {
                let connection = shared.get_or_try_init(|| client.get_async_connection()).await?;
                Ok(Connection::Cluster(connection.clone()))
            }
        }
    }

    /// A connection of its own with no response timeout, for blocking waits.
    pub(super) async fn dedicated_connection(&self) -> Result<DedicatedConnection, QueueError> {
        match self {
            Backend::Single { client, .. } => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(None);
                Ok(DedicatedConnection::Single(client.get_multiplexed_async_connection_with_config(&config).await?))
            }
            Backend::Cluster { blocking_client, .. } => {
                Ok(DedicatedConnection::Cluster(blocking_client.get_async_connection().await?))
            }
        }
    }

    /// A pub/sub connection. On a cluster any node will do: a PUBLISH reaches every
    /// node's subscribers. The configured nodes are tried in turn.
    pub(super) async fn pubsub(&self) -> Result<PubSub, QueueError> {
        match self {
            Backend::Single { client, .. } => Ok(client.get_async_pubsub().await?),
            Backend::Cluster { seeds, .. } => {
                let mut last_error = None;
                for seed in seeds {
                    match seed.get_async_pubsub().await {
                        Ok(pubsub) => return Ok(pubsub),
                        Err(err) => last_error = Some(err),
                    }
                }
                Err(last_error.map_or_else(|| QueueError::Pool("no Redis node configured".into()), QueueError::Redis))
            }
        }
    }

    /// Runs a command about the server itself (INFO, …) on the node that holds `key`:
    /// on a cluster, the node whose figures concern docqueue's keys.
    pub(super) async fn query_node_of(&self, key: &str, cmd: Cmd) -> Result<Value, QueueError> {
        match self.connection().await? {
            mut pooled @ Connection::Pooled(_) => Ok(cmd.query_async(&mut pooled).await?),
            Connection::Cluster(mut conn) => {
                let node = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                Ok(conn.route_command(cmd, RoutingInfo::SingleNode(node)).await?)
            }
        }
    }
}

/// A connection for short commands: from the pool, or the shared cluster connection.
pub enum Connection<'a> {
    Pooled(bb8::PooledConnection<'a, PoolManager>),
    Cluster(ClusterConnection),
}

/// A connection of one worker's own, for claims and the blocking wait for work.
pub enum DedicatedConnection {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Pooled(pooled) => Box::pin(async move {
                let result = pooled.connection.req_packed_command(cmd).await;
                pooled.note(&result);
                result
            }),
            Connection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Pooled(pooled) => Box::pin(async move {
                let result = pooled.connection.req_packed_commands(pipeline, offset, count).await;
                pooled.note(&result);
                result
            }),
            Connection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Pooled(pooled) => pooled.connection.get_db(),
            Connection::Cluster(conn) => conn.get_db(),
        }
    }
}

impl ConnectionLike for DedicatedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            DedicatedConnection::Single(conn) => conn.req_packed_command(cmd),
            DedicatedConnection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            DedicatedConnection::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            DedicatedConnection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            DedicatedConnection::Single(conn) => conn.get_db(),
            DedicatedConnection::Cluster(conn) => conn.get_db(),
        }
    }
}
