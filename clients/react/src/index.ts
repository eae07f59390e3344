export { useDocumentProcessing } from "./useDocumentProcessing.js";
export type {
  DocumentProcessing,
  DocumentStatus,
  ProcessingDocument,
  UseDocumentProcessingOptions,
} from "./useDocumentProcessing.js";
export { DocumentProcessingStatus, statusText, summaryText } from "./DocumentProcessingStatus.js";
export type { DocumentProcessingStatusProps } from "./DocumentProcessingStatus.js";
export { ChatInput, DocumentChip } from "./ChatInput.js";
export type { ChatInputProps, ChatSend } from "./ChatInput.js";
export { aboutDuration, ordinal } from "./format.js";
