//! docqueue: uploads answer at once, documents are processed in a Redis-fed pool of
//! worker actors, and every step is pushed to the owner. See README.md for the map.

// The service never unwraps: a panic on None/Err must say why (`expect`), or be handled.
#![warn(clippy::unwrap_used)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod documents;
pub mod error;
pub mod job_state;
pub mod processing;
pub mod progress;
pub mod queue;
pub mod storage;
pub mod web;
pub mod workers;
