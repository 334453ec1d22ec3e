//! The logs of `slate run`, through `tracing`: levels (`--log-level`,
//! `RUST_LOG`), text for a terminal or JSON lines for Kubernetes
//! (`--log-output`; `--log-format` names the access-log layout). Each part
//! of slate logs under a target of its own (`kafka`, `state`, `http`,
//! `spec`, `slate`), so `--log-level kafka=debug,info` turns one up. A warning that repeats is said at most
//! once per interval, with how many like it were held back meanwhile, as
//! Vector's internal logs are.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use rustc_hash::FxHashMap;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// `--log-output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// `slate: [warning: ]TARGET: message`, a line each
    #[default]
    Text,
    /// One JSON object a line: timestamp, level, target, message and fields
    Json,
}

/// Installs the subscriber for this process: `level` (`--log-level`, a
/// `tracing` filter such as `info` or `kafka=debug,info`), else `RUST_LOG`,
/// else `info`. An invalid filter is an error that says so.
pub fn init(level: Option<&str>, format: LogFormat) -> anyhow::Result<()> {
    let filter = match level {
        Some(l) => EnvFilter::builder().parse(l).map_err(|e| {
            anyhow::anyhow!(
                "--log-level {l:?}: {e}; give a level (error, warn, info, debug, trace) or targets such as kafka=debug,info"
            )
        })?,
        None => match std::env::var("RUST_LOG") {
            Ok(l) if !l.trim().is_empty() => EnvFilter::builder()
                .parse(&l)
                .map_err(|e| anyhow::anyhow!("RUST_LOG={l:?}: {e}"))?,
            _ => EnvFilter::new("info"),
        },
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // A second init in one process (the unit tests) keeps the first.
    let _ = match format {
        LogFormat::Text => builder.event_format(Text).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    Ok(())
}

/// The text format: what slate said before it logged through `tracing`.
struct Text;

impl<S, N> FormatEvent<S, N> for Text
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let m = event.metadata();
        w.write_str("slate: ")?;
        match *m.level() {
            Level::ERROR => w.write_str("error: ")?,
            Level::WARN => w.write_str("warning: ")?,
            Level::DEBUG => w.write_str("debug: ")?,
            Level::TRACE => w.write_str("trace: ")?,
            Level::INFO => {}
        }
        if m.target() != "slate" {
            write!(w, "{}: ", m.target())?;
        }
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Says a thing at most once per interval per key, with how many like it
/// were held back since it was last said (`suppressed`, in the event).
#[derive(Debug, Default)]
pub struct Limiter {
    last: Mutex<FxHashMap<String, (Instant, u64)>>,
}

impl Limiter {
    /// How many to say now for `key`: `None` to hold this one back, or
    /// `Some(n)` with the `n` held back since the last time.
    pub fn admit(&self, key: &str, every: Duration) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match last.get_mut(key) {
            Some((at, n)) if now.duration_since(*at) < every => {
                *n += 1;
                None
            }
            Some((at, n)) => {
                *at = now;
                Some(std::mem::take(n))
            }
            None => {
                last.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

/// A warning under `target`, said at most once per `every` for `key`
/// (through `limiter`), with how many like it were held back.
#[macro_export]
macro_rules! warn_every {
    ($limiter:expr, $key:expr, $every:expr, target: $target:literal, $($arg:tt)+) => {
        if let Some(held) = $limiter.admit($key, $every) {
            if held > 0 {
                tracing::warn!(target: $target, suppressed = held, "{} ({held} more like it)", format_args!($($arg)+));
            } else {
                tracing::warn!(target: $target, "{}", format_args!($($arg)+));
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_warning_is_held_back_and_counted() {
        let l = Limiter::default();
        let every = Duration::from_millis(50);
        assert_eq!(l.admit("a", every), Some(0));
        assert_eq!(l.admit("a", every), None);
        assert_eq!(l.admit("a", every), None);
        assert_eq!(l.admit("b", every), Some(0), "another key is its own");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            l.admit("a", every),
            Some(2),
            "said again, with the two held back"
        );
        assert_eq!(l.admit("a", every), None);
    }

    #[test]
    fn a_bad_filter_is_an_error_that_says_what_to_give() {
        let e = init(Some("kafka=loud"), LogFormat::Text).unwrap_err();
        assert!(e.to_string().contains("--log-level"), "{e}");
    }
}
