//! `slate replay`: the backtest driver. Decodes inputs on all cores,
//! applies events in input order (several inputs merged by time) to one
//! engine, evaluates at every tick of event time as live would have, and
//! builds the report. The result never depends on the number of threads.

pub mod pipeline;

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::apply::{ChunkIds, Core, CoreSettings, DeadLetters, Origin, Rejects};
use crate::decode::batch::{DecodedChunk, Rec};
use crate::decode::{Decoder, Reason};
use crate::engine::{Engine, EngineSettings};
use crate::model::{wall_us, Event, Micros};
use crate::report::chart::Charts;
use crate::report::{self, IncidentTrack, Report, Tally};
use crate::source::file::InputName;
use crate::spec::{Config, SloSpec};
use pipeline::DecodedStream;

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub inputs: Vec<InputName>,
    pub spec: SloSpec,
    pub config: Config,
    pub from: Option<Micros>,
    pub to: Option<Micros>,
    pub incidents: Vec<(Micros, Micros)>,
    /// Decode threads per input (0: one per core).
    pub threads: usize,
    pub dead_letter: Option<PathBuf>,
    /// Show a progress bar on stderr (only drawn when it is a terminal).
    pub progress: bool,
    /// Record chart series for the HTML report.
    pub charts: bool,
    /// Write the state at the end to this state dir (`--save-state`).
    pub save_state: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0}")]
    Format(String),
    #[error("dead-letter file {path}: {err}")]
    DeadLetter { path: PathBuf, err: io::Error },
    #[error("--save-state: {0}")]
    State(String),
}

struct Pending {
    ev: Event,
    input: usize,
    line: u64,
    raw: Vec<u8>,
}

struct Cursor {
    stream: DecodedStream,
    failed: Option<String>,
    chunk: DecodedChunk,
    pos: usize,
    ids: ChunkIds,
}

impl Cursor {
    /// The next record, loading the next chunk when this one is done. A
    /// read error ends this input: it is kept in `failed`, to be reported.
    fn peek(&mut self) -> Option<&Rec> {
        while self.pos >= self.chunk.recs.len() {
            match self.stream.next() {
                None => return None,
                Some(Ok(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                    self.ids.reset(self.chunk.names.len());
                }
                Some(Err(e)) => {
                    self.failed = Some(e.to_string());
                    return None;
                }
            }
        }
        self.chunk.recs.get(self.pos)
    }
}

/// How many first lines may disagree before the median sets the clock.
const START_LINES: usize = 32;

pub struct Replayer {
    opts: ReplayOptions,
    core: Core,
    tally: Tally,
    rejects: Rejects,
    incidents: Vec<IncidentTrack>,
    pending: Option<Pending>,
    /// The first lines, held until two in a row agree on the time (so
    /// that a stray first line, past or future, cannot set the clock).
    startup: Vec<Pending>,
    /// First lines ahead of the time the others agreed on, waiting for a
    /// later line to confirm them.
    doubted: Vec<Pending>,
    input_names: Vec<String>,
    charts: Option<Charts>,
}

/// `--dead-letter FILE`: one JSON object a line.
struct DeadLetterFile(BufWriter<File>);

impl DeadLetters for DeadLetterFile {
    fn write(
        &mut self,
        raw: &[u8],
        reason: Reason,
        detail: &str,
        origin: Origin<'_>,
    ) -> Result<(), String> {
        let (input, line) = match origin {
            Origin::Line { input, line } => (input, line),
            Origin::Kafka { topic, offset, .. } => (topic, offset as u64),
        };
        let rec = serde_json::json!({
            "input": input,
            "line": line,
            "reason": reason.as_str(),
            "detail": detail,
            "record": String::from_utf8_lossy(raw),
        });
        writeln!(self.0, "{rec}").map_err(|e| e.to_string())
    }

    fn flush(&mut self) -> Result<(), String> {
        self.0.flush().map_err(|e| e.to_string())
    }
}

impl Replayer {
    pub fn new(mut opts: ReplayOptions) -> Result<Replayer, ReplayError> {
        opts.spec
            .use_alert_windows(opts.config.alerting.windows.as_ref())
            .map_err(|e| ReplayError::Format(e.to_string()))?;
        let core = Core::new(
            &opts.spec,
            CoreSettings {
                engine: EngineSettings {
                    max_services: opts.config.engine.max_services,
                    quantile_windows: opts.config.engine.quantile_windows.clone(),
                    span_latency: true,
                    calendar: true,
                    calendar_days: 0,
                },
                min_events: opts.config.alerting.min_events,
                step: opts.config.alerting.replay_step(),
            },
        );
        let dead: Option<Box<dyn DeadLetters + Send>> = match &opts.dead_letter {
            Some(p) => Some(Box::new(DeadLetterFile(BufWriter::new(
                File::create(p).map_err(|err| ReplayError::DeadLetter {
                    path: p.clone(),
                    err,
                })?,
            )))),
            None => None,
        };
        Ok(Replayer {
            incidents: opts
                .incidents
                .iter()
                .map(|&(from, to)| IncidentTrack {
                    from,
                    to,
                    at_from: None,
                    at_to: None,
                })
                .collect(),
            input_names: opts.inputs.iter().map(InputName::display).collect(),
            charts: opts
                .charts
                .then(|| Charts::new(opts.config.alerting.replay_step())),
            opts,
            core,
            tally: Tally::default(),
            rejects: Rejects::new(dead),
            pending: None,
            startup: Vec::new(),
            doubted: Vec::new(),
        })
    }

    /// Reads every input to the end and returns the report (and the
    /// chart series, when asked for).
    pub fn run(mut self) -> Result<(Report, Option<Charts>), ReplayError> {
        let threads = match self.opts.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let decoder = Arc::new(Decoder::new(&self.opts.config.input).map_err(ReplayError::Format)?);
        let read = Arc::new(AtomicU64::new(0));
        let total_bytes: Option<u64> = self.opts.inputs.iter().map(InputName::size).sum();
        let mut cursors = Vec::new();
        for name in &self.opts.inputs {
            let stream = DecodedStream::start(
                name,
                decoder.clone(),
                threads,
                self.opts.config.input.max_line_bytes,
                read.clone(),
            )?;
            cursors.push(Cursor {
                stream,
                failed: None,
                chunk: DecodedChunk::default(),
                pos: 0,
                ids: ChunkIds::default(),
            });
        }
        let bar =
            (self.opts.progress && io::stderr().is_terminal()).then(|| progress_bar(total_bytes));
        let mut since_bar = 0u32;
        loop {
            // The next record: a rejection at any head goes first (it has
            // no time); otherwise the earliest event, first input on ties.
            let mut pick: Option<(usize, Micros)> = None;
            let mut reject_at = None;
            for (i, c) in cursors.iter_mut().enumerate() {
                match c.peek() {
                    None => {}
                    Some(Rec::Rejected { .. }) => {
                        reject_at = Some(i);
                        break;
                    }
                    Some(Rec::Event { ts, .. }) if pick.is_none_or(|(_, t)| *ts < t) => {
                        pick = Some((i, *ts));
                    }
                    Some(Rec::Event { .. }) => {}
                }
            }
            let Some(i) = reject_at.or(pick.map(|(i, _)| i)) else {
                break;
            };
            self.step(&mut cursors[i], i)?;
            since_bar += 1;
            if since_bar >= 1 << 16 {
                since_bar = 0;
                if let Some(b) = &bar {
                    b.set_position(read.load(Ordering::Relaxed));
                }
            }
        }
        for c in &mut cursors {
            if let Some(e) = c.failed.take() {
                self.tally.input_errors.push(e);
            }
        }
        if !self.startup.is_empty() {
            self.settle_start(None)?;
        }
        for p in std::mem::take(&mut self.doubted) {
            self.reject(
                Reason::Future,
                p.input,
                p.line,
                &p.raw,
                "ahead of the time the first lines agree on, and no later line came near it",
            )?;
        }
        if let Some(p) = self.pending.take() {
            // A jump that nothing follows (the last line after a quiet
            // spell) is accepted, unless it lies in the future of the
            // machine that reads it (DESIGN §5).
            if p.ev.ts > wall_us() + self.opts.config.engine.max_skew.0 {
                self.reject(
                    Reason::Future,
                    p.input,
                    p.line,
                    &p.raw,
                    "a jump ahead that no later line confirmed, after this machine's clock",
                )?;
            } else {
                self.accept(p)?;
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if let Some(d) = &mut self.rejects.dead {
            d.flush().map_err(|e| self.dead_letter_error(e))?;
        }
        self.finish()
    }

    fn step(&mut self, c: &mut Cursor, input: usize) -> Result<(), ReplayError> {
        let rec = c.chunk.recs[c.pos].clone();
        c.pos += 1;
        match rec {
            Rec::Rejected {
                reason,
                detail,
                line,
                at,
            } => {
                let raw = c.chunk.line_bytes(at).to_vec();
                self.reject(reason, input, line, &raw, &detail)
            }
            Rec::Event {
                ts,
                service,
                error,
                latency_us,
                line,
                at,
            } => {
                if self.opts.from.is_some_and(|f| ts < f) || self.opts.to.is_some_and(|t| ts >= t) {
                    self.tally.outside_span += 1;
                    return Ok(());
                }
                let id = match c.ids.resolve(&mut self.core, &c.chunk.names, service) {
                    Ok(id) => id,
                    Err(reason) => {
                        let raw = c.chunk.line_bytes(at).to_vec();
                        return self.reject(reason, input, line, &raw, "service not admitted");
                    }
                };
                let ev = Event {
                    ts,
                    service: id,
                    error,
                    latency_us,
                };
                let raw = if self.rejects.dead.is_some() {
                    c.chunk.line_bytes(at).to_vec()
                } else {
                    Vec::new()
                };
                self.offer(Pending {
                    ev,
                    input,
                    line,
                    raw,
                })
            }
        }
    }

    /// The watermark rule: a line more than `max_skew` ahead of now is held
    /// until the next line confirms the jump (lands within `max_skew` of
    /// it, or later) or falls back (then it is rejected as `future`).
    /// Before the clock is set, lines wait in `startup` instead.
    fn offer(&mut self, p: Pending) -> Result<(), ReplayError> {
        let skew = self.opts.config.engine.max_skew.0;
        if self.core.engine.now().is_none() {
            let agree = self
                .startup
                .last()
                .is_some_and(|l| (p.ev.ts - l.ev.ts).abs() <= skew);
            let anchor = p.ev.ts;
            self.startup.push(p);
            if agree {
                self.settle_start(Some(anchor))?;
            } else if self.startup.len() >= START_LINES {
                self.settle_start(None)?;
            }
            return Ok(());
        }
        self.offer_running(p)
    }

    /// The watermark rule once the clock is set.
    fn offer_running(&mut self, p: Pending) -> Result<(), ReplayError> {
        let skew = self.opts.config.engine.max_skew.0;
        if let Some(held) = self.pending.take() {
            if p.ev.ts >= held.ev.ts - skew {
                self.accept(held)?;
            } else {
                self.reject(
                    Reason::Future,
                    held.input,
                    held.line,
                    &held.raw,
                    "a jump ahead that the next line did not confirm",
                )?;
            }
        }
        let ts = p.ev.ts;
        match self.core.engine.now() {
            Some(now) if p.ev.ts > now + skew => self.pending = Some(p),
            _ => self.accept(p)?,
        }
        if !self.doubted.is_empty() {
            let (confirmed, doubted): (Vec<_>, Vec<_>) = std::mem::take(&mut self.doubted)
                .into_iter()
                .partition(|d| ts >= d.ev.ts - skew);
            self.doubted = doubted;
            for d in confirmed {
                self.accept(d)?;
            }
        }
        Ok(())
    }

    /// Sets the clock from the first lines: at `anchor`, the time two
    /// consecutive lines agreed on; each held line is then judged against
    /// it, in input order. When no two agreed (a short file, or one sorted
    /// by time whose lines are far apart), the clock starts at the first
    /// line not in the future of this machine, and the lines are read in
    /// order by the watermark rule: a gap is crossed when the next line
    /// confirms it, and a stray line far ahead is still `future`.
    fn settle_start(&mut self, anchor: Option<Micros>) -> Result<(), ReplayError> {
        let held = std::mem::take(&mut self.startup);
        let skew = self.opts.config.engine.max_skew.0;
        let Some(anchor) = anchor else {
            let limit = wall_us() + skew;
            let mut started = false;
            for p in held {
                if started {
                    self.offer_running(p)?;
                } else if p.ev.ts > limit {
                    self.reject(
                        Reason::Future,
                        p.input,
                        p.line,
                        &p.raw,
                        "after this machine's clock",
                    )?;
                } else {
                    started = true;
                    self.accept(p)?;
                }
            }
            return Ok(());
        };
        let limit = wall_us() + skew;
        for p in held {
            if p.ev.ts > anchor + skew && p.ev.ts <= limit {
                // Ahead of the agreed time: in doubt until a later line
                // comes within `max_skew` of it (files of one pod
                // concatenated out of order), rejected at the end if none
                // does (a stray line dated far ahead).
                self.doubted.push(p);
            } else if p.ev.ts > anchor + skew {
                self.reject(
                    Reason::Future,
                    p.input,
                    p.line,
                    &p.raw,
                    "ahead of the time the first lines agree on",
                )?;
            } else if p.ev.ts < anchor - self.core.horizon().0 {
                self.reject(
                    Reason::TooLate,
                    p.input,
                    p.line,
                    &p.raw,
                    "behind the time the first lines agree on",
                )?;
            } else {
                self.accept(p)?;
            }
        }
        Ok(())
    }

    fn accept(&mut self, p: Pending) -> Result<(), ReplayError> {
        // One clock: the watermark ticks every service, as live would.
        while let Some(t) = self.core.due_tick(0, p.ev.ts) {
            self.tick(t);
        }
        let now = self.core.now_at(0, p.ev.ts);
        match self.core.apply(0, &p.ev, now) {
            Ok(()) => {
                self.tally.accepted += 1;
                self.tally.first = Some(self.tally.first.map_or(p.ev.ts, |f| f.min(p.ev.ts)));
                self.tally.last = Some(self.tally.last.map_or(p.ev.ts, |l| l.max(p.ev.ts)));
                Ok(())
            }
            Err(reason) => self.reject(
                reason,
                p.input,
                p.line,
                &p.raw,
                "older than the longest SLO period before the newest event",
            ),
        }
    }

    fn tick(&mut self, t: Micros) {
        self.core.tick_all(t);
        let engine = &self.core.engine;
        if let Some(c) = &mut self.charts {
            c.tick(engine, t);
        }
        for inc in &mut self.incidents {
            if inc.at_from.is_none() && t >= inc.from {
                inc.at_from = Some(snapshot_bad(engine));
            }
            if inc.at_to.is_none() && t >= inc.to {
                inc.at_to = Some(snapshot_bad(engine));
            }
        }
    }

    fn dead_letter_error(&self, e: String) -> ReplayError {
        ReplayError::DeadLetter {
            path: self.opts.dead_letter.clone().unwrap_or_default(),
            err: io::Error::other(e),
        }
    }

    fn reject(
        &mut self,
        reason: Reason,
        input: usize,
        line: u64,
        raw: &[u8],
        detail: &str,
    ) -> Result<(), ReplayError> {
        let origin = Origin::Line {
            input: &self.input_names[input],
            line,
        };
        self.rejects
            .reject(reason, detail, raw, origin)
            .map_err(|e| self.dead_letter_error(e))
    }

    fn finish(mut self) -> Result<(Report, Option<Charts>), ReplayError> {
        self.core.finish(self.tally.last);
        if let (Some(last), Some(c)) = (self.tally.last, &mut self.charts) {
            // The chart's last point is taken past the last event, where
            // the report's figures are.
            c.finish(&self.core.engine, last + 1);
        }
        let end_snapshot = snapshot_bad(&self.core.engine);
        for inc in &mut self.incidents {
            if inc.at_to.is_none() {
                inc.at_to = Some(end_snapshot.clone());
            }
        }
        self.tally.rejected = self.rejects.counts;
        let report = report::build(
            &self.core.engine,
            &self.core.trackers,
            &self.tally,
            &self.incidents,
        );
        if let Some(dir) = &self.opts.save_state {
            let bytes =
                crate::apply::snapshot::save(&mut self.core, dir).map_err(ReplayError::State)?;
            eprintln!(
                "slate: state of {} service(s) written to {} ({:.1} MB); `slate run --state-dir {}` continues from it",
                self.core.engine.len(),
                dir.display(),
                bytes as f64 / 1e6,
                dir.display()
            );
        }
        Ok((report, self.charts))
    }
}

fn snapshot_bad(engine: &Engine) -> Vec<Vec<u64>> {
    engine
        .services()
        .map(|(_, s)| s.cumulative.iter().map(|&(_, bad)| bad).collect())
        .collect()
}

fn progress_bar(total: Option<u64>) -> indicatif::ProgressBar {
    let bar = match total {
        Some(t) => indicatif::ProgressBar::new(t),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} replay [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Runs a replay to its report.
pub fn replay(opts: ReplayOptions) -> Result<Report, ReplayError> {
    Ok(Replayer::new(opts)?.run()?.0)
}

/// The report, and the chart series when `opts.charts` asks for them.
pub fn replay_with_charts(opts: ReplayOptions) -> Result<(Report, Option<Charts>), ReplayError> {
    Replayer::new(opts)?.run()
}
