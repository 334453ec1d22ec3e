//! slate: a streaming SLI engine. It reads access-log events, keeps
//! per-service latency histograms and time-windowed counters, and computes
//! SLIs, SLO attainment, error budgets, burn rates and multi-window
//! multi-burn-rate alerts.
//!
//! Data flows one way:
//!
//! ```text
//! model ← spec ← decode ← engine ← evaluate ← report ← apply ← export
//!   ↑                                                     ↑        ↑
//! source (files, stdin, Kafka)          replay (the backtest)   live (`slate run`)
//! ```
//!
//! `apply` is the core both drivers feed: the engine with its alert
//! trackers, event-time clocks, the late rule and the reject path.
//!
//! `model`, `spec`, `decode`, `engine` and `evaluate` are synchronous and
//! clock-free: time is always passed in, nothing reads the wall clock, and
//! none of them imports `source`, `replay`, `live`, `cli` or an async
//! runtime. `source` depends only on `model` and its own `spec` section.
//! `export` holds the HTTP server, the one async part. Only `replay`,
//! `live` and `cli` (and `main`) see everything.

pub mod apply;
pub mod cli;
pub mod decode;
pub mod engine;
pub mod evaluate;
pub mod export;
pub mod gen;
pub mod live;
pub mod logs;
pub mod model;
pub mod replay;
pub mod report;
pub mod source;
pub mod spec;
pub mod state;
