// BullMQ's side of `scripts/bench.sh compare`: the figures of benches/queue.rs, measured
// the same way on the same private Redis (BENCH_REDIS_URL), one JSON line each.
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';

const url = new URL(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/');
// Workers block on Redis, which BullMQ requires to be retried without a limit.
const connection = { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null };
// docqueue's retention (config/default.toml): 1,000 completed and 5,000 failed jobs kept,
// for a day and a week.
const retention = {
  removeOnComplete: { count: 1000, age: 86400 },
  removeOnFail: { count: 5000, age: 604800 },
};

function figure(name, value, unit, extra = {}) {
  console.log(JSON.stringify({ bench: 'bullmq', figure: name, value: round2(value), unit, ...extra }));
}

function skipped(name, unit, reason) {
  console.log(JSON.stringify({ bench: 'bullmq', figure: name, value: null, unit, skipped: reason }));
}

function fail(err) {
  console.error(err);
  process.exit(1);
}

// The fields of docqueue's NewJob, so both queues carry a payload of about the same size.
function job(i, users) {
  return {
    name: 'document',
    data: {
      document_id: `doc-${i}`,
      user_id: `user-${i % users}`,
      priority: 0,
      content_type: 'text/plain',
      size_bytes: 1000,
      filename: `file-${i}.txt`,
    },
  };
}

const freshQueue = (figureName) =>
  new Queue(`bench-${figureName}-${randomUUID()}`, { connection, defaultJobOptions: retention });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// `promise`'s value, or null after `ms`; the timer is cleared so it cannot hold the exit.
function within(promise, ms) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(resolve, ms, null);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const round2 = (x) => Math.round(x * 100) / 100;

const percentile = (sorted, p) => (sorted.length ? sorted[Math.round((sorted.length - 1) * p)] : 0);

async function enqueueSingle() {
  const queue = freshQueue('enqueue_single');
  await queue.waitUntilReady();
  const n = 5000;
  // The floor of anything done one request at a time: a PING on the queue's connection.
  const client = await queue.client;
  let start = performance.now();
  for (let i = 0; i < n; i++) {
    await client.ping();
  }
  figure('redis_round_trip', ((performance.now() - start) * 1000) / n, 'µs', { pings: n });
  start = performance.now();
  for (let i = 0; i < n; i++) {
    const { name, data } = job(i, 50);
    await queue.add(name, data);
  }
  figure('enqueue_single', n / ((performance.now() - start) / 1000), 'jobs/s', { jobs: n });
  await queue.close();
}

async function enqueueBatched() {
  const queue = freshQueue('enqueue_batched');
  await queue.waitUntilReady();
  const [n, batch] = [50000, 100];
  const jobs = Array.from({ length: n }, (_, i) => job(i, 50));
  const start = performance.now();
  for (let i = 0; i < n; i += batch) {
    await queue.addBulk(jobs.slice(i, i + batch));
  }
  figure('enqueue_batched', n / ((performance.now() - start) / 1000), 'jobs/s', { jobs: n, batch });
  await queue.close();
}

// A no-op Worker at `concurrency` drains 30,000 jobs added beforehand.
async function noopThroughput(concurrency) {
  const name = `queue_noop_throughput_c${concurrency}`;
  const queue = freshQueue(name);
  const n = 30000;
  const jobs = Array.from({ length: n }, (_, i) => job(i, 100));
  for (let i = 0; i < n; i += 500) {
    await queue.addBulk(jobs.slice(i, i + 500));
  }
  const worker = new Worker(queue.name, async () => {}, { connection, concurrency, autorun: false });
  // Connected before the clock starts, as docqueue's claim loops are ready before theirs.
  await worker.waitUntilReady();
  let done = 0;
  const drained = new Promise((resolve) => {
    worker.on('completed', () => {
      if (++done === n) resolve();
    });
  });
  const start = performance.now();
  worker.run().catch(fail);
  await drained;
  const rate = n / ((performance.now() - start) / 1000);
  await worker.close();
  await queue.close();
  figure(name, rate, 'jobs/s', { jobs: n, layer: 'BullMQ Worker, no-op processor' });
}

// 2,000 jobs added at a steady 200/s; a Worker of concurrency 5 (docqueue's five claim
// loops) runs them. Completion is taken from the Worker's own `completed` event, not a
// QueueEvents listener: docqueue's figure is taken in the worker as its finish returns,
// and QueueEvents would add the event stream's delivery to BullMQ's side.
async function steadyLatency() {
  const queue = freshQueue('steady_latency');
  await queue.waitUntilReady();
  const [total, rate] = [2000, 200];
  const started = [];
  const completed = [];
  const worker = new Worker(
    queue.name,
    async (j) => {
      started.push(performance.now() - j.data.added_at);
    },
    { connection, concurrency: 5 },
  );
  await worker.waitUntilReady();
  const finished = new Promise((resolve) => {
    worker.on('completed', (j) => {
      completed.push(performance.now() - j.data.added_at);
      if (completed.length === total) resolve();
    });
  });
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const { name, data } = job(i, 20);
    await queue.add(name, { ...data, added_at: performance.now() });
  }
  await within(finished, 30000);
  await worker.close();
  await queue.close();
  const byValue = (a, b) => a - b;
  started.sort(byValue);
  completed.sort(byValue);
  const shape = (samples) => ({
    p50: round2(percentile(samples, 0.5)),
    p95: round2(percentile(samples, 0.95)),
    p99: round2(percentile(samples, 0.99)),
    max: round2(samples.at(-1) ?? 0),
    jobs: samples.length,
  });
  figure('steady_latency', percentile(completed, 0.99), 'ms (p99)', {
    ...shape(completed),
    measured: 'add → completed (Worker completed event)',
    start: shape(started),
    rate_per_sec: rate,
    workers: 5,
  });
}

// The victim: a Worker of concurrency 3 (docqueue's default worker count) whose job
// never ends; it tells the parent when it holds the job.
async function runChildWorker(queueName, lockSettings) {
  const worker = new Worker(
    queueName,
    async (j) => {
      process.send({ started: j.id });
      await new Promise(() => {});
    },
    { connection, concurrency: 3, ...lockSettings },
  );
  await worker.waitUntilReady();
}

// A worker process is SIGKILLed while it holds a job; seconds until a Worker started
// after the kill runs the job again. Returns null if that takes longer than `limitMs`.
async function killRecovery(lockSettings, limitMs) {
  const queue = freshQueue('kill_recovery');
  await queue.waitUntilReady();
  const child = fork(fileURLToPath(import.meta.url), ['child', queue.name, JSON.stringify(lockSettings)]);
  const { name, data } = job(0, 1);
  const added = await queue.add(name, data);
  await new Promise((resolve) => child.on('message', (m) => m.started === added.id && resolve()));
  await sleep(300);
  const rssKib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const killed = performance.now();
  let rescued;
  const runAgain = new Promise((resolve) => {
    rescued = new Worker(
      queue.name,
      async (j) => {
        if (j.id === added.id) resolve((performance.now() - killed) / 1000);
      },
      { connection, concurrency: 3, ...lockSettings },
    );
  });
  const seconds = await within(runAgain, limitMs);
  await rescued.close(true);
  await queue.close();
  return { seconds, rssKib };
}

// BULLMQ_BENCH_ONLY=enqueue,noop,latency,kill runs those groups alone (scripts/bench.sh
// compare runs each beside docqueue's same group, so both meet the machine as it is then).
const only = process.env.BULLMQ_BENCH_ONLY?.split(',');
const wanted = (group) => !only || only.includes(group);

async function main() {
  if (wanted('enqueue')) {
    await enqueueSingle();
    await enqueueBatched();
  }
  if (wanted('noop')) {
    for (const concurrency of [5, 50]) {
      await noopThroughput(concurrency);
    }
  }
  if (wanted('latency')) {
    await steadyLatency();
  }
  if (!wanted('kill')) return;

  const tuned = { lockDuration: 5000, stalledInterval: 5000 };
  const { seconds, rssKib } = await killRecovery(tuned, 70000);
  if (seconds === null) skipped('kill_recovery', 's', 'not run again within 70 s');
  else figure('kill_recovery', seconds, 's', tuned);
  figure('worker_process_rss', rssKib / 1024, 'MiB', { workers: 3, state: 'one job in hand' });
  // BullMQ's defaults (30 s lock, a stalled check every 30 s): one check marks the job and
  // the next moves it back, so about 60 s, now and then a check later; past 70 s the
  // figure is reported as skipped rather than holding the run up.
  const defaults = await killRecovery({}, 70000);
  if (defaults.seconds === null) skipped('kill_recovery_defaults', 's', 'not run again within 70 s');
  else figure('kill_recovery_defaults', defaults.seconds, 's', { lockDuration: 30000, stalledInterval: 30000 });
}

if (process.argv[2] === 'child') {
  await runChildWorker(process.argv[3], JSON.parse(process.argv[4])).catch(fail);
} else {
  await main().catch(fail);
}
