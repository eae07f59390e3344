//! The dashboard's HTML, rendered on the server with maud. Plain forms and links: it
//! works with JavaScript off; a few lines of script only reload the overview.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::jobs::{JobPage, JobSearch, JobStory};
use super::overview::Overview;
use crate::db::models::DocumentView;
use crate::job_state::JobState;
use crate::queue::JobRecord;

const STYLE: &str = r#"
:root { --ink:#1f2430; --muted:#5c6475; --line:#dde1e8; --bg:#f6f7f9; --accent:#2f5bd3; --bad:#b3261e; --good:#1d7a3a; --warn:#8a5a00; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink); background:var(--bg); }
header { background:#fff; border-bottom:1px solid var(--line); padding:.6rem 1.5rem; display:flex; gap:1.5rem; align-items:center; }
header .brand { font-weight:700; }
header nav a { color:var(--ink); text-decoration:none; margin-right:1rem; }
header form { margin-left:auto; }
main { padding:1.25rem 1.5rem; max-width:1200px; }
h1 { font-size:1.4rem; margin:.2rem 0 1rem; } h2 { font-size:1.05rem; margin:1.6rem 0 .6rem; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(140px,1fr)); gap:.75rem; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:.7rem .9rem; }
.card .n { font-size:1.6rem; font-weight:700; } .card .l { color:var(--muted); font-size:.85rem; }
table { width:100%; border-collapse:collapse; background:#fff; border:1px solid var(--line); border-radius:8px; overflow:hidden; }
th, td { text-align:left; padding:.45rem .6rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#fafbfc; font-size:.8rem; text-transform:uppercase; letter-spacing:.03em; color:var(--muted); }
td.error { color:var(--bad); max-width:28rem; }
.bar { width:140px; height:10px; background:#e8ebf0; border-radius:5px; overflow:hidden; display:inline-block; vertical-align:middle; }
.bar span { display:block; height:100%; background:var(--accent); }
.banner { background:#fff4d6; border:1px solid #f0d48a; color:var(--warn); padding:.6rem .9rem; border-radius:8px; margin-bottom:1rem; }
.flash { background:#e7f5ec; border:1px solid #b5dec3; color:var(--good); padding:.6rem .9rem; border-radius:8px; margin-bottom:1rem; }
.state { font-size:.8rem; padding:.1rem .45rem; border-radius:999px; background:#eef1f6; }
.state.failed { background:#fde7e6; color:var(--bad); } .state.completed { background:#e7f5ec; color:var(--good); }
.state.processing { background:#e7eefc; color:var(--accent); }
button { font:inherit; border:1px solid var(--line); background:#fff; border-radius:6px; padding:.25rem .7rem; cursor:pointer; }
button.primary { background:var(--accent); border-color:var(--accent); color:#fff; }
button.danger { color:var(--bad); }
form.inline { display:inline; }
input, select, textarea { font:inherit; padding:.3rem .5rem; border:1px solid var(--line); border-radius:6px; }
.row { display:flex; gap:.6rem; align-items:center; flex-wrap:wrap; }
.muted { color:var(--muted); } .mono { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:.85rem; }
svg.spark { background:#fff; border:1px solid var(--line); border-radius:8px; }
"#;

/// Reloads the overview every 5 s, unless the operator is typing in a form.
const REFRESH: &str = r#"
setInterval(function () {
  var a = document.activeElement;
  if (!a || (a.tagName !== 'INPUT' && a.tagName !== 'SELECT' && a.tagName !== 'TEXTAREA')) { location.reload(); }
}, 5000);
"#;

fn layout(title: &str, csrf: Option<&str>, body: Markup, refresh: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · docqueue admin" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { "docqueue" }
                    @if let Some(csrf) = csrf {
                        nav { a href="/admin" { "Overview" } a href="/admin/jobs" { "Jobs" } }
                        form method="post" action="/admin/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
                @if refresh { script { (PreEscaped(REFRESH)) } }
            }
        }
    }
}

/// A POST form with one button, carrying the CSRF token and where to come back to.
fn action(csrf: &str, path: &str, label: &str, class: &str, back: &str) -> Markup {
    html! {
        form.inline method="post" action=(path) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="back" value=(back);
            button type="submit" class=(class) { (label) }
        }
    }
}

fn state_badge(state: JobState) -> Markup {
    html! { span class={ "state " (state) } { (state) } }
}

fn ago(ms: Option<i64>) -> String {
    match ms {
        Some(ms) if ms > 0 => {
            let seconds = (chrono::Utc::now().timestamp_millis() - ms).max(0) / 1000;
            match seconds {
                0..=59 => format!("{seconds}s ago"),
                60..=3599 => format!("{}m ago", seconds / 60),
                _ => format!("{}h ago", seconds / 3600),
            }
        }
        _ => "—".into(),
    }
}

fn sparkline(points: &[u64]) -> Markup {
    let (width, height) = (300.0, 48.0);
    let max = points.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = width / (points.len().max(2) - 1) as f64;
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, &n)| format!("{:.1},{:.1}", i as f64 * step, height - 4.0 - (n as f64 / max) * (height - 8.0)))
        .collect();
    html! {
        svg.spark width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } role="img"
            aria-label="completed jobs per minute, last 30 minutes" {
            polyline fill="none" stroke="#2f5bd3" stroke-width="2" points=(line.join(" ")) {}
        }
    }
}

pub fn login(error: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            h1 { "Admin login" }
            @if let Some(error) = error { p.banner { (error) } }
            form method="post" action="/admin/login" {
                p { label for="token" { "Admin token (a JWT with role admin)" } }
                p { textarea id="token" name="token" rows="4" cols="70" required {} }
                p { button.primary type="submit" { "Log in" } }
            }
            p.muted { "Make one with " code { "docqueue token --user NAME --admin" } "." }
        },
        false,
    )
}

pub fn overview(
    csrf: &str,
    o: &Overview,
    processing: &[JobRecord],
    failed: &[JobRecord],
    flash: Option<&str>,
) -> Markup {
    let c = &o.counts;
    layout(
        "Overview",
        Some(csrf),
        html! {
            h1 { "Queue overview" }
            @if let Some(flash) = flash { p.flash { (flash) } }
            @if o.paused {
                div.banner.row {
                    strong { "Claiming is paused." } " Jobs wait until the queue is resumed."
                    (action(csrf, "/admin/actions/resume", "Resume", "primary", "/admin"))
                }
            } @else {
                div.row { (action(csrf, "/admin/actions/pause", "Pause claiming", "", "/admin")) }
            }
            @if o.redis_maxmemory_policy != "noeviction" && !o.redis_maxmemory_policy.is_empty() {
                p.banner { "Redis maxmemory-policy is " code { (o.redis_maxmemory_policy) } ": it may evict jobs. Use noeviction." }
            }
            @if o.redis_evicted_keys > 0 {
                p.banner { "Redis has evicted " (o.redis_evicted_keys) " keys since it started: jobs may have been lost (the reconciler enqueues them again)." }
            }
            h2 { "Jobs" }
            div.cards {
                @for (job_state, n) in c.by_state() {
                    div.card {
                        div.n { (n) }
                        div.l { (job_state) @if job_state == JobState::Delayed { " (retry, or waiting for an identical document)" } }
                    }
                }
            }
            @if let Some(oldest) = &o.oldest_waiting {
                p.muted {
                    "Longest wait: " (format!("{:.1}", oldest.waited_ms as f64 / 1000.0)) " s ("
                    a href={ "/admin/jobs/" (oldest.job_id) } { (oldest.job_id) } ")"
                }
            }
            h2 { "Throughput" }
            div.row {
                (sparkline(&o.throughput.per_minute))
                div {
                    div { "last 1 min: " strong { (format!("{:.1}", o.throughput.last_1m)) } " /min" }
                    div { "last 5 min: " strong { (format!("{:.1}", o.throughput.last_5m)) } " /min" }
                    div { "last 15 min: " strong { (format!("{:.1}", o.throughput.last_15m)) } " /min" }
                    div.muted {
                        "processing time: avg " (o.processing_time.average_ms.map_or("—".into(), |v| format!("{v:.0} ms")))
                        ", p95 " (o.processing_time.p95_ms.map_or("—".into(), |v| format!("{v} ms")))
                    }
                    div.muted {
                        "Redis memory: " (o.redis_used_memory_bytes / 1024) " KiB"
                        @if o.redis_maxmemory_bytes > 0 { " of " (o.redis_maxmemory_bytes / 1024) " KiB (maxmemory)" }
                    }
                }
            }
            h2 { "Processing" }
            @if processing.is_empty() { p.muted { "Nothing is processing." } } @else {
                table {
                    tr { th { "Document" } th { "User" } th { "Stage" } th { "Progress" } th { "Worker" } th {} }
                    @for job in processing {
                        tr {
                            td { a href={ "/admin/jobs/" (job.job_id) } { (job.filename) } }
                            td { (job.user_id) }
                            td { (job.stage.as_deref().unwrap_or("starting")) }
                            td { span.bar { span style={ "width:" (job.progress.clamp(0, 100)) "%" } {} } " " (job.progress) "%" }
                            td.mono { (job.worker.as_deref().unwrap_or("")) }
                            td { (action(csrf, &format!("/admin/actions/cancel/{}", job.job_id), "Cancel", "danger", "/admin")) }
                        }
                    }
                }
            }
            h2 { "Queued by user" }
            @if o.queued_per_user.is_empty() { p.muted { "No one is waiting." } } @else {
                table {
                    tr { th { "User" } th { "Queued" } }
                    @for user in &o.queued_per_user {
                        tr { td { a href={ "/admin/jobs?state=queued&user=" (user.user_id) } { (user.user_id) } } td { (user.queued) } }
                    }
                }
            }
            h2.row { "Failed" @if !failed.is_empty() { (action(csrf, "/admin/actions/retry-failed", "Retry all", "", "/admin")) } }
            @if failed.is_empty() { p.muted { "No failed jobs." } } @else {
                table id="failed-jobs" {
                    tr { th { "Document" } th { "User" } th { "Reason" } th { "Attempts" } th { "Failed" } th {} }
                    @for job in failed {
                        tr data-job-id=(job.job_id) {
                            td { a href={ "/admin/jobs/" (job.job_id) } { (job.filename) } }
                            td { (job.user_id) }
                            td.error { (job.error.as_deref().unwrap_or("")) }
                            td { (job.attempts) }
                            td { (ago(job.finished_at_ms)) }
                            td { (action(csrf, &format!("/admin/actions/retry/{}", job.job_id), "Retry", "primary", "/admin")) }
                        }
                    }
                }
            }
            h2 { "Workers" }
            @if o.workers.is_empty() { p.muted { "No worker is running." } } @else {
                table {
                    tr { th { "Worker" } th { "Host" } th { "Current job" } th { "Last heartbeat" } th { "Jobs done" } th { "Up since" } }
                    @for w in &o.workers {
                        tr {
                            td.mono { (w.id) } td { (w.host) }
                            td.mono { @if let Some(job) = &w.current_job { a href={ "/admin/jobs/" (job) } { (job) } } @else { "idle" } }
                            td { (ago(Some(w.last_heartbeat_ms))) } td { (w.jobs_done) } td { (ago(Some(w.started_at_ms))) }
                        }
                    }
                }
            }
            h2 { "Find a job" }
            (search_form(&JobSearch::default()))
            h2 { "Clean finished jobs" }
            form.row method="post" action="/admin/actions/clean" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="back" value="/admin";
                select name="state" {
                    @for finished in JobState::TERMINAL { option value=(finished) { (finished) } }
                }
                label { "older than " input name="older_than" value="24h" size="6"; }
                button type="submit" class="danger" { "Clean" }
            }
        },
        true,
    )
}

fn search_form(search: &JobSearch) -> Markup {
    let state = search.state.as_deref().unwrap_or("");
    html! {
        form.row method="get" action="/admin/jobs" {
            input type="search" name="q" placeholder="filename, document id, job id or user" size="40" value=(search.q.as_deref().unwrap_or(""));
            select name="state" {
                option value="" selected[state.is_empty()] { "any state" }
                @for s in JobState::ALL {
                    option value=(s) selected[state == s.as_str()] { (s) }
                }
            }
            input type="text" name="user" placeholder="user" size="12" value=(search.user.as_deref().unwrap_or(""));
            button type="submit" { "Search" }
        }
    }
}

pub fn jobs(csrf: &str, search: &JobSearch, page: &JobPage) -> Markup {
    layout(
        "Jobs",
        Some(csrf),
        html! {
            h1 { "Jobs" }
            (search_form(search))
            p.muted { (page.jobs.len()) " shown" }
            table {
                tr { th { "Document" } th { "User" } th { "State" } th { "Attempts" } th { "Enqueued" } th { "Error" } }
                @for job in &page.jobs {
                    tr {
                        td { a href={ "/admin/jobs/" (job.job_id) } { (job.filename) } }
                        td { (job.user_id) } td { (state_badge(job.state)) } td { (job.attempts) }
                        td { (ago(job.enqueued_at_ms)) } td.error { (job.error.as_deref().unwrap_or("")) }
                    }
                }
            }
            @if let Some(next) = page.next_cursor {
                p { a href={ "/admin/jobs?q=" (search.q.as_deref().unwrap_or("")) "&state=" (search.state.as_deref().unwrap_or(""))
                             "&user=" (search.user.as_deref().unwrap_or("")) "&cursor=" (next) } { "Next page →" } }
            }
        },
        false,
    )
}

pub fn job(csrf: &str, story: &JobStory, flash: Option<&str>) -> Markup {
    let d: &DocumentView = &story.document;
    let back = format!("/admin/jobs/{}", d.job_id);
    layout(
        "Job",
        Some(csrf),
        html! {
            h1 { (d.filename) " " (state_badge(d.queue_status)) }
            @if let Some(flash) = flash { p.flash { (flash) } }
            div.row {
                @if d.queue_status.is_terminal() {
                    (action(csrf, &format!("/admin/actions/retry/{}", d.job_id), "Retry", "primary", &back))
                } @else {
                    (action(csrf, &format!("/admin/actions/cancel/{}", d.job_id), "Cancel", "danger", &back))
                }
            }
            h2 { "Document" }
            table {
                tr { th { "Document id" } td.mono { (d.id) } } tr { th { "Job id" } td.mono { (d.job_id) } }
                tr { th { "Type" } td { (d.content_type) } } tr { th { "Size" } td { (d.size_bytes) " bytes" } }
                tr { th { "Progress" } td { (d.progress) "% " (d.stage.as_deref().unwrap_or("")) } }
                tr { th { "Attempts" } td { (d.attempts) } } tr { th { "Chunks" } td { (d.chunk_count) } }
                tr { th { "Worker" } td.mono { (d.worker_id.as_deref().unwrap_or("")) } }
                tr { th { "Error" } td.error { (d.error.as_deref().unwrap_or("")) } }
                tr { th { "Created" } td { (d.created_at.to_rfc3339()) } }
                tr { th { "Started" } td { (d.started_at.map(|t| t.to_rfc3339()).unwrap_or_default()) } }
                tr { th { "Finished" } td { (d.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default()) } }
            }
            h2 { "Attempts" }
            @if story.attempts.is_empty() { p.muted { "Not started yet." } } @else {
                table {
                    tr {
                        th { "#" } th { "Worker" } th { "Started" } th { "Finished" } th { "Outcome" } th { "Error" }
                        th { "Extractor" } th { "Peak memory" } th { "CPU" }
                    }
                    @for a in &story.attempts {
                        tr {
                            td { (a.attempt) } td.mono { (a.worker_id) } td { (a.started_at.and_utc().to_rfc3339()) }
                            td { (a.finished_at.map(|t| t.and_utc().to_rfc3339()).unwrap_or_default()) }
                            td { (a.outcome.as_deref().unwrap_or("running")) } td.error { (a.error.as_deref().unwrap_or("")) }
                            td { (a.extractor_outcome.as_deref().unwrap_or("")) " " span.muted { (a.extractor_exit.as_deref().unwrap_or("")) @if let Some(pid) = a.extractor_pid { " (pid " (pid) ")" } } }
                            td { @if let Some(kb) = a.extractor_peak_memory_kb { (kb / 1024) " MiB" } }
                            td { @if let Some(ms) = a.extractor_cpu_ms { (format!("{:.2}", ms as f64 / 1000.0)) " s" } }
                        }
                    }
                }
            }
            @if let Some(q) = &story.queue {
                h2 { "In the queue" }
                p.muted { "state " (q.state) ", stalls " (q.stalls) ", failures " (q.failures) ", priority " (q.priority) }
            }
        },
        false,
    )
}
