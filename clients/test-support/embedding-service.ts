// An OpenAI-compatible embeddings service run by the test (POST /v1/embeddings), in
// place of a remote one that cannot run here. It lets the test decide when documents
// move on: while it is held, every document that reaches the embedding stage stays
// there, processing, until the test releases it. Vectors are made from the text, so
// the same text always gets the same vector.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

export interface EmbeddingService {
  /** For `embedding.base_url`. */
  baseUrl: string;
  dimensions: number;
  /** From now on requests wait until `release`. */
  hold(): void;
  /** Answers every waiting request, and the next ones at once. */
  release(): void;
  /** Resolves once `count` requests are waiting. */
  waitingFor(count: number): Promise<void>;
  close(): Promise<void>;
}

export const DIMENSIONS = 8;

function vector(text: string): number[] {
  const out = new Array<number>(DIMENSIONS).fill(0);
  for (let i = 0; i < text.length; i++) out[i % DIMENSIONS] += text.charCodeAt(i) % 97;
  out[0] += 1;
  return out;
}

async function body(request: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of request) parts.push(part as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

export async function startEmbeddingService(): Promise<EmbeddingService> {
  let held = false;
  let waiting: (() => void)[] = [];
  let watchers: { count: number; done: () => void }[] = [];
  const notify = () => {
    watchers = watchers.filter((w) => {
      if (waiting.length < w.count) return true;
      w.done();
      return false;
    });
  };

  const server = createServer(async (request: IncomingMessage, response: ServerResponse) => {
    const { input } = JSON.parse(await body(request)) as { input: string[] };
    const answer = () => {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({
          object: "list",
          model: "test",
          data: input.map((text, index) => ({ object: "embedding", index, embedding: vector(text) })),
        }),
      );
    };
    if (!held) return answer();
    waiting.push(answer);
    notify();
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    dimensions: DIMENSIONS,
    hold: () => {
      held = true;
    },
    release: () => {
      held = false;
      const answers = waiting;
      waiting = [];
      for (const answer of answers) answer();
    },
    waitingFor: (count) =>
      new Promise<void>((done) => {
        watchers.push({ count, done });
        notify();
      }),
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}
