//! What can be done to a user's document beyond reading it, shared by the REST routes,
//! the WebSocket session and the admin API. Callers authorise first; these operate.

pub mod cancel;

pub use cancel::{cancel_document, CancelError};
