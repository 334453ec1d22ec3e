//! Text access logs whose layout the user gives: nginx's `log_format` and
//! Apache's `LogFormat`. The format string is compiled once into a list of
//! literals and fields; a line is matched against it left to right, each
//! field running to the next literal. No regex, no allocation per line.

use std::borrow::Cow;

use super::json::epoch_to_micros;
use super::{service_or_default, status_from, Decoded, Reason, Rejection};
use crate::model::{days_from_civil, parse_rfc3339_cached, DayCache, Micros, MICROS_PER_SEC};
use crate::spec::config::{Format, InputConfig, StatusSet};

/// nginx's predefined `combined`, and the `main` of its sample nginx.conf.
pub const NGINX_COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;
pub const NGINX_MAIN: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for""#;
/// Envoy's default text format, and Istio's.
pub const ENVOY_DEFAULT: &str = r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%""#;
pub const ISTIO_DEFAULT: &str = r#"[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%"#;
/// Layouts known by name, per format; the first of a format is its default.
const PREDEFINED: &[(Format, &str, &str)] = &[
    (Format::Nginx, "combined", NGINX_COMBINED),
    (Format::Nginx, "main", NGINX_MAIN),
    (Format::Apache, "combined", APACHE_COMBINED),
    (Format::Apache, "common", APACHE_COMMON),
    (Format::Envoy, "default", ENVOY_DEFAULT),
    (Format::Envoy, "istio", ISTIO_DEFAULT),
];

/// Apache's `common` and `combined` nicknames.
pub const APACHE_COMMON: &str = r#"%h %l %u %t "%r" %>s %b"#;
pub const APACHE_COMBINED: &str = r#"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i""#;

/// What a field of the format carries.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    /// `[10/Oct/2000:13:55:36 -0700]` without the brackets.
    TimeLocal,
    TimeIso,
    /// Epoch seconds with a fraction (`$msec`).
    TimeEpoch,
    Status,
    /// A duration in this many µs per unit; `sum` for nginx's lists of
    /// upstream times (`0.010, 0.020 : 0.005`); `decimals` as written.
    Latency {
        us_per_unit: f64,
        sum: bool,
        rank: u8,
        decimals: u8,
    },
    /// The request line (`GET /path HTTP/1.1`): its path is read (for
    /// `input.service_map`), and `gen` writes it.
    Request,
    /// The request path alone (`$request_uri`, `%U`, Envoy's `:PATH`).
    Path,
    /// A service name candidate; lower rank wins.
    Service {
        rank: u8,
    },
    Ignore,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(Vec<u8>),
    Field(Field),
}

#[derive(Debug, Clone)]
pub struct TextDecoder {
    tokens: Vec<Token>,
    error_statuses: StatusSet,
    default_service: Option<&'static str>,
    /// Whether a service field is read at all.
    has_service: bool,
    has_latency: bool,
    /// Whether the request's path is read (only `input.service_map` path
    /// rules use it).
    want_path: bool,
}

impl TextDecoder {
    /// Compiles `input.log_format` (or the format's default) for `nginx` or
    /// `apache`. The error says what is wrong with the format string.
    pub fn new(cfg: &InputConfig) -> Result<TextDecoder, String> {
        let compile = match cfg.format {
            Format::Nginx => compile_nginx,
            Format::Apache => compile_apache,
            Format::Envoy => compile_envoy,
            other => return Err(format!("{other:?} is not a text format")),
        };
        let predefined = |name: &str| {
            PREDEFINED
                .iter()
                .find(|(f, n, _)| *f == cfg.format && *n == name)
                .map(|p| p.2)
        };
        let text = match cfg.log_format.as_deref() {
            Some(t) => predefined(t).unwrap_or(t),
            // The first predefined layout of a format is its default.
            None => PREDEFINED
                .iter()
                .find(|(f, ..)| *f == cfg.format)
                .map_or("", |p| p.2),
        };
        let tokens = compile(text, cfg.fields.service.as_deref())?;
        let fields = || {
            tokens.iter().filter_map(|t| match t {
                Token::Field(f) => Some(*f),
                Token::Literal(_) => None,
            })
        };
        if !fields().any(|f| matches!(f, Field::TimeLocal | Field::TimeIso | Field::TimeEpoch)) {
            return Err(format!("the log format `{text}` has no time field"));
        }
        if !fields().any(|f| f == Field::Status) {
            return Err(format!("the log format `{text}` has no status field"));
        }
        for w in tokens.windows(2) {
            if let [Token::Field(a), Token::Field(b)] = w {
                return Err(format!(
                    "in `{text}`, two fields ({a:?}, {b:?}) follow each other with nothing between: a line could not be split"
                ));
            }
        }
        if let Some(sf) = &cfg.fields.service {
            if !fields().any(|f| f == Field::Service { rank: 0 }) {
                return Err(format!(
                    "--service-field `{sf}`: the log format `{text}` has no such field"
                ));
            }
        }
        let has_service = fields().any(|f| matches!(f, Field::Service { .. }));
        let default_service = cfg
            .constant_service
            .as_deref()
            .or(cfg.default_service.as_deref())
            .map(super::interned);
        if !has_service && default_service.is_none() {
            return Err(format!(
                "the log format `{text}` names no service ($host, $server_name, %v, %{{Host}}i, %UPSTREAM_CLUSTER%, %REQ(:AUTHORITY)%): give --service NAME"
            ));
        }
        Ok(TextDecoder {
            has_latency: fields().any(|f| matches!(f, Field::Latency { .. })),
            has_service: has_service && cfg.constant_service.is_none(),
            want_path: cfg.service_map.iter().any(|r| r.path.is_some()),
            tokens,
            error_statuses: cfg.error_statuses.clone(),
            default_service,
        })
    }

    /// Whether lines carry a latency at all (plain `combined` does not).
    pub fn has_latency(&self) -> bool {
        self.has_latency
    }

    pub fn decode_with<'a>(
        &self,
        line: &'a [u8],
        days: &mut DayCache,
    ) -> Result<Decoded<'a>, Rejection> {
        let mismatch = |what: &str| Rejection::new(Reason::FormatMismatch, what.to_string());
        let mut p = 0usize;
        let (mut ts, mut status, mut latency, mut service) = (None, None, None, None);
        let mut path: Option<&'a str> = None;
        let (mut latency_rank, mut service_rank) = (u8::MAX, u8::MAX);
        for (k, tok) in self.tokens.iter().enumerate() {
            match tok {
                Token::Literal(lit) => {
                    if !starts(&line[p..], lit) {
                        return Err(mismatch("the line does not follow the log format"));
                    }
                    p += lit.len();
                }
                Token::Field(f) => {
                    // A field runs to the next literal (or the end of line).
                    let end = match self.tokens.get(k + 1) {
                        // `$time_local` is 26 bytes wide: look there first.
                        // A literal that opens with a byte no time holds
                        // (`]`) cannot occur sooner, so it is the same cut.
                        Some(Token::Literal(lit))
                            if *f == Field::TimeLocal
                                && lit.first().is_some_and(|&c| !in_clf_time(c))
                                && line.len() >= p + CLF_TIME_LEN
                                && starts(&line[p + CLF_TIME_LEN..], lit) =>
                        {
                            p + CLF_TIME_LEN
                        }
                        Some(Token::Literal(lit)) => match find_literal(&line[p..], lit) {
                            Some(off) => p + off,
                            None => {
                                return Err(mismatch("the line ends before the log format does"))
                            }
                        },
                        _ => line.len(),
                    };
                    let value = &line[p..end];
                    p = end;
                    match *f {
                        Field::TimeLocal => {
                            ts = Some(clf_time_cached(value, days).ok_or_else(bad_time)?)
                        }
                        Field::TimeIso => {
                            ts = Some(parse_rfc3339_cached(value, days).ok_or_else(bad_time)?)
                        }
                        Field::TimeEpoch => {
                            let v: f64 = ascii(value).parse().map_err(|_| bad_time())?;
                            ts = Some(epoch_to_micros(v).ok_or_else(bad_time)?);
                        }
                        Field::Status => status = Some(value),
                        Field::Latency {
                            us_per_unit,
                            sum,
                            rank,
                            ..
                        } => {
                            if rank < latency_rank {
                                if let Some(v) = duration(value, us_per_unit, sum)? {
                                    latency = Some(v);
                                    latency_rank = rank;
                                }
                            }
                        }
                        Field::Service { rank } => {
                            if rank < service_rank
                                && !value.is_empty()
                                && value != b"-"
                                && self.has_service
                            {
                                service = Some(value);
                                service_rank = rank;
                            }
                        }
                        Field::Request if self.want_path => path = super::request_path(value),
                        Field::Path if self.want_path => {
                            path = std::str::from_utf8(value).ok().filter(|p| *p != "-")
                        }
                        Field::Request | Field::Path => {}
                        Field::Ignore => {}
                    }
                }
            }
        }
        if p != line.len() {
            return Err(mismatch("the line goes on after the log format ends"));
        }
        let ts = ts.ok_or_else(bad_time)?;
        if !(0..32_503_680_000 * MICROS_PER_SEC).contains(&ts) {
            return Err(Rejection::new(
                Reason::BadTimestamp,
                "timestamp outside 1970–2999",
            ));
        }
        // 0 is Envoy's "no response" (the downstream went away): an error.
        let code: u16 = match status {
            Some(b"0") => Some(0),
            Some(s) => status_from(s),
            None => None,
        }
        .ok_or_else(|| Rejection::new(Reason::BadStatus, "status must be 100–599"))?;
        let service = service_or_default(
            service,
            &self.default_service,
            "no service in this line: give --service NAME",
        )?;
        Ok(Decoded {
            ts,
            service,
            error: code == 0 || self.error_statuses.contains(code),
            latency_us: latency,
            path: path.map(Cow::Borrowed),
        })
    }
}

/// One event as `slate gen` writes it into a text layout.
pub struct Render<'a> {
    pub ts: Micros,
    pub service: &'a str,
    pub status: u16,
    pub latency_us: u64,
    pub method: &'a str,
    pub path: &'a str,
}

impl TextDecoder {
    /// Writes an event in this layout, so that this decoder reads it back
    /// (times in UTC; fields slate does not read as `-`).
    pub fn render(&self, r: &Render, out: &mut String) {
        use std::fmt::Write;
        for tok in &self.tokens {
            match tok {
                Token::Literal(l) => out.push_str(&String::from_utf8_lossy(l)),
                Token::Field(f) => {
                    let _ = match *f {
                        Field::TimeLocal => write!(out, "{}", format_clf(r.ts)),
                        Field::TimeIso => {
                            write!(out, "{}+00:00", &crate::model::format_rfc3339(r.ts)[..19])
                        }
                        Field::TimeEpoch => write!(
                            out,
                            "{}.{:03}",
                            r.ts.div_euclid(MICROS_PER_SEC),
                            r.ts.rem_euclid(MICROS_PER_SEC) / 1000
                        ),
                        Field::Status => write!(out, "{}", r.status),
                        Field::Latency {
                            us_per_unit,
                            decimals,
                            ..
                        } => {
                            let v = r.latency_us as f64 / us_per_unit;
                            write!(out, "{v:.prec$}", prec = decimals as usize)
                        }
                        Field::Service { .. } => write!(out, "{}", r.service),
                        Field::Request => write!(out, "{} {} HTTP/1.1", r.method, r.path),
                        Field::Path => write!(out, "{}", r.path),
                        Field::Ignore => write!(out, "-"),
                    };
                }
            }
        }
    }
}

/// `10/Oct/2000:13:55:36 +0000`, in UTC.
pub fn format_clf(ts: Micros) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rfc = crate::model::format_rfc3339(ts);
    let month: usize = rfc[5..7].parse().unwrap_or(1);
    format!(
        "{}/{}/{}:{} +0000",
        &rfc[8..10],
        MONTHS[month - 1],
        &rfc[0..4],
        &rfc[11..19]
    )
}

/// `hay.starts_with(pre)` for the few bytes of a layout literal, compared
/// inline rather than by a call to `memcmp`.
#[inline(always)]
fn starts(hay: &[u8], pre: &[u8]) -> bool {
    if hay.len() < pre.len() {
        return false;
    }
    let mut i = 0;
    while i < pre.len() {
        if hay[i] != pre[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Where `lit` first occurs in `hay`: its first byte by `memchr`, then a
/// comparison. Layout literals are a few bytes (`" "`, `] "`): building a
/// `memmem` searcher for each field cost more than the search.
#[inline]
fn find_literal(hay: &[u8], lit: &[u8]) -> Option<usize> {
    let Some((&first, rest)) = lit.split_first() else {
        return Some(0);
    };
    // Most fields are short (an address, `-`, a status): a plain scan of
    // their first bytes costs less than setting up `memchr`.
    let near = hay.len().min(16);
    for at in 0..near {
        if hay[at] == first && starts(&hay[at + 1..], rest) {
            return Some(at);
        }
    }
    let mut i = near;
    while let Some(off) = memchr::memchr(first, &hay[i..]) {
        let at = i + off;
        if starts(&hay[at + 1..], rest) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

fn bad_time() -> Rejection {
    Rejection::new(Reason::BadTimestamp, "the time field does not parse")
}

fn ascii(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// A duration field: `-` is none; nginx lists (`0.010, 0.020 : 0.005`) sum,
/// as nginx defines `$upstream_response_time` for several upstreams.
fn duration(value: &[u8], us_per_unit: f64, sum: bool) -> Result<Option<u64>, Rejection> {
    let bad = || Rejection::new(Reason::BadLatency, "latency is not a number");
    if value == b"-" || value.is_empty() {
        return Ok(None);
    }
    let mut total = 0f64;
    let mut any = false;
    let parts: Box<dyn Iterator<Item = &[u8]>> = if sum {
        Box::new(value.split(|&b| b == b',' || b == b':'))
    } else {
        Box::new(std::iter::once(value))
    };
    for part in parts {
        let part = part.trim_ascii();
        if part == b"-" {
            continue;
        }
        let v: f64 = ascii(part).parse().map_err(|_| bad())?;
        if !v.is_finite() || v < 0.0 {
            return Err(Rejection::new(
                Reason::BadLatency,
                "latency must be finite and not negative",
            ));
        }
        total += v;
        any = true;
    }
    Ok(any.then(|| (total * us_per_unit).round() as u64))
}

/// `Jan` → 1 … `Dec` → 12.
pub fn month_number(m: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    MONTHS
        .iter()
        .position(|x| x[..] == *m)
        .map(|i| i as u32 + 1)
}

/// The width of a Common Log Format time.
const CLF_TIME_LEN: usize = 26;

/// Whether a byte can be part of a Common Log Format time.
fn in_clf_time(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'/' | b':' | b' ' | b'+' | b'-')
}

/// Common Log Format time: `10/Oct/2000:13:55:36 -0700`.
pub fn clf_time(s: &[u8]) -> Option<Micros> {
    clf_time_cached(s, &mut DayCache::default())
}

/// [`clf_time`] that reuses the day (and offset) of the previous call
/// when they are the same: log lines come in runs of the same day.
pub fn clf_time_cached(s: &[u8], cache: &mut DayCache) -> Option<Micros> {
    if s.len() != CLF_TIME_LEN
        || s[2] != b'/'
        || s[6] != b'/'
        || s[11] != b':'
        || s[14] != b':'
        || s[17] != b':'
        || s[20] != b' '
    {
        return None;
    }
    let num = |a: usize, n: usize| -> Option<i64> {
        s[a..a + n].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)
        })
    };
    let (h, m, sec) = (num(12, 2)?, num(15, 2)?, num(18, 2)?);
    if h > 23 || m > 59 || sec > 60 {
        return None;
    }
    // The day and the offset (` -0700`) the cache is keyed by.
    let mut k = [0u8; 17];
    k[..11].copy_from_slice(&s[..11]);
    k[11..].copy_from_slice(&s[20..]);
    let base = match cache.clf() {
        Some((ck, base)) if *ck == k => base,
        _ => {
            let day = num(0, 2)? as u32;
            let month = month_number(&s[3..6])?;
            let year = num(7, 4)?;
            if day == 0 || day > crate::model::days_in_month(year, month) {
                return None;
            }
            let sign = match s[21] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (oh, om) = (num(22, 2)?, num(24, 2)?);
            let base = days_from_civil(year, month, day) * 86_400 - sign * (oh * 3600 + om * 60);
            cache.set_clf(k, base);
            base
        }
    };
    Some((base + h * 3600 + m * 60 + sec) * MICROS_PER_SEC)
}

/// `--service-field`: the layout field the user names becomes the best
/// service candidate; the format's own candidates rank after it.
fn with_service_field(field: Field, named: bool, service_field_given: bool) -> Field {
    match field {
        _ if named => Field::Service { rank: 0 },
        Field::Service { rank } if service_field_given => Field::Service { rank: rank + 1 },
        f => f,
    }
}

fn nginx_field(name: &str) -> Field {
    match name {
        "time_local" => Field::TimeLocal,
        "time_iso8601" => Field::TimeIso,
        "msec" => Field::TimeEpoch,
        "status" => Field::Status,
        "request_time" => Field::Latency {
            us_per_unit: 1e6,
            sum: false,
            decimals: 3,
            rank: 0,
        },
        "upstream_response_time" => Field::Latency {
            us_per_unit: 1e6,
            sum: true,
            decimals: 3,
            rank: 1,
        },
        "request" => Field::Request,
        "request_uri" | "uri" => Field::Path,
        "host" => Field::Service { rank: 0 },
        "server_name" => Field::Service { rank: 1 },
        "proxy_upstream_name" => Field::Service { rank: 2 },
        "http_host" => Field::Service { rank: 3 },
        _ => Field::Ignore,
    }
}

/// Compiles nginx's `log_format` syntax: `$name` or `${name}`, the rest
/// literal.
fn compile_nginx(text: &str, service_field: Option<&str>) -> Result<Vec<Token>, String> {
    let sf = service_field.map(|f| {
        f.trim_start_matches('$')
            .trim_start_matches('{')
            .trim_end_matches('}')
    });
    let b = text.as_bytes();
    let mut tokens = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let (name, next) = if b.get(i + 1) == Some(&b'{') {
                let close = text[i + 2..]
                    .find('}')
                    .ok_or_else(|| format!("`{text}`: `${{` without `}}`"))?;
                (&text[i + 2..i + 2 + close], i + 3 + close)
            } else {
                let len = b[i + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                (&text[i + 1..i + 1 + len], i + 1 + len)
            };
            if name.is_empty() {
                return Err(format!("`{text}`: `$` at byte {i} names no variable"));
            }
            if !lit.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut lit)));
            }
            tokens.push(Token::Field(with_service_field(
                nginx_field(name),
                sf == Some(name),
                sf.is_some(),
            )));
            i = next;
        } else {
            lit.push(b[i]);
            i += 1;
        }
    }
    if !lit.is_empty() {
        tokens.push(Token::Literal(lit));
    }
    Ok(tokens)
}

/// Compiles Envoy's format syntax: `%COMMAND%` or `%COMMAND(arg)%` (an
/// optional `:len` after the parenthesis), `%%` for a percent sign.
fn compile_envoy(text: &str, service_field: Option<&str>) -> Result<Vec<Token>, String> {
    let sf = service_field.map(|f| f.trim_matches('%'));
    let b = text.as_bytes();
    let mut tokens = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            lit.push(b[i]);
            i += 1;
            continue;
        }
        if b.get(i + 1) == Some(&b'%') {
            lit.push(b'%');
            i += 2;
            continue;
        }
        let close = text[i + 1..]
            .find('%')
            .ok_or_else(|| format!("`{text}`: `%` at byte {i} is not closed"))?;
        let command = &text[i + 1..i + 1 + close];
        i += close + 2;
        let name = command.split('(').next().unwrap_or(command);
        let arg = command
            .split_once('(')
            .and_then(|(_, r)| r.split_once(')'))
            .map(|(a, _)| a.to_ascii_lowercase());
        let field = match (name, arg.as_deref()) {
            ("START_TIME", _) => Field::TimeIso,
            ("RESPONSE_CODE", _) => Field::Status,
            ("DURATION", _) => Field::Latency {
                us_per_unit: 1e3,
                sum: false,
                decimals: 0,
                rank: 0,
            },
            ("UPSTREAM_CLUSTER", _) => Field::Service { rank: 0 },
            ("REQ", Some(":authority")) => Field::Service { rank: 1 },
            ("REQ", Some("x-envoy-original-path?:path" | ":path")) => Field::Path,
            _ => Field::Ignore,
        };
        let named = sf.is_some_and(|f| f.eq_ignore_ascii_case(command));
        let field = with_service_field(field, named, sf.is_some());
        if !lit.is_empty() {
            tokens.push(Token::Literal(std::mem::take(&mut lit)));
        }
        tokens.push(Token::Field(field));
    }
    if !lit.is_empty() {
        tokens.push(Token::Literal(lit));
    }
    Ok(tokens)
}

/// Compiles Apache's `LogFormat` syntax: `%x`, `%>x`, `%<x`, `%{arg}x`,
/// `%%`; status modifiers (`%400,501s`) are accepted and ignored.
fn compile_apache(text: &str, service_field: Option<&str>) -> Result<Vec<Token>, String> {
    let b = text.as_bytes();
    let mut tokens = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            lit.push(b[i]);
            i += 1;
            continue;
        }
        i += 1;
        if b.get(i) == Some(&b'%') {
            lit.push(b'%');
            i += 1;
            continue;
        }
        // Modifiers: `<`, `>`, `!`, status lists.
        while i < b.len()
            && (b[i] == b'<'
                || b[i] == b'>'
                || b[i] == b'!'
                || b[i] == b','
                || b[i].is_ascii_digit())
        {
            i += 1;
        }
        let mut arg = None;
        if b.get(i) == Some(&b'{') {
            let close = text[i + 1..]
                .find('}')
                .ok_or_else(|| format!("`{text}`: `%{{` without `}}`"))?;
            arg = Some(&text[i + 1..i + 1 + close]);
            i += close + 2;
        }
        let Some(&d) = b.get(i) else {
            return Err(format!("`{text}`: `%` at the end names no directive"));
        };
        i += 1;
        let field = match (d, arg) {
            (b't', None) => {
                // %t writes its own brackets.
                lit.push(b'[');
                tokens.push(Token::Literal(std::mem::take(&mut lit)));
                tokens.push(Token::Field(Field::TimeLocal));
                lit.push(b']');
                continue;
            }
            (b't', Some(_)) => {
                return Err(format!(
                    "`{text}`: %{{...}}t with a custom time format is not supported; use %t"
                ))
            }
            (b's', _) => Field::Status,
            (b'D', _) => Field::Latency {
                us_per_unit: 1.0,
                sum: false,
                decimals: 0,
                rank: 0,
            },
            (b'T', None | Some("s")) => Field::Latency {
                us_per_unit: 1e6,
                sum: false,
                decimals: 0,
                rank: 1,
            },
            (b'T', Some("ms")) => Field::Latency {
                us_per_unit: 1e3,
                sum: false,
                decimals: 0,
                rank: 0,
            },
            (b'T', Some("us")) => Field::Latency {
                us_per_unit: 1.0,
                sum: false,
                decimals: 0,
                rank: 0,
            },
            (b'r', _) => Field::Request,
            (b'U', _) => Field::Path,
            (b'v', _) => Field::Service { rank: 1 },
            (b'V', _) => Field::Service { rank: 2 },
            (b'i', Some(h)) if h.eq_ignore_ascii_case("host") => Field::Service { rank: 0 },
            _ => Field::Ignore,
        };
        let written = match arg {
            Some(a) => format!("%{{{a}}}{}", d as char),
            None => format!("%{}", d as char),
        };
        let named = service_field.is_some_and(|f| f.eq_ignore_ascii_case(&written));
        let field = with_service_field(field, named, service_field.is_some());
        if !lit.is_empty() {
            tokens.push(Token::Literal(std::mem::take(&mut lit)));
        }
        tokens.push(Token::Field(field));
    }
    if !lit.is_empty() {
        tokens.push(Token::Literal(lit));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The literal search finds what memmem finds.
        #[test]
        fn find_literal_agrees_with_memmem(hay in "[ \"\\]ab]{0,40}", lit in "[ \"\\]ab]{0,3}") {
            proptest::prop_assert_eq!(
                find_literal(hay.as_bytes(), lit.as_bytes()),
                memchr::memmem::find(hay.as_bytes(), lit.as_bytes())
            );
        }
    }
    use crate::model::parse_rfc3339;

    fn decoder(format: Format, log_format: Option<&str>, service: Option<&str>) -> TextDecoder {
        TextDecoder::new(&InputConfig {
            format,
            log_format: log_format.map(str::to_string),
            constant_service: service.map(str::to_string),
            ..InputConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn rendered_lines_read_back() {
        for (format, layout) in [
            (
                Format::Nginx,
                NGINX_COMBINED.to_string() + " $host $request_time",
            ),
            (
                Format::Nginx,
                "$msec $server_name \"$request\" $status $upstream_response_time".to_string(),
            ),
            (
                Format::Apache,
                r#"%v %h %l %u %t "%r" %>s %b %D"#.to_string(),
            ),
        ] {
            let d = decoder(format, Some(&layout), None);
            let mut line = String::new();
            let ts = parse_rfc3339(b"2026-11-24T10:00:00.123Z").unwrap();
            d.render(
                &Render {
                    ts,
                    service: "api",
                    status: 503,
                    latency_us: 12_345,
                    method: "GET",
                    path: "/v1",
                },
                &mut line,
            );
            let e = d
                .decode_with(line.as_bytes(), &mut DayCache::default())
                .unwrap();
            assert_eq!((e.service.as_ref(), e.error), ("api", true), "{line}");
            assert!((e.ts - ts).abs() < MICROS_PER_SEC, "{line}");
            assert!(
                (e.latency_us.unwrap() as i64 - 12_345).abs() <= 500,
                "{line}"
            );
        }
    }

    #[test]
    fn a_cached_clf_day_is_the_uncached_one() {
        let mut cache = DayCache::default();
        for t in [
            "10/Oct/2000:13:55:36 -0700",
            "10/Oct/2000:23:59:59 -0700",
            "10/Oct/2000:23:59:59 +0200",
            "11/Oct/2000:00:00:00 +0200",
            "10/Oct/2000:00:00:01 +0200",
            "31/Dec/1999:23:59:60 +0000",
            "10/Oct/2000:13:61:36 -0700",
            "29/Feb/2001:13:55:36 -0700",
            "10/Oct/2000:13:55:36 -0700",
        ] {
            let want = parse_rfc3339(
                format!(
                    "{}-{:02}-{}T{}{}:{}",
                    &t[7..11],
                    month_number(&t.as_bytes()[3..6]).unwrap(),
                    &t[0..2],
                    &t[12..20],
                    &t[21..24],
                    &t[24..26]
                )
                .as_bytes(),
            );
            let got = clf_time_cached(t.as_bytes(), &mut cache);
            assert_eq!(got, clf_time(t.as_bytes()), "{t}");
            if !t.contains(":61:") && !t.starts_with("29/Feb/2001") && !t.contains(":60 ") {
                assert_eq!(got, want, "{t}");
            }
        }
    }

    #[test]
    fn clf_time_parses_with_its_offset() {
        assert_eq!(
            clf_time(b"10/Oct/2000:13:55:36 -0700"),
            parse_rfc3339(b"2000-10-10T13:55:36-07:00")
        );
        assert_eq!(clf_time(b"31/Feb/2000:13:55:36 -0700"), None);
        assert_eq!(clf_time(b"10/Foo/2000:13:55:36 -0700"), None);
    }

    /// The example of Apache's log documentation, in `common`.
    #[test]
    fn apache_common_from_its_documentation() {
        let d = decoder(Format::Apache, Some("common"), Some("www"));
        let e = d
            .decode_with(br#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#, &mut DayCache::default())
            .unwrap();
        assert_eq!(e.ts, parse_rfc3339(b"2000-10-10T20:55:36Z").unwrap());
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("www", false, None)
        );
        assert!(!d.has_latency());
    }

    #[test]
    fn apache_with_latency_and_host() {
        let d = decoder(
            Format::Apache,
            Some(r#"%{Host}i %h %l %u %t "%r" %>s %b %D"#),
            None,
        );
        let e = d
            .decode_with(br#"shop.example 10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "POST /cart HTTP/1.1" 503 12 2500"#, &mut DayCache::default())
            .unwrap();
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("shop.example", true, Some(2500))
        );
        let ms = decoder(Format::Apache, Some(r#"%v %t %>s %{ms}T"#), None);
        let e = ms
            .decode_with(
                b"api [10/Oct/2000:13:55:36 +0000] 200 42",
                &mut DayCache::default(),
            )
            .unwrap();
        assert_eq!(e.latency_us, Some(42_000));
    }

    /// nginx's `combined`, from its documentation, plus `$request_time`.
    #[test]
    fn nginx_combined_and_request_time() {
        let d = decoder(Format::Nginx, None, Some("web"));
        let line = br#"192.168.1.2 - - [24/Nov/2026:10:00:00 +0000] "GET /index.html HTTP/1.1" 304 0 "-" "Mozilla/5.0 (X11; Linux x86_64)""#;
        let e = d.decode_with(line, &mut DayCache::default()).unwrap();
        assert_eq!(e.ts, parse_rfc3339(b"2026-11-24T10:00:00Z").unwrap());
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("web", false, None)
        );

        let fmt = r#"$host $remote_addr [$time_local] "$request" $status $body_bytes_sent $request_time "$upstream_response_time""#;
        let d = decoder(Format::Nginx, Some(fmt), None);
        let e = d
            .decode_with(br#"api.example 10.1.1.1 [24/Nov/2026:10:00:00 +0100] "GET /v1 HTTP/2.0" 502 10 0.250 "0.100, 0.120 : 0.005""#, &mut DayCache::default())
            .unwrap();
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("api.example", true, Some(250_000))
        );
    }

    /// The example line of Envoy's access-log documentation, in its default
    /// format; and Istio's default, whose service is the upstream cluster.
    #[test]
    fn envoy_and_istio_defaults() {
        let d = decoder(Format::Envoy, None, None);
        let e = d
            .decode_with(br#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80""#, &mut DayCache::default())
            .unwrap();
        assert_eq!(e.ts, parse_rfc3339(b"2016-04-15T20:17:00.310Z").unwrap());
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("locations", false, Some(226_000))
        );
        let istio = decoder(Format::Envoy, Some("istio"), None);
        let e = istio
            .decode_with(br#"[2020-11-25T21:26:18.409Z] "GET /status/418 HTTP/1.1" 418 - via_upstream - "-" 0 135 4 4 "-" "curl/7.73.0-DEV" "84961386-6d84-929d-98bd-c5aee93b5c88" "httpbin:8000" "10.44.1.27:80" outbound|8000||httpbin.foo.svc.cluster.local 10.44.1.23:37652 10.0.45.184:8000 10.44.1.23:46520 - default"#, &mut DayCache::default())
            .unwrap();
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            (
                "outbound|8000||httpbin.foo.svc.cluster.local",
                false,
                Some(4_000)
            )
        );
        // 0: the downstream went away before a response: an error.
        let e = d
            .decode_with(br#"[2016-04-15T20:17:00.310Z] "POST /api HTTP/2" 0 DC 154 0 3 - "-" "-" "-" "locations" "-""#, &mut DayCache::default())
            .unwrap();
        assert!(e.error);
    }

    /// An empty variable leaves two spaces in a row; the field is empty,
    /// not a mismatch.
    #[test]
    fn a_double_space_from_an_empty_field() {
        let d = decoder(
            Format::Nginx,
            Some("$host $upstream_addr [$time_local] $status"),
            None,
        );
        let e = d
            .decode_with(
                b"web  [24/Nov/2026:10:00:00 +0000] 200",
                &mut DayCache::default(),
            )
            .unwrap();
        assert_eq!((e.service.as_ref(), e.error), ("web", false));
    }

    /// `--service-field` names the layout field that carries the service.
    #[test]
    fn service_field_picks_a_layout_field() {
        let cfg = |format, layout: &str, field: &str| InputConfig {
            format,
            log_format: Some(layout.into()),
            fields: crate::spec::config::FieldOverrides {
                service: Some(field.into()),
                ..Default::default()
            },
            ..InputConfig::default()
        };
        let d = TextDecoder::new(&cfg(
            Format::Nginx,
            "$host [$time_local] $status $http_x_service",
            "$http_x_service",
        ))
        .unwrap();
        let e = d
            .decode_with(
                b"web.example [24/Nov/2026:10:00:00 +0000] 200 cart",
                &mut DayCache::default(),
            )
            .unwrap();
        assert_eq!(e.service, "cart");
        let d = TextDecoder::new(&cfg(
            Format::Apache,
            r#"%v %t %>s "%{X-Service}i""#,
            "%{x-service}i",
        ))
        .unwrap();
        let e = d
            .decode_with(
                br#"www [24/Nov/2026:10:00:00 +0000] 200 "orders""#,
                &mut DayCache::default(),
            )
            .unwrap();
        assert_eq!(e.service, "orders");
        let d = TextDecoder::new(&cfg(
            Format::Envoy,
            "[%START_TIME%] %RESPONSE_CODE% %REQ(X-SERVICE)%",
            "%REQ(X-SERVICE)%",
        ))
        .unwrap();
        let e = d
            .decode_with(
                b"[2026-11-24T10:00:00.000Z] 200 pay",
                &mut DayCache::default(),
            )
            .unwrap();
        assert_eq!(e.service, "pay");
        let err = TextDecoder::new(&cfg(Format::Nginx, "$host [$time_local] $status", "$nope"))
            .unwrap_err();
        assert!(err.contains("has no such field"), "{err}");
    }

    #[test]
    fn upstream_response_time_lists_are_summed() {
        let fmt = r#"$host [$time_iso8601] $status $upstream_response_time"#;
        let d = decoder(Format::Nginx, Some(fmt), None);
        let e = d
            .decode_with(
                b"a [2026-11-24T10:00:00+00:00] 200 0.010, 0.020 : 0.005",
                &mut DayCache::default(),
            )
            .unwrap();
        assert_eq!(e.latency_us, Some(35_000));
        let e = d
            .decode_with(
                b"a [2026-11-24T10:00:00+00:00] 504 -",
                &mut DayCache::default(),
            )
            .unwrap();
        assert_eq!((e.latency_us, e.error), (None, true));
    }

    #[test]
    fn mismatches_and_bad_fields_are_counted_by_reason() {
        let d = decoder(Format::Nginx, None, Some("web"));
        let reason = |l: &[u8]| {
            d.decode_with(l, &mut DayCache::default())
                .unwrap_err()
                .reason
        };
        assert_eq!(reason(b"hello world"), Reason::FormatMismatch);
        assert_eq!(reason(br#"1.2.3.4 - - [24/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "ua" trailing"#), Reason::FormatMismatch);
        assert_eq!(
            reason(br#"1.2.3.4 - - [yesterday] "GET / HTTP/1.1" 200 0 "-" "ua""#),
            Reason::BadTimestamp
        );
        assert_eq!(
            reason(br#"1.2.3.4 - - [24/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 2x0 0 "-" "ua""#),
            Reason::BadStatus
        );
    }

    #[test]
    fn format_strings_are_checked_when_compiled() {
        let err = |f: Format, s: &str| {
            TextDecoder::new(&InputConfig {
                format: f,
                log_format: Some(s.into()),
                ..InputConfig::default()
            })
            .unwrap_err()
        };
        assert!(err(Format::Nginx, "$remote_addr $status").contains("no time field"));
        assert!(err(Format::Nginx, "[$time_local] $status").contains("give --service"));
        assert!(
            err(Format::Nginx, "$host [$time_local]$status$request_time")
                .contains("follow each other")
        );
        assert!(err(Format::Apache, "%h %t %>s %{%d}t").contains("not supported"));
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        const NGINX: &[u8] = br#"api 10.0.0.1 - [24/Nov/2026:10:00:00 +0000] "GET /v1 HTTP/1.1" 200 512 0.013 "0.010, 0.002""#;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]
            #[test]
            fn text_decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
                let nginx = decoder(Format::Nginx, Some(r#"$host $remote_addr - [$time_local] "$request" $status $body_bytes_sent $request_time "$upstream_response_time""#), None);
                let apache = decoder(Format::Apache, Some(r#"%v %h %l %t "%r" %>s %b %D"#), None);
                let envoy = decoder(Format::Envoy, Some("istio"), None);
                let mut mutated = NGINX.to_vec();
                let i = pos.index(mutated.len());
                mutated[i] = byte;
                let short = &NGINX[..cut.index(NGINX.len() + 1)];
                for line in [&bytes[..], &mutated[..], short] {
                    let _ = nginx.decode_with(line, &mut DayCache::default());
                    let _ = apache.decode_with(line, &mut DayCache::default());
                    let _ = envoy.decode_with(line, &mut DayCache::default());
                }
                prop_assert!(nginx.decode_with(NGINX, &mut DayCache::default()).is_ok());
            }
        }
    }
}
