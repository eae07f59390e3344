import { useRef, useState, type ClipboardEvent, type DragEvent, type FormEvent } from "react";
import { statusText } from "./DocumentProcessingStatus.js";
import type { DocumentProcessing, ProcessingDocument } from "./useDocumentProcessing.js";

export interface ChatSend {
  text: string;
  /** Keys of the attached documents (`ProcessingDocument.key`), in attach order. */
  documentKeys: string[];
}

export interface ChatInputProps {
  /** What `useDocumentProcessing` returned: attachments upload through it. */
  processing: DocumentProcessing;
  /** Called at once on send: processing goes on, and the attachments' status with it. */
  onSend: (message: ChatSend) => void;
  placeholder?: string;
}

/**
 * A document in one line: its name, where it is, a thin progress bar. Marked usable
 * (`dq-chip--ready`, not `aria-disabled`) once it is completed.
 */
export function DocumentChip({ doc, onRemove }: { doc: ProcessingDocument; onRemove?: () => void }) {
  const ready = doc.status === "completed";
  const value = doc.status === "uploading" ? Math.round((doc.uploadProgress ?? 0) * 100) : doc.progress;
  return (
    <span
      className={`dq-chip dq-chip--${doc.status}${ready ? " dq-chip--ready" : ""}`}
      data-status={doc.status}
      aria-disabled={!ready}
      title={doc.error ?? undefined}
    >
      <span className="dq-chip__name">{doc.filename}</span>
      <span className="dq-chip__state">{statusText(doc)}</span>
      <span className="dq-chip__bar" style={{ width: `${value}%` }} />
      {onRemove && (
        <button type="button" className="dq-chip__remove" aria-label={`Remove ${doc.filename}`} onClick={onRemove}>
          ×
        </button>
      )}
    </span>
  );
}

/**
 * The composer: text, an attach button, drag and drop, and pasted files. Attached
 * files start uploading at once and show their status inline; sending never waits
 * for them.
 */
export function ChatInput({ processing, onSend, placeholder = "Write a message…" }: ChatInputProps) {
  const [text, setText] = useState("");
  const [attached, setAttached] = useState<string[]>([]);
  const [dragging, setDragging] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);

  const attach = (files: File[]) => {
    if (files.length === 0) return;
    const keys = processing.upload(files);
    setAttached((current) => [...current, ...keys]);
  };

  const send = (event: FormEvent) => {
    event.preventDefault();
    if (!text.trim() && attached.length === 0) return;
    onSend({ text: text.trim(), documentKeys: attached });
    setText("");
    setAttached([]);
  };

  const drop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    attach(Array.from(event.dataTransfer.files));
  };

  const paste = (event: ClipboardEvent) => {
    const files = Array.from(event.clipboardData.files);
    if (files.length > 0) {
      event.preventDefault();
      attach(files);
    }
  };

  const attachments = attached
    .map((key) => processing.documents.find((d) => d.key === key))
    .filter((d): d is ProcessingDocument => d !== undefined);

  return (
    <form
      className={`dq-chat-input${dragging ? " dq-chat-input--dragging" : ""}`}
      onSubmit={send}
      onDragOver={(event) => {
        event.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={drop}
      aria-label="Message composer"
    >
      {attachments.length > 0 && (
        <ul className="dq-chat-input__attachments" aria-label="Attachments">
          {attachments.map((doc) => (
            <li key={doc.key}>
              <DocumentChip doc={doc} onRemove={() => setAttached((current) => current.filter((k) => k !== doc.key))} />
            </li>
          ))}
        </ul>
      )}
      <div className="dq-chat-input__row">
        <button type="button" className="dq-button dq-chat-input__attach" onClick={() => fileInput.current?.click()}>
          Attach
        </button>
        <input
          ref={fileInput}
          className="dq-chat-input__file"
          type="file"
          multiple
          hidden
          aria-label="Attach files"
          onChange={(event) => {
            attach(Array.from(event.target.files ?? []));
            event.target.value = "";
          }}
        />
        <textarea
          className="dq-chat-input__text"
          aria-label="Message"
          placeholder={placeholder}
          rows={2}
          value={text}
          onChange={(event) => setText(event.target.value)}
          onPaste={paste}
          onKeyDown={(event) => {
            if (event.key === "Enter" && !event.shiftKey) send(event);
          }}
        />
        <button type="submit" className="dq-button dq-button--primary dq-chat-input__send" disabled={!text.trim() && attached.length === 0}>
          Send
        </button>
      </div>
    </form>
  );
}
