//! Plain data shared by every layer: timestamps, durations and the decoded
//! event. No logic beyond parsing and formatting these values.

use std::fmt;

/// Microseconds since the Unix epoch (UTC). Signed, so that bad input far in
/// the past stays representable until it is rejected.
pub type Micros = i64;

pub const MICROS_PER_SEC: i64 = 1_000_000;
pub const MICROS_PER_MIN: i64 = 60 * MICROS_PER_SEC;
pub const MICROS_PER_HOUR: i64 = 60 * MICROS_PER_MIN;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// The burn-rate windows slate evaluates (the report, `slate_burn_rate`,
/// the gate's `burn_rate_<window>`).
pub const BURN_WINDOWS: [Span; 7] = [
    Span::mins(5),
    Span::mins(30),
    Span::hours(1),
    Span::hours(2),
    Span::hours(6),
    Span::days(1),
    Span::days(3),
];

/// Slot resolution for a window (DESIGN §5): 10 s up to 1h, 1 min up to
/// 6h, 5 min up to 3d, 1 h beyond.
pub fn resolution_for(window: Span) -> Span {
    if window <= Span::hours(1) {
        Span::secs(10)
    } else if window <= Span::hours(6) {
        Span::mins(1)
    } else if window <= Span::days(3) {
        Span::mins(5)
    } else {
        Span::hours(1)
    }
}

/// Index of a service in the engine's table. Dense, assigned in order of
/// first appearance (services named in the SLO spec come first).
pub type ServiceId = u32;

/// One access-log event as decoded. `latency_us` is `None` when the record
/// carried no latency: the event then counts for error rate, availability
/// and freshness, not for latency SLIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub ts: Micros,
    pub service: ServiceId,
    pub error: bool,
    pub latency_us: Option<u64>,
}

/// A span of time, kept in microseconds. Parsed from `"200ms"`, `"1.5s"`,
/// `"1h"`, `"30d"`; printed in the shortest exact unit (`"5m"`, `"1d"`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Span(pub i64);

impl Span {
    pub const fn secs(s: i64) -> Span {
        Span(s * MICROS_PER_SEC)
    }
    pub const fn mins(m: i64) -> Span {
        Span(m * MICROS_PER_MIN)
    }
    pub const fn hours(h: i64) -> Span {
        Span(h * MICROS_PER_HOUR)
    }
    pub const fn days(d: i64) -> Span {
        Span(d * MICROS_PER_DAY)
    }
    pub fn micros(self) -> i64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / MICROS_PER_SEC as f64
    }

    /// Parses `NUMBER UNIT` with UNIT one of `us`, `ms`, `s`, `m`, `h`, `d`,
    /// `w`. The number may have a fraction (`1.5s`). Rejects negatives and
    /// a missing unit, which is always a mistake in a config file.
    pub fn parse(text: &str) -> Result<Span, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("`{t}` has no unit: write e.g. `200ms`, `1.5s`, `1h`, `30d`"))?;
        let (num, unit) = t.split_at(split);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("`{t}` is not a duration: write e.g. `200ms`, `1.5s`, `1h`"))?;
        let per = match unit.trim() {
            "us" | "µs" => 1.0,
            "ms" => 1e3,
            "s" => 1e6,
            "m" | "min" => 6e7,
            "h" => 3.6e9,
            "d" => 8.64e10,
            "w" => 6.048e11,
            other => {
                return Err(format!(
                    "`{t}`: unknown unit `{other}` (use us, ms, s, m, h, d or w)"
                ))
            }
        };
        let micros = value * per;
        if !micros.is_finite() || micros > 1e17 {
            return Err(format!("`{t}` is too long"));
        }
        Ok(Span(micros.round() as i64))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0;
        let units = [
            (MICROS_PER_DAY, "d"),
            (MICROS_PER_HOUR, "h"),
            (MICROS_PER_MIN, "m"),
            (MICROS_PER_SEC, "s"),
            (1000, "ms"),
        ];
        for (per, name) in units {
            if us != 0 && us % per == 0 {
                return write!(f, "{}{}", us / per, name);
            }
        }
        write!(f, "{us}us")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The wall clock now, in microseconds since the epoch: for the shells
/// (live, replay's "not after this machine's clock", the HTTP API); the
/// core is handed its times and never reads the clock.
pub fn wall_us() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as Micros)
}

/// Formats a timestamp as RFC 3339 in UTC with millisecond precision
/// (`2026-11-24T10:00:00.123Z`), the form every report uses.
pub fn format_rfc3339(ts: Micros) -> String {
    let days = ts.div_euclid(MICROS_PER_DAY);
    let rem = ts.rem_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / MICROS_PER_SEC;
    let millis = (rem % MICROS_PER_SEC) / 1000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The last date seen by [`parse_rfc3339_cached`]: log lines come in
/// runs of the same day, so the calendar arithmetic is done once per day.
#[derive(Debug, Clone, Copy, Default)]
pub struct DayCache {
    date: [u8; 10],
    days: i64,
    /// Common Log Format: the day and offset (`10/Oct/2000`, `-0700`) and
    /// their seconds since the epoch, when one was seen.
    clf: Option<([u8; 17], i64)>,
}

impl DayCache {
    pub fn clf(&self) -> Option<(&[u8; 17], i64)> {
        self.clf.as_ref().map(|(k, b)| (k, *b))
    }
    pub fn set_clf(&mut self, key: [u8; 17], base: i64) {
        self.clf = Some((key, base));
    }
}

/// Parses RFC 3339 (`2026-11-24T10:00:00.123Z`, `...+02:00`; a space may
/// stand for `T`, and `z` for `Z`). Fractions beyond microseconds are
/// truncated. Hand-rolled: this runs once per event on the hot path.
pub fn parse_rfc3339(s: &[u8]) -> Option<Micros> {
    parse_rfc3339_cached(s, &mut DayCache::default())
}

/// [`parse_rfc3339`] that reuses the day of the previous call when the
/// date is the same.
pub fn parse_rfc3339_cached(s: &[u8], cache: &mut DayCache) -> Option<Micros> {
    fn digits(s: &[u8], at: usize, n: usize) -> Option<i64> {
        let mut v = 0i64;
        for &c in s.get(at..at + n)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as i64;
        }
        Some(v)
    }
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    if !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    let days = if cache.days != 0 && s[..10] == cache.date {
        cache.days
    } else {
        let year = digits(s, 0, 4)?;
        let month = digits(s, 5, 2)? as u32;
        let day = digits(s, 8, 2)? as u32;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        let days = days_from_civil(year, month, day);
        cache.date.copy_from_slice(&s[..10]);
        cache.days = days;
        days
    };
    let hour = digits(s, 11, 2)?;
    let min = digits(s, 14, 2)?;
    let sec = digits(s, 17, 2)?;
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_us = 0i64;
    if s.get(i) == Some(&b'.') || s.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        let mut scale = 100_000i64;
        while let Some(&c) = s.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            frac_us += (c - b'0') as i64 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_secs = match s.get(i)? {
        b'Z' | b'z' if i + 1 == s.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == s.len() && s[i + 3] == b':' => {
            let oh = digits(s, i + 1, 2)?;
            let om = digits(s, i + 4, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    Some(secs * MICROS_PER_SEC + frac_us)
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// A service name must be 1–128 bytes with no control characters.
pub fn valid_service(name: &str) -> bool {
    if name.is_empty() || name.len() > 128 {
        return false;
    }
    // Printable ASCII, in one pass: nearly every name.
    if name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return true;
    }
    !name.chars().any(char::is_control)
}

/// Reads a user-given instant for `--from`, `--to`, `--start`: RFC 3339, or
/// a bare date (`2026-11-24`, midnight UTC).
pub fn parse_instant(text: &str) -> Result<Micros, String> {
    let t = text.trim();
    if let Some(ts) = parse_rfc3339(t.as_bytes()) {
        return Ok(ts);
    }
    if t.len() == 10 {
        if let Some(ts) = parse_rfc3339(format!("{t}T00:00:00Z").as_bytes()) {
            return Ok(ts);
        }
    }
    Err(format!(
        "`{t}` is not a time: write RFC 3339 (`2026-11-24T10:00:00Z`) or a date (`2026-11-24`)"
    ))
}

/// Why a record was rejected. The names are the `reason` label values of
/// `slate_events_rejected_total` and the keys of a report's
/// `rejected_by_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    InvalidJson,
    NotAnObject,
    MissingField,
    WrongType,
    BadTimestamp,
    BadLatency,
    BadStatus,
    BadService,
    TooManyServices,
    TooLate,
    Future,
    LineTooLong,
    FormatMismatch,
    InvalidEnvelope,
}

impl Reason {
    pub const ALL: [Reason; 14] = [
        Reason::InvalidJson,
        Reason::NotAnObject,
        Reason::MissingField,
        Reason::WrongType,
        Reason::BadTimestamp,
        Reason::BadLatency,
        Reason::BadStatus,
        Reason::BadService,
        Reason::TooManyServices,
        Reason::TooLate,
        Reason::Future,
        Reason::LineTooLong,
        Reason::FormatMismatch,
        Reason::InvalidEnvelope,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::NotAnObject => "not_an_object",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::BadLatency => "bad_latency",
            Reason::BadStatus => "bad_status",
            Reason::BadService => "bad_service",
            Reason::TooManyServices => "too_many_services",
            Reason::TooLate => "too_late",
            Reason::Future => "future",
            Reason::LineTooLong => "line_too_long",
            Reason::FormatMismatch => "format_mismatch",
            Reason::InvalidEnvelope => "invalid_envelope",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts per reason, indexed by `Reason::index`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectCounts(pub [u64; Reason::ALL.len()]);

impl RejectCounts {
    pub fn add(&mut self, r: Reason) {
        self.0[r.index()] += 1;
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    pub fn get(&self, r: Reason) -> u64 {
        self.0[r.index()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_handles_offsets() {
        let ts = parse_rfc3339(b"2026-11-24T10:00:00.123Z").unwrap();
        assert_eq!(format_rfc3339(ts), "2026-11-24T10:00:00.123Z");
        let off = parse_rfc3339(b"2026-11-24T12:00:00.123+02:00").unwrap();
        assert_eq!(off, ts);
        assert_eq!(
            parse_rfc3339(b"1970-01-01T00:00:00.000001Z"),
            Some(1),
            "microsecond fraction"
        );
        assert_eq!(
            parse_rfc3339(b"2026-02-29T00:00:00Z"),
            None,
            "not a leap year"
        );
        assert_eq!(parse_rfc3339(b"2026-11-24T10:00:00"), None, "no zone");
        assert_eq!(parse_rfc3339(b"2026-11-24T10:00:00.Z"), None);
    }

    #[test]
    fn the_day_cache_never_changes_a_result() {
        let mut cache = DayCache::default();
        for s in [
            "2026-11-24T10:00:00Z",
            "2026-11-24T23:59:59.999Z",
            "2026-11-25T00:00:00Z",
            "2026-11-25T00:00:00+05:00",
            "2026-11-25T99:00:00Z",
            "2026-02-29T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "1970-01-01T00:00:01Z",
        ] {
            let b = s.as_bytes();
            assert_eq!(parse_rfc3339_cached(b, &mut cache), parse_rfc3339(b), "{s}");
        }
    }

    #[test]
    fn civil_conversion_agrees_over_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn spans_parse_and_print() {
        assert_eq!(Span::parse("200ms").unwrap(), Span(200_000));
        assert_eq!(Span::parse("1.5s").unwrap(), Span(1_500_000));
        assert_eq!(Span::parse("30d").unwrap(), Span::days(30));
        assert!(Span::parse("200").unwrap_err().contains("no unit"));
        assert!(Span::parse("5y").unwrap_err().contains("unknown unit"));
        assert_eq!(Span::mins(5).to_string(), "5m");
        assert_eq!(Span::days(3).to_string(), "3d");
        assert_eq!(Span(1_500_000).to_string(), "1500ms");
    }
}
