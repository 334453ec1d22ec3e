//! Envelopes (DESIGN §3): what container runtimes, log shippers and syslog
//! wrap each access-log line in on its way to a file or to Kafka. An
//! envelope is taken off here; the inner line is then read by the format.
//!
//! One record may hold several inner lines (an OTLP request), or none yet
//! (a CRI partial line waiting for the rest of it, kept in [`Partials`]).
//! An envelope that does not parse is an `invalid_envelope` rejection.

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{Reason, Rejection};
use crate::model::{parse_rfc3339_cached, DayCache, Micros};
use crate::spec::config::Envelope;

pub use super::envfast::{Layout, OtlpMemos, OtlpRecord};

/// One line taken out of its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Inner<'a> {
    pub line: Cow<'a, [u8]>,
    /// The envelope's own time: the fallback when the line has none (read
    /// only then).
    pub time: Option<Stamp<'a>>,
    /// The value at `--service-field envelope.PATH`, when the envelope has it.
    pub service: Option<Cow<'a, str>>,
}

/// An envelope's time as it is written, read when it is needed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stamp<'a> {
    Rfc3339(&'a [u8]),
    /// A JSON number of seconds (or ms, µs, ns) since the epoch.
    Epoch(&'a [u8]),
    /// OTLP's `timeUnixNano`, else its `observedTimeUnixNano`, as written.
    Otlp(Option<&'a [u8]>, Option<&'a [u8]>),
    At(Micros),
}

impl Stamp<'_> {
    /// The time, or `None` when it does not parse.
    pub fn micros(&self, days: &mut DayCache) -> Option<Micros> {
        match *self {
            Stamp::Rfc3339(s) => parse_rfc3339_cached(s, days),
            Stamp::Epoch(n) => {
                let n = std::str::from_utf8(n).ok()?.parse().ok()?;
                super::json::epoch_to_micros(n)
            }
            Stamp::Otlp(time, observed) => otlp_nanos(time).or_else(|| otlp_nanos(observed)),
            Stamp::At(t) => Some(t),
        }
    }
}

/// An OTLP time as written (a string's bytes or a number), as the serde
/// path reads it.
fn otlp_nanos(t: Option<&[u8]>) -> Option<Micros> {
    otlp::Nanos::parse(std::str::from_utf8(t?).ok()?).micros()
}

/// Whether `s` looks like an RFC 3339 time (`2026-11-24T…`): an
/// envelope's time is parsed only when a line needs it, but a field that
/// is plainly something else makes the envelope invalid.
fn looks_like_time(s: &[u8]) -> bool {
    s.len() >= 20 && s[..4].iter().all(u8::is_ascii_digit) && s[4] == b'-' && s[10] == b'T'
}

/// Takes one kind of envelope off records.
#[derive(Debug, Clone)]
pub struct Unwrapper {
    kind: Envelope,
    /// `envelope.PATH` of `--service-field`, split at its dots.
    service_path: Option<Vec<Box<str>>>,
    /// A JSON envelope's wanted paths: the line's keys, the time's, the
    /// service's (at most 32).
    wants: Vec<(Vec<Box<str>>, Slot)>,
    /// The same, for the fast path.
    fast: Vec<super::envfast::Want>,
}

/// CRI partial lines (`P`) waiting for their final part (`F`), per stream.
#[derive(Debug, Default)]
pub struct Partials {
    open: Vec<Partial>,
    /// A finished partial's buffers, for the next one.
    spare: Option<Partial>,
}

#[derive(Debug)]
struct Partial {
    stream: Vec<u8>,
    text: Vec<u8>,
    time: Option<Micros>,
    /// Where the last fragment was read: `(line, at)` of its record.
    last: (u64, (u32, u32)),
}

impl Partials {
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The partials left unfinished, with where their last fragment was.
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, (u32, u32))> + '_ {
        self.open.drain(..).map(|p| p.last)
    }
}

/// Docker's json-file driver splits a line longer than this into several
/// records; only the last ends with a newline.
const DOCKER_SPLIT: usize = 16 * 1024;

/// An OTLP request without a record to read.
pub(super) const NO_OTLP_RECORD: &str = "an OTLP/JSON logs request with no log record";

fn invalid(detail: impl Into<String>) -> Rejection {
    Rejection::new(Reason::InvalidEnvelope, detail)
}

impl Unwrapper {
    /// `kind` must not be `auto` (resolved by sniffing first) nor `none`.
    pub fn new(kind: Envelope, service_path: Option<&str>) -> Unwrapper {
        let mut u = Unwrapper {
            kind,
            service_path: service_path.map(|p| p.split('.').map(Box::from).collect()),
            wants: Vec::new(),
            fast: Vec::new(),
        };
        let (line_keys, time_keys) = u.keys();
        for (i, k) in line_keys.iter().enumerate() {
            u.wants
                .push((k.split('.').map(Box::from).collect(), Slot::Line(i as u8)));
        }
        for (i, k) in time_keys.iter().enumerate() {
            u.wants.push((vec![Box::from(*k)], Slot::Time(i as u8)));
        }
        if let Some(p) = &u.service_path {
            u.wants.push((p.clone(), Slot::Service));
        }
        u.fast = (u.wants.iter())
            .map(|(path, slot)| super::envfast::Want::new(path, *slot))
            .collect();
        u
    }

    pub fn kind(&self) -> Envelope {
        self.kind
    }

    /// Takes the envelope off `raw` and hands each inner line to `emit`
    /// (or the rejection of the record). `at` is where `raw` sits in its
    /// chunk, kept with a CRI partial for the rejection of one never
    /// finished.
    pub fn unwrap<'a>(
        &self,
        raw: &'a [u8],
        partials: &mut Partials,
        days: &mut DayCache,
        whence: (u64, (u32, u32)),
        emit: &mut dyn FnMut(Result<Inner<'_>, Rejection>),
    ) {
        match self.kind {
            Envelope::Docker | Envelope::Filebeat | Envelope::Vector | Envelope::FluentBit => {
                match self.json(raw, days) {
                    Ok(inner) => self.docker_join(inner, partials, days, whence, emit),
                    Err(r) => emit(Err(r)),
                }
            }
            Envelope::Cri => self.cri(raw, partials, days, whence, emit),
            Envelope::OtlpJson => self.otlp(raw, emit),
            Envelope::Syslog => emit(self.syslog(raw)),
            Envelope::None | Envelope::Auto => emit(Ok(Inner {
                line: Cow::Borrowed(raw),
                time: None,
                service: None,
            })),
        }
    }

    /// Whether `raw` carries this envelope's own time where it keeps it
    /// (`time`, `@timestamp`, `timestamp`, …): how `--envelope auto` tells
    /// apart JSON envelopes that all hold a line.
    pub fn has_own_time(&self, raw: &[u8]) -> bool {
        let mut days = DayCache::default();
        match self.kind {
            Envelope::Docker | Envelope::Filebeat | Envelope::Vector | Envelope::FluentBit => {
                // A number that is no time counts as none.
                (self.json(raw, &mut days).ok().and_then(|i| i.time))
                    .is_some_and(|t| !matches!(t, Stamp::Epoch(_)) || t.micros(&mut days).is_some())
            }
            Envelope::Syslog => self.syslog(raw).is_ok(),
            Envelope::Cri => CriLine::parse(raw).is_some(),
            Envelope::OtlpJson => serde_json::from_slice::<otlp::Request>(raw).is_ok(),
            Envelope::None | Envelope::Auto => false,
        }
    }

    /// The keys that hold the line, and the time, of a JSON envelope, in
    /// order of preference.
    fn keys(&self) -> (&'static [&'static str], &'static [&'static str]) {
        match self.kind {
            Envelope::Docker => (&["log"], &["time"]),
            Envelope::Filebeat => (&["message", "event.original"], &["@timestamp"]),
            Envelope::Vector => (&["message"], &["timestamp"]),
            _ => (&["log", "message"], &["@timestamp", "date", "time"]),
        }
    }

    fn json<'a>(&self, raw: &'a [u8], days: &mut DayCache) -> Result<Inner<'a>, Rejection> {
        if let Some(inner) = self.json_fast(raw) {
            return Ok(inner);
        }
        self.json_serde(raw, days)
    }

    /// The fast path: `None` leaves the record to [`json_serde`](Self::json_serde).
    fn json_fast<'a>(&self, raw: &'a [u8]) -> Option<Inner<'a>> {
        let (line, time, service) = self.json_found(raw, &mut |_, _, _| None, None)?;
        let line = line.decoded()?;
        // serde_json would refuse a line that is not UTF-8: so does this.
        std::str::from_utf8(&line).ok()?;
        Some(Inner {
            line,
            time,
            service,
        })
    }

    /// A JSON envelope read by the fast path with its line read by `read`
    /// where it is written, escapes not decoded (`read(s, i)`: the line's
    /// string starts at `s[i]`; it keeps what it read and returns the index
    /// of the string's closing quote): for an inner decoder that reads the
    /// line so, which saves unescaping a copy of it. `None` (the envelope
    /// or its line is not read so, or the line may be one part of a Docker
    /// split): take [`unwrap`](Self::unwrap).
    pub fn json_escaped<'a>(
        &self,
        raw: &'a [u8],
        layout: &mut Layout,
        mut read: impl FnMut(&'a [u8], usize) -> Option<usize>,
    ) -> Option<(Option<Stamp<'a>>, Option<Cow<'a, str>>)> {
        if !matches!(
            self.kind,
            Envelope::Docker | Envelope::Filebeat | Envelope::Vector | Envelope::FluentBit
        ) {
            return None;
        }
        let mut at = None;
        let (line, time, service) = self.json_found(
            raw,
            &mut |s, i, _| {
                let end = read(s, i)?;
                at = Some(i);
                Some(end)
            },
            Some(layout),
        )?;
        // The line the envelope holds must be the one last read, not one
        // of a key it prefers, met later and left to the scan.
        if line.bytes.as_ptr() != raw[at?..].as_ptr() {
            return None;
        }
        // A Docker record that does not end its line may be one part of a
        // split; an escaped newline is `\\n` after an even run of `\\`.
        if self.kind == Envelope::Docker {
            let body = line.bytes.strip_suffix(b"n")?;
            let slashes = body.iter().rev().take_while(|&&b| b == b'\\').count();
            if slashes % 2 == 0 {
                return None;
            }
        }
        Some((time, service))
    }

    /// The fast path's reading of a JSON envelope: its line as written,
    /// its time and its service.
    #[allow(clippy::type_complexity)]
    fn json_found<'a>(
        &self,
        raw: &'a [u8],
        line: &mut impl FnMut(&'a [u8], usize, u8) -> Option<usize>,
        layout: Option<&mut Layout>,
    ) -> Option<(
        super::envfast::Raw<'a>,
        Option<Stamp<'a>>,
        Option<Cow<'a, str>>,
    )> {
        let found = super::envfast::scan(
            raw,
            &self.fast,
            self.kind == Envelope::FluentBit,
            line,
            layout,
        )?;
        let (_, line) = found.line?;
        let time = match found.time {
            Some((_, super::envfast::Time::Str(s))) => Some(Stamp::Rfc3339(s)),
            Some((_, super::envfast::Time::Num(n))) => Some(Stamp::Epoch(n)),
            None => None,
        };
        let service = match found.service {
            Some(s) if !s.escaped => Some(Cow::Borrowed(std::str::from_utf8(s.bytes).ok()?)),
            Some(s) => Some(Cow::Owned(s.text()?.into_owned())),
            None => None,
        };
        Some((line, time, service))
    }

    fn json_serde<'a>(&self, raw: &'a [u8], days: &mut DayCache) -> Result<Inner<'a>, Rejection> {
        let (line_keys, _) = self.keys();
        let mut got = Got::default();
        let mut de = serde_json::Deserializer::from_slice(raw);
        let what = Root {
            wants: &self.wants,
            got: &mut got,
            array: self.kind == Envelope::FluentBit,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        if let Err(e) = what {
            return Err(invalid(format!(
                "the {} envelope is not JSON: {e}",
                self.kind.name()
            )));
        }
        let Some((_, line)) = got.line else {
            return Err(invalid(format!(
                "no `{}` string in the {} envelope",
                line_keys.join("` or `"),
                self.kind.name()
            )));
        };
        let time = match got.time {
            Some((_, TimeValue::Str(s))) => parse_rfc3339_cached(s.as_bytes(), days).map(Stamp::At),
            Some((_, TimeValue::Num(n))) => super::json::epoch_to_micros(n).map(Stamp::At),
            None => None,
        };
        Ok(Inner {
            line: match line {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            },
            time,
            service: got.service,
        })
    }

    /// Ends a json-file line at its newline, joining the parts Docker
    /// split a long line into.
    fn docker_join(
        &self,
        inner: Inner<'_>,
        partials: &mut Partials,
        days: &mut DayCache,
        whence: (u64, (u32, u32)),
        emit: &mut dyn FnMut(Result<Inner<'_>, Rejection>),
    ) {
        let line = &inner.line[..];
        if self.kind == Envelope::Docker && line.len() == DOCKER_SPLIT && !line.ends_with(b"\n") {
            match partials.open.first_mut() {
                Some(p) => {
                    p.text.extend_from_slice(line);
                    p.last = whence;
                }
                None => partials.open.push(Partial {
                    stream: Vec::new(),
                    text: line.to_vec(),
                    time: inner.time.and_then(|t| t.micros(days)),
                    last: whence,
                }),
            }
            return;
        }
        let line = strip_newline(line);
        if self.kind == Envelope::Docker {
            if let Some(mut p) = partials.open.pop() {
                p.text.extend_from_slice(line);
                return emit(Ok(Inner {
                    line: Cow::Owned(p.text),
                    time: p.time.map(Stamp::At),
                    service: inner.service,
                }));
            }
        }
        emit(Ok(Inner {
            line: Cow::Borrowed(line),
            time: inner.time,
            service: inner.service,
        }))
    }

    /// `<RFC 3339 time> <stream> <P|F>[:flags] <line>`.
    fn cri(
        &self,
        raw: &[u8],
        partials: &mut Partials,
        days: &mut DayCache,
        whence: (u64, (u32, u32)),
        emit: &mut dyn FnMut(Result<Inner<'_>, Rejection>),
    ) {
        let Some(cri) = CriLine::parse(raw) else {
            return emit(Err(invalid(
                "a CRI line is `<time> <stream> <P|F> <line>`: fields missing",
            )));
        };
        if !looks_like_time(cri.time) {
            return emit(Err(invalid("the CRI line's time is not RFC 3339")));
        }
        let at = partials.open.iter().position(|p| *p.stream == *cri.stream);
        if cri.partial {
            match at {
                Some(i) => {
                    partials.open[i].text.extend_from_slice(cri.text);
                    partials.open[i].last = whence;
                }
                None => {
                    let mut p = partials.spare.take().unwrap_or(Partial {
                        stream: Vec::new(),
                        text: Vec::new(),
                        time: None,
                        last: whence,
                    });
                    p.stream.clear();
                    p.stream.extend_from_slice(cri.stream);
                    p.text.clear();
                    p.text.extend_from_slice(cri.text);
                    p.time = parse_rfc3339_cached(cri.time, days);
                    p.last = whence;
                    partials.open.push(p);
                }
            }
            return;
        }
        let service = self.named(&[("stream", cri.stream)]);
        match at {
            Some(i) => {
                let mut p = partials.open.remove(i);
                p.text.extend_from_slice(cri.text);
                emit(Ok(Inner {
                    line: Cow::Borrowed(&p.text),
                    time: p.time.map(Stamp::At),
                    service,
                }));
                partials.spare = Some(p);
            }
            None => emit(Ok(Inner {
                line: Cow::Borrowed(cri.text),
                time: Some(Stamp::Rfc3339(cri.time)),
                service,
            })),
        }
    }

    /// The value of `envelope.PATH` among an envelope's named text fields.
    fn named<'a>(&self, fields: &[(&str, &'a [u8])]) -> Option<Cow<'a, str>> {
        let path = self.service_path.as_ref()?;
        let [key] = &path[..] else { return None };
        let (_, v) = fields.iter().find(|(k, _)| *k == &**key)?;
        std::str::from_utf8(v).ok().map(Cow::Borrowed)
    }

    /// Where `--service-field envelope.PATH` points in an OTLP request.
    fn otlp_service<'k>(&self, key: &'k mut String) -> Option<super::envfast::OtlpService<'k>> {
        use super::envfast::OtlpService;
        let path = self.service_path.as_ref()?;
        *key = path[1..].join(".");
        match path.first().map(|s| &**s) {
            Some("resource") => Some(OtlpService::Resource(key.as_bytes())),
            Some("attributes") => Some(OtlpService::Record(key.as_bytes())),
            _ => None,
        }
    }

    /// An OTLP/JSON request's log records by the fast scan, each body
    /// offered to `line` (as [`json_escaped`](Self::json_escaped) offers a
    /// line): `None` leaves the request to the serde path.
    pub fn otlp_records<'a>(
        &self,
        raw: &'a [u8],
        memos: &mut OtlpMemos,
        line: &mut impl FnMut(&'a [u8], usize) -> Option<usize>,
    ) -> Option<Vec<OtlpRecord<'a>>> {
        if self.kind != Envelope::OtlpJson {
            return None;
        }
        let mut key = String::new();
        let service = self.otlp_service(&mut key);
        let mut out = Vec::new();
        super::envfast::otlp(raw, service, line, memos, &mut out)?;
        Some(out)
    }

    /// A record [`otlp_records`](Self::otlp_records) found, as a line
    /// (unescaped) with its time and service; `None` when its line or
    /// service does not decode (the serde path then refuses the request).
    pub fn otlp_inner<'a>(&self, rec: &OtlpRecord<'a>) -> Option<Inner<'a>> {
        let line = rec.line.decoded()?;
        std::str::from_utf8(&line).ok()?;
        let line = match line {
            Cow::Borrowed(l) => Cow::Borrowed(strip_newline(l)),
            Cow::Owned(l) => Cow::Owned(strip_newline(&l).to_vec()),
        };
        Some(Inner {
            line,
            time: Self::otlp_time(rec),
            service: Self::otlp_record_service(rec)?,
        })
    }

    /// A record's time, read when it is needed.
    pub fn otlp_time<'a>(rec: &OtlpRecord<'a>) -> Option<Stamp<'a>> {
        (rec.time.is_some() || rec.observed.is_some())
            .then_some(Stamp::Otlp(rec.time, rec.observed))
    }

    /// A record's service, its escapes decoded: `Some(None)` without one,
    /// `None` when it does not decode.
    pub fn otlp_record_service<'a>(rec: &OtlpRecord<'a>) -> Option<Option<Cow<'a, str>>> {
        match rec.service {
            Some(s) => s.text().map(|t| Some(Cow::Owned(t.into_owned()))),
            None => Some(None),
        }
    }

    /// An OTLP/JSON `ExportLogsServiceRequest`: every log record's
    /// `body.stringValue` is a line.
    fn otlp(&self, raw: &[u8], emit: &mut dyn FnMut(Result<Inner<'_>, Rejection>)) {
        let memos = &mut OtlpMemos::default();
        let fast = self
            .otlp_records(raw, memos, &mut |_, _| None)
            .and_then(|recs| {
                recs.iter()
                    .map(|r| self.otlp_inner(r))
                    .collect::<Option<Vec<Inner>>>()
            });
        if let Some(inners) = fast {
            if inners.is_empty() {
                emit(Err(invalid(NO_OTLP_RECORD)));
            }
            for inner in inners {
                emit(Ok(inner));
            }
            return;
        }
        self.otlp_serde(raw, emit);
    }

    /// [`otlp`](Self::otlp) by serde_json: every request the fast scan
    /// leaves, and the reference it is tested against.
    pub(super) fn otlp_serde(
        &self,
        raw: &[u8],
        emit: &mut dyn FnMut(Result<Inner<'_>, Rejection>),
    ) {
        let req: otlp::Request = match serde_json::from_slice(raw) {
            Ok(r) => r,
            Err(e) => return emit(Err(invalid(format!("not an OTLP/JSON logs request: {e}")))),
        };
        let mut any = false;
        for rl in &req.resource_logs {
            for sl in &rl.scope_logs {
                for rec in &sl.log_records {
                    any = true;
                    let Some(line) = rec.body.as_ref().and_then(otlp::AnyValue::text) else {
                        emit(Err(invalid(
                            "an OTLP log record whose body is not a string",
                        )));
                        continue;
                    };
                    let time = rec
                        .time_unix_nano
                        .as_ref()
                        .and_then(otlp::Nanos::micros)
                        .or_else(|| {
                            rec.observed_time_unix_nano
                                .as_ref()
                                .and_then(otlp::Nanos::micros)
                        })
                        .map(Stamp::At);
                    let service = self.service_path.as_ref().and_then(|p| {
                        let (attrs, key) = match p.first().map(|s| &**s) {
                            Some("resource") => {
                                (rl.resource.as_ref().map(|r| &r.attributes), &p[1..])
                            }
                            Some("attributes") => (Some(&rec.attributes), &p[1..]),
                            _ => return None,
                        };
                        let key = key.join(".");
                        attrs?
                            .iter()
                            .find(|kv| kv.key == key)
                            .and_then(|kv| kv.value.text())
                            .and_then(|t| String::from_utf8(t.into_owned()).ok())
                            .map(Cow::Owned)
                    });
                    let line = match line {
                        Cow::Borrowed(l) => Cow::Borrowed(strip_newline(l)),
                        Cow::Owned(l) => Cow::Owned(strip_newline(&l).to_vec()),
                    };
                    emit(Ok(Inner {
                        line,
                        time,
                        service,
                    }));
                }
            }
        }
        if !any {
            emit(Err(invalid(NO_OTLP_RECORD)));
        }
    }

    /// RFC 5424 (`<PRI>1 TIME HOST APP PROCID MSGID SD MSG`) or RFC 3164
    /// (`<PRI>Mmm dd HH:MM:SS HOST TAG: MSG`), the PRI optional (a file
    /// written by a syslog daemon has none), an octet count before it
    /// (RFC 6587 framing, Heroku's logplex) skipped.
    fn syslog<'a>(&self, raw: &'a [u8]) -> Result<Inner<'a>, Rejection> {
        let mut s = raw;
        // Octet counting: digits and a space before the PRI.
        if let Some(sp) = s.iter().position(|&b| !b.is_ascii_digit()) {
            if sp > 0 && s[sp] == b' ' && s.get(sp + 1) == Some(&b'<') {
                s = &s[sp + 1..];
            }
        }
        if s.first() == Some(&b'<') {
            let close = s.iter().take(5).position(|&b| b == b'>');
            match close {
                Some(c) if c > 1 && s[1..c].iter().all(u8::is_ascii_digit) => s = &s[c + 1..],
                _ => return Err(invalid("a syslog PRI is `<` 1–3 digits `>`")),
            }
        }
        let mut fields = Fields(s);
        if s.len() > 2 && s[0].is_ascii_digit() && s[1] == b' ' && s[2] != b' ' {
            // RFC 5424.
            fields.next();
            let ts = fields
                .next()
                .ok_or_else(|| invalid("RFC 5424: no TIMESTAMP"))?;
            let host = fields
                .next()
                .ok_or_else(|| invalid("RFC 5424: no HOSTNAME"))?;
            let app = fields
                .next()
                .ok_or_else(|| invalid("RFC 5424: no APP-NAME"))?;
            let _procid = fields
                .next()
                .ok_or_else(|| invalid("RFC 5424: no PROCID"))?;
            let _msgid = fields.next().ok_or_else(|| invalid("RFC 5424: no MSGID"))?;
            let time = if ts == b"-" {
                None
            } else if looks_like_time(ts) {
                Some(Stamp::Rfc3339(ts))
            } else {
                return Err(invalid("RFC 5424: the TIMESTAMP is not RFC 3339"));
            };
            let mut rest = fields.0;
            // STRUCTURED-DATA: `-`, or `[…]` elements; some senders
            // (Heroku) leave it out altogether.
            if rest == b"-" || rest.starts_with(b"- ") {
                rest = rest.get(2..).unwrap_or_default();
            } else if rest.starts_with(b"[") {
                rest =
                    skip_sd(rest).ok_or_else(|| invalid("RFC 5424: unclosed STRUCTURED-DATA"))?;
            }
            let rest = rest.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(rest);
            return Ok(Inner {
                line: Cow::Borrowed(rest),
                time,
                service: self.named(&[("host", host), ("app", app)]),
            });
        }
        // RFC 3164: a time (BSD `Mmm dd HH:MM:SS`, or RFC 3339 as rsyslog
        // writes it), a host, then `TAG[pid]: `.
        let time = match fields.clone().next() {
            Some(t) if t.first().is_some_and(u8::is_ascii_digit) => {
                fields.next();
                if !looks_like_time(t) {
                    return Err(invalid("syslog: the time is not RFC 3339"));
                }
                Some(Stamp::Rfc3339(t))
            }
            _ => {
                let month = fields.next().unwrap_or_default();
                let day = fields.next().unwrap_or_default();
                let clock = fields.next().unwrap_or_default();
                let bsd = super::text::month_number(month).is_some()
                    && (1..=2).contains(&day.len())
                    && day.iter().all(u8::is_ascii_digit)
                    && clock.len() == 8
                    && clock[2] == b':'
                    && clock[5] == b':';
                if !bsd {
                    return Err(invalid(
                        "not syslog: no `<PRI>`, RFC 5424 header or `Mmm dd HH:MM:SS` time",
                    ));
                }
                // A BSD time has no year: the line's own time is used.
                None
            }
        };
        let first = fields
            .next()
            .ok_or_else(|| invalid("syslog: no host or tag"))?;
        let (host, tag) = if first.ends_with(b":") {
            (&b""[..], first)
        } else {
            let tag = fields.next().ok_or_else(|| invalid("syslog: no tag"))?;
            (first, tag)
        };
        if !tag.ends_with(b":") {
            return Err(invalid("syslog: the tag does not end with `:`"));
        }
        let app = &tag[..tag.len() - 1];
        let app = &app[..memchr::memchr(b'[', app).unwrap_or(app.len())];
        Ok(Inner {
            line: Cow::Borrowed(fields.0),
            time,
            service: self.named(&[("host", host), ("app", app)]),
        })
    }
}

/// The space-separated fields of a line, the rest kept in `.0`.
#[derive(Clone)]
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.0.trim_ascii_start();
        if s.is_empty() {
            self.0 = s;
            return None;
        }
        // Header fields are a few bytes: eight at a time costs less than
        // setting up `memchr` for each.
        let end = space(s);
        self.0 = s.get(end + 1..).unwrap_or_default();
        Some(&s[..end])
    }
}

/// The index of the first space in `s` (its length without one), eight
/// bytes at a time.
#[inline]
fn space(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut j = 0;
    while j + 8 <= s.len() {
        let x = u64::from_le_bytes(s[j..j + 8].try_into().expect("eight bytes")) ^ (ONES * 0x20);
        // The lowest flagged byte is exact; bits above it may not be.
        let hit = x.wrapping_sub(ONES) & !x & HIGH;
        if hit != 0 {
            return j + (hit.trailing_zeros() / 8) as usize;
        }
        j += 8;
    }
    s[j..]
        .iter()
        .position(|&b| b == b' ')
        .map_or(s.len(), |p| j + p)
}

/// Skips RFC 5424 SD-ELEMENTs (`[id k="v\"…"]…`) and the space after them.
fn skip_sd(mut s: &[u8]) -> Option<&[u8]> {
    while s.first() == Some(&b'[') {
        let mut i = 1;
        let mut quoted = false;
        loop {
            match *s.get(i)? {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
            i += 1;
        }
        s = &s[i + 1..];
    }
    Some(s.strip_prefix(b" ").unwrap_or(s))
}

pub(super) fn strip_newline(s: &[u8]) -> &[u8] {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    s.strip_suffix(b"\r").unwrap_or(s)
}

/// A CRI log line's four fields.
pub(crate) struct CriLine<'a> {
    time: &'a [u8],
    stream: &'a [u8],
    partial: bool,
    text: &'a [u8],
}

impl<'a> CriLine<'a> {
    pub(crate) fn parse(raw: &'a [u8]) -> Option<CriLine<'a>> {
        // `TIME STREAM TAG TEXT`: three cuts at the first spaces.
        // The time (30 bytes from containerd) by `memchr`; the short
        // fields after it eight bytes at a time, not a call each.
        let cut = |s: &[u8]| Some(space(s)).filter(|&p| p < s.len());
        let s1 = memchr::memchr(b' ', raw)?;
        let s2 = s1 + 1 + cut(&raw[s1 + 1..])?;
        let (time, stream) = (&raw[..s1], &raw[s1 + 1..s2]);
        if time.is_empty() || stream.is_empty() {
            return None;
        }
        let rest = &raw[s2 + 1..];
        let (tag, text) = match cut(rest) {
            Some(s3) => (&rest[..s3], &rest[s3 + 1..]),
            // `… stdout F` with nothing after the tag is an empty line.
            None => (rest, &rest[rest.len()..]),
        };
        let partial = match tag.split(|&b| b == b':').next()? {
            b"P" => true,
            b"F" => false,
            _ => return None,
        };
        Some(CriLine {
            time,
            stream,
            partial,
            text,
        })
    }

    /// Whether the line is a partial one, and its stream (for the file
    /// reader, which cuts chunks only where no partial is open).
    pub(crate) fn peek(raw: &'a [u8]) -> Option<(bool, &'a [u8])> {
        CriLine::parse(raw).map(|c| (c.partial, c.stream))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Slot {
    /// The n-th key of the line's keys (lower is preferred).
    Line(u8),
    Time(u8),
    Service,
}

enum TimeValue<'a> {
    Str(Cow<'a, str>),
    Num(f64),
}

#[derive(Default)]
struct Got<'a> {
    line: Option<(u8, Cow<'a, str>)>,
    time: Option<(u8, TimeValue<'a>)>,
    service: Option<Cow<'a, str>>,
}

/// The envelope's top level: an object, or (Fluent Bit) `[time, {…}]`.
struct Root<'w, 'g, 'a> {
    wants: &'w [(Vec<Box<str>>, Slot)],
    got: &'g mut Got<'a>,
    array: bool,
}

impl<'de> DeserializeSeed<'de> for Root<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Root<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        Level {
            wants: self.wants,
            live: all(self.wants.len()),
            depth: 0,
            got: self.got,
        }
        .visit_map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if !self.array {
            return Err(de::Error::custom("an array, not an object"));
        }
        let t: f64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("an empty array"))?;
        seq.next_element_seed(Level {
            wants: self.wants,
            live: all(self.wants.len()),
            depth: 0,
            got: &mut *self.got,
        })?
        .ok_or_else(|| de::Error::custom("a record array without its object"))?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        if self.got.time.is_none() {
            self.got.time = Some((0, TimeValue::Num(t)));
        }
        Ok(())
    }
}

/// One object level of the envelope, with the wanted paths that pass
/// through it.
struct Level<'w, 'g, 'a> {
    wants: &'w [(Vec<Box<str>>, Slot)],
    /// The wants whose path runs through this level, one bit each.
    live: u32,
    depth: usize,
    got: &'g mut Got<'a>,
}

fn all(n: usize) -> u32 {
    if n >= 32 {
        u32::MAX
    } else {
        (1 << n) - 1
    }
}

impl<'de> DeserializeSeed<'de> for Level<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Level<'_, '_, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(super::json::Key(key)) = map.next_key()? {
            let mut leaf = None;
            let mut deeper = 0u32;
            for (i, (path, slot)) in self.wants.iter().enumerate().take(32) {
                if self.live & (1 << i) != 0 && path.get(self.depth).is_some_and(|p| **p == *key) {
                    if path.len() == self.depth + 1 {
                        leaf = Some(*slot);
                    } else {
                        deeper |= 1 << i;
                    }
                }
            }
            match leaf {
                Some(slot) => {
                    let v: Value<'de> = map.next_value()?;
                    self.take(slot, v);
                }
                None if deeper != 0 => {
                    map.next_value_seed(Maybe(Level {
                        wants: self.wants,
                        live: deeper,
                        depth: self.depth + 1,
                        got: &mut *self.got,
                    }))?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

impl<'a> Level<'_, '_, 'a> {
    fn take(&mut self, slot: Slot, v: Value<'a>) {
        match (slot, v) {
            (Slot::Line(p), Value::Str(s))
                if self.got.line.as_ref().is_none_or(|(q, _)| p < *q) =>
            {
                self.got.line = Some((p, s));
            }
            (Slot::Time(p), Value::Str(s))
                if self.got.time.as_ref().is_none_or(|(q, _)| p < *q) =>
            {
                self.got.time = Some((p, TimeValue::Str(s)));
            }
            (Slot::Time(p), Value::Num(n))
                if self.got.time.as_ref().is_none_or(|(q, _)| p < *q) =>
            {
                self.got.time = Some((p, TimeValue::Num(n)));
            }
            (Slot::Service, Value::Str(s)) => self.got.service = Some(s),
            _ => {}
        }
    }
}

/// An object level where the path goes on, or any other value (skipped).
struct Maybe<L>(L);

impl<'de> DeserializeSeed<'de> for Maybe<Level<'_, '_, 'de>> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Maybe<Level<'_, '_, 'de>> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.0.visit_map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A wanted value: a string (borrowed when it has no escapes), a number,
/// or anything else (not taken).
enum Value<'a> {
    Str(Cow<'a, str>),
    Num(f64),
    Other,
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Value<'de>, E> {
                Ok(Value::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Value<'de>, E> {
                Ok(Value::Str(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Value<'de>, E> {
                Ok(Value::Str(Cow::Owned(s)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Value<'de>, E> {
                Ok(Value::Num(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Value<'de>, E> {
                Ok(Value::Num(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Value<'de>, E> {
                Ok(Value::Num(v as f64))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Value<'de>, E> {
                Ok(Value::Other)
            }
            fn visit_unit<E>(self) -> Result<Value<'de>, E> {
                Ok(Value::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Value<'de>, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Value::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Value<'de>, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Value::Other)
            }
        }
        d.deserialize_any(V)
    }
}

/// The parts of OTLP/JSON (`ExportLogsServiceRequest`) slate reads.
mod otlp {
    use std::borrow::Cow;

    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Request<'a> {
        #[serde(borrow)]
        pub resource_logs: Vec<ResourceLogs<'a>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ResourceLogs<'a> {
        #[serde(default, borrow)]
        pub resource: Option<Resource<'a>>,
        #[serde(default, borrow)]
        pub scope_logs: Vec<ScopeLogs<'a>>,
    }

    #[derive(Deserialize)]
    pub struct Resource<'a> {
        #[serde(default, borrow)]
        pub attributes: Vec<KeyValue<'a>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct ScopeLogs<'a> {
        #[serde(default, borrow)]
        pub log_records: Vec<LogRecord<'a>>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct LogRecord<'a> {
        #[serde(default)]
        pub time_unix_nano: Option<Nanos>,
        #[serde(default)]
        pub observed_time_unix_nano: Option<Nanos>,
        #[serde(default, borrow)]
        pub body: Option<AnyValue<'a>>,
        #[serde(default, borrow)]
        pub attributes: Vec<KeyValue<'a>>,
    }

    #[derive(Deserialize)]
    pub struct KeyValue<'a> {
        #[serde(borrow)]
        pub key: Cow<'a, str>,
        #[serde(borrow)]
        pub value: AnyValue<'a>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct AnyValue<'a> {
        #[serde(default, borrow)]
        pub string_value: Option<&'a serde_json::value::RawValue>,
    }

    impl<'a> AnyValue<'a> {
        /// A string value, its escapes decoded (fast, as a json-file line's).
        pub fn text(&self) -> Option<Cow<'a, [u8]>> {
            let raw = self.string_value?.get().as_bytes();
            let (text, _) = super::super::envfast::string_decoded(raw, 0)?;
            std::str::from_utf8(&text).ok()?;
            Some(text)
        }
    }

    /// A uint64 as OTLP/JSON writes it: a decimal string (or a number);
    /// anything else is none.
    pub struct Nanos(Option<u64>);

    impl<'de> Deserialize<'de> for Nanos {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Nanos;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("nanoseconds since the epoch")
                }
                fn visit_str<E>(self, s: &str) -> Result<Nanos, E> {
                    Ok(Nanos::parse(s))
                }
                fn visit_u64<E>(self, n: u64) -> Result<Nanos, E> {
                    Ok(Nanos(Some(n)))
                }
                fn visit_i64<E>(self, _: i64) -> Result<Nanos, E> {
                    Ok(Nanos(None))
                }
                fn visit_f64<E>(self, _: f64) -> Result<Nanos, E> {
                    Ok(Nanos(None))
                }
            }
            d.deserialize_any(V)
        }
    }

    impl Nanos {
        /// A decimal uint64; anything else is none.
        pub fn parse(s: &str) -> Nanos {
            Nanos(s.parse().ok())
        }

        pub fn micros(&self) -> Option<i64> {
            self.0.filter(|&n| n > 0).map(|n| (n / 1000) as i64)
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::decode::{Decoder, LineContext};
    use crate::model::parse_rfc3339;
    use crate::spec::config::{Format, InputConfig};

    fn cfg(envelope: Envelope, format: Format, log_format: Option<&str>) -> InputConfig {
        InputConfig {
            format,
            envelope: Some(envelope),
            log_format: log_format.map(str::to_string),
            ..InputConfig::default()
        }
    }

    /// Every record of `lines` through `decoder`, as (ts, service, error)
    /// or the rejection's reason, then the partials left open.
    fn run(decoder: &Decoder, lines: &[&[u8]]) -> Vec<Result<(Micros, String, bool), Reason>> {
        let mut ctx = LineContext::default();
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            decoder.decode_record(l, &mut ctx, (i as u64, (0, 0)), &mut |d| {
                out.push(
                    d.map(|d| (d.ts, d.service.into_owned(), d.error))
                        .map_err(|r| r.reason),
                )
            });
        }
        out.extend(ctx.partials.drain().map(|_| Err(Reason::InvalidEnvelope)));
        out
    }

    fn t(s: &str) -> Micros {
        parse_rfc3339(s.as_bytes()).unwrap()
    }

    const CLF: &str = r#"10.0.0.1 - - [24/Nov/2026:10:00:00 +0000] \"GET /a HTTP/1.1\" 503 12"#;

    #[test]
    fn docker_json_file_lines_are_unwrapped_and_escapes_decoded() {
        let d = Decoder::new(&InputConfig {
            constant_service: Some("web".into()),
            ..cfg(Envelope::Docker, Format::Apache, Some("common"))
        })
        .unwrap();
        let line =
            format!(r#"{{"log":"{CLF}\n","stream":"stdout","time":"2026-11-24T10:00:01.5Z"}}"#);
        assert_eq!(
            run(
                &d,
                &[line.as_bytes(), b"{\"log\":42}", b"not json", b"[1,2]"]
            ),
            vec![
                Ok((t("2026-11-24T10:00:00Z"), "web".into(), true)),
                Err(Reason::InvalidEnvelope),
                Err(Reason::InvalidEnvelope),
                Err(Reason::InvalidEnvelope),
            ]
        );
    }

    #[test]
    fn the_envelope_time_is_the_fallback_and_the_line_time_wins() {
        let d = Decoder::new(&cfg(Envelope::Vector, Format::Json, None)).unwrap();
        let with = br#"{"message":"{\"ts\":\"2026-11-24T10:00:00Z\",\"service\":\"a\",\"status\":200}","timestamp":"2026-11-24T11:00:00Z"}"#;
        let without = br#"{"message":"{\"service\":\"a\",\"status\":500}","timestamp":"2026-11-24T11:00:00Z","host":"h"}"#;
        let neither = br#"{"message":"{\"service\":\"a\",\"status\":500}"}"#;
        assert_eq!(
            run(&d, &[with, without, neither]),
            vec![
                Ok((t("2026-11-24T10:00:00Z"), "a".into(), false)),
                Ok((t("2026-11-24T11:00:00Z"), "a".into(), true)),
                Err(Reason::MissingField),
            ]
        );
    }

    #[test]
    fn filebeat_reads_message_or_event_original() {
        let d = Decoder::new(&InputConfig {
            fields: crate::spec::config::FieldOverrides {
                service: Some("envelope.kubernetes.labels.app".into()),
                ..Default::default()
            },
            ..cfg(Envelope::Filebeat, Format::Apache, Some("common"))
        })
        .unwrap();
        let a = format!(
            r#"{{"@timestamp":"2026-11-24T10:00:03Z","message":"{CLF}","kubernetes":{{"labels":{{"app":"shop"}},"pod":{{"name":"p"}}}}}}"#
        );
        let b = format!(
            r#"{{"@timestamp":"2026-11-24T10:00:03Z","event":{{"original":"{CLF}"}},"kubernetes":{{"labels":{{"app":"cart"}}}}}}"#
        );
        let c = format!(r#"{{"@timestamp":"2026-11-24T10:00:03Z","message":"{CLF}"}}"#);
        assert_eq!(
            run(&d, &[a.as_bytes(), b.as_bytes(), c.as_bytes()]),
            vec![
                Ok((t("2026-11-24T10:00:00Z"), "shop".into(), true)),
                Ok((t("2026-11-24T10:00:00Z"), "cart".into(), true)),
                Err(Reason::MissingField),
            ]
        );
    }

    #[test]
    fn fluent_bit_reads_objects_and_time_record_pairs() {
        let d = Decoder::new(&InputConfig {
            fields: crate::spec::config::FieldOverrides {
                service: Some("envelope.kubernetes.container_name".into()),
                ..Default::default()
            },
            default_service: Some("other".into()),
            ..cfg(Envelope::FluentBit, Format::Json, None)
        })
        .unwrap();
        let pair = br#"[1795514400.25,{"log":"{\"status\":200}\n","kubernetes":{"container_name":"api"}}]"#;
        let obj = br#"{"@timestamp":"2026-11-24T10:00:00Z","log":"{\"status\":502}","kubernetes":{"host":"n1"}}"#;
        assert_eq!(
            run(&d, &[pair, obj, b"[1795514400]", b"[\"x\",{}]"]),
            vec![
                Ok((1_795_514_400_250_000, "api".into(), false)),
                Ok((t("2026-11-24T10:00:00Z"), "other".into(), true)),
                Err(Reason::InvalidEnvelope),
                Err(Reason::InvalidEnvelope),
            ]
        );
    }

    #[test]
    fn cri_partials_are_joined_per_stream() {
        let d = Decoder::new(&InputConfig {
            constant_service: Some("web".into()),
            ..cfg(Envelope::Cri, Format::Json, None)
        })
        .unwrap();
        let lines: &[&[u8]] = &[
            b"2026-11-24T10:00:00.000000001Z stdout P {\"ts\":\"2026-11-24T10:00:00Z\",",
            b"2026-11-24T10:00:00.1+00:00 stderr P {\"status\":",
            b"2026-11-24T10:00:00.2Z stdout P \"status\":",
            b"2026-11-24T10:00:00.3Z stderr F 503}",
            b"2026-11-24T10:00:00.4Z stdout F 200}",
            b"2026-11-24T10:00:01Z stdout F {\"status\":500}",
            b"2026-11-24T10:00:02Z stdout",
            b"yesterday stdout F {}",
            b"2026-11-24T10:00:03Z stdout X {}",
            b"2026-11-24T10:00:04Z stdout P {\"status\":",
        ];
        assert_eq!(
            run(&d, lines),
            vec![
                // stderr's line has no time of its own: its first part's.
                Ok((t("2026-11-24T10:00:00.1Z"), "web".into(), true)),
                Ok((t("2026-11-24T10:00:00Z"), "web".into(), false)),
                Ok((t("2026-11-24T10:00:01Z"), "web".into(), true)),
                Err(Reason::InvalidEnvelope),
                Err(Reason::InvalidEnvelope),
                Err(Reason::InvalidEnvelope),
                // The partial never finished.
                Err(Reason::InvalidEnvelope),
            ]
        );
    }

    #[test]
    fn a_cri_line_split_inside_a_utf8_sequence_is_joined_whole() {
        let d = Decoder::new(&cfg(Envelope::Cri, Format::Json, None)).unwrap();
        let name = "Привет".as_bytes();
        let (a, b) = name.split_at(3);
        let mut p1 = b"2026-11-24T10:00:00Z stdout P {\"service\":\"".to_vec();
        p1.extend_from_slice(a);
        let mut p2 = b"2026-11-24T10:00:00Z stdout F ".to_vec();
        p2.extend_from_slice(b);
        p2.extend_from_slice(b"\",\"status\":200}");
        assert!(std::str::from_utf8(&p1).is_err());
        assert_eq!(
            run(&d, &[&p1, &p2]),
            vec![Ok((t("2026-11-24T10:00:00Z"), "Привет".into(), false))]
        );
    }

    #[test]
    fn docker_joins_the_parts_of_a_line_it_split() {
        let d = Decoder::new(&cfg(Envelope::Docker, Format::Json, None)).unwrap();
        let inner = format!(
            r#"{{"ts":"2026-11-24T10:00:00Z","service":"a","status":200,"pad":"{}"}}"#,
            "x".repeat(20_000)
        );
        let (a, b) = inner.split_at(DOCKER_SPLIT);
        let rec = |s: &str| {
            serde_json::json!({"log": s, "stream": "stdout", "time": "2026-11-24T10:00:01Z"})
                .to_string()
        };
        let (ra, rb) = (rec(a), rec(&format!("{b}\n")));
        assert_eq!(
            run(&d, &[ra.as_bytes(), rb.as_bytes()]),
            vec![Ok((t("2026-11-24T10:00:00Z"), "a".into(), false))]
        );
    }

    #[test]
    fn otlp_requests_hold_many_records() {
        let d = Decoder::new(&InputConfig {
            fields: crate::spec::config::FieldOverrides {
                service: Some("envelope.resource.service.name".into()),
                ..Default::default()
            },
            ..cfg(Envelope::OtlpJson, Format::Json, None)
        })
        .unwrap();
        let req = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},"scopeLogs":[{"scope":{},"logRecords":[
            {"timeUnixNano":"1795514400000000000","body":{"stringValue":"{\"status\":200}"}},
            {"observedTimeUnixNano":"1795514401000000000","body":{"stringValue":"{\"status\":503}"}},
            {"timeUnixNano":"1795514402000000000","body":{"kvlistValue":{"values":[]}}}
        ]}]},{"scopeLogs":[{"logRecords":[{"timeUnixNano":1795514403000000000,"body":{"stringValue":"{\"status\":200}"}}]}]}]}"#;
        let flat: Vec<u8> = req.iter().copied().filter(|&b| b != b'\n').collect();
        assert_eq!(
            run(&d, &[&flat, b"{\"resourceLogs\":[]}", b"{}"]),
            vec![
                Ok((1_795_514_400_000_000, "checkout".into(), false)),
                Ok((1_795_514_401_000_000, "checkout".into(), true)),
                Err(Reason::InvalidEnvelope),
                // A resource without service.name: no service to read.
                Err(Reason::MissingField),
                Err(Reason::InvalidEnvelope),
                Err(Reason::InvalidEnvelope),
            ]
        );
    }

    #[test]
    fn syslog_in_each_of_its_shapes() {
        let d = Decoder::new(&InputConfig {
            fields: crate::spec::config::FieldOverrides {
                service: Some("envelope.app".into()),
                ..Default::default()
            },
            ..cfg(Envelope::Syslog, Format::Apache, Some("common"))
        })
        .unwrap();
        let clf = CLF.replace("\\\"", "\"");
        let lines = [
            format!("<190>Nov 24 10:00:05 web1 nginx: {clf}"),
            format!("Nov  4 10:00:05 web1 shop[123]: {clf}"),
            format!("<165>1 2026-11-24T10:00:05.1Z web1 cart 77 - - {clf}"),
            format!(
                "<165>1 2026-11-24T10:00:05Z web1 api - ID47 [ex@1 k=\"v]\\\"\"][b@2 x=\"y\"] {clf}"
            ),
            format!("270 <158>1 2026-11-24T10:00:05Z host heroku router - {clf}"),
            format!("<165>1 2026-11-24T10:00:05Z web1 api - - \u{feff}{clf}"),
            format!("<9999>Nov 24 10:00:05 web1 nginx: {clf}"),
            clf.clone(),
            "<165>1 yesterday web1 api - - x".to_string(),
        ];
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let at = t("2026-11-24T10:00:00Z");
        assert_eq!(
            run(&d, &lines),
            vec![
                Ok((at, "nginx".into(), true)),
                Ok((at, "shop".into(), true)),
                Ok((at, "cart".into(), true)),
                Ok((at, "api".into(), true)),
                Ok((at, "heroku".into(), true)),
                Ok((at, "api".into(), true)),
                Err(Reason::InvalidEnvelope),
                Err(Reason::InvalidEnvelope),
                Err(Reason::InvalidEnvelope),
            ]
        );
    }

    /// A JSON value for the differential test: envelopes' keys, strings
    /// with every kind of escape, numbers, nesting.
    fn value(depth: u32) -> proptest::prelude::BoxedStrategy<serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            "[ -~é\"\\\n\t\u{1F600}\u{7}]{0,30}".prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (0.0f64..2e9).prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ];
        if depth == 0 {
            return leaf.boxed();
        }
        let key = prop_oneof![
            Just("log"),
            Just("message"),
            Just("time"),
            Just("@timestamp"),
            Just("timestamp"),
            Just("kubernetes"),
            Just("container_name"),
            Just("event"),
            Just("original"),
            Just("x"),
        ];
        prop_oneof![
            2 => leaf,
            1 => proptest::collection::vec(value(depth - 1), 0..4).prop_map(serde_json::Value::from),
            2 => proptest::collection::vec((key, value(depth - 1)), 0..6).prop_map(|kv| {
                serde_json::Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
        .boxed()
    }

    /// An OTLP/JSON logs request for the differential test: records with
    /// string bodies and others, times of every type, attributes,
    /// resources present, absent or null, fields serde ignores.
    pub(in crate::decode) fn otlp_request(
    ) -> impl proptest::prelude::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::json;
        let line = prop::sample::select(vec![
            r#"{"ts":"2026-11-24T10:00:05Z","service":"a","status":200,"latency_ms":5}"#,
            r#"{"service":"a","status":503,"latency_ms":5}"#,
            r#"{"ts":"2026-11-24T10:00:05Z","service":"é","status":200}"#,
            r#"{"ts":"2026-11-24T10:00:05Z","service":"a\"b","status":200}"#,
            "{\"ts\":\"2026-11-24T10:00:05Z\",\"service\":\"a\",\"status\":500}\n",
            "not json",
        ]);
        // Mostly what serde takes, so that whole requests are valid.
        let time = prop_oneof![
            8 => prop::sample::select(vec![
                json!("1795510800000000000"),
                json!(1795510800000000000u64),
                json!("1"),
                json!("+1795510800000000000"),
                json!("abc"),
                json!(0),
                json!(-5),
                json!(1.5),
                json!(null),
            ]),
            1 => Just(json!(true)),
        ];
        let attr = prop_oneof![
            8 => prop::sample::select(vec![
                json!({"key": "service.name", "value": {"stringValue": "checkout"}}),
                json!({"key": "service.name", "value": {"stringValue": "c\"o"}}),
                json!({"key": "service.name", "value": {"intValue": 3}}),
                json!({"key": "log.iostream", "value": {"stringValue": "stdout"}}),
            ]),
            1 => prop::sample::select(vec![
                json!({"value": {"stringValue": "no key"}}),
                json!({"key": "x", "value": "not an object"}),
            ]),
        ];
        let attrs = prop::collection::vec(attr, 0..3);
        let body = (line, 0u8..12).prop_map(|(l, k)| match k {
            0 => json!({"intValue": 5}),
            1 => json!(null),
            2 => json!({"stringValue": 5}),
            _ => json!({"stringValue": l}),
        });
        let record = (
            body,
            prop::option::of(time.clone()),
            prop::option::of(time),
            attrs.clone(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(body, t, o, attrs, has_body, extra)| {
                let mut r = serde_json::Map::new();
                if has_body {
                    r.insert("body".into(), body);
                }
                if let Some(t) = t {
                    r.insert("timeUnixNano".into(), t);
                }
                if let Some(o) = o {
                    r.insert("observedTimeUnixNano".into(), o);
                }
                r.insert("attributes".into(), attrs.into());
                if extra {
                    r.insert("severityText".into(), "INFO".into());
                }
                serde_json::Value::Object(r)
            });
        let scope = prop::collection::vec(record, 0..4)
            .prop_map(|recs| json!({"scope": {"name": "filelog"}, "logRecords": recs}));
        let resource =
            (prop::collection::vec(scope, 0..3), attrs, 0u8..4).prop_map(|(scopes, attrs, r)| {
                let mut m = serde_json::Map::new();
                match r {
                    0 => {}
                    1 => {
                        m.insert("resource".into(), json!(null));
                    }
                    _ => {
                        m.insert("resource".into(), json!({"attributes": attrs}));
                    }
                }
                m.insert("scopeLogs".into(), scopes.into());
                serde_json::Value::Object(m)
            });
        prop::collection::vec(resource, 0..3).prop_map(|rl| json!({"resourceLogs": rl}))
    }

    proptest::proptest! {
        /// The space found eight bytes at a time is the first space.
        #[test]
        fn the_first_space_is_found(s in proptest::collection::vec(proptest::sample::select(vec![b' ', b'a', 0x1f, 0x21, 0x20 ^ 0x80, 0xff, 0]), 0..40)) {
            let naive = s.iter().position(|&b| b == b' ').unwrap_or(s.len());
            proptest::prop_assert_eq!(space(&s), naive);
        }

        /// Where the OTLP scan answers, it answers as serde_json does:
        /// the same lines, times and services, record by record, through
        /// memos carried from one request to the next; and it answers for
        /// requests whose every record has a string body.
        #[test]
        fn the_fast_otlp_path_agrees_with_serde(
            requests in proptest::collection::vec((otlp_request(), proptest::option::of((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()))), 1..4),
            service in proptest::sample::select(vec![None, Some("resource.service.name"), Some("attributes.service.name"), Some("other.x")]),
        ) {
            let u = Unwrapper::new(Envelope::OtlpJson, service);
            let mut memos = OtlpMemos::default();
            for (request, mutate) in requests {
                let mut raw = serde_json::to_vec(&request).unwrap();
                if let Some((at, byte)) = mutate {
                    let i = at.index(raw.len());
                    raw[i] = b"\"{}[],:0a\\ "[byte as usize % 11];
                }
                let read = |i: Inner| {
                    let t = i.time.and_then(|t| t.micros(&mut DayCache::default()));
                    (i.line.into_owned(), t, i.service.map(Cow::into_owned))
                };
                let fast = u.otlp_records(&raw, &mut memos, &mut |_, _| None).and_then(|recs| {
                    recs.iter().map(|r| u.otlp_inner(r).map(read)).collect::<Option<Vec<_>>>()
                });
                let mut serde = Vec::new();
                u.otlp_serde(&raw, &mut |i| serde.push(i.map(read).map_err(|r| r.detail)));
                match fast {
                    Some(recs) if recs.is_empty() => {
                        proptest::prop_assert_eq!(serde.len(), 1);
                        proptest::prop_assert!(serde[0].is_err());
                    }
                    Some(recs) => {
                        let recs: Vec<_> = recs.into_iter().map(Ok).collect();
                        proptest::prop_assert_eq!(recs, serde, "{}", String::from_utf8_lossy(&raw));
                    }
                    None => {
                        // Left to serde: never a valid request whose every
                        // record has a string body.
                        let plain = mutate.is_none() && serde.iter().all(Result::is_ok);
                        proptest::prop_assert!(!plain, "{}", String::from_utf8_lossy(&raw));
                    }
                }
            }
        }

        /// Where the fast path answers, it answers as serde_json does.
        #[test]
        fn the_fast_json_path_agrees_with_serde(v in value(3), pick in 0usize..4,
            nested in proptest::prelude::any::<bool>(), pretty in proptest::prelude::any::<bool>(),
            ts in 1e9f64..2e9, line in "[ -~é\"\\\n\u{1F600}\u{7}\u{1f}]{0,40}", stamp in proptest::prelude::any::<bool>()) {
            let kind = [Envelope::Docker, Envelope::Filebeat, Envelope::Vector, Envelope::FluentBit][pick];
            let u = Unwrapper::new(kind, Some(if nested { "kubernetes.container_name" } else { "x" }));
            // Mostly an envelope with its line and time, so that the fast
            // path answers.
            let mut v = v;
            if let serde_json::Value::Object(m) = &mut v {
                let (lk, tk) = (u.keys().0[0], u.keys().1[0]);
                m.insert(lk.to_string(), line.into());
                m.insert(tk.to_string(), if stamp { "2026-11-24T10:00:00.5Z".into() } else { ts.into() });
            }
            let answerable = v.is_object();
            let v = if kind == Envelope::FluentBit && pretty { serde_json::json!([ts, v]) } else { v };
            let text = if pretty { serde_json::to_string_pretty(&v) } else { serde_json::to_string(&v) }.unwrap();
            let raw = text.as_bytes();
            let serde = u.json_serde(raw, &mut DayCache::default());
            let fast = u.json_fast(raw);
            if answerable {
                // A valid envelope with its line: the fast path answers.
                proptest::prop_assert!(fast.is_some(), "{}", text);
            }
            if let Some(fast) = fast {
                // The same line, service and time (read now).
                let read = |i: Inner| {
                    let t = i.time.and_then(|t| t.micros(&mut DayCache::default()));
                    (i.line.into_owned(), t, i.service.map(Cow::into_owned))
                };
                proptest::prop_assert_eq!(Ok(read(fast)), serde.map(read), "{}", text);
            }
        }

        /// No record, whatever its bytes, makes any envelope panic; every
        /// record gives results or waits as a partial, never vanishes.
        #[test]
        fn no_envelope_panics(lines in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 1..20),
            pick in 0usize..8, shape in 0usize..4) {
            let envelope = Envelope::CONCRETE[pick];
            let format = [Format::Json, Format::Apache, Format::Haproxy, Format::W3c][shape];
            let d = Decoder::new(&InputConfig {
                constant_service: Some("s".into()),
                ..cfg(envelope, format, None)
            }).unwrap();
            let mut ctx = LineContext::default();
            for (i, l) in lines.iter().enumerate() {
                let mut n = 0;
                d.decode_record(l, &mut ctx, (i as u64, (0, 0)), &mut |_| n += 1);
                proptest::prop_assert!(n > 0 || envelope == Envelope::Cri
                    || envelope == Envelope::Docker || format == Format::W3c);
            }
        }

        /// The same records with JSON-looking prefixes: deeper into each
        /// envelope's parser.
        #[test]
        fn no_envelope_panics_on_near_misses(tail in "[ -~]{0,80}", pick in 0usize..8) {
            let envelope = Envelope::CONCRETE[pick];
            let d = Decoder::new(&cfg(envelope, Format::Json, None)).unwrap();
            let mut ctx = LineContext::default();
            for head in ["{\"log\":", "[1.5,{\"log\":\"", "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":", "<13>1 2026-11-24T10:00:00Z h a - - ", "<13>Nov 24 10:00:00 h a: ", "2026-11-24T10:00:00Z stdout P ", "12 <"] {
                let line = format!("{head}{tail}");
                d.decode_record(line.as_bytes(), &mut ctx, (0, (0, 0)), &mut |_| {});
            }
        }
    }
}
