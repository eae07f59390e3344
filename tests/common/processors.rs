//! Processors that tests plug into the worker pool: they sleep, fail, panic or hang,
//! and record what they were given.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use docqueue::processing::processor::{BoxFuture, JobContext, ProcessError, Processed, Processor, Stage};

/// What happens to a document whose filename contains a marker.
#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    /// Succeeds after `steps` progress steps of `step_ms` each.
    Work { steps: u32, step_ms: u64 },
    /// Fails transiently on the first `n` attempts, then works.
    FailTimes(u32),
    /// Fails permanently with a reason.
    FailPermanently,
    /// Fails permanently on the first attempt only (an admin retry then works).
    FailPermanentlyOnce,
    /// Panics on the first attempt, then works.
    PanicOnce,
    /// Never returns and never checks for a cancel.
    Hang,
}

/// Records claims in order and picks a behaviour by filename marker
/// (`fail2`, `broken`, `permanent`, `panic`, `hang`, `slow`); anything else works quickly.
#[derive(Clone, Default)]
pub struct ScriptedProcessor {
    pub started: Arc<Mutex<Vec<(String, String, Instant)>>>,
    pub finished: Arc<AtomicUsize>,
    pub attempts: Arc<Mutex<HashMap<String, u32>>>,
    pub quick_step_ms: u64,
    pub slow_steps: u32,
}

impl ScriptedProcessor {
    pub fn new() -> ScriptedProcessor {
        ScriptedProcessor { quick_step_ms: 5, slow_steps: 100, ..Default::default() }
    }

    /// Filenames of started jobs, in start order.
    pub fn started_names(&self) -> Vec<String> {
        self.started.lock().unwrap().iter().map(|(_, name, _)| name.clone()).collect()
    }

    fn behaviour(&self, filename: &str) -> Behaviour {
        if filename.contains("fail2") {
            Behaviour::FailTimes(2)
        } else if filename.contains("broken") {
            Behaviour::FailPermanentlyOnce
        } else if filename.contains("permanent") {
            Behaviour::FailPermanently
        } else if filename.contains("panic") {
            Behaviour::PanicOnce
        } else if filename.contains("hang") {
            Behaviour::Hang
        } else if filename.contains("slow") {
            Behaviour::Work { steps: self.slow_steps, step_ms: 100 }
        } else {
            Behaviour::Work { steps: 4, step_ms: self.quick_step_ms }
        }
    }
}

impl Processor for ScriptedProcessor {
    fn process(&self, ctx: JobContext) -> BoxFuture<Result<Processed, ProcessError>> {
        let this = self.clone();
        Box::pin(async move {
            let name = ctx.document.filename.clone();
            this.started.lock().unwrap().push((ctx.document.id.clone(), name.clone(), Instant::now()));
            let attempt = {
                let mut attempts = this.attempts.lock().unwrap();
                let n = attempts.entry(ctx.document.id.clone()).or_default();
                *n += 1;
                *n
            };
            let result = match this.behaviour(&name) {
                Behaviour::Work { steps, step_ms } => work(&ctx, steps, step_ms).await,
                Behaviour::FailTimes(n) if attempt <= n => {
                    Err(ProcessError::Transient(format!("simulated outage on attempt {attempt}")))
                }
                Behaviour::FailTimes(_) => work(&ctx, 2, 5).await,
                Behaviour::FailPermanently => {
                    Err(ProcessError::Permanent("the document is not readable (simulated)".into()))
                }
                Behaviour::FailPermanentlyOnce if attempt == 1 => {
                    Err(ProcessError::Permanent("the parser rejected the file (simulated)".into()))
                }
                Behaviour::FailPermanentlyOnce => work(&ctx, 2, 5).await,
                Behaviour::PanicOnce if attempt == 1 => panic!("simulated processor panic"),
                Behaviour::PanicOnce => work(&ctx, 2, 5).await,
                Behaviour::Hang => {
                    std::future::pending::<()>().await;
                    unreachable!()
                }
            };
            this.finished.fetch_add(1, Ordering::SeqCst);
            result
        })
    }
}

async fn work(ctx: &JobContext, steps: u32, step_ms: u64) -> Result<Processed, ProcessError> {
    let stages = [Stage::Extracting, Stage::Chunking, Stage::Embedding, Stage::Storing];
    for step in 0..steps {
        if ctx.is_cancelled() {
            return Err(ProcessError::Cancelled);
        }
        let stage = stages[(step as usize * stages.len() / steps.max(1) as usize).min(3)];
        ctx.on_progress(stage, (100 * step / steps.max(1)) as u8);
        tokio::time::sleep(Duration::from_millis(step_ms)).await;
    }
    ctx.on_progress(Stage::Storing, 100);
    Ok(Processed { chunk_count: steps as i32, reused_from: None, warning: None })
}
