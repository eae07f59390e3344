import { afterEach, describe, expect, it, vi } from "vitest";
import type { DocqueueClient } from "../../src/client.js";
import { ProgressStream } from "../../src/stream.js";

/** A socket the server accepts and closes at once, as it does past the user's limit. */
class RefusedSocket {
  static opened = 0;
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: unknown) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {
    RefusedSocket.opened += 1;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
      setTimeout(() => {
        this.readyState = 3;
        this.onclose?.({ code: 4029, reason: "this user has 16 WebSockets open (server.ws_max_sockets_per_user)" });
      }, 0);
    }, 0);
  }

  send(): void {}
  close(): void {}
}

/** A socket that opens, sends a snapshot, and records what the client sends. */
class OpenSocket {
  static last: OpenSocket | null = null;
  readyState = 0;
  sent: string[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;

  constructor(readonly url: string) {
    OpenSocket.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
      this.receive({ type: "snapshot", seq: 1, ts: 0, counts: {}, documents: [] });
    }, 0);
  }

  receive(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  send(text: string): void {
    this.sent.push(text);
  }

  close(): void {
    this.readyState = 3;
  }
}

const client = {
  wsTicket: async () => ({ ticket: "ticket", expires_in: 30 }),
  socketUrl: (ticket: string) => `ws://docqueue.test/ws?ticket=${ticket}`,
} as unknown as DocqueueClient;

afterEach(() => {
  vi.useRealTimers();
});

describe("ProgressStream", () => {
  it("backs off from a server that closes every socket it opens, and says why", async () => {
    vi.useFakeTimers();
    RefusedSocket.opened = 0;
    const stream = new ProgressStream(client, {
      WebSocket: RefusedSocket as unknown as typeof WebSocket,
      initialDelayMs: 500,
      maxDelayMs: 15_000,
    });
    const stop = stream.subscribe(() => {});
    await vi.advanceTimersByTimeAsync(30_000);
    // Doubling from 0.5 s up to 15 s: about seven tries in 30 s, not one every 0.5 s.
    expect(RefusedSocket.opened).toBeGreaterThanOrEqual(4);
    expect(RefusedSocket.opened).toBeLessThanOrEqual(9);
    expect(stream.current.lastError).toContain("ws_max_sockets_per_user");
    stop();
    await vi.advanceTimersByTimeAsync(0);
  });

  it("asks again for a snapshot the server refused for the user's request pace", async () => {
    vi.useFakeTimers();
    const stream = new ProgressStream(client, { WebSocket: OpenSocket as unknown as typeof WebSocket });
    const stop = stream.subscribe(() => {});
    await vi.advanceTimersByTimeAsync(0);
    const socket = OpenSocket.last!;
    const subscribes = () => socket.sent.filter((text) => JSON.parse(text).type === "subscribe").length;
    // Seq 3 after 1: an event went missing, so the client asks for a snapshot.
    socket.receive({ type: "document.progress", document_id: "d", job_id: "j", seq: 3, ts: 0, progress: 50 });
    expect(subscribes()).toBe(1);
    socket.receive({ type: "error", code: "snapshot_rate_limited", message: "a snapshot counts as 10", ts: 0 });
    expect(stream.current.lastError).toContain("snapshot");
    await vi.advanceTimersByTimeAsync(999);
    expect(subscribes()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(subscribes()).toBe(2);
    stop();
    await vi.advanceTimersByTimeAsync(0);
  });
});
