//! `GET /metrics` in the Prometheus text format. Queue figures come from Redis at
//! scrape time (so every process reports the same cluster-wide numbers, histograms
//! included: the Lua scripts keep their buckets), and so do Redis's own memory figures;
//! HTTP requests, WebSocket sessions, worker claim attempts and maintenance passes are
//! this process's own. `docker/prometheus/alerts.yml` alerts on these names.

use std::collections::HashMap;

use actix::Addr;
use actix_web::dev::ServiceResponse;
use actix_web::http::Method;
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse};
use prometheus::proto::{Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

use super::coalesced::Coalesced;
use super::AppState;
use crate::error::AppError;
use crate::job_state::JobState;
use crate::processing::extractor::ExtractorOutcome;
use crate::progress::hub::CountSessions;
use crate::progress::Hub;
use crate::workers::metrics::WorkerMetrics;

/// This process's HTTP request counter, by route pattern, method and status.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
}

impl HttpMetrics {
    pub fn new() -> HttpMetrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("docqueue_http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        registry.register(Box::new(requests.clone())).expect("registered once");
        HttpMetrics { registry, requests }
    }

    /// Counts a finished request; the route is the matched pattern (ids stay out).
    pub fn observe<B>(&self, response: &ServiceResponse<B>) {
        let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".into());
        let method = method_label(response.request().method());
        self.requests.with_label_values(&[&route, method, response.status().as_str()]).inc();
    }
}

/// A request's method as a label: one of a fixed few. Any token is a method to HTTP,
/// and each new label value is a series kept for ever, so a client inventing methods
/// would grow the registry without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics::new()
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_string());
    pair.set_value(value.to_string());
    pair
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_string());
    family.set_help(help.to_string());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

fn gauge(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(value);
    let mut m = Metric::default();
    m.set_label(labels);
    m.set_gauge(g);
    m
}

fn counter(labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut c = Counter::default();
    c.set_value(value);
    let mut m = Metric::default();
    m.set_label(labels);
    m.set_counter(c);
    m
}

/// A histogram from the non-cumulative bucket counts the scripts keep.
fn histogram(labels: Vec<LabelPair>, fields: &HashMap<String, f64>) -> Metric {
    let mut bounds: Vec<(f64, f64)> =
        fields.iter().filter_map(|(k, v)| k.parse::<f64>().ok().map(|bound| (bound, *v))).collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut cumulative = 0.0;
    let buckets = bounds
        .into_iter()
        .map(|(bound, count)| {
            cumulative += count;
            let mut b = Bucket::default();
            b.set_upper_bound(bound);
            b.set_cumulative_count(cumulative as u64);
            b
        })
        .collect();
    let mut h = Histogram::default();
    h.set_bucket(buckets);
    // Every observation lands in one bucket: their sum is the count (the scripts keep
    // no separate count field).
    h.set_sample_count(cumulative as u64);
    h.set_sample_sum(fields.get("sum").copied().unwrap_or(0.0));
    let mut m = Metric::default();
    m.set_label(labels);
    m.set_histogram(h);
    m
}

/// The last scrape of this process: `/metrics` needs no token (Prometheus scrapes it)
/// and each scrape reads Redis eight times, so scrapes are coalesced.
pub type LatestScrape = Coalesced<Result<Bytes, AppError>>;

#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(
    state: web::Data<AppState>,
    http: web::Data<HttpMetrics>,
    worker_metrics: web::Data<WorkerMetrics>,
    hub: web::Data<Addr<Hub>>,
    latest: web::Data<LatestScrape>,
) -> Result<HttpResponse, AppError> {
    let body = latest.fresh(|| async { scrape(&state, &http, &worker_metrics, &hub).await.map(Bytes::from) }).await?;
    Ok(HttpResponse::Ok().content_type(prometheus::TEXT_FORMAT).body(body))
}

/// Every figure, in the Prometheus text format.
async fn scrape(
    state: &AppState,
    http: &HttpMetrics,
    worker_metrics: &WorkerMetrics,
    hub: &Addr<Hub>,
) -> Result<Vec<u8>, AppError> {
    let queue = &state.queue;
    let counts = queue.counts().await?;
    let (group_commits, group_writes) = state.db.group_commit_counts();
    let totals = queue.stats().await?;
    let workers = queue.live_workers().await?.len();
    let histograms = queue.histograms().await?;
    let paused = queue.is_paused().await?;
    let oldest_waiting = queue.oldest_waiting().await?.map_or(0.0, |o| o.waited_ms as f64 / 1000.0);
    let memory = queue.redis_memory().await?;
    let sessions = hub.send(CountSessions).await.map(|c| c.sessions).unwrap_or(0);

    let depth = counts.by_state().into_iter().map(|(s, n)| gauge(vec![label("state", s.as_str())], n as f64)).collect();
    // The scripts count each job that ends under its state's name, plus these events.
    let outcomes = JobState::TERMINAL
        .map(JobState::redis_name)
        .into_iter()
        .chain(["retried", "stalled", "enqueued"])
        .map(|o| counter(vec![label("outcome", o)], totals.get(o).copied().unwrap_or(0) as f64))
        .collect();
    let extractor = ExtractorOutcome::ALL
        .into_iter()
        .map(|o| {
            let count = totals.get(&format!("extractor:{}", o.as_str())).copied().unwrap_or(0);
            counter(vec![label("outcome", o.as_str())], count as f64)
        })
        .collect();
    let mut durations = Vec::new();
    let mut wait = Vec::new();
    for (name, fields) in &histograms {
        match name.strip_prefix("duration:") {
            Some(content_type) => durations.push(histogram(vec![label("content_type", content_type)], fields)),
            None => wait.push(histogram(vec![], fields)),
        }
    }
    let mut families = vec![
        family(
            "docqueue_queue_jobs",
            "Jobs in the queue by state (finished ones until retention removes them)",
            MetricType::GAUGE,
            depth,
        ),
        family("docqueue_jobs_total", "Jobs by outcome since the queue was created", MetricType::COUNTER, outcomes),
        family(
            "docqueue_extractor_outcomes_total",
            "Extractor processes by how they ended: ok, unreadable, memory_limit, cpu_limit, crash, cancelled, \
             timed_out, killed, not_started",
            MetricType::COUNTER,
            extractor,
        ),
        family(
            "docqueue_processing_duration_seconds",
            "Time from claim to completion, by content type",
            MetricType::HISTOGRAM,
            durations,
        ),
        family(
            "docqueue_enqueue_to_start_seconds",
            "Time a job waited from enqueue to its first claim",
            MetricType::HISTOGRAM,
            wait,
        ),
        family(
            "docqueue_queue_oldest_waiting_seconds",
            "How long the longest-waiting job has waited for a worker since it entered the queue (or re-entered \
             it: a retry, a rescue, a hand-back); 0 when nothing waits",
            MetricType::GAUGE,
            vec![gauge(vec![], oldest_waiting)],
        ),
        family(
            "docqueue_reconciler_requeued_total",
            "Unfinished documents the reconciler found without a live job in Redis and enqueued again",
            MetricType::COUNTER,
            vec![counter(vec![], totals.get("reconciled").copied().unwrap_or(0) as f64)],
        ),
        family(
            "docqueue_redis_used_memory_bytes",
            "Memory Redis uses (INFO used_memory)",
            MetricType::GAUGE,
            vec![gauge(vec![], memory.used_bytes as f64)],
        ),
        family(
            "docqueue_redis_maxmemory_bytes",
            "Redis maxmemory; 0 means no limit",
            MetricType::GAUGE,
            vec![gauge(vec![], memory.max_bytes as f64)],
        ),
        family(
            "docqueue_redis_evicted_keys_total",
            "Keys Redis evicted since it started (INFO evicted_keys); any eviction may drop jobs",
            MetricType::COUNTER,
            vec![counter(vec![], memory.evicted_keys as f64)],
        ),
        family(
            "docqueue_db_group_commits_total",
            "Transactions the workers' row writes were grouped into, in this process",
            MetricType::COUNTER,
            vec![counter(vec![], group_commits as f64)],
        ),
        family(
            "docqueue_db_group_commit_writes_total",
            "Row writes of the workers, in this process; divided by the commits, the batch size",
            MetricType::COUNTER,
            vec![counter(vec![], group_writes as f64)],
        ),
        family(
            "docqueue_workers_active",
            "Workers that reported a heartbeat recently",
            MetricType::GAUGE,
            vec![gauge(vec![], workers as f64)],
        ),
        family(
            "docqueue_queue_paused",
            "1 when claiming is paused",
            MetricType::GAUGE,
            vec![gauge(vec![], f64::from(u8::from(paused)))],
        ),
        family(
            "docqueue_websocket_sessions",
            "WebSocket sessions open on this process",
            MetricType::GAUGE,
            vec![gauge(vec![], sessions as f64)],
        ),
    ];
    families.retain(|f| !f.get_metric().is_empty());
    families.extend(http.registry.gather());
    families.extend(worker_metrics.gather());
    let mut body = Vec::new();
    TextEncoder::new().encode(&families, &mut body).map_err(AppError::internal)?;
    Ok(body)
}
