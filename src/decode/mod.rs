//! bytes → event. Pure: no I/O, no clock, no shared state. Every failure is
//! a [`Reason`], counted and reported, never a panic or a silent drop.
//!
//! May import `model` and `spec`.

pub mod aws;
pub mod batch;
pub mod envelope;
mod envfast;
mod flat;
pub mod haproxy;
pub mod json;
pub mod sniff;
pub mod text;
pub mod w3c;

pub use json::{Decoded, JsonDecoder};
pub use text::TextDecoder;

use std::borrow::Cow;

use crate::model::DayCache;
pub use crate::model::{Reason, RejectCounts};
use crate::spec::config::InputConfig;

/// The decoder for an input's format: JSON shapes or a compiled text
/// layout. The same decoders serve files and Kafka messages.
#[derive(Debug, Clone)]
pub struct Decoder {
    kind: Kind,
    /// What wraps each line, when something does.
    envelope: Option<envelope::Unwrapper>,
    /// `--service-field envelope.PATH`: the service is read from the
    /// envelope; else the configured default service, else a rejection.
    envelope_service: Option<(String, Option<String>)>,
    /// `input.service_map`: the first matching rule names the service.
    service_map: Vec<crate::spec::config::ServiceRule>,
}

#[derive(Debug, Clone)]
enum Kind {
    Json(JsonDecoder),
    Text(TextDecoder),
    Aws(aws::AwsDecoder),
    Haproxy(haproxy::HaproxyDecoder),
    W3c(w3c::W3cDecoder),
}

/// What decoding carries from one line to the next within a chunk: the
/// day cache, and for W3C the `#Fields:` layout in force.
#[derive(Debug, Default)]
pub struct LineContext {
    pub days: DayCache,
    w3c: Option<w3c::Layout>,
    /// The envelope's time, for a line without one of its own.
    fallback_ts: Option<crate::model::Micros>,
    /// CRI partial lines waiting for their end.
    pub partials: envelope::Partials,
    envelope_days: DayCache,
    /// How the last JSON envelopes were laid out.
    envelope_layout: envelope::Layout,
    /// What the last OTLP requests repeated.
    otlp_memos: envelope::OtlpMemos,
    /// A line unescaped out of its envelope.
    scratch: Vec<u8>,
}

/// The stand-in service an inner decoder reads lines with while the
/// service comes from the envelope.
const FROM_ENVELOPE: &str = "-";

impl Decoder {
    /// Builds the decoder; a text format's layout string is compiled here,
    /// and its errors say what to fix.
    pub fn new(cfg: &InputConfig) -> Result<Decoder, String> {
        use crate::spec::config::Envelope;
        use crate::spec::config::Format;
        if cfg.format == Format::Auto {
            return Err("--format auto must be resolved by sniffing an input first".into());
        }
        let envelope = match cfg.envelope() {
            Envelope::Auto => {
                return Err("--envelope auto must be resolved by sniffing an input first".into())
            }
            Envelope::None => None,
            e => Some(envelope::Unwrapper::new(e, cfg.envelope_service())),
        };
        let envelope_service = match cfg.envelope_service() {
            Some(path) if envelope.is_none() => {
                return Err(format!(
                    "--service-field envelope.{path} needs --envelope (docker, cri, filebeat, vector, fluent-bit, otlp-json or syslog)"
                ))
            }
            Some(path) => Some((
                path.to_string(),
                cfg.constant_service.clone().or(cfg.default_service.clone()),
            )),
            None => None,
        };
        let owned;
        let cfg = if envelope_service.is_some() {
            let mut inner = cfg.clone();
            inner.fields.service = None;
            if inner.constant_service.is_none() {
                inner.constant_service = Some(FROM_ENVELOPE.into());
            }
            owned = inner;
            &owned
        } else {
            cfg
        };
        let kind = if cfg.format.is_text() {
            Kind::Text(TextDecoder::new(cfg)?)
        } else if cfg.format == Format::W3c {
            Kind::W3c(w3c::W3cDecoder::new(cfg))
        } else if cfg.format == Format::Haproxy {
            Kind::Haproxy(haproxy::HaproxyDecoder::new(cfg))
        } else if matches!(cfg.format, Format::Alb | Format::Elb) {
            Kind::Aws(aws::AwsDecoder::new(cfg))
        } else {
            Kind::Json(JsonDecoder::new(cfg))
        };
        Ok(Decoder {
            kind,
            envelope,
            envelope_service,
            service_map: cfg.service_map.clone(),
        })
    }

    /// A record as read from a file or a message, before decoding: a BOM,
    /// `\r` and surrounding whitespace off; a CRI line keeps the spaces
    /// that end it (a partial line's content).
    pub fn trim_record<'a>(&self, raw: &'a [u8]) -> &'a [u8] {
        if self.envelope() == Some(crate::spec::config::Envelope::Cri) {
            let s = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
            let s = s.strip_suffix(b"\r").unwrap_or(s);
            return s.trim_ascii_start();
        }
        batch::trim(raw)
    }

    /// Whether `raw` carries its envelope's own time (see
    /// [`envelope::Unwrapper::has_own_time`]).
    pub fn envelope_has_own_time(&self, raw: &[u8]) -> bool {
        self.envelope.as_ref().is_some_and(|u| u.has_own_time(raw))
    }

    /// The envelope taken off each record, if any.
    pub fn envelope(&self) -> Option<crate::spec::config::Envelope> {
        self.envelope.as_ref().map(|u| u.kind())
    }

    /// Decodes one record: takes its envelope off, if any, and hands each
    /// line inside (none, one, or many) decoded to `emit`. `whence` is the
    /// record's line number and place in its chunk, kept with a partial
    /// line for the rejection of one never finished.
    pub fn decode_record(
        &self,
        raw: &[u8],
        ctx: &mut LineContext,
        whence: (u64, (u32, u32)),
        emit: &mut dyn FnMut(Result<Decoded<'_>, Rejection>),
    ) {
        let Some(unwrapper) = &self.envelope else {
            if !self.header(raw, ctx) {
                emit(self.decode_with(raw, ctx));
            }
            return;
        };
        // A JSON line in a JSON envelope is read as it is written there,
        // its escapes not decoded, when the fast paths can: no copy.
        use crate::spec::config::Envelope as E;
        let in_json = matches!(
            unwrapper.kind(),
            E::Docker | E::Filebeat | E::Vector | E::FluentBit | E::OtlpJson
        );
        if let (Kind::Json(json), true) = (&self.kind, in_json) {
            if ctx.partials.is_empty() {
                let mut line = json::Escaped::default();
                let layout = &mut ctx.envelope_layout;
                let read = unwrapper
                    .json_escaped(raw, layout, |s, at| json.read_escaped(s, at, &mut line));
                if let Some((time, service)) = read {
                    let decoded = json.build_escaped(&mut line, &mut ctx.days, |days| {
                        time.and_then(|t| t.micros(days))
                    });
                    let decoded = decoded.map(|d| self.mapped(d));
                    return emit(self.with_envelope_service(decoded, service));
                }
                if self.otlp_escaped(unwrapper, json, raw, ctx, emit) {
                    return;
                }
            }
        }
        // Any other line in a JSON envelope: unescaped as the envelope is
        // scanned, into a buffer kept from one record to the next.
        if in_json && unwrapper.kind() != E::OtlpJson && ctx.partials.is_empty() {
            let mut scratch = std::mem::take(&mut ctx.scratch);
            let layout = &mut ctx.envelope_layout;
            let read = unwrapper.json_escaped(raw, layout, |s, at| {
                envfast::unescape_into(s, at, &mut scratch)
            });
            if let (Some((time, service)), Ok(line)) = (read, std::str::from_utf8(&scratch)) {
                let line = envelope::strip_newline(line.as_bytes());
                let inner = envelope::Inner {
                    line: Cow::Borrowed(line),
                    time,
                    service,
                };
                self.decode_inner(inner, ctx, emit);
                ctx.scratch = scratch;
                return;
            }
            ctx.scratch = scratch;
        }
        self.unwrap_and_decode(unwrapper, raw, ctx, whence, emit);
    }

    /// An OTLP request's records with their JSON lines read where the
    /// request holds them, escapes not decoded; `false` when the fast
    /// scan leaves the request to the general path (nothing emitted).
    fn otlp_escaped(
        &self,
        unwrapper: &envelope::Unwrapper,
        json: &JsonDecoder,
        raw: &[u8],
        ctx: &mut LineContext,
        emit: &mut dyn FnMut(Result<Decoded<'_>, Rejection>),
    ) -> bool {
        let mut reads = Vec::new();
        let recs = unwrapper.otlp_records(raw, &mut ctx.otlp_memos, &mut |s, at| {
            let mut read = json::Escaped::default();
            let end = json.read_escaped(s, at, &mut read)?;
            reads.push(read);
            Some(end)
        });
        let Some(recs) = recs else { return false };
        /// A record ready to emit: read in place (its time and service),
        /// or its line unescaped.
        enum Ready<'a> {
            Read(Option<envelope::Stamp<'a>>, Option<Cow<'a, str>>),
            Line(envelope::Inner<'a>),
        }
        // Every record's line and service decode before any is emitted.
        let mut inners = Vec::with_capacity(recs.len());
        for r in &recs {
            let inner = if r.read {
                envelope::Unwrapper::otlp_record_service(r)
                    .map(|s| Ready::Read(envelope::Unwrapper::otlp_time(r), s))
            } else {
                unwrapper.otlp_inner(r).map(Ready::Line)
            };
            match inner {
                Some(i) => inners.push(i),
                None => return false,
            }
        }
        if inners.is_empty() {
            emit(Err(Rejection::new(
                Reason::InvalidEnvelope,
                envelope::NO_OTLP_RECORD,
            )));
        }
        let mut reads = reads.iter_mut();
        for inner in inners {
            match inner {
                Ready::Line(inner) => self.decode_inner(inner, ctx, emit),
                Ready::Read(time, service) => {
                    let read = reads.next().expect("a read for each record read");
                    let decoded = json.build_escaped(read, &mut ctx.days, |days| {
                        time.and_then(|t| t.micros(days))
                    });
                    let decoded = decoded.map(|d| self.mapped(d));
                    emit(self.with_envelope_service(decoded, service));
                }
            }
        }
        true
    }

    /// [`decode_record`](Self::decode_record)'s general path: each line
    /// taken out of its envelope (unescaped), then decoded.
    fn unwrap_and_decode(
        &self,
        unwrapper: &envelope::Unwrapper,
        raw: &[u8],
        ctx: &mut LineContext,
        whence: (u64, (u32, u32)),
        emit: &mut dyn FnMut(Result<Decoded<'_>, Rejection>),
    ) {
        let mut partials = std::mem::take(&mut ctx.partials);
        let mut days = std::mem::take(&mut ctx.envelope_days);
        unwrapper.unwrap(
            raw,
            &mut partials,
            &mut days,
            whence,
            &mut |inner| match inner {
                Ok(inner) => self.decode_inner(inner, ctx, emit),
                Err(r) => emit(Err(r)),
            },
        );
        ctx.partials = partials;
        ctx.envelope_days = days;
    }

    /// A line taken out of its envelope, decoded.
    #[inline]
    fn decode_inner(
        &self,
        inner: envelope::Inner<'_>,
        ctx: &mut LineContext,
        emit: &mut dyn FnMut(Result<Decoded<'_>, Rejection>),
    ) {
        let line = batch::trim(&inner.line);
        if self.header(line, ctx) {
            return;
        }
        let mut decoded = self.decode_with(line, ctx);
        // The envelope's time is read only for a line without one.
        if let (Err(r), Some(t)) = (&decoded, inner.time) {
            if r.reason == Reason::MissingField && r.detail == json::NO_TIMESTAMP {
                if let Some(t) = t.micros(&mut ctx.days) {
                    ctx.fallback_ts = Some(t);
                    decoded = self.decode_with(line, ctx);
                    ctx.fallback_ts = None;
                }
            }
        }
        emit(self.with_envelope_service(decoded, inner.service))
    }

    /// The service read from the envelope (`--service-field
    /// envelope.PATH`), when it is, put on a decoded line.
    #[inline]
    fn with_envelope_service<'a>(
        &self,
        decoded: Result<Decoded<'a>, Rejection>,
        service: Option<Cow<'_, str>>,
    ) -> Result<Decoded<'a>, Rejection> {
        let Some((path, default)) = &self.envelope_service else {
            return decoded;
        };
        let mut d = decoded?;
        match (service, default) {
            (Some(s), _) if valid_service(&s) => {
                d.service = Cow::Owned(s.into_owned());
                Ok(d)
            }
            (Some(_), _) => Err(Rejection::new(
                Reason::BadService,
                format!("envelope.{path} must be 1–128 bytes without control characters"),
            )),
            (None, Some(default)) => {
                d.service = Cow::Owned(default.clone());
                Ok(d)
            }
            (None, None) => Err(Rejection::new(
                Reason::MissingField,
                format!("no envelope.{path} in the envelope"),
            )),
        }
    }
    #[inline]
    pub fn decode_with<'a>(
        &self,
        line: &'a [u8],
        ctx: &mut LineContext,
    ) -> Result<Decoded<'a>, Rejection> {
        let days = &mut ctx.days;
        let d = match &self.kind {
            Kind::Json(d) => d.decode_full(line, days, ctx.fallback_ts),
            Kind::Text(d) => d.decode_with(line, days),
            Kind::Aws(d) => d.decode_with(line, days),
            Kind::Haproxy(d) => d.decode_line(line),
            Kind::W3c(d) => d.decode_with(line, ctx.w3c.as_ref(), days),
        }?;
        Ok(self.mapped(d))
    }

    /// `input.service_map` applied: the first matching rule names the service.
    #[inline]
    fn mapped<'a>(&self, mut d: Decoded<'a>) -> Decoded<'a> {
        if !self.service_map.is_empty() {
            if let Some(rule) = self
                .service_map
                .iter()
                .find(|r| r.matches(&d.service, d.path.as_deref()))
            {
                d.service = std::borrow::Cow::Owned(rule.service.clone());
            }
        }
        d
    }

    /// Whether `line` is a header or comment of the format rather than a
    /// record (W3C's `#` lines); a header is taken into `ctx`.
    pub fn header(&self, line: &[u8], ctx: &mut LineContext) -> bool {
        match self.kind {
            Kind::W3c(_) if line.starts_with(b"#") => {
                if line.starts_with(b"#Fields:") {
                    ctx.w3c = w3c::Layout::parse(line);
                }
                true
            }
            _ => false,
        }
    }

    /// The prefix of header lines that every chunk must know the latest of.
    pub fn header_prefix(&self) -> Option<&'static [u8]> {
        matches!(self.kind, Kind::W3c(_)).then_some(&b"#Fields:"[..])
    }

    pub fn decode<'a>(&self, line: &'a [u8]) -> Result<Decoded<'a>, Rejection> {
        self.decode_with(line, &mut LineContext::default())
    }
}

/// A rejection with a detail for the dead-letter file.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// A service name read from a line: UTF-8, 1–128 bytes, no control
/// characters.
pub(crate) fn service_from(raw: &[u8]) -> Result<&str, Rejection> {
    let s = std::str::from_utf8(raw)
        .map_err(|_| Rejection::new(Reason::BadService, "service is not UTF-8"))?;
    if !valid_service(s) {
        return Err(Rejection::new(
            Reason::BadService,
            "service must be 1–128 bytes without control characters",
        ));
    }
    Ok(s)
}

/// A configured service name (`--service`, `input.default_service`) kept
/// for the life of the process, so that each line can borrow it instead of
/// copying it. The names are few: one a decoder's configuration.
pub(crate) fn interned(name: &str) -> &'static str {
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<rustc_hash::FxHashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match names.get(name) {
        Some(n) => n,
        None => {
            let n: &'static str = Box::leak(name.into());
            names.insert(n);
            n
        }
    }
}

/// The service of a line: the one `found` in it, else the configured
/// default, else a `missing_field` rejection saying `missing`.
pub(crate) fn service_or_default<'a>(
    found: Option<&'a [u8]>,
    default: &Option<&'static str>,
    missing: &str,
) -> Result<std::borrow::Cow<'a, str>, Rejection> {
    match (found, default) {
        (Some(raw), _) => service_from(raw).map(std::borrow::Cow::Borrowed),
        (None, Some(d)) => Ok(std::borrow::Cow::Borrowed(d)),
        (None, None) => Err(Rejection::new(Reason::MissingField, missing.to_string())),
    }
}

/// The path of a request line (`GET /v1/users?id=7 HTTP/1.1`), also when
/// the target is an absolute URL (`http://host:80/v1/users`), as load
/// balancers write it.
pub(crate) fn request_path(line: &[u8]) -> Option<&str> {
    let mut parts = line.split(|&b| b == b' ');
    let target = parts.nth(1).filter(|t| !t.is_empty())?;
    // `://` (an absolute URL) is rare: look for its `:` first.
    let scheme = memchr::memchr(b':', target).filter(|&i| target[i..].starts_with(b"://"));
    let path = match scheme {
        Some(i) => {
            let rest = &target[i + 3..];
            &rest[memchr::memchr(b'/', rest).unwrap_or(rest.len())..]
        }
        None => target,
    };
    std::str::from_utf8(path).ok().filter(|p| !p.is_empty())
}

/// An HTTP status code (100–599) written in ASCII digits.
pub(crate) fn status_from(raw: &[u8]) -> Option<u16> {
    match *raw {
        [a, b, c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            let v = (a - b'0') as u16 * 100 + (b - b'0') as u16 * 10 + (c - b'0') as u16;
            (100..=599).contains(&v).then_some(v)
        }
        _ => None,
    }
}

pub use crate::model::valid_service;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::config::{Envelope, FieldOverrides, Format};
    use proptest::prelude::*;

    /// An inner JSON line in pieces the escaped reading takes and pieces
    /// it must leave to unescape-then-decode: escapes in strings, non-ASCII,
    /// nesting, whitespace of every kind, a BOM, bad syntax.
    fn inner_line() -> impl Strategy<Value = (String, bool)> {
        let key = prop::sample::select(vec![
            "ts",
            "service",
            "status",
            "latency_ms",
            "endpoint",
            "x",
        ]);
        let plain = prop::sample::select(vec![
            r#""2026-11-24T10:00:05Z""#,
            r#""2026-11-24T10:00:05.25+01:00""#,
            r#""svc-1""#,
            r#""/v1/users""#,
            "200",
            "503",
            "-1",
            "12.5",
            "0.001",
            "true",
            "null",
            r#""""#,
        ]);
        let odd = prop::sample::select(vec![
            r#""a\"b""#,
            r#""\u0041pi""#,
            r#""é""#,
            r#""a\\b""#,
            r#""a\b""#,
            r#""a\/b""#,
            "1e3",
            "{}",
            "[1]",
            r#"{"a":1}"#,
        ]);
        let value =
            prop_oneof![4 => plain.prop_map(|v| (v, true)), 1 => odd.prop_map(|v| (v, false))];
        let colon = prop::sample::select(vec![":", " : ", ":\n"]);
        let member = (key, colon, value)
            .prop_map(|(k, c, (v, ok))| (format!("\"{k}\"{c}{v}"), ok && c != ":\n"));
        let sep = prop::sample::select(vec![",", ", ", ",\n", ",\t", ",\r\n"]);
        let lead = prop::sample::select(vec!["", " ", "\n", "\t", "\u{feff}", "\u{c}"]);
        let tail = prop::sample::select(vec![
            "", "\n", "\r\n", " ", "\n\n", "\t", "x", "\u{c}", "}", "/",
        ]);
        (prop::collection::vec(member, 0..7), sep, lead, tail).prop_map(
            |(members, sep, lead, tail)| {
                let plain = members.iter().all(|(_, ok)| *ok)
                    && !sep.contains(['\n', '\t', '\r'])
                    && matches!(lead, "" | " ")
                    && matches!(tail, "" | "\n" | " ");
                let body: Vec<&str> = members.iter().map(|(m, _)| m.as_str()).collect();
                (format!("{lead}{{{}}}{tail}", body.join(sep)), plain)
            },
        )
    }

    /// What a record gives, owned.
    fn outcomes(
        each: impl FnOnce(&mut dyn FnMut(Result<Decoded<'_>, Rejection>)),
    ) -> Vec<Result<Decoded<'static>, Rejection>> {
        let mut out = Vec::new();
        each(&mut |d| out.push(d.map(Decoded::into_owned)));
        out
    }

    proptest! {
        /// An OTLP request's JSON lines read where the request holds them
        /// give what serde's reading of the request, each line unescaped
        /// and decoded, gives: record by record, memos carried along.
        #[test]
        fn otlp_lines_read_in_place_read_as_serde_reads_them(
            requests in prop::collection::vec(envelope::tests::otlp_request(), 1..4),
            service in prop::sample::select(vec![None, Some("envelope.resource.service.name"), Some("envelope.attributes.service.name")]),
        ) {
            let d = Decoder::new(&InputConfig {
                format: Format::Json,
                envelope: Some(Envelope::OtlpJson),
                fields: FieldOverrides { service: service.map(Into::into), ..Default::default() },
                ..InputConfig::default()
            })
            .unwrap();
            let u = d.envelope.as_ref().unwrap();
            let mut ctx = LineContext::default();
            for request in requests {
                let raw = serde_json::to_vec(&request).unwrap();
                let fast = outcomes(|emit| d.decode_record(&raw, &mut ctx, (0, (0, 0)), emit));
                let reference = outcomes(|emit| {
                    let mut ctx = LineContext::default();
                    u.otlp_serde(&raw, &mut |inner| match inner {
                        Ok(inner) => d.decode_inner(inner, &mut ctx, emit),
                        Err(r) => emit(Err(r)),
                    })
                });
                prop_assert_eq!(fast, reference, "{}", String::from_utf8_lossy(&raw));
            }
        }

        /// A JSON line read where its JSON envelope holds it, escapes not
        /// decoded, gives exactly what unescaping it and decoding the copy
        /// gives (the general path), and is taken for plain lines.
        #[test]
        fn an_escaped_line_reads_as_its_unescaped_copy(
            (line, plain) in inner_line(),
            cut in prop::option::of(any::<prop::sample::Index>()),
            pick in 0usize..4,
            stamp in prop::sample::select(vec![0u8, 1, 2]),
            envelope_service in any::<bool>(),
            extra_first in any::<bool>(),
            odd_escapes in any::<bool>(),
            clf in prop::option::of(prop::sample::select(vec![
                r#"10.0.0.1 - - [24/Nov/2026:10:00:00 +0000] "GET /a HTTP/1.1" 503 12"#,
                r#"10.0.0.1 - frank [24/Nov/2026:10:00:00 +0000] "GET /é?q=\"x\" HTTP/1.1" 200 5"#,
                "10.0.0.1 - - [24/Nov/2026:10:00:00 +0000]\t\"POST / HTTP/1.1\" 200 -\r",
                r#"10.0.0.1 - - [24/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 2000 1"#,
            ])),
        ) {
            let kind = [Envelope::Docker, Envelope::Filebeat, Envelope::Vector, Envelope::FluentBit][pick];
            let (line, plain) = match clf {
                Some(l) => (l.to_string(), false),
                None => (line, plain),
            };
            let line = match cut {
                Some(at) => line[..line.floor_char_boundary(at.index(line.len() + 1))].to_string(),
                None => line,
            };
            let (line_key, time_key) = match kind {
                Envelope::Docker => ("log", "time"),
                Envelope::Filebeat => ("message", "@timestamp"),
                Envelope::Vector => ("message", "timestamp"),
                _ => ("log", "date"),
            };
            let line = if kind == Envelope::Docker { format!("{line}\n") } else { line };
            let mut text = String::from("{");
            if extra_first {
                text.push_str(r#""stream":"stdout","#);
            }
            let mut quoted = serde_json::to_string(&line).unwrap();
            if odd_escapes {
                // Escapes serde_json does not write, but a shipper may.
                quoted = quoted.replace('/', "\\/").replace('a', "\\u0061").replace(' ', "\\u0020");
            }
            text.push_str(&format!("\"{line_key}\":{quoted}"));
            match stamp {
                1 => text.push_str(&format!(",\"{time_key}\":\"2026-11-24T09:00:00Z\"")),
                2 => text.push_str(&format!(",\"{time_key}\":1795510800.5")),
                _ => {}
            }
            if !extra_first {
                text.push_str(r#","stream":"stderr""#);
            }
            text.push('}');
            let d = Decoder::new(&InputConfig {
                format: Format::Json,
                envelope: Some(kind),
                fields: FieldOverrides {
                    service: envelope_service.then(|| "envelope.stream".into()),
                    ..Default::default()
                },
                ..InputConfig::default()
            })
            .unwrap();
            let (Kind::Json(json), Some(u)) = (&d.kind, &d.envelope) else { unreachable!() };
            let raw = text.as_bytes();
            let mut read = json::Escaped::default();
            let taken = u.json_escaped(raw, &mut Default::default(), |s, at| json.read_escaped(s, at, &mut read)).is_some();
            if plain && cut.is_none() && !odd_escapes {
                prop_assert!(taken, "{}", text);
            }
            let fast = outcomes(|emit| d.decode_record(raw, &mut LineContext::default(), (0, (0, 0)), emit));
            let general = outcomes(|emit| d.unwrap_and_decode(u, raw, &mut LineContext::default(), (0, (0, 0)), emit));
            prop_assert_eq!(fast, general, "{}", text);
            // A text format's line, unescaped as the envelope is scanned.
            let d = Decoder::new(&InputConfig {
                format: Format::Apache,
                log_format: Some("common".into()),
                envelope: Some(kind),
                constant_service: Some("web".into()),
                fields: FieldOverrides {
                    service: envelope_service.then(|| "envelope.stream".into()),
                    ..Default::default()
                },
                ..InputConfig::default()
            })
            .unwrap();
            let u = d.envelope.as_ref().unwrap();
            let fast = outcomes(|emit| d.decode_record(raw, &mut LineContext::default(), (0, (0, 0)), emit));
            let general = outcomes(|emit| d.unwrap_and_decode(u, raw, &mut LineContext::default(), (0, (0, 0)), emit));
            prop_assert_eq!(fast, general, "{}", text);
        }
    }

    #[test]
    fn statuses_are_three_digits_from_100_to_599() {
        assert_eq!(status_from(b"200"), Some(200));
        assert_eq!(status_from(b"599"), Some(599));
        for bad in [
            &b"099"[..],
            b"600",
            b"20",
            b"2000",
            b"+20",
            b"2a0",
            b"",
            b"-",
        ] {
            assert_eq!(status_from(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn request_paths() {
        assert_eq!(
            request_path(b"GET /v1/users?id=7 HTTP/1.1"),
            Some("/v1/users?id=7")
        );
        assert_eq!(
            request_path(b"GET http://www.example.com:80/ HTTP/1.1"),
            Some("/")
        );
        assert_eq!(request_path(b"GET https://example.com HTTP/1.1"), None);
        assert_eq!(request_path(b"-"), None);
    }
}
