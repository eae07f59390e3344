import {
  DocqueueError,
  type ConnectionState,
  type DocqueueClient,
  type QueueStatus,
  type Stage,
  type StreamView,
  type TrackedDocument,
} from "@docqueue/client";
import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";

/** `uploading`: bytes on their way; `rejected`: the server refused the upload. */
export type DocumentStatus = "uploading" | "rejected" | QueueStatus;

export interface ProcessingDocument {
  /** Stable for the row's life: the upload's own key, or the document id. */
  key: string;
  /** The server's document id, once the upload was accepted. */
  id: string | null;
  filename: string;
  status: DocumentStatus;
  stage: Stage | null;
  /** 0–100: processing progress. */
  progress: number;
  /** 1 = next to run; null when not waiting. */
  queuePosition: number | null;
  etaSeconds: number | null;
  /** The server's words, for people. */
  error: string | null;
  /** A failed attempt that the server will retry by itself. */
  willRetry: boolean;
  /** 0–1 while uploading, null otherwise. */
  uploadProgress: number | null;
  chunkCount: number | null;
  /** Set on a completed document whose reading left something out (the server's words). */
  warning: string | null;
  canCancel: boolean;
  /** A final failure whose file this page still holds: `retry` uploads it again. */
  canRetry: boolean;
}

export interface DocumentProcessing {
  documents: ProcessingDocument[];
  /** Uploads each file in its own request (one refused file fails only its row); resolves with their keys at once. */
  upload(files: File[]): string[];
  /** Cancels an upload in flight or the document's processing. */
  cancel(key: string): Promise<void>;
  /** Uploads a failed or refused file again, in the same row. */
  retry(key: string): void;
  connection: ConnectionState;
  /** Set when sign-in is needed: the token (or its tickets) were refused. */
  authError: string | null;
}

export interface UseDocumentProcessingOptions {
  client: DocqueueClient;
  /** Uploads sent at once (the server takes 4 per user at a time by default). */
  parallelUploads?: number;
}

/** A file this page uploaded, until the row is gone. */
interface LocalUpload {
  key: string;
  file: File;
  id: string | null;
  /** Ids of earlier attempts that `retry` replaced, hidden from the list. */
  replaced: string[];
  phase: "waiting" | "uploading" | "uploaded" | "rejected" | "aborted";
  uploadProgress: number;
  error: string | null;
  /** The cancel answer, until the stream says the same. */
  cancelled: boolean;
  abort: AbortController;
}

const TERMINAL: ReadonlySet<string> = new Set(["completed", "failed", "cancelled"]);

let nextKey = 0;

/**
 * The user's documents, live: those in the server's snapshot and events (other tabs'
 * uploads too) merged with this page's own uploads, from the first byte sent to
 * `completed`. Every hook on one client shares that client's single socket.
 */
export function useDocumentProcessing({ client, parallelUploads = 3 }: UseDocumentProcessingOptions): DocumentProcessing {
  const stream = client.progress();
  const view = useSyncExternalStore<StreamView>(
    useCallback((changed) => stream.subscribe(changed), [stream]),
    () => stream.current,
    () => stream.current,
  );
  const [uploads, setUploads] = useState<LocalUpload[]>([]);
  const uploadsRef = useRef(uploads);
  uploadsRef.current = uploads;
  const queue = useRef<string[]>([]);
  const running = useRef(0);

  const change = useCallback((key: string, patch: Partial<LocalUpload>) => {
    setUploads((all) => all.map((u) => (u.key === key ? { ...u, ...patch } : u)));
  }, []);

  const pump = useCallback(() => {
    while (running.current < parallelUploads && queue.current.length > 0) {
      const key = queue.current.shift() as string;
      const upload = uploadsRef.current.find((u) => u.key === key);
      if (!upload || upload.phase !== "waiting") continue;
      running.current += 1;
      change(key, { phase: "uploading" });
      client
        .upload([upload.file], {
          signal: upload.abort.signal,
          onUploadProgress: ({ loaded, total }) => change(key, { uploadProgress: total ? loaded / total : 0 }),
        })
        .then(
          (answer) => {
            const document = answer.documents[0];
            stream.nameDocument(document.id, document.filename);
            change(key, { phase: "uploaded", id: document.id, uploadProgress: 1 });
          },
          (err: unknown) => {
            if (err instanceof DOMException && err.name === "AbortError") {
              change(key, { phase: "aborted" });
            } else {
              change(key, { phase: "rejected", error: err instanceof Error ? err.message : String(err) });
            }
          },
        )
        .finally(() => {
          running.current -= 1;
          pump();
        });
    }
  }, [client, stream, change, parallelUploads]);

  const enqueue = useCallback(
    (entries: LocalUpload[]) => {
      uploadsRef.current = [...uploadsRef.current, ...entries];
      setUploads(uploadsRef.current);
      queue.current.push(...entries.map((e) => e.key));
      pump();
    },
    [pump],
  );

  const upload = useCallback(
    (files: File[]): string[] => {
      const entries = files.map<LocalUpload>((file) => ({
        key: `upload-${++nextKey}`,
        file,
        id: null,
        replaced: [],
        phase: "waiting",
        uploadProgress: 0,
        error: null,
        cancelled: false,
        abort: new AbortController(),
      }));
      enqueue(entries);
      return entries.map((e) => e.key);
    },
    [enqueue],
  );

  const retry = useCallback(
    (key: string) => {
      const old = uploadsRef.current.find((u) => u.key === key);
      if (!old) return;
      const again: LocalUpload = {
        ...old,
        id: null,
        replaced: old.id ? [...old.replaced, old.id] : old.replaced,
        phase: "waiting",
        uploadProgress: 0,
        error: null,
        cancelled: false,
        abort: new AbortController(),
      };
      uploadsRef.current = uploadsRef.current.map((u) => (u.key === key ? again : u));
      setUploads(uploadsRef.current);
      queue.current.push(key);
      pump();
    },
    [pump],
  );

  const documents = useMemo(() => merge(view, uploads), [view, uploads]);

  const cancel = useCallback(
    async (key: string) => {
      const row = documents.find((d) => d.key === key);
      const local = uploadsRef.current.find((u) => u.key === key);
      if (local && !local.id) {
        local.abort.abort();
        change(key, { phase: "aborted" });
        return;
      }
      const id = row?.id ?? local?.id;
      if (!id) return;
      try {
        const result = await client.cancel(id);
        if (result.cancelled && local) change(key, { cancelled: true });
      } catch (err) {
        // 409: it finished first; its final event says how. Anything else is worth showing.
        if (!(err instanceof DocqueueError && err.status === 409) && local) {
          change(key, { error: err instanceof Error ? err.message : String(err) });
        }
      }
    },
    [client, documents, change],
  );

  // Documents known only from events (another tab's uploads) get their names once.
  const asked = useRef(new Set<string>());
  useEffect(() => {
    for (const id of view.state.order) {
      const doc = view.state.documents[id];
      if (doc.filename !== null || asked.current.has(id)) continue;
      if (uploads.some((u) => u.id === id)) continue;
      asked.current.add(id);
      client.get(id).then(
        (found) => stream.nameDocument(id, found.filename),
        () => asked.current.delete(id),
      );
    }
  }, [view, uploads, client, stream]);

  return { documents, upload, cancel, retry, connection: view.connection, authError: view.authError };
}

function merge(view: StreamView, uploads: LocalUpload[]): ProcessingDocument[] {
  const byId = new Map<string, LocalUpload>();
  const hidden = new Set<string>();
  for (const u of uploads) {
    if (u.id) byId.set(u.id, u);
    for (const id of u.replaced) hidden.add(id);
  }
  const rows: ProcessingDocument[] = [];
  const shown = new Set<string>();
  for (const id of view.state.order) {
    if (hidden.has(id)) continue;
    const local = byId.get(id);
    if (local?.phase === "aborted") continue;
    rows.push(fromServer(view.state.documents[id], local));
    if (local) shown.add(local.key);
  }
  for (const u of uploads) {
    if (shown.has(u.key) || u.phase === "aborted") continue;
    rows.push(fromUpload(u));
  }
  return rows;
}

function fromServer(doc: TrackedDocument, local: LocalUpload | undefined): ProcessingDocument {
  const status: DocumentStatus = local?.cancelled && !TERMINAL.has(doc.status) ? "cancelled" : doc.status;
  const finalFailure = status === "failed";
  const willRetry = status === "queued" && doc.willRetry && doc.error !== null;
  return {
    key: local?.key ?? doc.id,
    id: doc.id,
    filename: doc.filename ?? local?.file.name ?? "document",
    status,
    stage: status === "processing" ? doc.stage : null,
    progress: status === "completed" ? 100 : doc.progress,
    queuePosition: status === "queued" ? doc.queuePosition : null,
    etaSeconds: status === "queued" || status === "processing" ? doc.etaSeconds : null,
    error: local?.error ?? (finalFailure || willRetry ? doc.error : null),
    willRetry,
    uploadProgress: null,
    chunkCount: doc.chunkCount,
    warning: status === "completed" ? doc.warning : null,
    canCancel: status === "queued" || status === "processing",
    canRetry: finalFailure && local !== undefined,
  };
}

function fromUpload(u: LocalUpload): ProcessingDocument {
  const rejected = u.phase === "rejected";
  return {
    key: u.key,
    id: u.id,
    filename: u.file.name,
    // Accepted, and the stream has not told of it yet: it is queued.
    status: rejected ? "rejected" : u.phase === "uploaded" ? "queued" : "uploading",
    stage: null,
    progress: 0,
    queuePosition: null,
    etaSeconds: null,
    error: u.error,
    willRetry: false,
    uploadProgress: u.phase === "uploaded" || rejected ? null : u.uploadProgress,
    chunkCount: null,
    warning: null,
    canCancel: !rejected,
    canRetry: rejected,
  };
}
