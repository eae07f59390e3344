//! Turning an uploaded file into searchable chunks: extract text, split it into
//! chunks, embed them, store them. `pipeline` ties the steps to the queue's
//! `Processor` contract.

pub mod chunk;
pub mod embed;
pub mod extract;
pub mod extractor;
pub mod pipeline;
