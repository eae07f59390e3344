export { DocqueueClient } from "./client.js";
export type { CancelResult, ClientOptions, TokenSource, UploadFile, UploadOptions, UploadProgress } from "./client.js";
export { DocqueueError } from "./errors.js";
export { ProgressStream } from "./stream.js";
export type { ConnectionState, ProgressStreamOptions, StreamView, WebSocketConstructor } from "./stream.js";
export { applyEvent, applySnapshot, emptyState, nameDocument } from "./reducer.js";
export type { FieldSeqs, ProgressState, TrackedDocument } from "./reducer.js";
export type * from "./types.js";
