// The client's REST calls against a real docqueue: what each answers, and the
// server's own error messages surfacing as DocqueueError.

import { afterAll, beforeAll, expect, it } from "vitest";
import { startDocqueue, signToken, type DocqueueServer } from "../../../test-support/docqueue-server.js";
import { fixture } from "../../../test-support/fixtures.js";
import { until } from "../../../test-support/wait.js";
import { DocqueueClient, DocqueueError } from "../../src/index.js";

let server: DocqueueServer;
let client: DocqueueClient;

beforeAll(async () => {
  server = await startDocqueue({ concurrency: 1 });
  client = new DocqueueClient({ baseUrl: server.url, token: () => signToken("alice") });
});

afterAll(async () => {
  await server?.stop();
});

it("uploads, then lists, reads, pages through chunks and searches the result", { timeout: 60_000 }, async () => {
  const progress: number[] = [];
  // Blobs with names, not Files: Node 18 (Debian's) has no global File.
  const answer = await client.upload([{ blob: new Blob([fixture("python-tutorial-classes.rst.txt")]), name: "classes.rst.txt" }], {
    onUploadProgress: ({ loaded, total }) => progress.push(loaded / total),
  });
  expect(progress.at(-1)).toBe(1);
  const [uploaded] = answer.documents;
  expect(uploaded).toMatchObject({ filename: "classes.rst.txt", queue_status: "queued" });

  const done = await until("completion", async () => {
    const doc = await client.get(uploaded.id);
    return doc.queue_status === "completed" && doc;
  });
  expect(done.chunk_count).toBeGreaterThan(1);
  expect((await client.list({ status: "completed" })).documents.map((d) => d.id)).toEqual([uploaded.id]);
  const firstPage = await client.chunks(uploaded.id, { limit: 1 });
  expect(firstPage.chunks[0].ordinal).toBe(0);
  const secondPage = await client.chunks(uploaded.id, { limit: 1, cursor: firstPage.next_cursor ?? undefined });
  expect(secondPage.chunks[0].ordinal).toBe(1);
  const hits = await client.search("class inheritance", 3);
  expect(hits.results[0].document_id).toBe(uploaded.id);
  expect((await client.processingStatus()).counts.completed).toBe(1);

  const late = await client.cancel(uploaded.id).catch((err: unknown) => err);
  expect(late).toBeInstanceOf(DocqueueError);
  expect((late as DocqueueError).status).toBe(409);
});

it("surfaces the server's refusal of a file and of a token in its own words", async () => {
  const refused = await client.upload([{ blob: new Blob([fixture("photo-named.pdf")]), name: "photo.pdf" }]).catch((e: unknown) => e);
  expect(refused).toBeInstanceOf(DocqueueError);
  expect((refused as DocqueueError).status).toBe(415);
  expect((refused as DocqueueError).message).toMatch(/^unsupported file type image\/gif/);

  const expired = new DocqueueClient({ baseUrl: server.url, token: signToken("alice", { expiresInSeconds: -60 }) });
  const denied = await expired.wsTicket().catch((e: unknown) => e);
  expect(denied).toMatchObject({ status: 401, code: "unauthorized", message: "token expired", isAuthError: true });
});
