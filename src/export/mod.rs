//! What slate shows the outside world: the Prometheus exposition (and, with
//! `slate run`, the HTTP API). Pure functions of the engine's state and a
//! time; no I/O here.
//!
//! May import `model`, `spec`, `decode` (reasons), `engine` and `evaluate`.

pub mod prometheus;
