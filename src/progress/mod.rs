//! Progress: how a running job's updates are rate-limited and delivered.

pub mod pump;
