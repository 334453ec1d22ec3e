//! Where records come from: files (plain or gzip, several members), stdin
//! and Kafka. A source yields raw bytes with their position; it knows
//! nothing of formats or state.
//!
//! May import `model`, and `spec` for its own configuration section.

pub mod file;
pub mod kafka;
pub mod statetopic;
