import type { DocqueueClient } from "./client.js";
import { DocqueueError } from "./errors.js";
import { applyEvent, applySnapshot, emptyState, nameDocument, type ProgressState } from "./reducer.js";
import type { ClientFrame, DocumentEvent, ServerFrame } from "./types.js";

/**
 * `connecting`: the first connection is being made. `open`: events flow.
 * `reconnecting`: the socket dropped; retrying with back-off, and resuming where it
 * left off. `offline`: not trying: the browser is offline, the stream was stopped, or
 * sign-in is needed (`authError` says why).
 */
export type ConnectionState = "connecting" | "open" | "reconnecting" | "offline";

export interface StreamView {
  state: ProgressState;
  connection: ConnectionState;
  /** Set when the server refused the token or its tickets: the user must sign in again. */
  authError: string | null;
  /** The last `error` frame the server sent (the socket stays open after one). */
  lastError: string | null;
}

/** The constructor of a WebSocket: the browser's, or a compatible one (`ws` in Node). */
export type WebSocketConstructor = new (url: string) => WebSocket;

export interface ProgressStreamOptions {
  /** First retry delay and cap of the exponential back-off, in ms (jittered). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /**
   * How often to send a `ping` frame; a socket that has said nothing since the last
   * ping is taken for dead and replaced (a half-open TCP connection never closes).
   * The server's own protocol pings are answered by the WebSocket itself.
   */
  heartbeatMs?: number;
  WebSocket?: WebSocketConstructor;
}

/** Close code of a session whose token expired. */
const TOKEN_EXPIRED = 4001;
/** Close code of a refused (unknown, expired or used) ticket. */
const TICKET_REFUSED = 4401;
/** Close code of a socket past the user's limit of open sockets (other tabs hold them). */
const TOO_MANY_SOCKETS = 4029;
/** A fresh ticket refused right after another one: not a race, the sign-in is gone. */
const TICKET_REFUSALS_BEFORE_SIGN_IN = 2;
/** A snapshot refused for the user's request pace is asked for again after this long. */
const SNAPSHOT_RETRY_MS = 1000;

/**
 * The user's documents, live: one WebSocket shared by every subscriber, opened with a
 * one-time ticket, applying the snapshot and then each event by seq; reconnecting
 * with capped, jittered exponential back-off and resuming after the last seq it
 * applied (`/ws?since=`), or taking the fresh snapshot the server sends instead.
 */
export class ProgressStream {
  private view: StreamView = { state: emptyState, connection: "offline", authError: null, lastError: null };
  private readonly listeners = new Set<(view: StreamView) => void>();
  private socket: WebSocket | null = null;
  private running = false;
  /** Whether `view.state` came from this server at all: only then is `since` sent. */
  private hasBaseline = false;
  private failedAttempts = 0;
  private ticketRefusals = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private heardSincePing = true;
  private stopTimer: ReturnType<typeof setTimeout> | null = null;
  private subscribeTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly options: Required<Omit<ProgressStreamOptions, "WebSocket">> & { WebSocket?: WebSocketConstructor };

  constructor(
    private readonly client: DocqueueClient,
    options: ProgressStreamOptions = {},
  ) {
    this.options = {
      initialDelayMs: options.initialDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 15_000,
      heartbeatMs: options.heartbeatMs ?? 20_000,
      WebSocket: options.WebSocket,
    };
  }

  get current(): StreamView {
    return this.view;
  }

  /**
   * Calls `listener` with every new view (and once at once). The first subscriber
   * opens the socket, the last one to leave closes it.
   */
  subscribe(listener: (view: StreamView) => void): () => void {
    this.listeners.add(listener);
    if (this.stopTimer) {
      clearTimeout(this.stopTimer);
      this.stopTimer = null;
    }
    listener(this.view);
    if (!this.running) this.start();
    return () => {
      this.listeners.delete(listener);
      // A component that re-mounts at once (React's strict mode) keeps the socket.
      if (this.listeners.size === 0) this.stopTimer = setTimeout(() => this.stop(), 0);
    };
  }

  /** Connects (again) now: after a sign-in, or when the user asks. */
  start(): void {
    this.running = true;
    this.failedAttempts = 0;
    this.ticketRefusals = 0;
    this.clearRetry();
    this.closeSocket();
    this.update({ authError: null });
    void this.connect();
  }

  /** Closes the socket and stops reconnecting. */
  stop(): void {
    this.running = false;
    this.clearRetry();
    this.closeSocket();
    this.removeOnlineListener();
    this.update({ connection: "offline" });
  }

  /** Records a filename learned elsewhere (events carry none). */
  nameDocument(id: string, filename: string): void {
    this.update({ state: nameDocument(this.view.state, id, filename) });
  }

  /** Applies an event learned elsewhere (a REST answer), by the same seq rules. */
  applyEvent(event: DocumentEvent): void {
    this.update({ state: applyEvent(this.view.state, event) });
  }

  private async connect(): Promise<void> {
    if (!this.running) return;
    this.update({ connection: this.hasBaseline || this.failedAttempts > 0 ? "reconnecting" : "connecting" });
    if (typeof navigator !== "undefined" && navigator.onLine === false) {
      this.update({ connection: "offline" });
      this.waitForOnline();
      return;
    }
    let ticket: string;
    try {
      ticket = (await this.client.wsTicket()).ticket;
    } catch (err) {
      if (err instanceof DocqueueError && err.isAuthError) {
        this.signInNeeded(err.message);
      } else {
        this.retryLater();
      }
      return;
    }
    if (!this.running) return;
    const Socket = this.options.WebSocket ?? globalThis.WebSocket;
    const socket = new Socket(this.client.socketUrl(ticket, this.hasBaseline ? this.view.state.seq : undefined));
    this.socket = socket;
    socket.onopen = () => {
      if (socket !== this.socket) return;
      this.startHeartbeat();
      this.update({ connection: "open" });
    };
    socket.onmessage = (message: MessageEvent) => {
      if (socket !== this.socket) return;
      // Back-off starts over once the server speaks: a socket it closes right after
      // opening (a refused ticket, too many sockets) keeps backing off.
      this.failedAttempts = 0;
      this.heardSincePing = true;
      this.receive(String(message.data));
    };
    socket.onclose = (close: CloseEvent) => {
      if (socket !== this.socket) return;
      this.socket = null;
      this.stopHeartbeat();
      if (!this.running) return;
      if (close.code === TICKET_REFUSED) {
        this.ticketRefusals += 1;
        if (this.ticketRefusals >= TICKET_REFUSALS_BEFORE_SIGN_IN) {
          this.signInNeeded(close.reason || "the server refused the connection ticket");
          return;
        }
      } else {
        this.ticketRefusals = 0;
      }
      if (close.code === TOO_MANY_SOCKETS) {
        this.update({ lastError: close.reason || "too many connections are open for this user" });
      }
      // TOKEN_EXPIRED and everything else: a new ticket tells whether the token still holds.
      this.retryLater(close.code === TOKEN_EXPIRED || close.code === TICKET_REFUSED);
    };
  }

  private receive(text: string): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      return;
    }
    switch (frame.type) {
      case "snapshot":
        this.hasBaseline = true;
        this.update({ state: applySnapshot(frame) });
        break;
      case "error":
        this.update({ lastError: frame.message });
        // The gap the snapshot would fill stays until one comes: ask again shortly.
        if (frame.code === "snapshot_rate_limited") this.subscribeLater();
        break;
      case "pong":
      case "cancel.accepted":
        break;
      default: {
        const state = this.view.state;
        // Seqs of a user have no holes: a jump means events went missing on the way.
        if (this.hasBaseline && frame.seq > state.seq + 1) this.send({ type: "subscribe" });
        this.hasBaseline = true;
        this.update({ state: applyEvent(state, frame) });
      }
    }
  }

  private subscribeLater(): void {
    if (this.subscribeTimer) return;
    const socket = this.socket;
    this.subscribeTimer = setTimeout(() => {
      this.subscribeTimer = null;
      if (socket === this.socket) this.send({ type: "subscribe" });
    }, SNAPSHOT_RETRY_MS);
  }

  private send(frame: ClientFrame): void {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(frame));
  }

  private retryLater(immediately = false): void {
    if (!this.running) return;
    this.update({ connection: "reconnecting" });
    const ceiling = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** this.failedAttempts);
    this.failedAttempts += 1;
    // Half fixed, half random: clients cut off together do not return together.
    const delay = immediately ? 0 : ceiling / 2 + Math.random() * (ceiling / 2);
    this.clearRetry();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect();
    }, delay);
  }

  private signInNeeded(message: string): void {
    this.running = false;
    this.closeSocket();
    this.update({ connection: "offline", authError: message });
  }

  private onlineListener: (() => void) | null = null;

  private waitForOnline(): void {
    if (this.onlineListener || typeof addEventListener === "undefined") return;
    this.onlineListener = () => {
      this.removeOnlineListener();
      void this.connect();
    };
    addEventListener("online", this.onlineListener);
  }

  private removeOnlineListener(): void {
    if (this.onlineListener) removeEventListener("online", this.onlineListener);
    this.onlineListener = null;
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heardSincePing = true;
    this.heartbeatTimer = setInterval(() => {
      if (!this.heardSincePing) {
        // Silent since the last ping: close it; onclose reconnects.
        this.socket?.close();
        return;
      }
      this.heardSincePing = false;
      this.send({ type: "ping" });
    }, this.options.heartbeatMs);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private closeSocket(): void {
    this.stopHeartbeat();
    if (this.subscribeTimer) clearTimeout(this.subscribeTimer);
    this.subscribeTimer = null;
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000);
  }

  private update(change: Partial<StreamView>): void {
    const next = { ...this.view, ...change };
    if (
      next.state === this.view.state &&
      next.connection === this.view.connection &&
      next.authError === this.view.authError &&
      next.lastError === this.view.lastError
    ) {
      return;
    }
    this.view = next;
    for (const listener of this.listeners) listener(next);
  }
}
