// The client's types against real frames: a real docqueue is driven through every
// kind of frame it sends (snapshot, the six events, error, pong, cancel.accepted);
// each captured frame is written into a TypeScript file as `<frame> satisfies
// ServerFrame` and type-checked, so a field the types lack (excess property), a field
// they require that the server does not send, or a value outside a declared union
// fails the check. The client's types say "exactly what the server sends".

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, expect, it } from "vitest";
import WebSocket from "ws";
import { startDocqueue, signToken, type DocqueueServer } from "../../../test-support/docqueue-server.js";
import { fixture } from "../../../test-support/fixtures.js";
import { until } from "../../../test-support/wait.js";
import { DocqueueClient, type WebSocketConstructor } from "../../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const packageDir = join(here, "../..");
let server: DocqueueServer;

beforeAll(async () => {
  server = await startDocqueue({ concurrency: 1 });
});

afterAll(async () => {
  await server?.stop();
});

type Frame = { type: string; [field: string]: unknown };

async function admin(path: string): Promise<void> {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${signToken("ops", { role: "admin" })}` },
  });
  expect(response.status).toBe(200);
}

it("every frame the server sends type-checks against the client's types", { timeout: 120_000 }, async () => {
  const frames: Frame[] = [];
  const record = (data: WebSocket.RawData, isBinary: boolean) => {
    if (!isBinary) frames.push(JSON.parse(data.toString()) as Frame);
  };
  class RecordingSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      this.on("message", record);
    }
  }
  const client = new DocqueueClient({
    baseUrl: server.url,
    token: signToken("alice"),
    stream: { WebSocket: RecordingSocket as unknown as WebSocketConstructor },
  });
  const unsubscribe = client.progress().subscribe(() => {});
  const seen = (test: (f: Frame) => boolean) => () => frames.find(test);
  const event = (type: string, id: string) => seen((f) => f.type === type && f.document_id === id);
  await until("the snapshot", seen((f) => f.type === "snapshot"));

  // Paused, uploads wait in line; cancelling the first moves the others up.
  await admin("/api/admin/queue/pause");
  const text = fixture("python-tutorial-classes.rst.txt");
  const uploaded = await client.upload([
    { blob: new Blob([text]), name: "first.txt" },
    { blob: new Blob([fixture("ocrmypdf-invalid.pdf")]), name: "damaged.pdf" },
    { blob: new Blob([fixture("python-tutorial-errors.html")]), name: "chapter.html" },
  ]);
  const [first, damaged, chapter] = uploaded.documents.map((d) => d.id);
  await client.cancel(first);
  await until("a queue.position event", seen((f) => f.type === "queue.position"));
  await admin("/api/admin/queue/resume");
  await until("the chapter's completion", event("document.completed", chapter));
  await until("the damaged PDF's failure", event("document.failed", damaged));
  expect(frames.some((f) => f.type === "document.progress" && f.document_id === chapter)).toBe(true);
  expect(frames.some((f) => f.type === "document.cancelled" && f.document_id === first)).toBe(true);
  unsubscribe();

  // A socket of its own for the control frames; its snapshot lists finished documents.
  await admin("/api/admin/queue/pause");
  const late = (await client.upload([{ blob: new Blob([text]), name: "late.txt" }])).documents[0].id;
  const socket = new WebSocket(client.socketUrl((await client.wsTicket()).ticket));
  socket.on("message", record);
  await new Promise((opened) => socket.once("open", opened));
  await until("a snapshot with documents", seen((f) => f.type === "snapshot" && (f.documents as unknown[]).length >= 3));
  socket.send(JSON.stringify({ type: "ping" }));
  socket.send(JSON.stringify({ type: "dance" }));
  socket.send(JSON.stringify({ type: "cancel", document_id: late }));
  await until("the control frames", () =>
    ["pong", "error", "cancel.accepted"].every((type) => frames.some((f) => f.type === type)),
  );
  socket.close();
  await admin("/api/admin/queue/resume");

  const kinds = new Set(frames.map((f) => f.type));
  expect([...kinds].sort()).toEqual(
    [
      "cancel.accepted",
      "document.cancelled",
      "document.completed",
      "document.failed",
      "document.progress",
      "document.queued",
      "error",
      "pong",
      "queue.position",
      "snapshot",
    ].sort(),
  );

  const generated = join(here, ".generated");
  mkdirSync(generated, { recursive: true });
  writeFileSync(
    join(generated, "frames.ts"),
    [
      "// Written by frames.test.ts from a real docqueue's frames: do not edit.",
      'import type { ServerFrame } from "../../../src/types.js";',
      "",
      "export const frames: ServerFrame[] = [",
      ...frames.map((frame) => `  ${JSON.stringify(frame)} satisfies ServerFrame,`),
      "];",
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(generated, "tsconfig.json"),
    JSON.stringify({ extends: "../../../tsconfig.json", include: ["frames.ts"] }, null, 2),
  );
  const tsc = tscScript(join(packageDir, "node_modules/.bin/tsc"), join(packageDir, "../node_modules/.bin/tsc"));
  let output = "";
  try {
    execFileSync(process.execPath, [tsc, "--noEmit", "-p", join(generated, "tsconfig.json")], { encoding: "utf8" });
  } catch (err) {
    output = String((err as { stdout?: string }).stdout ?? err);
  }
  expect(output, "the types disagree with the server's frames").toBe("");
});

/** The TypeScript compiler's script: the package's own, or the workspace's hoisted one. */
function tscScript(...candidates: string[]): string {
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new Error("tsc not found: run npm ci in clients/");
  return realpathSync(found);
}
