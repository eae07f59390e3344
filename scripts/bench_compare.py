"""The table of `scripts/bench.sh compare`: reads the JSON lines both benches printed
(benches/bullmq/bench.mjs and benches/queue.rs) and prints each figure side by side.

usage: bench_compare.py RAW_LINES_FILE TITLE
"""

import json
import sys

# (row, BullMQ figure, docqueue figure, field, unit, higher is better). docqueue's pool
# figures (worker actors that also move database rows) stand against BullMQ's Worker at
# the same concurrency, which is BullMQ's whole processing path.
ROWS = [
    ("Redis round trip, one PING at a time (the floor of the next row)", "redis_round_trip", "redis_round_trip", "value", "µs", False),
    ("enqueue one at a time", "enqueue_single", "enqueue_single", "value", "jobs/s", True),
    ("enqueue in batches of 100", "enqueue_batched", "enqueue_batched", "value", "jobs/s", True),
    ("no-op processing c5, queue alone", "queue_noop_throughput_c5", "queue_noop_throughput_c5", "value", "jobs/s", True),
    ("no-op processing c50, queue alone", "queue_noop_throughput_c50", "queue_noop_throughput_c50", "value", "jobs/s", True),
    ("no-op c5, docqueue pool + SQLite rows", "queue_noop_throughput_c5", "pool_noop_throughput_c5", "value", "jobs/s", True),
    ("no-op c50, docqueue pool + SQLite rows", "queue_noop_throughput_c50", "pool_noop_throughput_c50", "value", "jobs/s", True),
    ("no-op c5, docqueue pool + PostgreSQL rows", "queue_noop_throughput_c5", "pool_noop_throughput_c5_postgres", "value", "jobs/s", True),
    ("no-op c50, docqueue pool + PostgreSQL rows", "queue_noop_throughput_c50", "pool_noop_throughput_c50_postgres", "value", "jobs/s", True),
    ("add → completed at 200 jobs/s, p50", "steady_latency", "enqueue_to_completed_ms", "p50", "ms", False),
    ("add → completed at 200 jobs/s, p99", "steady_latency", "enqueue_to_completed_ms", "p99", "ms", False),
    ("SIGKILLed worker's job running again, 5 s lock/lease", "kill_recovery", "sigkill_to_running_again_s", "value", "s", False),
    ("SIGKILLed worker's job running again, default settings", "kill_recovery_defaults", "sigkill_to_running_again_defaults_s", "value", "s", False),
    ("worker process RSS, one job in hand", "worker_process_rss", "worker_process_rss", "value", "MiB", False),
]


def load(path):
    figures = {"bullmq": {}, "queue": {}}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("{"):
                record = json.loads(line)
                figures.setdefault(record["bench"], {})[record["figure"]] = record
    return figures["bullmq"], figures["queue"]


def cell(record, field, unit):
    """The shown text and the number (None when missing or skipped)."""
    if record is None:
        return "—", None
    if record.get("skipped"):
        return f"skipped: {record['skipped']}", None
    value = record.get(field)
    if value is None:
        return "—", None
    decimals = {"jobs/s": 0, "MiB": 1}.get(unit, 2)
    return f"{value:,.{decimals}f} {unit}", value


def ratio(bullmq, docqueue, higher_better):
    if not bullmq or not docqueue:
        return "—"
    # The division is the one whose result above 1 means docqueue is better.
    r, basis = (docqueue / bullmq, "docqueue/BullMQ") if higher_better else (bullmq / docqueue, "BullMQ/docqueue")
    winner, times = ("docqueue", r) if r >= 1 else ("BullMQ", 1 / r)
    return f"{r:.2f} ({basis}): {winner} {times:.2f}× better"


def main():
    path, title = sys.argv[1], sys.argv[2]
    bullmq, docqueue = load(path)
    table = [("figure", "BullMQ", "docqueue", "ratio")]
    for row, bullmq_name, docqueue_name, field, unit, higher_better in ROWS:
        bullmq_text, bullmq_value = cell(bullmq.get(bullmq_name), field, unit)
        docqueue_text, docqueue_value = cell(docqueue.get(docqueue_name), field, unit)
        table.append((row, bullmq_text, docqueue_text, ratio(bullmq_value, docqueue_value, higher_better)))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    print(title)
    print()
    for n, r in enumerate(table):
        print("| " + " | ".join(text.ljust(width) for text, width in zip(r, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (width + 2) for width in widths) + "|")


main()
