//! `DocumentWorker`: one actor, one job at a time. It claims from the queue on a Redis
//! connection of its own (blocking waits), keeps its lease alive while it works,
//! watches for a cancel, and hands each job to `run_job`.

use std::time::Duration;

use actix::prelude::*;
use tokio::sync::watch;

use super::run_job::{run_job, Finishing, RunEnded};
use super::WorkerDeps;
use crate::processing::processor::CancelReason;
use crate::queue::{ClaimedJob, DedicatedConnection, LeaseStatus, Queue, QueueError, WorkerInfo};

/// How long an idle worker blocks waiting for work before it looks again.
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// How often a running job checks for a cancel request (the 1 s promise).
const CANCEL_POLL: Duration = Duration::from_millis(250);
/// Pause before claiming again after Redis failed.
const REDIS_RETRY: Duration = Duration::from_secs(1);

/// Claim the next job (self-sent: the worker's loop).
#[derive(Message)]
#[rtype(result = "()")]
struct ClaimNext;

/// Finish the job in hand, then stop (graceful shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

/// Give the job in hand back to the queue now (the shutdown grace is over).
#[derive(Message)]
#[rtype(result = "()")]
pub struct HandBack;

/// Told to the supervisor when a worker ends, for whatever reason.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkerStopped {
    pub n: usize,
    pub worker_id: String,
    /// Its Redis connection for blocking waits, for the worker that replaces it.
    pub connection: Option<DedicatedConnection>,
}

struct JobInHand {
    job: ClaimedJob,
    cancel: watch::Sender<Option<CancelReason>>,
}

pub struct DocumentWorker {
    n: usize,
    id: String,
    deps: WorkerDeps,
    supervisor: Recipient<WorkerStopped>,
    connection: Option<DedicatedConnection>,
    in_hand: Option<JobInHand>,
    /// The last job's row write and event, to run beside the job in hand.
    finishing: Option<Finishing>,
    claiming: bool,
    stopping: bool,
    jobs_done: u32,
    started_at_ms: i64,
}

impl DocumentWorker {
    /// `connection`: a recycled worker's, so a replacement does not connect again.
    pub fn new(
        n: usize,
        id: String,
        deps: WorkerDeps,
        supervisor: Recipient<WorkerStopped>,
        connection: Option<DedicatedConnection>,
    ) -> DocumentWorker {
        DocumentWorker {
            n,
            id,
            deps,
            supervisor,
            connection,
            in_hand: None,
            finishing: None,
            claiming: false,
            stopping: false,
            jobs_done: 0,
            started_at_ms: chrono::Utc::now().timestamp_millis(),
        }
    }

    fn start_job(&mut self, job: ClaimedJob, ctx: &mut Context<Self>) {
        log::debug!("{} took job {} (attempt {})", self.id, job.job_id, job.attempts);
        let (cancel, cancelled) = watch::channel(None);
        self.in_hand = Some(JobInHand { job: job.clone(), cancel });
        // Recycling bounds whatever memory a long-lived worker could accumulate: the
        // last job before it claims nothing more.
        let recycles = self.jobs_done + 1 >= self.deps.config.document_queue.max_jobs_per_worker;
        let claim_next = !recycles && !self.stopping;
        let run = run_job(self.deps.clone(), self.id.clone(), job, cancelled, claim_next, self.finishing.take());
        ctx.spawn(run.into_actor(self).map(move |RunEnded { next_job, finishing }, act, ctx| {
            act.in_hand = None;
            act.finishing = finishing;
            act.jobs_done += 1;
            if next_job.is_some() {
                act.deps.metrics.count_claim::<_, QueueError>(&Ok(next_job.as_ref()));
            }
            match next_job {
                Some(job) if act.stopping => act.hand_back_and_stop(job, ctx),
                Some(job) => act.start_job(job, ctx),
                None if act.stopping || recycles => ctx.stop(),
                None => ctx.notify(ClaimNext),
            }
        }));
    }

    /// A job claimed after the worker was told to stop goes back to the queue at once.
    fn hand_back_and_stop(&mut self, job: ClaimedJob, ctx: &mut Context<Self>) {
        let (queue, finishing) = (self.deps.queue.clone(), self.finishing.take());
        let handed_back = async move {
            let released = queue.release(&job).await;
            if let Some(finishing) = finishing {
                finishing.await;
            }
            released
        };
        ctx.spawn(handed_back.into_actor(self).map(|_, _, ctx| ctx.stop()));
    }

    /// Tells the registry (admin view, ETAs) that this worker is alive and what it does.
    fn report_alive(&self, ctx: &mut Context<Self>) {
        let info = WorkerInfo {
            id: self.id.clone(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            current_job: self.in_hand.as_ref().map(|h| h.job.job_id.clone()),
            jobs_done: self.jobs_done,
            started_at_ms: self.started_at_ms,
            last_heartbeat_ms: chrono::Utc::now().timestamp_millis(),
            started_at: None,
            last_heartbeat: None,
        };
        let queue = self.deps.queue.clone();
        ctx.spawn(async move { queue.report_worker(&info).await }.into_actor(self).map(|result, _, _| {
            if let Err(err) = result {
                log::debug!("worker report failed: {err}");
            }
        }));
    }

    fn cancel_in_hand(&self, reason: CancelReason) {
        if let Some(in_hand) = &self.in_hand {
            if in_hand.cancel.borrow().is_none() {
                log::info!("{}: job {} stops ({reason:?})", self.id, in_hand.job.job_id);
                let _ = in_hand.cancel.send(Some(reason));
            }
        }
    }

    /// The heartbeat: extends the lease of the job in hand.
    fn extend_lease(&mut self, ctx: &mut Context<Self>) {
        self.follow_lease(ctx, |queue, job| async move { queue.extend_lease(&job).await });
    }

    /// The frequent, cheap look: is the job still ours, is a cancel asked?
    fn check_lease(&mut self, ctx: &mut Context<Self>) {
        self.follow_lease(ctx, |queue, job| async move { queue.check_lease(&job).await });
    }

    /// Asks the queue about the job in hand and stops the job if it is no longer ours
    /// or a cancel was asked.
    fn follow_lease<F, Fut>(&mut self, ctx: &mut Context<Self>, ask: F)
    where
        F: FnOnce(Queue, ClaimedJob) -> Fut,
        Fut: std::future::Future<Output = Result<LeaseStatus, QueueError>> + 'static,
    {
        let Some(in_hand) = &self.in_hand else { return };
        let job_id = in_hand.job.job_id.clone();
        ctx.spawn(ask(self.deps.queue.clone(), in_hand.job.clone()).into_actor(self).map(move |status, act, _| {
            // The answer may come after the job ended; it concerns that job only.
            if act.in_hand.as_ref().map(|h| &h.job.job_id) != Some(&job_id) {
                return;
            }
            match status {
                Ok(LeaseStatus::Held) => {}
                Ok(LeaseStatus::HeldCancelRequested) => act.cancel_in_hand(CancelReason::Requested),
                Ok(LeaseStatus::Lost) => act.cancel_in_hand(CancelReason::LeaseLost),
                Err(err) => log::warn!("lease check failed: {err}"),
            }
        }));
    }
}

impl Actor for DocumentWorker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        log::info!("worker {} started", self.id);
        let heartbeat = self.deps.config.document_queue.heartbeat();
        self.report_alive(ctx);
        ctx.run_interval(heartbeat, |act, ctx| {
            act.extend_lease(ctx);
            act.report_alive(ctx);
        });
        ctx.run_interval(CANCEL_POLL, |act, ctx| act.check_lease(ctx));
        ctx.notify(ClaimNext);
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        log::info!("worker {} stopped after {} jobs", self.id, self.jobs_done);
        let (queue, id) = (self.deps.queue.clone(), self.id.clone());
        actix::spawn(async move {
            let _ = queue.remove_worker(&id).await;
        });
        // A last job's ending that no next job started still runs.
        if let Some(finishing) = self.finishing.take() {
            actix::spawn(finishing);
        }
        let connection = self.connection.take();
        self.supervisor.do_send(WorkerStopped { n: self.n, worker_id: self.id.clone(), connection });
    }
}

impl Handler<ClaimNext> for DocumentWorker {
    type Result = ();

    fn handle(&mut self, _: ClaimNext, ctx: &mut Self::Context) {
        if self.stopping {
            ctx.stop();
            return;
        }
        self.claiming = true;
        let (queue, worker_id, connection) = (self.deps.queue.clone(), self.id.clone(), self.connection.take());
        let metrics = self.deps.metrics.clone();
        let claim = async move {
            let mut connection = match connection {
                Some(connection) => connection,
                None => queue.dedicated_connection().await?,
            };
            let claimed = queue.claim_for_process(&mut connection, &worker_id, &super::process_id()).await;
            metrics.count_claim(&claimed);
            let claimed = claimed?;
            if claimed.is_none() {
                queue.wait_for_work(&mut connection, IDLE_WAIT).await?;
            }
            Ok::<_, QueueError>((connection, claimed))
        };
        ctx.spawn(claim.into_actor(self).map(|claimed, act, ctx| {
            act.claiming = false;
            match claimed {
                Ok((connection, job)) => {
                    act.connection = Some(connection);
                    match job {
                        Some(job) if act.stopping => act.hand_back_and_stop(job, ctx),
                        Some(job) => act.start_job(job, ctx),
                        None => ctx.notify(ClaimNext),
                    }
                }
                Err(err) => {
                    log::warn!("{}: claim failed: {err}", act.id);
                    act.connection = None;
                    ctx.notify_later(ClaimNext, REDIS_RETRY);
                }
            }
        }));
    }
}

impl Handler<Stop> for DocumentWorker {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Self::Context) {
        self.stopping = true;
        if self.in_hand.is_none() && !self.claiming {
            ctx.stop();
        }
    }
}

impl Handler<HandBack> for DocumentWorker {
    type Result = ();

    fn handle(&mut self, _: HandBack, _: &mut Self::Context) {
        self.stopping = true;
        self.cancel_in_hand(CancelReason::Shutdown);
    }
}
