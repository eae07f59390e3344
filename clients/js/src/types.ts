// The server's contract (README "Progress over WebSocket", docs/openapi.json), as
// TypeScript. Every field the server sends is here and none it does not:
// test/server/frames.test.ts type-checks real frames from a running docqueue against
// these types, with excess-property checks, so a drift on either side fails there.

/** A document's place in processing (`queue_status`). */
export type QueueStatus = "queued" | "processing" | "completed" | "failed" | "cancelled";

/** The step a processing document is in. */
export type Stage = "extracting" | "chunking" | "embedding" | "storing";

/** One document, as `GET /api/documents/{id}` and the lists answer it. */
export interface DocumentView {
  id: string;
  job_id: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  sha256: string;
  queue_status: QueueStatus;
  queue_priority: number;
  progress: number;
  stage: Stage | null;
  attempts: number;
  error: string | null;
  worker_id: string | null;
  chunk_count: number;
  /** RFC 3339. */
  created_at: string;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
  /** The document whose chunks were copied, when the same content had been processed
   * with the same settings (README "Duplicate uploads"); null when processed. */
  reused_from: string | null;
  /** What a completed document's reading left out (PDF pages without a text layer
   * while OCR is unavailable); null when nothing was. */
  warning: string | null;
}

/** A document in a snapshot: its row plus what Redis knows of its wait. */
export interface SnapshotDocument extends DocumentView {
  queue_position: number | null;
  eta_seconds: number | null;
}

/** The first frame on a socket (and `GET /api/documents/processing-status`). */
export interface Snapshot {
  type: "snapshot";
  /** The user's last event seq when the picture was taken: later events are newer. */
  seq: number;
  ts: number;
  counts: Record<QueueStatus, number>;
  documents: SnapshotDocument[];
}

interface EventFields<Type extends string> {
  type: Type;
  user_id: string;
  document_id: string;
  job_id: string;
  /** Milliseconds since the Unix epoch, when the event was produced. */
  ts: number;
  /** Per user, increasing by one with every event. */
  seq: number;
}

export interface DocumentQueuedEvent extends EventFields<"document.queued"> {
  queue_status: "queued";
  /** The queue position, under its name in the REST API and the snapshot. */
  queue_position: number | null;
  /** The same number, under the name earlier servers sent alone. */
  position: number | null;
}

export interface DocumentProgressEvent extends EventFields<"document.progress"> {
  queue_status: "processing";
  progress: number;
  stage: Stage;
  /** While OCR runs (stage `extracting`): pages recognised so far, of `ocr_pages`. */
  ocr_pages_done?: number;
  ocr_pages?: number;
}

export interface DocumentCompletedEvent extends EventFields<"document.completed"> {
  queue_status: "completed";
  progress: 100;
  chunk_count: number;
  /** The document whose chunks were copied; null when this one was processed. */
  reused_from: string | null;
  /** What the reading left out; null when nothing was. */
  warning: string | null;
}

export interface DocumentFailedEvent extends EventFields<"document.failed"> {
  /** `queued` when it will be retried, `failed` when the failure is final. */
  queue_status: "queued" | "failed";
  error: string;
  will_retry: boolean;
  attempt: number;
}

export interface DocumentCancelledEvent extends EventFields<"document.cancelled"> {
  queue_status: "cancelled";
}

export interface QueuePositionEvent extends EventFields<"queue.position"> {
  queue_position: number;
  /** The same number as `queue_position`. */
  position: number;
  eta_seconds: number | null;
}

export type DocumentEvent =
  | DocumentQueuedEvent
  | DocumentProgressEvent
  | DocumentCompletedEvent
  | DocumentFailedEvent
  | DocumentCancelledEvent
  | QueuePositionEvent;

/** The server's frames other than snapshots and events. */
export type ControlFrame =
  | { type: "error"; code: string; message: string; ts: number }
  | { type: "pong"; ts: number }
  | { type: "cancel.accepted"; document_id: string; queue_status: QueueStatus; ts: number };

export type ServerFrame = Snapshot | DocumentEvent | ControlFrame;

/** Frames a client may send. */
export type ClientFrame =
  | { type: "resume"; since: number }
  | { type: "cancel"; document_id: string }
  | { type: "subscribe" }
  | { type: "ping" };

/** A document as the upload answers it (202): the file's facts from its row, and its place in the queue. */
export interface UploadedDocument
  extends Pick<DocumentView, "id" | "job_id" | "filename" | "content_type" | "size_bytes" | "sha256" | "queue_status"> {
  queue_position: number | null;
}

export interface UploadResponse {
  documents: UploadedDocument[];
  next_cursor: null;
}

export interface DocumentPage {
  documents: DocumentView[];
  /** Pass as `cursor` for the next page; null on the last one. */
  next_cursor: string | null;
}

export interface Chunk {
  ordinal: number;
  text: string;
  page_start: number | null;
  page_end: number | null;
  char_count: number;
}

export interface ChunkPage {
  chunks: Chunk[];
  next_cursor: number | null;
}

export interface SearchHit {
  document_id: string;
  filename: string;
  ordinal: number;
  page_start: number | null;
  page_end: number | null;
  text: string;
  score: number;
}

export interface SearchResults {
  results: SearchHit[];
}

export interface WsTicket {
  ticket: string;
  expires_in: number;
}

/** Every error answer: `{"error": {"code": "…", "message": "…"}}`. */
export interface ErrorBody {
  error: { code: string; message: string };
}
