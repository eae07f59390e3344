import type { ErrorBody } from "./types.js";

/**
 * A refused or failed request. `status` is the HTTP status (0 when no answer came),
 * `code` the server's error code (`unauthorized`, `payload_too_large`, …, or
 * `network_error`), `message` the server's own words, meant for people.
 */
export class DocqueueError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "DocqueueError";
    this.status = status;
    this.code = code;
  }

  /** The token is missing, expired or refused: the user has to sign in again. */
  get isAuthError(): boolean {
    return this.status === 401;
  }

  /** Reads an error answer's body; falls back to the status line when it is not ours. */
  static fromBody(status: number, statusText: string, body: string): DocqueueError {
    try {
      const parsed = JSON.parse(body) as Partial<ErrorBody>;
      if (parsed.error && typeof parsed.error.message === "string") {
        return new DocqueueError(status, parsed.error.code ?? "error", parsed.error.message);
      }
    } catch {
      // Not JSON: a proxy's page, or an empty body.
    }
    return new DocqueueError(status, "http_error", `${status} ${statusText}`.trim());
  }

  static network(cause: unknown): DocqueueError {
    const detail = cause instanceof Error ? `: ${cause.message}` : "";
    return new DocqueueError(0, "network_error", `docqueue cannot be reached${detail}`);
  }
}
