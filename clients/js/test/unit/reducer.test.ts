import { describe, expect, it } from "vitest";
import { applyEvent, applySnapshot, emptyState, type ProgressState } from "../../src/reducer.js";
import type { DocumentEvent, Snapshot, SnapshotDocument } from "../../src/types.js";

const base = { user_id: "alice", job_id: "job-a", ts: 1_764_000_000_000 };

function story(documentId: string, firstSeq: number): DocumentEvent[] {
  const on = { ...base, document_id: documentId };
  let seq = firstSeq;
  return [
    { ...on, seq: seq++, type: "document.queued", queue_status: "queued", queue_position: 3, position: 3 },
    { ...on, seq: seq++, type: "queue.position", queue_position: 1, position: 1, eta_seconds: 4.5 },
    { ...on, seq: seq++, type: "document.progress", queue_status: "processing", progress: 10, stage: "extracting" },
    { ...on, seq: seq++, type: "document.progress", queue_status: "processing", progress: 55, stage: "chunking" },
    { ...on, seq: seq++, type: "document.failed", queue_status: "queued", error: "Redis went away", will_retry: true, attempt: 1 },
    { ...on, seq: seq++, type: "document.progress", queue_status: "processing", progress: 80, stage: "embedding" },
    { ...on, seq: seq++, type: "document.completed", queue_status: "completed", progress: 100, chunk_count: 12, reused_from: null, warning: null },
  ];
}

function applyAll(events: DocumentEvent[], from: ProgressState = emptyState): ProgressState {
  return events.reduce(applyEvent, from);
}

/** A deterministic shuffle (the same orders on every run): Fisher–Yates over a small LCG. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let state = seed;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function snapshotDocument(id: string, over: Partial<SnapshotDocument>): SnapshotDocument {
  return {
    id,
    job_id: `job-${id}`,
    filename: `${id}.pdf`,
    content_type: "application/pdf",
    size_bytes: 1000,
    sha256: "00",
    queue_status: "processing",
    queue_priority: 0,
    progress: 40,
    stage: "extracting",
    attempts: 1,
    error: null,
    worker_id: "host:1:0",
    chunk_count: 0,
    created_at: "2026-11-29T12:00:00Z",
    queued_at: "2026-11-29T12:00:00Z",
    started_at: "2026-11-29T12:00:01Z",
    finished_at: null,
    reused_from: null,
    warning: null,
    queue_position: null,
    eta_seconds: 3,
    ...over,
  };
}

function snapshot(seq: number, documents: SnapshotDocument[]): Snapshot {
  return {
    type: "snapshot",
    seq,
    ts: base.ts,
    counts: { queued: 0, processing: 0, completed: 0, failed: 0, cancelled: 0 },
    documents,
  };
}

describe("applyEvent", () => {
  it("ends in the same state whatever order the events come in", () => {
    const events = [...story("a", 1), ...story("b", 8)];
    const inOrder = applyAll(events);
    expect(inOrder.documents.a).toMatchObject({ status: "completed", progress: 100, chunkCount: 12, stage: null });
    expect(inOrder.documents.a.error).toBe("Redis went away");
    expect(inOrder.seq).toBe(14);
    for (let seed = 1; seed <= 200; seed++) {
      const state = applyAll(shuffled(events, seed));
      expect(state.documents).toEqual(inOrder.documents);
      expect(state.seq).toBe(inOrder.seq);
    }
  });

  it("takes each field from the newest event that sets it, not from the last to arrive", () => {
    const [queued, position, , late] = story("a", 1);
    const early = story("a", 1)[2];
    const state = applyAll([queued, late, position, early]);
    expect(state.documents.a).toMatchObject({ status: "processing", progress: 55, stage: "chunking", queuePosition: 1 });
  });

  it("ignores an event it has applied already, returning the very same state", () => {
    const events = story("a", 1);
    const once = applyAll(events);
    for (const event of events) expect(applyEvent(once, event)).toBe(once);
    expect(applyAll([...events, ...events])).toEqual(once);
  });

  it("keeps the warning a completion carries", () => {
    const on = { ...base, document_id: "m" };
    const warning = "1 of its 2 pages have no text layer and were not read";
    const completed: DocumentEvent = {
      ...on, seq: 1, type: "document.completed", queue_status: "completed", progress: 100, chunk_count: 2, reused_from: null, warning,
    };
    expect(applyEvent(emptyState, completed).documents.m.warning).toBe(warning);
  });

  it("learns of a document from its events alone, without a filename", () => {
    const state = applyAll(story("a", 1).slice(0, 1));
    expect(state.order).toEqual(["a"]);
    expect(state.documents.a).toMatchObject({ filename: null, status: "queued", queuePosition: 3 });
  });
});

describe("applySnapshot", () => {
  it("replaces the state after a gap: documents it leaves out are gone, its own take over", () => {
    const before = applyAll([...story("a", 1), ...story("b", 8).slice(0, 3)]);
    expect(before.documents.a).toBeDefined();
    const after = applySnapshot(
      snapshot(40, [snapshotDocument("b", { progress: 70, stage: "embedding" }), snapshotDocument("c", {})]),
    );
    expect(after.order).toEqual(["b", "c"]);
    expect(after.seq).toBe(40);
    expect(after.documents.b).toMatchObject({ status: "processing", progress: 70, stage: "embedding", filename: "b.pdf" });
    expect(after.documents.a).toBeUndefined();
  });

  it("makes events it already reflects change nothing, and newer ones apply", () => {
    const state = applySnapshot(snapshot(20, [snapshotDocument("b", { progress: 70, stage: "embedding" })]));
    const stale: DocumentEvent = {
      ...base,
      document_id: "b",
      seq: 19,
      type: "document.progress",
      queue_status: "processing",
      progress: 30,
      stage: "extracting",
    };
    expect(applyEvent(state, stale).documents.b).toEqual(state.documents.b);
    const fresh: DocumentEvent = { ...stale, seq: 21, progress: 90, stage: "storing" };
    expect(applyEvent(state, fresh).documents.b).toMatchObject({ progress: 90, stage: "storing" });
  });
});
