//! The JSON decoders: slate's own event shape, configurable field paths and
//! units, and the presets `nginx-json`, `envoy-json` and `ecs`.
//!
//! serde_json walks the object once with borrowed strings; only the
//! configured paths are looked at, everything else is skipped unparsed.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{valid_service, Reason, Rejection};
use crate::model::{parse_rfc3339_cached, DayCache, Micros};
use crate::spec::config::{Format, InputConfig, LatencyUnit, StatusSet};

/// The fields slate reads, as slots in [`Found`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Ts = 0,
    Service = 1,
    Status = 2,
    Latency = 3,
    Success = 4,
    Outcome = 5,
    /// Read only for `input.service_map` path rules.
    Endpoint = 6,
}
const FIELDS: usize = 7;

/// One decoded record, borrowing its service name from the input line.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<'a> {
    pub ts: Micros,
    pub service: Cow<'a, str>,
    pub error: bool,
    pub latency_us: Option<u64>,
    /// The request path, read only when `input.service_map` has path rules.
    pub path: Option<Cow<'a, str>>,
}

/// The detail of a line's missing time, which an envelope's time fills.
pub(super) const NO_TIMESTAMP: &str = "no timestamp";

/// Where each field sits, compiled once from the format and overrides.
#[derive(Debug, Clone)]
pub struct JsonDecoder {
    root: PathNode,
    /// Every configured path is a top-level key: the flat fast path applies.
    flat: bool,
    latency_to_us: f64,
    error_statuses: StatusSet,
    default_service: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct PathNode {
    children: Vec<(Box<str>, Child)>,
    /// Per child: its length and first eight bytes, to reject most keys
    /// without a byte-by-byte comparison.
    quick: Vec<(usize, u64)>,
    /// A hash of (length, first eight bytes) → child index + 1; 0 for no
    /// child, `COLLIDE` when two children share the slot (then: scan).
    table: Box<[u8; 256]>,
}

const COLLIDE: u8 = u8::MAX;

#[inline]
fn key_slot(len: usize, prefix: u64) -> usize {
    ((prefix.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize ^ len) & 0xFF
}

/// The first eight bytes of a key, zero-padded.
#[inline]
pub(super) fn key_prefix(k: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    for (d, s) in buf.iter_mut().zip(k) {
        *d = *s;
    }
    u64::from_le_bytes(buf)
}

#[derive(Debug, Clone)]
enum Child {
    /// A field, with its priority among candidate paths (lower wins).
    Leaf(Field, u8),
    Inner(PathNode),
}

impl JsonDecoder {
    pub fn new(cfg: &InputConfig) -> JsonDecoder {
        let (defaults, unit): (&[(Field, &[&str])], LatencyUnit) = match cfg.format {
            // Text formats have their own decoder; as JSON they mean the default shape.
            Format::Json
            | Format::Nginx
            | Format::Apache
            | Format::Haproxy
            | Format::Envoy
            | Format::W3c
            | Format::Auto
            | Format::Alb
            | Format::Elb => (
                &[
                    (Field::Ts, &["ts"]),
                    (Field::Service, &["service"]),
                    (Field::Status, &["status"]),
                    (Field::Latency, &["latency_ms"]),
                    (Field::Success, &["success"]),
                    (Field::Outcome, &["outcome"]),
                    (Field::Endpoint, &["endpoint"]),
                ],
                LatencyUnit::Ms,
            ),
            Format::NginxJson => (
                &[
                    (
                        Field::Ts,
                        &["time_iso8601", "timestamp", "time", "@timestamp", "ts"],
                    ),
                    (
                        Field::Service,
                        &["service", "server_name", "host", "http_host"],
                    ),
                    (Field::Status, &["status"]),
                    (Field::Latency, &["request_time"]),
                    (Field::Endpoint, &["request_uri", "uri"]),
                ],
                LatencyUnit::S,
            ),
            Format::EnvoyJson => (
                &[
                    (Field::Ts, &["start_time"]),
                    (Field::Service, &["upstream_cluster", "authority"]),
                    (Field::Status, &["response_code"]),
                    (Field::Latency, &["duration"]),
                    (Field::Endpoint, &["path"]),
                ],
                LatencyUnit::Ms,
            ),
            Format::Ecs => (
                &[
                    (Field::Ts, &["@timestamp"]),
                    (Field::Service, &["service.name"]),
                    (Field::Status, &["http.response.status_code"]),
                    (Field::Latency, &["event.duration"]),
                    (Field::Outcome, &["event.outcome"]),
                    (Field::Endpoint, &["url.path"]),
                ],
                LatencyUnit::Ns,
            ),
            // Traefik's JSON access log (`accessLog.format: json`).
            Format::Traefik => (
                &[
                    (Field::Ts, &["StartUTC", "StartLocal", "time"]),
                    (
                        Field::Service,
                        &["ServiceName", "RouterName", "RequestHost"],
                    ),
                    (Field::Status, &["DownstreamStatus", "OriginStatus"]),
                    (Field::Latency, &["Duration"]),
                    (Field::Endpoint, &["RequestPath"]),
                ],
                LatencyUnit::Ns,
            ),
            // Caddy's `http.log.access` entries (epoch seconds, seconds).
            Format::Caddy => (
                &[
                    (Field::Ts, &["ts"]),
                    (Field::Service, &["request.host", "logger"]),
                    (Field::Status, &["status"]),
                    (Field::Latency, &["duration"]),
                    (Field::Endpoint, &["request.uri"]),
                ],
                LatencyUnit::S,
            ),
        };
        let o = &cfg.fields;
        let overrides = [
            (Field::Ts, &o.ts),
            (Field::Service, &o.service),
            (Field::Status, &o.status),
            (Field::Latency, &o.latency),
            (Field::Success, &o.success),
            (Field::Outcome, &o.outcome),
            (Field::Endpoint, &o.endpoint),
        ];
        let mut root = PathNode::default();
        for (field, over) in overrides {
            if field == Field::Service && cfg.constant_service.is_some() {
                continue;
            }
            // The path costs a look-up per line: only for path rules.
            if field == Field::Endpoint && !cfg.service_map.iter().any(|r| r.path.is_some()) {
                continue;
            }
            match over {
                Some(path) => root.insert(path, field, 0),
                None => {
                    let paths = defaults.iter().find(|(f, _)| *f == field).map(|(_, p)| *p);
                    for (prio, path) in paths.unwrap_or(&[]).iter().enumerate() {
                        root.insert(path, field, prio as u8);
                    }
                }
            }
        }
        JsonDecoder {
            flat: root
                .children
                .iter()
                .all(|(_, c)| matches!(c, Child::Leaf(..))),
            root,
            latency_to_us: cfg.latency_unit.unwrap_or(unit).to_micros(),
            error_statuses: cfg.error_statuses.clone(),
            default_service: cfg
                .constant_service
                .as_deref()
                .or(cfg.default_service.as_deref())
                .map(super::interned),
        }
    }

    /// Decodes one line (without its newline).
    pub fn decode<'a>(&self, line: &'a [u8]) -> Result<Decoded<'a>, Rejection> {
        self.decode_with(line, &mut DayCache::default())
    }

    /// [`decode`](Self::decode) with a day cache kept across the lines of
    /// a chunk.
    pub fn decode_with<'a>(
        &self,
        line: &'a [u8],
        days: &mut DayCache,
    ) -> Result<Decoded<'a>, Rejection> {
        self.decode_full(line, days, None)
    }

    /// [`decode_with`](Self::decode_with), the time `fallback` (an
    /// envelope's) taken when the line has none.
    pub fn decode_full<'a>(
        &self,
        line: &'a [u8],
        days: &mut DayCache,
        fallback: Option<Micros>,
    ) -> Result<Decoded<'a>, Rejection> {
        if self.flat {
            let mut found = Found::default();
            if self.flat_scan::<false>(line, &mut found) == Some(line.len()) {
                return self.build(&mut found, days, fallback);
            }
        }
        self.decode_serde_with(line, days, fallback)
    }

    /// Reads a line as it is written inside a JSON string (an envelope's),
    /// its escapes not decoded, into `into`: the string starts at
    /// `s[at]`, after its opening quote. Gives the index of the string's
    /// closing quote, or `None` unless the flat fast path reads it so;
    /// [`build_escaped`](Self::build_escaped) then gives what
    /// [`decode_full`](Self::decode_full) gives for the string unescaped.
    pub fn read_escaped<'a>(
        &self,
        s: &'a [u8],
        at: usize,
        into: &mut Escaped<'a>,
    ) -> Option<usize> {
        let line = s.get(at..)?;
        if into.used {
            into.found = Found::default();
        }
        into.used = true;
        let end = self.flat_scan::<true>(line, &mut into.found)?;
        (line.get(end) == Some(&b'"')).then_some(at + end)
    }

    /// The record [`read_escaped`](Self::read_escaped) read; `fallback`
    /// is asked only when the line has no time.
    pub fn build_escaped<'a>(
        &self,
        read: &mut Escaped<'a>,
        days: &mut DayCache,
        fallback: impl FnOnce(&mut DayCache) -> Option<Micros>,
    ) -> Result<Decoded<'a>, Rejection> {
        let fallback = match read.found.vals[Field::Ts as usize] {
            Scalar::Null => fallback(days),
            _ => None,
        };
        self.build(&mut read.found, days, fallback)
    }

    /// Scans a flat line into `found`: where it ends, when the fast path
    /// reads it.
    #[inline]
    fn flat_scan<'a, const ESC: bool>(
        &self,
        line: &'a [u8],
        found: &mut Found<'a>,
    ) -> Option<usize> {
        if !self.flat {
            return None;
        }
        super::flat::scan::<_, ESC>(
            line,
            |key, prefix| match self.root.get_with_prefix(key, prefix) {
                Some(Child::Leaf(field, prio)) => Some((*field, *prio)),
                _ => None,
            },
            |(field, prio), value| found.set(field, prio, value.into_cow()),
        )
    }

    /// The general path: serde_json over any JSON, nested paths included.
    pub fn decode_serde<'a>(&self, line: &'a [u8]) -> Result<Decoded<'a>, Rejection> {
        self.decode_serde_with(line, &mut DayCache::default(), None)
    }

    fn decode_serde_with<'a>(
        &self,
        line: &'a [u8],
        days: &mut DayCache,
        fallback: Option<Micros>,
    ) -> Result<Decoded<'a>, Rejection> {
        let mut found = Found::default();
        match self.walk(line, &mut found) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Rejection::new(
                    Reason::NotAnObject,
                    "the line is JSON but not an object",
                ))
            }
            Err(e) => {
                // nginx's default `escape=default` writes `\x22`, which JSON
                // does not allow: rewrite it to `\u0022` and try once more.
                if memchr::memmem::find(line, b"\\x").is_some() {
                    let fixed = unescape_nginx(line);
                    let mut found = Found::default();
                    return match self.walk(&fixed, &mut found) {
                        Ok(true) => self
                            .build(&mut found, days, fallback)
                            .map(Decoded::into_owned),
                        Ok(false) => Err(Rejection::new(
                            Reason::NotAnObject,
                            "the line is JSON but not an object",
                        )),
                        Err(e) => Err(Rejection::new(Reason::InvalidJson, e.to_string())),
                    };
                }
                return Err(Rejection::new(Reason::InvalidJson, e.to_string()));
            }
        }
        self.build(&mut found, days, fallback)
    }

    fn walk<'a>(&self, line: &'a [u8], found: &mut Found<'a>) -> Result<bool, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(line);
        let is_object = RootSeed {
            node: &self.root,
            found,
        }
        .deserialize(&mut de)?;
        de.end()?;
        Ok(is_object)
    }

    fn build<'a>(
        &self,
        found: &mut Found<'a>,
        days: &mut DayCache,
        fallback: Option<Micros>,
    ) -> Result<Decoded<'a>, Rejection> {
        let [ts, service, status, latency, success, outcome, endpoint] =
            std::mem::replace(&mut found.vals, [const { Scalar::Null }; FIELDS]);
        let ts = match ts {
            Scalar::Null => match fallback {
                Some(t) => t,
                None => return Err(Rejection::new(Reason::MissingField, NO_TIMESTAMP)),
            },
            s => timestamp(&s, days)?,
        };
        let service = match service {
            Scalar::Null => match &self.default_service {
                Some(d) => Cow::Borrowed(*d),
                None => return Err(Rejection::new(Reason::MissingField, "no service")),
            },
            other => match other.into_cow() {
                Some(s) if valid_service(&s) => s,
                Some(_) => {
                    return Err(Rejection::new(
                        Reason::BadService,
                        "service must be 1–128 bytes without control characters",
                    ))
                }
                None => {
                    return Err(Rejection::new(
                        Reason::WrongType,
                        "service must be a string",
                    ))
                }
            },
        };
        let error = match (status, success, outcome) {
            (s, _, _) if !matches!(s, Scalar::Null) => {
                let code = match s.as_f64() {
                    Some(Ok(v)) => v,
                    Some(Err(())) => {
                        return Err(Rejection::new(Reason::BadStatus, "status is not a number"))
                    }
                    None => {
                        return Err(Rejection::new(Reason::WrongType, "status must be a number"))
                    }
                };
                if !(100.0..=599.0).contains(&code) || code.fract() != 0.0 {
                    return Err(Rejection::new(Reason::BadStatus, "status must be 100–599"));
                }
                self.error_statuses.contains(code as u16)
            }
            (_, s, _) if !matches!(s, Scalar::Null) => match s {
                Scalar::Bool(b) => !b,
                ref t if t.as_str() == Some("true") => false,
                ref t if t.as_str() == Some("false") => true,
                _ => {
                    return Err(Rejection::new(
                        Reason::WrongType,
                        "success must be true or false",
                    ))
                }
            },
            (_, _, s) if !matches!(s, Scalar::Null) => match s {
                ref t
                    if t.as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case("success")) =>
                {
                    false
                }
                ref t
                    if t.as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case("failure")) =>
                {
                    true
                }
                ref t if t.as_str().is_some() => {
                    return Err(Rejection::new(
                        Reason::BadStatus,
                        "outcome must be \"success\" or \"failure\"",
                    ))
                }
                _ => {
                    return Err(Rejection::new(
                        Reason::WrongType,
                        "outcome must be a string",
                    ))
                }
            },
            _ => {
                return Err(Rejection::new(
                    Reason::MissingField,
                    "no outcome: need `status`, `success` or `outcome`",
                ))
            }
        };
        let latency_us = match latency {
            Scalar::Null => None,
            s => {
                let v = match s.as_f64() {
                    Some(Ok(v)) => v,
                    Some(Err(())) => {
                        return Err(Rejection::new(
                            Reason::BadLatency,
                            "latency is not a number",
                        ))
                    }
                    None => {
                        return Err(Rejection::new(
                            Reason::WrongType,
                            "latency must be a number",
                        ))
                    }
                };
                let us = v * self.latency_to_us;
                if !us.is_finite() || us < 0.0 {
                    return Err(Rejection::new(
                        Reason::BadLatency,
                        "latency must be finite and not negative",
                    ));
                }
                Some(if us >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    us.round() as u64
                })
            }
        };
        Ok(Decoded {
            ts,
            service,
            error,
            latency_us,
            path: endpoint.into_cow(),
        })
    }
}

impl Decoded<'_> {
    pub(crate) fn into_owned(self) -> Decoded<'static> {
        Decoded {
            ts: self.ts,
            service: Cow::Owned(self.service.into_owned()),
            error: self.error,
            latency_us: self.latency_us,
            path: self.path.map(|p| Cow::Owned(p.into_owned())),
        }
    }
}

/// Epoch numbers are told apart by magnitude: below 1e11 seconds (until
/// year 5138), below 1e14 milliseconds, below 1e17 microseconds, else
/// nanoseconds.
pub fn epoch_to_micros(v: f64) -> Option<Micros> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let us = if v < 1e11 {
        v * 1e6
    } else if v < 1e14 {
        v * 1e3
    } else if v < 1e17 {
        v
    } else if v < 1e20 {
        v / 1e3
    } else {
        return None;
    };
    Some(us.round() as i64)
}

/// Timestamps slate keeps state for: from 1970 up to (not including) the
/// year 3000. Anything else is a broken clock or a broken parser.
const MAX_TS: Micros = 32_503_680_000 * 1_000_000;

fn timestamp(s: &Scalar, days: &mut DayCache) -> Result<Micros, Rejection> {
    let ts = timestamp_any(s, days)?;
    if (0..MAX_TS).contains(&ts) {
        Ok(ts)
    } else {
        Err(Rejection::new(
            Reason::BadTimestamp,
            "timestamp outside 1970–2999",
        ))
    }
}

fn timestamp_any(s: &Scalar, days: &mut DayCache) -> Result<Micros, Rejection> {
    let bad = || {
        Rejection::new(
            Reason::BadTimestamp,
            "timestamp is neither RFC 3339 nor epoch seconds/ms/µs/ns",
        )
    };
    match s {
        Scalar::Str(_) | Scalar::Owned(_) => {
            let t = s.as_str().unwrap_or_default().trim_ascii();
            if let Some(ts) = parse_rfc3339_cached(t.as_bytes(), days) {
                return Ok(ts);
            }
            let v: f64 = t.parse().map_err(|_| bad())?;
            epoch_to_micros(v).ok_or_else(bad)
        }
        Scalar::U(v) => epoch_to_micros(*v as f64).ok_or_else(bad),
        Scalar::I(v) => epoch_to_micros(*v as f64).ok_or_else(bad),
        Scalar::F(v) => epoch_to_micros(*v).ok_or_else(bad),
        _ => Err(Rejection::new(
            Reason::WrongType,
            "timestamp must be a string or a number",
        )),
    }
}

fn unescape_nginx(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 16);
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'\\' && line.get(i + 1) == Some(&b'x') {
            let hex = &line[i + 2..(i + 4).min(line.len())];
            if hex.len() == 2 && hex.iter().all(u8::is_ascii_hexdigit) {
                out.extend_from_slice(b"\\u00");
                out.extend_from_slice(hex);
                i += 4;
                continue;
            }
        }
        if line[i] == b'\\' && i + 1 < line.len() {
            out.extend_from_slice(&line[i..i + 2]);
            i += 2;
            continue;
        }
        out.push(line[i]);
        i += 1;
    }
    out
}

impl Default for PathNode {
    fn default() -> Self {
        PathNode {
            children: Vec::new(),
            quick: Vec::new(),
            table: Box::new([0; 256]),
        }
    }
}

impl PathNode {
    fn add_child(&mut self, key: &str, child: Child) {
        let (len, pre) = (key.len(), key_prefix(key.as_bytes()));
        let slot = &mut self.table[key_slot(len, pre)];
        *slot = if *slot == 0 && self.children.len() < COLLIDE as usize - 1 {
            self.children.len() as u8 + 1
        } else {
            COLLIDE
        };
        self.quick.push((len, pre));
        self.children.push((key.into(), child));
    }

    fn insert(&mut self, path: &str, field: Field, prio: u8) {
        let mut node = self;
        let mut parts = path.split('.').peekable();
        while let Some(part) = parts.next() {
            let last = parts.peek().is_none();
            let pos = node.children.iter().position(|(k, _)| &**k == part);
            if last {
                match pos {
                    // An earlier path already owns this key; keep it.
                    Some(_) => {}
                    None => node.add_child(part, Child::Leaf(field, prio)),
                }
                return;
            }
            let idx = match pos {
                Some(i) => i,
                None => {
                    node.add_child(part, Child::Inner(PathNode::default()));
                    node.children.len() - 1
                }
            };
            node = match &mut node.children[idx].1 {
                Child::Inner(n) => n,
                Child::Leaf(..) => return,
            };
        }
    }

    #[inline]
    fn get(&self, key: &str) -> Option<&Child> {
        self.get_with_prefix(key, key_prefix(key.as_bytes()))
    }

    #[inline]
    fn get_with_prefix(&self, key: &str, pre: u64) -> Option<&Child> {
        let key = key.as_bytes();
        let is = |i: usize| {
            let (len, p) = self.quick[i];
            len == key.len() && p == pre && (len <= 8 || self.children[i].0.as_bytes() == key)
        };
        match self.table[key_slot(key.len(), pre)] {
            0 => None,
            COLLIDE => (0..self.children.len())
                .find(|&i| is(i))
                .map(|i| &self.children[i].1),
            e => {
                let i = e as usize - 1;
                is(i).then(|| &self.children[i].1)
            }
        }
    }
}

/// A JSON value reduced to what slate needs from a leaf.
/// The scalar form the flat fast path produces (same type).
pub(super) type ScalarOut<'a> = Scalar<'a>;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar<'a> {
    /// Borrowed from the line: the common case, with no drop glue to run.
    Str(&'a str),
    /// Unescaped by serde_json.
    Owned(Box<str>),
    U(u64),
    I(i64),
    F(f64),
    Bool(bool),
    Null,
    Compound,
}

impl<'a> Scalar<'a> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            Scalar::Owned(s) => Some(s),
            _ => None,
        }
    }

    fn into_cow(self) -> Option<Cow<'a, str>> {
        match self {
            Scalar::Str(s) => Some(Cow::Borrowed(s)),
            Scalar::Owned(s) => Some(Cow::Owned(s.into())),
            _ => None,
        }
    }

    /// A number, or a string holding one (nginx writes `"status":"200"`).
    /// `None`: not a number-like type; `Some(Err)`: a string that is no number.
    fn as_f64(&self) -> Option<Result<f64, ()>> {
        match self {
            Scalar::U(v) => Some(Ok(*v as f64)),
            Scalar::I(v) => Some(Ok(*v as f64)),
            Scalar::F(v) => Some(Ok(*v)),
            Scalar::Str(_) | Scalar::Owned(_) => Some(
                self.as_str()
                    .unwrap_or_default()
                    .trim_ascii()
                    .parse::<f64>()
                    .map_err(|_| ())
                    .and_then(|v| if v.is_finite() { Ok(v) } else { Err(()) }),
            ),
            _ => None,
        }
    }
}

/// A line read where an envelope holds it, by
/// [`JsonDecoder::read_escaped`], not yet checked and built.
#[derive(Default)]
pub struct Escaped<'a> {
    found: Found<'a>,
    /// Whether a read has filled `found` (the next one starts it afresh).
    used: bool,
}

/// The fields found so far; `Null` is "not found", and `prio` says which
/// of several candidate paths filled a field (lower wins).
struct Found<'a> {
    vals: [Scalar<'a>; FIELDS],
    prio: [u8; FIELDS],
}

impl Default for Found<'_> {
    fn default() -> Self {
        Found {
            vals: [const { Scalar::Null }; FIELDS],
            prio: [u8::MAX; FIELDS],
        }
    }
}

impl<'a> Found<'a> {
    #[inline]
    fn set(&mut self, field: Field, prio: u8, value: Scalar<'a>) {
        let f = field as usize;
        if prio < self.prio[f] || matches!(self.vals[f], Scalar::Null) {
            self.vals[f] = value;
            self.prio[f] = prio;
        }
    }
}

struct RootSeed<'s, 'a> {
    node: &'s PathNode,
    found: &'s mut Found<'a>,
}

impl<'de, 's> DeserializeSeed<'de> for RootSeed<'s, 'de> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 's> Visitor<'de> for RootSeed<'s, 'de> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match self.node.get(&key.0) {
                Some(Child::Leaf(field, prio)) => {
                    let v: Scalar<'de> = map.next_value_seed(ScalarSeed)?;
                    self.found.set(*field, *prio, v);
                }
                Some(Child::Inner(node)) => {
                    map.next_value_seed(RootSeed {
                        node,
                        found: &mut *self.found,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(true)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
}

pub(super) struct Key<'a>(pub(super) Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Owned(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::U(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::I(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::F(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Compound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::config::FieldOverrides;

    fn dec(format: Format) -> JsonDecoder {
        JsonDecoder::new(&InputConfig {
            format,
            ..InputConfig::default()
        })
    }

    fn reason(d: &JsonDecoder, line: &str) -> Reason {
        d.decode(line.as_bytes()).unwrap_err().reason
    }

    #[test]
    fn default_event() {
        let d = dec(Format::Json);
        let e = d
            .decode(br#"{"ts":"2026-11-24T10:00:00.123Z","service":"api-gateway","endpoint":"/v1/users","method":"GET","status":200,"latency_ms":12.5}"#)
            .unwrap();
        assert_eq!(
            e.ts,
            crate::model::parse_rfc3339(b"2026-11-24T10:00:00.123Z").unwrap()
        );
        assert_eq!(e.service, "api-gateway");
        assert!(!e.error);
        assert_eq!(e.latency_us, Some(12_500));
        let e = d
            .decode(br#"{"ts":1764000000,"service":"b","success":false}"#)
            .unwrap();
        assert!(e.error);
        assert_eq!(e.latency_us, None);
        assert_eq!(e.ts, 1_764_000_000_000_000);
    }

    #[test]
    fn epoch_units_by_magnitude() {
        let s = 1_764_000_000f64;
        assert_eq!(epoch_to_micros(s), Some(1_764_000_000_000_000));
        assert_eq!(epoch_to_micros(s * 1e3), Some(1_764_000_000_000_000));
        assert_eq!(epoch_to_micros(s * 1e6), Some(1_764_000_000_000_000));
        assert_eq!(epoch_to_micros(s * 1e9), Some(1_764_000_000_000_000));
        assert_eq!(
            epoch_to_micros(1_764_000_000.5),
            Some(1_764_000_000_500_000)
        );
        assert_eq!(epoch_to_micros(-1.0), None);
    }

    #[test]
    fn numbers_as_strings_and_nginx_escapes() {
        let d = dec(Format::NginxJson);
        let e = d
            .decode(br#"{"time_iso8601":"2026-11-24T10:00:00+00:00","host":"shop","request":"GET /a\x22b HTTP/1.1","status":"503","request_time":"0.250"}"#)
            .unwrap();
        assert_eq!(e.service, "shop");
        assert!(e.error);
        assert_eq!(e.latency_us, Some(250_000));
    }

    #[test]
    fn presets() {
        let e = dec(Format::EnvoyJson)
            .decode(br#"{"start_time":"2026-11-24T10:00:00.000Z","response_code":200,"duration":7,"upstream_cluster":"cart"}"#)
            .unwrap();
        assert_eq!((e.service.as_ref(), e.latency_us), ("cart", Some(7_000)));
        let e = dec(Format::Ecs)
            .decode(br#"{"@timestamp":"2026-11-24T10:00:00Z","service":{"name":"pay"},"http":{"response":{"status_code":502}},"event":{"duration":1500000,"outcome":"failure"}}"#)
            .unwrap();
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("pay", true, Some(1_500))
        );
    }

    /// Traefik's documented JSON access-log fields.
    #[test]
    fn traefik_json() {
        let e = dec(Format::Traefik)
            .decode(br#"{"ClientAddr":"10.0.0.1:5000","DownstreamStatus":502,"Duration":12345678,"OriginStatus":502,"RequestHost":"shop.example","RequestMethod":"GET","RequestPath":"/","RouterName":"shop@docker","ServiceName":"shop-svc@docker","StartUTC":"2026-11-24T10:00:00.123456789Z","level":"info","msg":"","time":"2026-11-24T10:00:00Z"}"#)
            .unwrap();
        assert_eq!(
            e.ts,
            crate::model::parse_rfc3339(b"2026-11-24T10:00:00.123456Z").unwrap()
        );
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("shop-svc@docker", true, Some(12_346))
        );
    }

    /// Caddy's documented `http.log.access` entry.
    #[test]
    fn caddy_json() {
        let e = dec(Format::Caddy)
            .decode(br#"{"level":"info","ts":1646861401.52878,"logger":"http.log.access.log0","msg":"handled request","request":{"remote_ip":"127.0.0.1","remote_port":"41342","proto":"HTTP/2.0","method":"GET","host":"localhost","uri":"/","headers":{"User-Agent":["curl/7.82.0"]}},"bytes_read":0,"user_id":"","duration":0.000929675,"size":10900,"status":200,"resp_headers":{"Server":["Caddy"]}}"#)
            .unwrap();
        assert_eq!(e.ts, 1_646_861_401_528_780);
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("localhost", false, Some(930))
        );
    }

    #[test]
    fn custom_paths_and_units() {
        let d = JsonDecoder::new(&InputConfig {
            fields: FieldOverrides {
                latency: Some("timing.total".into()),
                service: Some("meta.app".into()),
                ..FieldOverrides::default()
            },
            latency_unit: Some(LatencyUnit::Us),
            ..InputConfig::default()
        });
        let e = d
            .decode(br#"{"ts":"2026-11-24T10:00:00Z","meta":{"app":"x","other":[1,2]},"timing":{"total":42},"status":200}"#)
            .unwrap();
        assert_eq!((e.service.as_ref(), e.latency_us), ("x", Some(42)));
    }

    #[test]
    fn one_test_per_rejection_reason() {
        let d = dec(Format::Json);
        assert_eq!(reason(&d, "{not json"), Reason::InvalidJson);
        assert_eq!(reason(&d, "[1,2]"), Reason::NotAnObject);
        assert_eq!(
            reason(&d, r#"{"service":"a","status":200}"#),
            Reason::MissingField
        );
        assert_eq!(
            reason(&d, r#"{"ts":"2026-11-24T10:00:00Z","status":200}"#),
            Reason::MissingField
        );
        assert_eq!(
            reason(&d, r#"{"ts":"2026-11-24T10:00:00Z","service":"a"}"#),
            Reason::MissingField
        );
        assert_eq!(
            reason(&d, r#"{"ts":true,"service":"a","status":200}"#),
            Reason::WrongType
        );
        assert_eq!(
            reason(
                &d,
                r#"{"ts":"2026-11-24T10:00:00Z","service":7,"status":200}"#
            ),
            Reason::WrongType
        );
        assert_eq!(
            reason(&d, r#"{"ts":"yesterday","service":"a","status":200}"#),
            Reason::BadTimestamp
        );
        assert_eq!(
            reason(
                &d,
                r#"{"ts":"1969-12-31T23:59:59Z","service":"a","status":200}"#
            ),
            Reason::BadTimestamp
        );
        assert_eq!(
            reason(
                &d,
                r#"{"ts":"3000-01-01T00:00:00Z","service":"a","status":200}"#
            ),
            Reason::BadTimestamp
        );
        assert_eq!(
            reason(
                &d,
                r#"{"ts":"2026-11-24T10:00:00Z","service":"a","status":200,"latency_ms":-1}"#
            ),
            Reason::BadLatency
        );
        assert_eq!(
            reason(
                &d,
                r#"{"ts":"2026-11-24T10:00:00Z","service":"a","status":200,"latency_ms":"fast"}"#
            ),
            Reason::BadLatency
        );
        assert_eq!(
            reason(
                &d,
                r#"{"ts":"2026-11-24T10:00:00Z","service":"a","status":"OK"}"#
            ),
            Reason::BadStatus
        );
        assert_eq!(
            reason(
                &d,
                r#"{"ts":"2026-11-24T10:00:00Z","service":"a","status":700}"#
            ),
            Reason::BadStatus
        );
        assert_eq!(
            reason(
                &d,
                r#"{"ts":"2026-11-24T10:00:00Z","service":"","status":200}"#
            ),
            Reason::BadService
        );
        assert_eq!(
            reason(
                &d,
                "{\"ts\":\"2026-11-24T10:00:00Z\",\"service\":\"a\\u0001\",\"status\":200}"
            ),
            Reason::BadService
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    const VALID: &str = r#"{"ts":"2026-11-24T10:00:00.123Z","service":"api","endpoint":"/v1","status":200,"latency_ms":12.5,"nested":{"a":[1,2,{"b":null}]}}"#;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            for f in [Format::Json, Format::NginxJson, Format::EnvoyJson, Format::Ecs, Format::Traefik, Format::Caddy] {
                let _ = JsonDecoder::new(&InputConfig { format: f, ..InputConfig::default() }).decode(&bytes);
            }
        }

        #[test]
        fn never_panics_on_mutated_valid_lines(pos in 0usize..VALID.len(), byte in any::<u8>(), cut in 0usize..VALID.len()) {
            let d = JsonDecoder::new(&InputConfig::default());
            let mut line = VALID.as_bytes().to_vec();
            line[pos] = byte;
            let _ = d.decode(&line);
            let _ = d.decode(&line[..cut]);
            let mut escaped = VALID.as_bytes().to_vec();
            escaped.splice(pos..pos, b"\\x2".iter().copied());
            let _ = d.decode(&escaped);
        }
    }
}
