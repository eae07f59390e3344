// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ChatInput } from "../../src/ChatInput.js";
import { DocumentProcessingStatus } from "../../src/DocumentProcessingStatus.js";
import { aboutDuration, ordinal } from "../../src/format.js";
import type { DocumentProcessing, ProcessingDocument } from "../../src/useDocumentProcessing.js";

afterEach(cleanup);

function doc(over: Partial<ProcessingDocument>): ProcessingDocument {
  return {
    key: over.id ?? "k",
    id: "d1",
    filename: "report.pdf",
    status: "queued",
    stage: null,
    progress: 0,
    queuePosition: null,
    etaSeconds: null,
    error: null,
    willRetry: false,
    uploadProgress: null,
    chunkCount: null,
    warning: null,
    canCancel: true,
    canRetry: false,
    ...over,
  };
}

function row(name: string): HTMLElement {
  return screen.getByText(name).closest("li") as HTMLElement;
}

describe("DocumentProcessingStatus", () => {
  it("shows each document's bar, where it is, and a cancel button while it can be cancelled", () => {
    const onCancel = vi.fn();
    const documents = [
      doc({ key: "a", id: "a", filename: "a.pdf", status: "queued", queuePosition: 3, etaSeconds: 21 }),
      doc({ key: "b", id: "b", filename: "b.docx", status: "processing", stage: "embedding", progress: 62 }),
      doc({ key: "c", id: "c", filename: "c.md", status: "completed", progress: 100, canCancel: false }),
      doc({ key: "d", id: null, filename: "d.html", status: "uploading", uploadProgress: 0.45 }),
    ];
    render(<DocumentProcessingStatus documents={documents} onCancel={onCancel} />);

    expect(within(row("a.pdf")).getByText("3rd in queue, about 20 s")).toBeTruthy();
    expect(within(row("b.docx")).getByRole("progressbar").getAttribute("aria-valuenow")).toBe("62");
    expect(within(row("b.docx")).getByText("Indexing 62 %")).toBeTruthy();
    expect(within(row("c.md")).getByText("Ready")).toBeTruthy();
    expect(within(row("c.md")).queryByRole("button")).toBeNull();
    expect(within(row("d.html")).getByRole("progressbar").getAttribute("aria-valuenow")).toBe("45");
    expect(screen.getByRole("list", { name: "Documents" })).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Cancel b.docx" }));
    expect(onCancel).toHaveBeenCalledWith("b");
  });

  it("gives a final failure its readable error and a retry button, a retrying one neither button nor finality", () => {
    const onRetry = vi.fn();
    const documents = [
      doc({ key: "f", filename: "bad.pdf", status: "failed", error: "the PDF is damaged", canCancel: false, canRetry: true }),
      doc({ key: "r", id: "r", filename: "flaky.pdf", status: "queued", error: "Redis went away", willRetry: true }),
    ];
    render(<DocumentProcessingStatus documents={documents} onCancel={vi.fn()} onRetry={onRetry} />);
    expect(within(row("bad.pdf")).getByRole("alert").textContent).toBe("the PDF is damaged");
    fireEvent.click(screen.getByRole("button", { name: "Retry bad.pdf" }));
    expect(onRetry).toHaveBeenCalledWith("f");
    expect(within(row("flaky.pdf")).getByText("Failed, retrying")).toBeTruthy();
    expect(within(row("flaky.pdf")).queryByRole("button", { name: /Retry/ })).toBeNull();
  });

  it("shows what a completed document's reading left out, without calling it an error", () => {
    const left = "1 of its 2 pages have no text layer and were not read: OCR is not installed";
    const documents = [doc({ key: "m", filename: "mixed.pdf", status: "completed", progress: 100, warning: left, canCancel: false })];
    render(<DocumentProcessingStatus documents={documents} onCancel={vi.fn()} />);
    expect(within(row("mixed.pdf")).getByText(left)).toBeTruthy();
    expect(within(row("mixed.pdf")).queryByRole("alert")).toBeNull();
  });

  it("leads with a one-line summary when many files are in flight", () => {
    const documents = [
      ...Array.from({ length: 4 }, (_, i) => doc({ key: `q${i}`, id: `q${i}`, filename: `q${i}.pdf`, queuePosition: i + 1 })),
      ...Array.from({ length: 2 }, (_, i) => doc({ key: `p${i}`, id: `p${i}`, filename: `p${i}.pdf`, status: "processing", progress: 10 })),
      doc({ key: "c", id: "c", filename: "c.pdf", status: "completed", progress: 100 }),
    ];
    const { rerender } = render(<DocumentProcessingStatus documents={documents} />);
    expect(screen.getByRole("status").textContent).toBe("7 files: 2 processing, 4 queued, 1 ready");
    rerender(<DocumentProcessingStatus documents={documents.slice(3)} />);
    expect(screen.queryByRole("status")).toBeNull();
  });
});

describe("ChatInput", () => {
  function processing(documents: ProcessingDocument[]): DocumentProcessing & { upload: ReturnType<typeof vi.fn> } {
    let next = 0;
    return {
      documents,
      upload: vi.fn((files: File[]) => files.map(() => `k${next++}`)),
      cancel: vi.fn(),
      retry: vi.fn(),
      connection: "open",
      authError: null,
    };
  }

  const file = (name: string) => new File(["hello"], name, { type: "text/plain" });

  it("uploads files from the attach button, a drop and a paste, and shows their status inline", () => {
    const hook = processing([
      doc({ key: "k0", filename: "a.md", status: "processing", stage: "chunking", progress: 40 }),
      doc({ key: "k1", filename: "b.md", status: "completed", progress: 100 }),
      doc({ key: "k2", filename: "c.md", status: "uploading", uploadProgress: 0.5 }),
    ]);
    render(<ChatInput processing={hook} onSend={vi.fn()} />);
    fireEvent.change(screen.getByLabelText("Attach files"), { target: { files: [file("a.md")] } });
    fireEvent.drop(screen.getByRole("form", { name: "Message composer" }), { dataTransfer: { files: [file("b.md")] } });
    fireEvent.paste(screen.getByRole("textbox", { name: "Message" }), { clipboardData: { files: [file("c.md")] } });
    expect(hook.upload.mock.calls.map(([files]) => files[0].name)).toEqual(["a.md", "b.md", "c.md"]);

    const attachments = within(screen.getByRole("list", { name: "Attachments" }));
    expect(attachments.getByText("Splitting 40 %")).toBeTruthy();
    expect(attachments.getByText("Uploading 50 %")).toBeTruthy();
    const ready = attachments.getByText("b.md").parentElement as HTMLElement;
    expect(ready.className).toContain("dq-chip--ready");
    expect(ready.getAttribute("aria-disabled")).toBe("false");
  });

  it("sends at once, with the attachments' keys, however far their processing is", () => {
    const hook = processing([doc({ key: "k0", filename: "a.md", status: "queued", queuePosition: 2 })]);
    const onSend = vi.fn();
    render(<ChatInput processing={hook} onSend={onSend} />);
    fireEvent.change(screen.getByLabelText("Attach files"), { target: { files: [file("a.md")] } });
    fireEvent.change(screen.getByRole("textbox", { name: "Message" }), { target: { value: "see attached" } });
    fireEvent.click(screen.getByRole("button", { name: "Send" }));
    expect(onSend).toHaveBeenCalledWith({ text: "see attached", documentKeys: ["k0"] });
    expect((screen.getByRole("textbox", { name: "Message" }) as HTMLTextAreaElement).value).toBe("");
    expect(screen.queryByRole("list", { name: "Attachments" })).toBeNull();
  });
});

describe("wording", () => {
  it("says positions and waits the way people do", () => {
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111].map(ordinal)).toEqual([
      "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th",
    ]);
    expect([0.4, 4.4, 21, 58, 61, 3600 * 2].map(aboutDuration)).toEqual([
      "about 1 s", "about 4 s", "about 20 s", "about 60 s", "about 1 min", "about 2 h",
    ]);
  });
});
