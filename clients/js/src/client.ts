import { DocqueueError } from "./errors.js";
import { ProgressStream, type ProgressStreamOptions } from "./stream.js";
import type {
  ChunkPage,
  DocumentPage,
  DocumentView,
  QueueStatus,
  SearchResults,
  Snapshot,
  UploadResponse,
  WsTicket,
} from "./types.js";

/** Where the bearer token comes from: a string, or a function asked before each request. */
export type TokenSource = string | (() => string | Promise<string>);

export interface ClientOptions {
  /** The server, e.g. `https://docs.example.com`; empty for the page's own origin. */
  baseUrl?: string;
  token: TokenSource;
  /** Replaces the global `fetch` (tests, server-side rendering). */
  fetch?: typeof fetch;
  /** Options of the shared progress stream (`client.progress()`). */
  stream?: ProgressStreamOptions;
}

export interface UploadProgress {
  /** Bytes of the request body sent so far, and in all. */
  loaded: number;
  total: number;
}

export interface UploadOptions {
  /** -1000 to 1000; lower runs first among the caller's own documents. */
  priority?: number;
  signal?: AbortSignal;
  /** Called as the bytes go out, before the server answers. */
  onUploadProgress?: (progress: UploadProgress) => void;
}

export interface CancelResult {
  /** True once the document is cancelled; false while its running job is stopping (202). */
  cancelled: boolean;
  document: DocumentView;
}

/** A file to upload: a `File`, or any `Blob` with a name. */
export type UploadFile = File | { blob: Blob; name: string };

/**
 * The docqueue API with the caller's token: typed REST calls, uploads with progress,
 * and one shared progress stream over WebSocket (`progress()`).
 */
export class DocqueueClient {
  readonly baseUrl: string;
  private readonly token: TokenSource;
  private readonly fetchImpl: typeof fetch;
  private readonly streamOptions: ProgressStreamOptions;
  private stream: ProgressStream | null = null;

  constructor(options: ClientOptions) {
    this.baseUrl = (options.baseUrl ?? "").replace(/\/+$/, "");
    this.token = options.token;
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.streamOptions = options.stream ?? {};
  }

  /**
   * Uploads files in one request; resolves with the queued documents (202) as soon as
   * they are stored, long before they are processed. Uses XMLHttpRequest where there
   * is one, so `onUploadProgress` sees bytes leave; elsewhere fetch, and one report at
   * the end.
   */
  async upload(files: UploadFile[], options: UploadOptions = {}): Promise<UploadResponse> {
    const form = new FormData();
    for (const file of files) {
      if (file instanceof Blob) {
        form.append("file", file, (file as File).name);
      } else {
        form.append("file", file.blob, file.name);
      }
    }
    if (options.priority !== undefined) form.append("priority", String(options.priority));
    const url = this.url("/api/documents/upload");
    const token = await this.bearer();
    if (typeof XMLHttpRequest === "undefined") {
      const total = files.reduce((sum, f) => sum + (f instanceof Blob ? f.size : f.blob.size), 0);
      const answer = await this.send<UploadResponse>(url, { method: "POST", body: form, signal: options.signal }, token);
      options.onUploadProgress?.({ loaded: total, total });
      return answer;
    }
    return new Promise<UploadResponse>((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("POST", url);
      request.setRequestHeader("Authorization", `Bearer ${token}`);
      request.responseType = "text";
      request.upload.onprogress = (event) => {
        if (event.lengthComputable) options.onUploadProgress?.({ loaded: event.loaded, total: event.total });
      };
      request.onload = () => {
        if (request.status >= 200 && request.status < 300) {
          resolve(JSON.parse(request.responseText) as UploadResponse);
        } else {
          reject(DocqueueError.fromBody(request.status, request.statusText, request.responseText));
        }
      };
      request.onerror = () => reject(DocqueueError.network(new Error("the upload did not reach the server")));
      request.onabort = () => reject(new DOMException("The upload was aborted", "AbortError"));
      if (options.signal) {
        if (options.signal.aborted) {
          reject(new DOMException("The upload was aborted", "AbortError"));
          return;
        }
        options.signal.addEventListener("abort", () => request.abort(), { once: true });
      }
      request.send(form);
    });
  }

  /** The caller's documents, newest first, a page at a time. */
  list(params: { status?: QueueStatus; limit?: number; cursor?: string } = {}): Promise<DocumentPage> {
    return this.call<DocumentPage>("GET", "/api/documents", params);
  }

  get(id: string): Promise<DocumentView> {
    return this.call<DocumentView>("GET", `/api/documents/${encodeURIComponent(id)}`);
  }

  /** Cancels queued or running processing; 409 (a DocqueueError) once it has finished. */
  async cancel(id: string): Promise<CancelResult> {
    const { status, body } = await this.request<DocumentView>("DELETE", `/api/documents/cancel/${encodeURIComponent(id)}`);
    return { cancelled: status === 200, document: body };
  }

  /** The caller's queue: the same picture a socket's snapshot gives. */
  processingStatus(): Promise<Snapshot> {
    return this.call<Snapshot>("GET", "/api/documents/processing-status");
  }

  chunks(id: string, params: { cursor?: number; limit?: number } = {}): Promise<ChunkPage> {
    return this.call<ChunkPage>("GET", `/api/documents/${encodeURIComponent(id)}/chunks`, params);
  }

  /** The `k` chunks of the caller's completed documents nearest to `q`. */
  search(q: string, k?: number): Promise<SearchResults> {
    return this.call<SearchResults>("GET", "/api/documents/search", { q, k });
  }

  /** A one-time ticket, valid 30 s, for opening the progress socket. */
  wsTicket(): Promise<WsTicket> {
    return this.call<WsTicket>("POST", "/api/ws-ticket");
  }

  /** The progress socket's URL for a ticket (and a resume point). */
  socketUrl(ticket: string, since?: number): string {
    const base = this.baseUrl || (typeof location === "undefined" ? "" : location.origin);
    const url = new URL("/ws", base.replace(/^http/, "ws"));
    url.searchParams.set("ticket", ticket);
    if (since !== undefined) url.searchParams.set("since", String(since));
    return url.toString();
  }

  /** The one progress stream of this client: every subscriber shares its socket. */
  progress(): ProgressStream {
    this.stream ??= new ProgressStream(this, this.streamOptions);
    return this.stream;
  }

  private url(path: string, query: Record<string, string | number | undefined> = {}): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined) params.set(key, String(value));
    }
    const search = params.toString();
    return `${this.baseUrl}${path}${search ? `?${search}` : ""}`;
  }

  private async bearer(): Promise<string> {
    return typeof this.token === "function" ? await this.token() : this.token;
  }

  private async call<T>(method: string, path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
    return (await this.request<T>(method, path, query)).body;
  }

  private async request<T>(
    method: string,
    path: string,
    query: Record<string, string | number | undefined> = {},
  ): Promise<{ status: number; body: T }> {
    const token = await this.bearer();
    return this.sendWithStatus<T>(this.url(path, query), { method }, token);
  }

  private async send<T>(url: string, init: RequestInit, token: string): Promise<T> {
    return (await this.sendWithStatus<T>(url, init, token)).body;
  }

  private async sendWithStatus<T>(url: string, init: RequestInit, token: string): Promise<{ status: number; body: T }> {
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        ...init,
        headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
      });
    } catch (err) {
      if (err instanceof DOMException && err.name === "AbortError") throw err;
      throw DocqueueError.network(err);
    }
    const text = await response.text();
    if (!response.ok) throw DocqueueError.fromBody(response.status, response.statusText, text);
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  }
}
