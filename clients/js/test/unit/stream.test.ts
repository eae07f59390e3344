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
});
