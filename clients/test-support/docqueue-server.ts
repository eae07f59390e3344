// A real docqueue for the clients' tests: the binary cargo built, on a free port, with
// a SQLite file and a storage directory of its own and a Redis key prefix of its own
// on the local Redis (the same set-up as the Rust tests' harness, tests/common).

import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repository = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const secret = "test-secret-for-docqueue-client-tests-0123456789";

/** `DOCQUEUE_BIN`, or the debug binary in cargo's target directory. */
export function docqueueBinary(): string {
  if (process.env.DOCQUEUE_BIN) return process.env.DOCQUEUE_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(repository, "target");
  return join(target, "debug", "docqueue");
}

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString("base64url");
}

/** An HS256 token for the test secret, as `docqueue token` would sign it. */
export function signToken(user: string, options: { role?: "user" | "admin"; expiresInSeconds?: number } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = base64url(
    JSON.stringify({ sub: user, role: options.role ?? "user", iat: now, exp: now + (options.expiresInSeconds ?? 3600) }),
  );
  const signature = createHmac("sha256", secret).update(`${header}.${claims}`).digest("base64url");
  return `${header}.${claims}.${signature}`;
}

export interface ServerOptions {
  /** Origins allowed by CORS (`server.cors_allowed_origins`). */
  corsAllowedOrigins?: string[];
  /** Worker actors (`document_queue.concurrency`). */
  concurrency?: number;
  /** An OpenAI-compatible embeddings service (`embedding.base_url`) and its vector size. */
  embedding?: { baseUrl: string; dimensions: number };
}

export interface DocqueueServer {
  url: string;
  /** The test's directory: database, storage, the server's log. */
  dir: string;
  /** Kills the process (SIGKILL: as a crash would) and starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  log(): string;
}

export async function startDocqueue(options: ServerOptions = {}): Promise<DocqueueServer> {
  const dir = mkdtempSync(join(tmpdir(), "docqueue-client-tests-"));
  const port = await freePort();
  const prefix = `dqclient:${randomBytes(6).toString("hex")}:`;
  const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379/";
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    RUST_LOG: "info",
    DATABASE_URL: join(dir, "docqueue.sqlite3"),
    REDIS_URL: redisUrl,
    DOCQUEUE_REDIS__PREFIX: prefix,
    DOCQUEUE_STORAGE__ROOT: join(dir, "storage"),
    DOCQUEUE_AUTH__JWT_SECRET: secret,
    DOCQUEUE_AUTH__DEV_MODE: "false",
    DOCQUEUE_SERVER__HOST: "127.0.0.1",
    DOCQUEUE_SERVER__PORT: String(port),
    DOCQUEUE_SERVER__CORS_ALLOWED_ORIGINS: JSON.stringify(options.corsAllowedOrigins ?? []),
    DOC_WORKER_CONCURRENCY: String(options.concurrency ?? 1),
    // Quick recovery of a killed process's jobs, as in the Rust tests.
    DOCQUEUE_DOCUMENT_QUEUE__LEASE_MS: "3000",
    DOCQUEUE_DOCUMENT_QUEUE__HEARTBEAT_MS: "1000",
    DOCQUEUE_DOCUMENT_QUEUE__MAINTENANCE_INTERVAL_MS: "500",
    DOCQUEUE_DOCUMENT_QUEUE__SHUTDOWN_GRACE_SECS: "1",
  };
  if (options.embedding) {
    Object.assign(env, {
      DOCQUEUE_EMBEDDING__PROVIDER: "openai",
      DOCQUEUE_EMBEDDING__BASE_URL: options.embedding.baseUrl,
      DOCQUEUE_EMBEDDING__DIMENSIONS: String(options.embedding.dimensions),
      DOCQUEUE_EMBEDDING__MODEL: "test",
      // Small batches, one at a time: many progress steps through the embedding stage.
      DOCQUEUE_EMBEDDING__BATCH_SIZE: "4",
      DOCQUEUE_EMBEDDING__CONCURRENT_REQUESTS: "1",
    });
  }
  const url = `http://127.0.0.1:${port}`;
  const logPath = join(dir, "server.log");
  let child: ChildProcess | null = null;

  const launch = async (): Promise<void> => {
    const log = openSync(logPath, "a");
    child = spawn(docqueueBinary(), ["serve", "--role", "all"], { env, stdio: ["ignore", log, log] });
    const started = child;
    let spawnError: Error | null = null;
    started.once("error", (err) => {
      spawnError = err;
    });
    for (;;) {
      if (spawnError) throw new Error(`${docqueueBinary()} cannot be started (build it with cargo build): ${spawnError}`);
      if (started.exitCode !== null) throw new Error(`docqueue exited at start-up:\n${readFileSync(logPath, "utf8")}`);
      try {
        if ((await fetch(`${url}/healthz`)).ok) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((next) => setTimeout(next, 50));
    }
  };
  const kill = async (): Promise<void> => {
    const running = child;
    child = null;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((done) => running.once("exit", done));
    running.kill("SIGKILL");
    await exited;
  };

  await launch();
  return {
    url,
    dir,
    async restart() {
      await kill();
      await launch();
    },
    async stop() {
      await kill();
      try {
        const keys = execFileSync("redis-cli", ["-u", redisUrl, "--scan", "--pattern", `${prefix}*`], { encoding: "utf8" })
          .split("\n")
          .filter(Boolean);
        if (keys.length) execFileSync("redis-cli", ["-u", redisUrl, "del", ...keys]);
      } catch {
        // Cleaning up is best effort: the prefix is unique to this run.
      }
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => readFileSync(logPath, "utf8"),
  };
}
