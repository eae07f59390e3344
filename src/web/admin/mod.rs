//! Watching and steering the queue: the admin JSON API (`/api/admin`) and the
//! server-rendered dashboard (`/admin`), sharing the same operations.

pub mod api;
pub mod dashboard;
pub mod jobs;
pub mod overview;
mod pages;
pub mod session;
