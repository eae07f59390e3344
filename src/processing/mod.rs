//! Turning an uploaded file into searchable chunks: extract text, split it into
//! chunks, embed them, store them. `processor` is the contract a worker runs a job
//! through; `pipeline` is the real one.

pub mod chunk;
pub mod embed;
pub mod extract;
pub mod extractor;
pub mod pipeline;
pub mod processor;
pub mod read_ahead;
pub mod step_times;

pub use processor::{JobContext, ProcessError, Processed, Processor, Stage};
