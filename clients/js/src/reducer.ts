import type { DocumentEvent, QueueStatus, Snapshot, Stage } from "./types.js";

/**
 * One document as the progress stream knows it. Each group of fields remembers the
 * seq of the event that last set it, so events apply in any order and any number of
 * times with the same result: the newest word on each field wins.
 */
export interface TrackedDocument {
  id: string;
  jobId: string;
  /** Null until a snapshot (or the REST API) names it: events carry no filename. */
  filename: string | null;
  status: QueueStatus;
  stage: Stage | null;
  progress: number;
  queuePosition: number | null;
  etaSeconds: number | null;
  error: string | null;
  willRetry: boolean;
  attempt: number;
  chunkCount: number | null;
  /** What a completed document's reading left out (the server's words), or null. */
  warning: string | null;
  seqs: FieldSeqs;
}

/** The seq that last set each group of fields. */
export interface FieldSeqs {
  status: number;
  progress: number;
  position: number;
  failure: number;
  chunks: number;
}

export interface ProgressState {
  /** The highest seq applied: a reconnect resumes after it. */
  seq: number;
  /** By document id. */
  documents: Record<string, TrackedDocument>;
  /** Document ids in the order they became known: the snapshot's, then new ones. */
  order: string[];
}

export const emptyState: ProgressState = { seq: 0, documents: {}, order: [] };

/** A snapshot is the whole truth as of its seq: it replaces the state. */
export function applySnapshot(snapshot: Snapshot): ProgressState {
  const documents: Record<string, TrackedDocument> = {};
  const order: string[] = [];
  const at = snapshot.seq;
  for (const doc of snapshot.documents) {
    documents[doc.id] = {
      id: doc.id,
      jobId: doc.job_id,
      filename: doc.filename,
      status: doc.queue_status,
      stage: doc.stage,
      progress: doc.progress,
      queuePosition: doc.queue_position,
      etaSeconds: doc.eta_seconds,
      error: doc.error,
      willRetry: false,
      attempt: doc.attempts,
      chunkCount: doc.queue_status === "completed" ? doc.chunk_count : null,
      warning: doc.warning,
      seqs: { status: at, progress: at, position: at, failure: at, chunks: at },
    };
    order.push(doc.id);
  }
  return { seq: snapshot.seq, documents, order };
}

function blank(event: DocumentEvent): TrackedDocument {
  return {
    id: event.document_id,
    jobId: event.job_id,
    filename: null,
    status: "queued",
    stage: null,
    progress: 0,
    queuePosition: null,
    etaSeconds: null,
    error: null,
    willRetry: false,
    attempt: 0,
    chunkCount: null,
    warning: null,
    seqs: { status: 0, progress: 0, position: 0, failure: 0, chunks: 0 },
  };
}

/** Applies one event; an event already applied, or older than what it would set, changes nothing. */
export function applyEvent(state: ProgressState, event: DocumentEvent): ProgressState {
  const known = state.documents[event.document_id];
  const before = known ?? blank(event);
  const doc: TrackedDocument = { ...before, seqs: { ...before.seqs } };
  const seq = event.seq;
  const newer = (group: keyof FieldSeqs): boolean => {
    if (seq <= doc.seqs[group]) return false;
    doc.seqs[group] = seq;
    return true;
  };
  if (event.type !== "queue.position" && newer("status")) {
    doc.status = event.queue_status;
    // A new job for the document (a retry by an admin) starts its own story.
    doc.jobId = event.job_id;
  }
  switch (event.type) {
    case "document.queued":
      if (newer("position")) {
        doc.queuePosition = event.position;
        doc.etaSeconds = null;
      }
      if (newer("progress")) {
        doc.progress = 0;
        doc.stage = null;
      }
      break;
    case "document.progress":
      if (newer("progress")) {
        doc.progress = event.progress;
        doc.stage = event.stage;
      }
      break;
    case "document.completed":
      if (newer("progress")) {
        doc.progress = event.progress;
        doc.stage = null;
      }
      if (newer("chunks")) {
        doc.chunkCount = event.chunk_count;
        doc.warning = event.warning;
      }
      break;
    case "document.failed":
      if (newer("failure")) {
        doc.error = event.error;
        doc.willRetry = event.will_retry;
        doc.attempt = event.attempt;
      }
      break;
    case "document.cancelled":
      break;
    case "queue.position":
      if (newer("position")) {
        doc.queuePosition = event.position;
        doc.etaSeconds = event.eta_seconds;
      }
      break;
  }
  const changed = JSON.stringify(doc) !== JSON.stringify(before) || !known;
  const nextSeq = Math.max(state.seq, seq);
  if (!changed) return nextSeq === state.seq ? state : { ...state, seq: nextSeq };
  return {
    seq: nextSeq,
    documents: { ...state.documents, [doc.id]: doc },
    order: known ? state.order : [...state.order, doc.id],
  };
}

/** Names a document the stream learned of from events alone (from a REST answer). */
export function nameDocument(state: ProgressState, id: string, filename: string): ProgressState {
  const doc = state.documents[id];
  if (!doc || doc.filename === filename) return state;
  return { ...state, documents: { ...state.documents, [id]: { ...doc, filename } } };
}
