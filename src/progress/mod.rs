//! Progress: events about a user's documents, published through Redis (pub/sub for
//! live delivery, a bounded per-user stream for resume), routed to WebSocket sessions
//! by one `Hub` per process; plus the coalescing of a job's progress updates, the
//! snapshot of a user's queue, queue-position announcements and ETAs.

pub mod eta;
pub mod event;
pub mod hub;
pub mod positions;
pub mod publisher;
pub mod pump;
pub mod snapshot;

pub use event::{Event, Subject};
pub use hub::Hub;
pub use positions::PositionSweeper;
pub use publisher::Publisher;
