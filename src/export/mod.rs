//! What slate shows the outside world: a snapshot of gauges taken at each
//! evaluation tick, the Prometheus exposition written from it, and (with
//! `slate run`) the HTTP server. Snapshots and text are pure functions of
//! the engine's state and a time.
//!
//! May import `model`, `spec`, `decode` (reasons), `engine`, `evaluate` and
//! `report`; the HTTP server also `tokio` and `hyper`.

pub mod compat;
pub mod http;
pub mod prometheus;
pub mod snapshot;
