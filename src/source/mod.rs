//! Where records come from: files (plain or gzip, several members),
//! stdin, and later Kafka. A source yields raw bytes with their position;
//! it knows nothing of formats or state.
//!
//! May import `model` only.

pub mod file;
