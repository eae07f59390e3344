import { aboutDuration, ordinal, stageLabels } from "./format.js";
import type { ProcessingDocument } from "./useDocumentProcessing.js";

export interface DocumentProcessingStatusProps {
  documents: ProcessingDocument[];
  onCancel?: (key: string) => void;
  onRetry?: (key: string) => void;
  /** Above this many documents in flight, a one-line summary leads and the list folds. */
  compactAbove?: number;
  /** The list's accessible name. */
  label?: string;
}

/** What a row says about where its document is. */
export function statusText(doc: ProcessingDocument): string {
  switch (doc.status) {
    case "uploading":
      return `Uploading ${Math.round((doc.uploadProgress ?? 0) * 100)} %`;
    case "rejected":
      return "Refused";
    case "queued": {
      if (doc.willRetry) return "Failed, retrying";
      if (doc.queuePosition === null) return "Queued";
      const eta = doc.etaSeconds === null ? "" : `, ${aboutDuration(doc.etaSeconds)}`;
      return `${ordinal(doc.queuePosition)} in queue${eta}`;
    }
    case "processing":
      return `${doc.stage ? stageLabels[doc.stage] : "Processing"} ${doc.progress} %`;
    case "completed":
      return "Ready";
    case "failed":
      return "Failed";
    case "cancelled":
      return "Cancelled";
  }
}

function barValue(doc: ProcessingDocument): number {
  if (doc.status === "uploading") return Math.round((doc.uploadProgress ?? 0) * 100);
  return doc.progress;
}

const IN_FLIGHT = new Set(["uploading", "queued", "processing"]);

/** "3 processing, 12 queued, 5 ready": counts by what a person cares about. */
export function summaryText(documents: ProcessingDocument[]): string {
  const count = (test: (d: ProcessingDocument) => boolean) => documents.filter(test).length;
  const parts: [number, string][] = [
    [count((d) => d.status === "uploading"), "uploading"],
    [count((d) => d.status === "processing"), "processing"],
    [count((d) => d.status === "queued"), "queued"],
    [count((d) => d.status === "completed"), "ready"],
    [count((d) => d.status === "failed" || d.status === "rejected"), "failed"],
    [count((d) => d.status === "cancelled"), "cancelled"],
  ];
  return parts
    .filter(([n]) => n > 0)
    .map(([n, what]) => `${n} ${what}`)
    .join(", ");
}

/**
 * One row per document: its name, a progress bar, where it is ("3rd in queue, about
 * 20 s", "Reading 30 %", "Ready"), a cancel button while it can be cancelled, and the
 * server's words with a retry button when it failed for good.
 */
export function DocumentProcessingStatus({
  documents,
  onCancel,
  onRetry,
  compactAbove = 5,
  label = "Documents",
}: DocumentProcessingStatusProps) {
  const inFlight = documents.filter((d) => IN_FLIGHT.has(d.status)).length;
  const list = (
    <ul className="dq-status__list" aria-label={label}>
      {documents.map((doc) => (
        <DocumentRow key={doc.key} doc={doc} onCancel={onCancel} onRetry={onRetry} />
      ))}
    </ul>
  );
  if (inFlight <= compactAbove) return <section className="dq-status">{list}</section>;
  return (
    <section className="dq-status dq-status--compact">
      <details className="dq-status__details">
        <summary className="dq-status__summary" role="status">
          {documents.length} files: {summaryText(documents)}
        </summary>
        {list}
      </details>
    </section>
  );
}

function DocumentRow({
  doc,
  onCancel,
  onRetry,
}: {
  doc: ProcessingDocument;
  onCancel?: (key: string) => void;
  onRetry?: (key: string) => void;
}) {
  const text = statusText(doc);
  const value = barValue(doc);
  return (
    <li className={`dq-doc dq-doc--${doc.status}`} data-status={doc.status} data-document-id={doc.id ?? undefined}>
      <span className="dq-doc__name">{doc.filename}</span>
      <span className="dq-doc__state" aria-live="polite">
        {text}
      </span>
      <div
        className="dq-doc__progress"
        role="progressbar"
        aria-label={`${doc.filename}: ${text}`}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={value}
      >
        <div className="dq-doc__bar" style={{ width: `${value}%` }} />
      </div>
      {doc.error !== null && (
        <p className="dq-doc__error" role="alert">
          {doc.error}
        </p>
      )}
      {doc.warning !== null && <p className="dq-doc__warning">{doc.warning}</p>}
      <span className="dq-doc__actions">
        {doc.canCancel && onCancel && (
          <button type="button" className="dq-button dq-doc__cancel" aria-label={`Cancel ${doc.filename}`} onClick={() => onCancel(doc.key)}>
            Cancel
          </button>
        )}
        {doc.canRetry && onRetry && (
          <button type="button" className="dq-button dq-doc__retry" aria-label={`Retry ${doc.filename}`} onClick={() => onRetry(doc.key)}>
            Retry
          </button>
        )}
      </span>
    </li>
  );
}
