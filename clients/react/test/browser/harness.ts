// What the browser tests share: the built reference page served from an origin of its
// own, a real docqueue that allows that origin by CORS (so every request the page
// makes is a real cross-origin one), the embeddings service the test holds and
// releases, and Debian's Chromium driven by playwright-core.

import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { freePort, signToken, startDocqueue, type DocqueueServer } from "../../../test-support/docqueue-server.js";
import { startEmbeddingService, type EmbeddingService } from "../../../test-support/embedding-service.js";
import { fixturePath } from "../../../test-support/fixtures.js";

const here = dirname(fileURLToPath(import.meta.url));
const pageDir = join(here, "../../example/dist");
export const outputDir = join(here, "../../test-output");

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
};

async function servePage(): Promise<{ server: Server; origin: string }> {
  if (!existsSync(join(pageDir, "index.html"))) {
    throw new Error(`${pageDir} is missing: build the page first (npm run build in clients/)`);
  }
  const port = await freePort();
  const server = createServer((request, response) => {
    const path = normalize(decodeURIComponent(new URL(request.url ?? "/", "http://page").pathname));
    const file = join(pageDir, path === "/" ? "index.html" : path);
    if (!file.startsWith(pageDir) || !existsSync(file)) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": contentTypes[extname(file)] ?? "application/octet-stream" });
    response.end(readFileSync(file));
  });
  await new Promise<void>((done) => server.listen(port, "127.0.0.1", done));
  return { server, origin: `http://127.0.0.1:${port}` };
}

export interface Harness {
  docqueue: DocqueueServer;
  embedding: EmbeddingService;
  browser: Browser;
  pageOrigin: string;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  mkdirSync(outputDir, { recursive: true });
  const page = await servePage();
  const embedding = await startEmbeddingService();
  const docqueue = await startDocqueue({
    concurrency: 2,
    corsAllowedOrigins: [page.origin],
    embedding: { baseUrl: embedding.baseUrl, dimensions: embedding.dimensions },
  });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  return {
    docqueue,
    embedding,
    browser,
    pageOrigin: page.origin,
    async close() {
      await browser.close();
      embedding.release();
      await docqueue.stop();
      await embedding.close();
      await new Promise((done) => page.server.close(done));
    },
  };
}

/** A fresh browser profile on the reference page, signed in with `token`. */
export async function openChat(
  harness: Harness,
  token: string,
  beforeSignIn?: (page: Page) => Promise<void>,
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await harness.browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  await beforeSignIn?.(page);
  await page.goto(`${harness.pageOrigin}/?api=${encodeURIComponent(harness.docqueue.url)}`);
  await page.getByRole("textbox").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  return { context, page };
}

export async function connection(page: Page): Promise<string | null> {
  return page.locator(".chat__connection").getAttribute("data-connection");
}

export async function waitForConnection(page: Page, state: string): Promise<void> {
  await page.waitForFunction(
    (wanted) => document.querySelector(".chat__connection")?.getAttribute("data-connection") === wanted,
    state,
    { timeout: 60_000, polling: 10 },
  );
}

/** The row of the document named `filename`. */
export function row(page: Page, filename: string) {
  return page.locator("li.dq-doc", { has: page.locator(".dq-doc__name", { hasText: filename }) });
}

export async function waitForStatus(page: Page, filename: string, status: string): Promise<void> {
  await page.waitForFunction(
    ({ filename, status }) =>
      [...document.querySelectorAll("li.dq-doc")].some(
        (li) => li.querySelector(".dq-doc__name")?.textContent === filename && li.getAttribute("data-status") === status,
      ),
    { filename, status },
    { timeout: 90_000, polling: 20 },
  );
}

export async function progressOf(page: Page, filename: string): Promise<number> {
  return Number(await row(page, filename).getByRole("progressbar").getAttribute("aria-valuenow"));
}

/** Drops files on the composer, as a drag from the desktop does. */
export async function dropFiles(page: Page, names: string[]): Promise<void> {
  const files = names.map((name) => ({ name, base64: readFileSync(fixturePath(name)).toString("base64") }));
  const dataTransfer = await page.evaluateHandle((files) => {
    const transfer = new DataTransfer();
    for (const { name, base64 } of files) {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      transfer.items.add(new File([bytes], name));
    }
    return transfer;
  }, files);
  const composer = page.getByRole("form", { name: "Message composer" });
  await composer.dispatchEvent("dragover", { dataTransfer });
  await composer.dispatchEvent("drop", { dataTransfer });
}

/** Attaches files through the attach button's file chooser. */
export async function attachFiles(page: Page, names: string[]): Promise<void> {
  const [chooser] = await Promise.all([page.waitForEvent("filechooser"), page.getByRole("button", { name: "Attach" }).click()]);
  await chooser.setFiles(names.map(fixturePath));
}

/** Records every state each row goes through (status, bar value, text), as rendered. */
export async function recordRows(page: Page): Promise<void> {
  await page.evaluate(() => {
    const seen: Record<string, { status: string; value: number; text: string }[]> = {};
    (window as unknown as { rowHistory: typeof seen }).rowHistory = seen;
    const record = () => {
      for (const li of document.querySelectorAll("li.dq-doc")) {
        const name = li.querySelector(".dq-doc__name")?.textContent ?? "";
        const entry = {
          status: li.getAttribute("data-status") ?? "",
          value: Number(li.querySelector("[role=progressbar]")?.getAttribute("aria-valuenow")),
          text: li.querySelector(".dq-doc__state")?.textContent ?? "",
        };
        const history = (seen[name] ??= []);
        const last = history[history.length - 1];
        if (!last || last.status !== entry.status || last.value !== entry.value || last.text !== entry.text) history.push(entry);
      }
    };
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}

export async function rowHistory(page: Page): Promise<Record<string, { status: string; value: number; text: string }[]>> {
  return page.evaluate(() => (window as unknown as { rowHistory: Record<string, never[]> }).rowHistory);
}

/** The server's view of a user's documents, by filename. */
export async function serverStatuses(harness: Harness, token: string): Promise<Record<string, string>> {
  const response = await fetch(`${harness.docqueue.url}/api/documents?limit=200`, {
    headers: { Authorization: `Bearer ${token}` },
  });
  const { documents } = (await response.json()) as { documents: { filename: string; queue_status: string }[] };
  return Object.fromEntries(documents.map((d) => [d.filename, d.queue_status]));
}

export { signToken };
