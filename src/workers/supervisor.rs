//! `PoolSupervisor`: starts the pool of DocumentWorkers, replaces any that stops (crash or
//! recycling), runs the maintenance timers, and drains the pool on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::document_worker::{DocumentWorker, HandBack, Stop, WorkerStopped};
use super::{maintenance, process_id, worker_id, WorkerDeps};
use crate::queue::DedicatedConnection;

/// Stop claiming, let running jobs finish within the grace period, hand back the
/// rest, then stop. Answers when the pool is empty.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// How long jobs handed back at shutdown get to reach the queue.
const HAND_BACK_WAIT: Duration = Duration::from_secs(10);

pub struct PoolSupervisor {
    deps: WorkerDeps,
    workers: HashMap<usize, Addr<DocumentWorker>>,
    next_n: usize,
    shutting_down: bool,
    idle_waiters: Vec<oneshot::Sender<()>>,
    busy_tasks: std::collections::HashSet<&'static str>,
}

impl PoolSupervisor {
    pub fn new(deps: WorkerDeps) -> PoolSupervisor {
        PoolSupervisor {
            deps,
            workers: HashMap::new(),
            next_n: 0,
            shutting_down: false,
            idle_waiters: Vec::new(),
            busy_tasks: Default::default(),
        }
    }

    fn start_worker(&mut self, ctx: &mut Context<Self>, connection: Option<DedicatedConnection>) {
        let n = self.next_n;
        self.next_n += 1;
        let worker = DocumentWorker::new(n, worker_id(n), self.deps.clone(), ctx.address().recipient(), connection);
        self.workers.insert(n, worker.start());
    }

    /// Runs a maintenance task unless the previous run of it is still going.
    fn run_task<F, Fut, T, E>(&mut self, name: &'static str, ctx: &mut Context<Self>, task: F)
    where
        F: FnOnce(WorkerDeps) -> Fut,
        Fut: Future<Output = Result<T, E>> + 'static,
        E: std::fmt::Display,
    {
        if self.shutting_down || !self.busy_tasks.insert(name) {
            return;
        }
        ctx.spawn(task(self.deps.clone()).into_actor(self).map(move |result, act, _| {
            act.busy_tasks.remove(name);
            match result {
                Ok(_) => act.deps.metrics.count_maintenance(name),
                Err(err) => log::warn!("maintenance task {name} failed: {err}"),
            }
        }));
    }

    fn when_idle(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        if self.workers.is_empty() {
            let _ = tx.send(());
        } else {
            self.idle_waiters.push(tx);
        }
        rx
    }
}

impl Actor for PoolSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let config = self.deps.config.document_queue.clone();
        log::info!("supervisor starting {} workers", config.concurrency);
        for _ in 0..config.concurrency {
            self.start_worker(ctx, None);
        }
        // The liveness key: other processes rescue this one's jobs soon after it stops
        // renewing it (claims renew it too, so it exists whenever a job is owned).
        ctx.run_interval(config.process_liveness() / 3, |act, ctx| {
            let queue = act.deps.queue.clone();
            ctx.spawn(async move { queue.keep_process_alive(&process_id()).await }.into_actor(act).map(
                |result, _, _| {
                    if let Err(err) = result {
                        log::warn!("liveness key not renewed: {err}");
                    }
                },
            ));
        });
        ctx.run_interval(config.maintenance_interval(), |act, ctx| {
            act.run_task("rescue_stalled", ctx, |deps| async move { maintenance::rescue_stalled(&deps).await });
            act.run_task("promote_delayed", ctx, |deps| async move { maintenance::promote_delayed(&deps).await });
        });
        ctx.run_interval(config.retention_interval(), |act, ctx| {
            act.run_task("retention", ctx, |deps| async move { maintenance::apply_retention(&deps).await });
        });
        let reconcile = |act: &mut Self, ctx: &mut Context<Self>| {
            act.run_task("reconcile", ctx, |deps| async move { maintenance::reconcile(&deps).await });
        };
        ctx.run_later(Duration::ZERO, reconcile);
        ctx.run_interval(config.reconcile_interval(), reconcile);
    }
}

impl Handler<WorkerStopped> for PoolSupervisor {
    type Result = ();

    fn handle(&mut self, msg: WorkerStopped, ctx: &mut Self::Context) {
        self.workers.remove(&msg.n);
        if self.shutting_down {
            if self.workers.is_empty() {
                for waiter in self.idle_waiters.drain(..) {
                    let _ = waiter.send(());
                }
            }
        } else {
            log::info!("replacing worker {}", msg.worker_id);
            self.start_worker(ctx, msg.connection);
        }
    }
}

impl Handler<Shutdown> for PoolSupervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        for worker in self.workers.values() {
            worker.do_send(Stop);
        }
        let grace = self.deps.config.document_queue.shutdown_grace();
        let drained = self.when_idle();
        Box::pin(
            async move { tokio::time::timeout(grace, drained).await.is_ok() }
                .into_actor(self)
                .then(|drained, act, _| {
                    let handed_back = (!drained).then(|| {
                        log::warn!("shutdown grace over; handing running jobs back to the queue");
                        for worker in act.workers.values() {
                            worker.do_send(HandBack);
                        }
                        act.when_idle()
                    });
                    async move {
                        if let Some(handed_back) = handed_back {
                            let _ = tokio::time::timeout(HAND_BACK_WAIT, handed_back).await;
                        }
                    }
                    .into_actor(act)
                })
                .map(|(), _, ctx| ctx.stop()),
        )
    }
}
