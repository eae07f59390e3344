//! This process's worker figures for `/metrics`: claim attempts, maintenance passes and
//! the time jobs spend in each step.
//! They show that idle workers keep asking and that upkeep runs; tests use them to show
//! that something did not happen once a claim or a pass that began later has finished.

use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, Opts, Registry};

use crate::processing::step_times::StepTimes;

#[derive(Clone)]
pub struct WorkerMetrics {
    registry: Registry,
    claims: IntCounterVec,
    maintenance: IntCounterVec,
    steps: StepTimes,
}

impl WorkerMetrics {
    pub fn new() -> WorkerMetrics {
        let registry = Registry::new();
        let claims = IntCounterVec::new(
            Opts::new(
                "docqueue_worker_claim_attempts_total",
                "Claim attempts of this process's workers by answer: claimed, empty (nothing waiting, or paused), \
                 failed",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let maintenance = IntCounterVec::new(
            Opts::new("docqueue_maintenance_runs_total", "Maintenance passes this process completed, by task"),
            &["task"],
        )
        .expect("valid metric");
        registry.register(Box::new(claims.clone())).expect("registered once");
        registry.register(Box::new(maintenance.clone())).expect("registered once");
        let steps = StepTimes::new();
        steps.register(&registry);
        WorkerMetrics { registry, claims, maintenance, steps }
    }

    /// Counts a claim attempt once the queue has answered it.
    pub fn count_claim<T, E>(&self, answer: &Result<Option<T>, E>) {
        let outcome = match answer {
            Ok(Some(_)) => "claimed",
            Ok(None) => "empty",
            Err(_) => "error",
        };
        self.claims.with_label_values(&[outcome]).inc();
    }

    /// Counts a maintenance pass that completed without error.
    pub fn count_maintenance(&self, task: &str) {
        self.maintenance.with_label_values(&[task]).inc();
    }

    pub fn steps(&self) -> &StepTimes {
        &self.steps
    }

    pub fn gather(&self) -> Vec<MetricFamily> {
        self.registry.gather()
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        WorkerMetrics::new()
    }
}
