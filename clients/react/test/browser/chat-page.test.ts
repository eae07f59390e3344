// The reference chat page in Debian's Chromium, against a real docqueue (Redis,
// SQLite, the real pipeline) that the test starts. Screenshots go to test-output/.

import { join } from "node:path";
import type { WebSocket as PageSocket } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  attachFiles,
  dropFiles,
  openChat,
  outputDir,
  progressOf,
  recordRows,
  row,
  rowHistory,
  serverStatuses,
  signToken,
  startHarness,
  waitForConnection,
  waitForStatus,
  type Harness,
} from "./harness.js";

const HTML = "python-tutorial-errors.html";
const DOCX = "python-docx-blk-paras-and-tables.docx";
const PDF = "auto-multiple-choice-manual.en.pdf";
const LARGE_PDF = "debian-reference.pdf";

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
});

afterAll(async () => {
  await harness?.close();
});

it("three documents attached by drag and drop and by the attach button rise through their stages to ready", async () => {
  const { context, page } = await openChat(harness, signToken("attacher"));
  await waitForConnection(page, "open");
  await recordRows(page);
  harness.embedding.hold();

  await dropFiles(page, [HTML, DOCX]);
  await attachFiles(page, [PDF]);
  // A row each, at once: long before any of them can be done (embedding is held).
  await page.waitForFunction(() => document.querySelectorAll("li.dq-doc").length === 3);
  expect(await page.locator('li.dq-doc[data-status="completed"]').count()).toBe(0);
  expect(await page.getByRole("list", { name: "Attachments" }).locator("li").count()).toBe(3);
  await page.getByRole("textbox", { name: "Message" }).fill("Here are the three documents");
  await page.getByRole("button", { name: "Send" }).click();

  // Two workers: two documents held at the embedding stage, the third waiting its turn.
  await harness.embedding.waitingFor(2);
  await page.waitForFunction(() => document.querySelectorAll('li.dq-doc[data-status="processing"]').length === 2);
  await page.screenshot({ path: join(outputDir, "three-documents-midway.png"), fullPage: true });
  harness.embedding.release();

  for (const name of [HTML, DOCX, PDF]) await waitForStatus(page, name, "completed");
  for (const name of [HTML, DOCX, PDF]) expect(await row(page, name).locator(".dq-doc__state").textContent()).toBe("Ready");
  await page.screenshot({ path: join(outputDir, "three-documents-ready.png"), fullPage: true });

  const history = await rowHistory(page);
  for (const name of [HTML, DOCX, PDF]) {
    const processing = history[name].filter((h) => h.status === "processing").map((h) => h.value);
    expect(processing, `${name}'s bar never goes back`).toEqual([...processing].sort((a, b) => a - b));
    expect(history[name].at(-1)).toMatchObject({ status: "completed", value: 100 });
  }
  const pdf = history[PDF].filter((h) => h.status === "processing");
  expect(new Set(pdf.map((h) => h.value)).size, "the PDF's bar rose step by step").toBeGreaterThanOrEqual(3);
  const stages = new Set(pdf.map((h) => h.text.split(" ")[0]));
  expect(stages.size, `stages seen: ${[...stages]}`).toBeGreaterThanOrEqual(2);
  // The message went out at once, and its attachments became usable when completed.
  expect(await page.locator(".chat__message .dq-chip--ready").count()).toBe(3);
  await context.close();
});

it("a large PDF is cancelled with its button, and the server agrees", async () => {
  const token = signToken("canceller");
  const { context, page } = await openChat(harness, token);
  await waitForConnection(page, "open");
  harness.embedding.hold();
  // Both workers busy: the large PDF waits in line until it is cancelled.
  await attachFiles(page, [HTML, DOCX]);
  await harness.embedding.waitingFor(2);
  await attachFiles(page, [LARGE_PDF]);
  await waitForStatus(page, LARGE_PDF, "queued");
  await page.waitForFunction(() => /in queue/.test(document.body.textContent ?? ""));

  const clicked = Date.now();
  await page.getByRole("button", { name: `Cancel ${LARGE_PDF}` }).click();
  await waitForStatus(page, LARGE_PDF, "cancelled");
  console.log(`the cancelled row showed "cancelled" ${Date.now() - clicked} ms after the click`);
  expect(await row(page, LARGE_PDF).locator(".dq-doc__state").textContent()).toBe("Cancelled");
  expect(await row(page, LARGE_PDF).getByRole("button").count()).toBe(0);
  const id = await row(page, LARGE_PDF).getAttribute("data-document-id");
  const response = await fetch(`${harness.docqueue.url}/api/documents/${id}`, { headers: { Authorization: `Bearer ${token}` } });
  expect(((await response.json()) as { queue_status: string }).queue_status).toBe("cancelled");

  harness.embedding.release();
  for (const name of [HTML, DOCX]) await waitForStatus(page, name, "completed");
  await context.close();
});

it("documents processing during a reload come back from the snapshot with their progress and complete", async () => {
  const { context, page } = await openChat(harness, signToken("reloader"));
  await waitForConnection(page, "open");
  harness.embedding.hold();
  await attachFiles(page, [PDF, HTML]);
  await harness.embedding.waitingFor(2);
  for (const name of [PDF, HTML]) await waitForStatus(page, name, "processing");
  const before: Record<string, number> = { [PDF]: await progressOf(page, PDF), [HTML]: await progressOf(page, HTML) };

  await page.reload();
  await waitForConnection(page, "open");
  for (const name of [PDF, HTML]) {
    await waitForStatus(page, name, "processing");
    expect(await progressOf(page, name), `${name} after the reload`).toBeGreaterThanOrEqual(before[name]);
  }
  await page.screenshot({ path: join(outputDir, "after-reload.png"), fullPage: true });
  harness.embedding.release();
  for (const name of [PDF, HTML]) await waitForStatus(page, name, "completed");
  await context.close();
});

it("a cut socket shows reconnecting, then open, resumes by seq, and loses no event", async () => {
  const token = signToken("reconnector");
  const sockets: { socket: PageSocket; frames: { type: string; seq?: number }[] }[] = [];
  // Listening before sign-in: the first socket opens as soon as the button is clicked.
  const { context, page } = await openChat(harness, token, async (page) => {
    page.on("websocket", (socket) => {
      const entry = { socket, frames: [] as { type: string; seq?: number }[] };
      sockets.push(entry);
      socket.on("framereceived", ({ payload }) => entry.frames.push(JSON.parse(String(payload))));
    });
  });
  await waitForConnection(page, "open");
  harness.embedding.hold();
  await attachFiles(page, [HTML, DOCX]);
  await harness.embedding.waitingFor(2);
  for (const name of [HTML, DOCX]) await waitForStatus(page, name, "processing");

  // The server dies (as a crash would) and comes back on the same port.
  const restarting = harness.docqueue.restart();
  await waitForConnection(page, "reconnecting");
  await restarting;
  await waitForConnection(page, "open");
  harness.embedding.release();
  for (const name of [HTML, DOCX]) await waitForStatus(page, name, "completed");

  const [first, second] = sockets;
  const lastSeq = Math.max(...first.frames.map((f) => f.seq ?? 0));
  expect(new URL(second.socket.url()).searchParams.get("since"), "the hook resumed by seq").toBe(String(lastSeq));
  expect(second.frames[0]).toMatchObject({ seq: lastSeq + 1 });
  expect(second.frames.some((f) => f.type === "snapshot"), "no snapshot was needed").toBe(false);
  const seqs = sockets.flatMap((s) => s.frames.map((f) => f.seq)).filter((s): s is number => s !== undefined && s > 0);
  expect(seqs, "every event once, none missing").toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0] + i));
  expect(await serverStatuses(harness, token)).toEqual({ [HTML]: "completed", [DOCX]: "completed" });
  await context.close();
});

it("a file the server refuses shows the server's message in its row", async () => {
  const { context, page } = await openChat(harness, signToken("refused"));
  await waitForConnection(page, "open");
  await attachFiles(page, ["photo-named.pdf"]);
  await waitForStatus(page, "photo-named.pdf", "rejected");
  const message = await row(page, "photo-named.pdf").getByRole("alert").textContent();
  expect(message).toMatch(/^unsupported file type image\/gif; accepted: PDF, DOCX/);
  expect(await row(page, "photo-named.pdf").getByRole("button", { name: "Retry photo-named.pdf" }).count()).toBe(1);
  await page.screenshot({ path: join(outputDir, "refused-file.png"), fullPage: true });
  await context.close();
});

it("an expired token, or tickets the server keeps refusing, ask the user to sign in again", async () => {
  const expired = await openChat(harness, signToken("late", { expiresInSeconds: -60 }));
  const alert = expired.page.getByRole("alert");
  await alert.waitFor();
  expect(await alert.textContent()).toContain("Please sign in again: the server refused your sign-in (token expired)");
  await waitForConnection(expired.page, "offline");
  await expired.page.screenshot({ path: join(outputDir, "expired-token.png"), fullPage: true });
  await expired.context.close();

  // Every ticket the page gets is one already used: the server closes each socket with 4401.
  const refused = await openChat(harness, signToken("stale-ticket"), (page) =>
    page.route("**/api/ws-ticket", (route) =>
      route.fulfill({
        status: 200,
        contentType: "application/json",
        headers: { "access-control-allow-origin": harness.pageOrigin },
        body: JSON.stringify({ ticket: "used", expires_in: 30 }),
      }),
    ),
  );
  await refused.page.getByRole("alert").waitFor();
  expect(await refused.page.getByRole("alert").textContent()).toContain("ticket unknown, expired or already used");
  await refused.context.close();
});
