//! HAProxy HTTP logs (`option httplog`), with or without the syslog
//! prefix. Service = backend name; latency = the last timer (`Tt` in the
//! old `Tq/Tw/Tc/Tr/Tt` layout, `Ta` in the newer `TR/Tw/Tc/Tr/Ta`);
//! a timer of `-1` means that phase never ran: a `-1` total leaves the
//! event without a latency, and a status of `-1` (no response) is an
//! error. The accept date has no zone: `--timezone` gives it (UTC).

use std::borrow::Cow;

use super::{service_from, status_from, Decoded, Reason, Rejection};
use crate::model::{days_from_civil, days_in_month, Micros, MICROS_PER_SEC};
use crate::spec::config::{InputConfig, StatusSet, Timezone};

#[derive(Debug, Clone)]
pub struct HaproxyDecoder {
    error_statuses: StatusSet,
    constant_service: Option<String>,
    /// The zone of the logs' local time.
    timezone: Timezone,
}

/// `06/Feb/2009:12:14:14.655` (local time, no zone) → µs since the epoch.
fn accept_date(s: &[u8], tz: &Timezone) -> Option<Micros> {
    if s.len() < 20
        || s[2] != b'/'
        || s[6] != b'/'
        || s[11] != b':'
        || s[14] != b':'
        || s[17] != b':'
    {
        return None;
    }
    let num = |a: usize, n: usize| -> Option<i64> {
        s.get(a..a + n)?.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)
        })
    };
    let day = num(0, 2)? as u32;
    let month = super::text::month_number(&s[3..6])?;
    let year = num(7, 4)?;
    let (h, m, sec) = (num(12, 2)?, num(15, 2)?, num(18, 2)?);
    if day == 0 || day > days_in_month(year, month) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let mut frac = 0;
    if s.len() > 20 {
        if s[20] != b'.' || s.len() > 27 || s.len() == 21 {
            return None;
        }
        let digits = &s[21..];
        frac = num(21, digits.len())? * 10i64.pow(6 - digits.len() as u32);
    }
    let local = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec;
    let secs = local - tz.offset_at_local(local);
    Some(secs * MICROS_PER_SEC + frac)
}

impl HaproxyDecoder {
    pub fn new(cfg: &InputConfig) -> HaproxyDecoder {
        HaproxyDecoder {
            error_statuses: cfg.error_statuses.clone(),
            constant_service: cfg.constant_service.clone(),
            timezone: cfg.timezone.clone(),
        }
    }

    pub fn decode_line<'a>(&self, line: &'a [u8]) -> Result<Decoded<'a>, Rejection> {
        let mismatch = || Rejection::new(Reason::FormatMismatch, "not a HAProxy HTTP log line");
        // The accept date opens the first ` [` that follows `ip:port`; what
        // comes before (a syslog prefix) does not matter.
        let open = memchr::memmem::find(line, b" [").ok_or_else(mismatch)?;
        let close = open + 2 + memchr::memchr(b']', &line[open + 2..]).ok_or_else(mismatch)?;
        let ts = accept_date(&line[open + 2..close], &self.timezone).ok_or_else(|| {
            Rejection::new(Reason::BadTimestamp, "the accept date does not parse")
        })?;
        let mut rest = line
            .get(close + 2..)
            .ok_or_else(mismatch)?
            .split(|&b| b == b' ');
        let _frontend = rest.next().ok_or_else(mismatch)?;
        let backend_server = rest.next().ok_or_else(mismatch)?;
        let timers = rest.next().ok_or_else(mismatch)?;
        let status = rest.next().ok_or_else(mismatch)?;
        // HTTP logs have five timers; TCP logs three, and no status.
        let t: Vec<&[u8]> = timers.split(|&b| b == b'/').collect();
        if t.len() != 5 {
            return Err(mismatch());
        }
        let total = t[4].strip_prefix(b"+").unwrap_or(t[4]);
        let total: i64 = std::str::from_utf8(total)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Rejection::new(Reason::BadLatency, "the total timer is not a number"))?;
        let latency_us = match total {
            -1 => None,
            ms if ms >= 0 => Some(ms as u64 * 1000),
            _ => {
                return Err(Rejection::new(
                    Reason::BadLatency,
                    "the total timer is negative",
                ))
            }
        };
        let error = match status {
            b"-1" => true,
            s => {
                let code = status_from(s).ok_or_else(|| {
                    Rejection::new(Reason::BadStatus, "status must be 100–599 or -1")
                })?;
                self.error_statuses.contains(code)
            }
        };
        let service: Cow<'a, str> = match &self.constant_service {
            Some(s) => Cow::Owned(s.clone()),
            None => {
                let backend = backend_server
                    .split(|&b| b == b'/')
                    .next()
                    .unwrap_or(backend_server);
                Cow::Borrowed(service_from(backend)?)
            }
        };
        // The request line is the last quoted field.
        let path = line
            .iter()
            .rposition(|&b| b == b'"')
            .and_then(|end| {
                line[..end]
                    .iter()
                    .rposition(|&b| b == b'"')
                    .map(|start| &line[start + 1..end])
            })
            .and_then(super::request_path)
            .map(Cow::Borrowed);
        Ok(Decoded {
            ts,
            service,
            error,
            latency_us,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_rfc3339;

    fn dec(utc_offset: i64) -> HaproxyDecoder {
        HaproxyDecoder::new(&InputConfig {
            timezone: Timezone::Fixed(utc_offset),
            ..InputConfig::default()
        })
    }

    /// The `option httplog` example of HAProxy's configuration manual, with
    /// its syslog prefix.
    #[test]
    fn documentation_example_with_syslog_prefix() {
        let line = br#"Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#;
        let e = dec(0).decode_line(line).unwrap();
        assert_eq!(e.ts, parse_rfc3339(b"2009-02-06T12:14:14.655Z").unwrap());
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("static", false, Some(109_000))
        );
    }

    /// The manual's example of a client that aborted (timers of -1, status -1),
    /// without the syslog prefix, in a zone two hours east of UTC.
    #[test]
    fn minus_one_timers_and_status() {
        let line = br#"10.0.1.2:33320 [06/Feb/2009:12:14:14.655] http-in static/srv1 9/0/-1/-1/10 -1 0 - - CR-- 2/2/2/2/0 0/0 "" "#;
        let e = dec(2 * 3600).decode_line(line).unwrap();
        assert_eq!(e.ts, parse_rfc3339(b"2009-02-06T10:14:14.655Z").unwrap());
        assert_eq!((e.error, e.latency_us), (true, Some(10_000)));
        let never = br#"10.0.1.2:33320 [06/Feb/2009:12:14:14.655] http-in static/srv1 9/0/-1/-1/-1 503 0 - - sC-- 2/2/2/2/0 0/0 "GET / HTTP/1.1""#;
        let e = dec(0).decode_line(never).unwrap();
        assert_eq!((e.error, e.latency_us), (true, None));
    }

    /// A named zone follows its daylight-saving rules: Paris is UTC+1 in
    /// February and UTC+2 in July.
    #[test]
    fn named_zones_follow_daylight_saving() {
        let paris = HaproxyDecoder::new(&InputConfig {
            timezone: crate::spec::config::parse_timezone("Europe/Paris").unwrap(),
            ..InputConfig::default()
        });
        let at = |date: &str| {
            let line = format!("10.0.1.2:1 [{date}] fe be/srv 1/0/1/1/2 200 1 - - ---- 1/1/1/1/0 0/0 \"GET / HTTP/1.1\"");
            paris.decode_line(line.as_bytes()).unwrap().ts
        };
        assert_eq!(
            at("06/Feb/2009:12:14:14.655"),
            parse_rfc3339(b"2009-02-06T11:14:14.655Z").unwrap()
        );
        assert_eq!(
            at("06/Jul/2009:12:14:14.655"),
            parse_rfc3339(b"2009-07-06T10:14:14.655Z").unwrap()
        );
    }

    #[test]
    fn tcp_logs_and_garbage_are_mismatches() {
        let tcp = br#"Feb  6 12:12:56 localhost haproxy[14387]: 10.0.1.2:33313 [06/Feb/2009:12:12:51.443] fnt bck/srv1 0/0/5007 212 -- 0/0/0/0/3 0/0"#;
        assert_eq!(
            dec(0).decode_line(tcp).unwrap_err().reason,
            Reason::FormatMismatch
        );
        assert_eq!(
            dec(0).decode_line(b"hello").unwrap_err().reason,
            Reason::FormatMismatch
        );
        let bad_date = br#"10.0.1.2:1 [06/Fbb/2009:12:14:14.655] a b/c 1/2/3/4/5 200 1"#;
        assert_eq!(
            dec(0).decode_line(bad_date).unwrap_err().reason,
            Reason::BadTimestamp
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), pos in proptest::prelude::any::<proptest::sample::Index>(), byte in proptest::prelude::any::<u8>()) {
            let line = br#"Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#;
            let mut m = line.to_vec();
            let i = pos.index(m.len());
            m[i] = byte;
            let _ = dec(0).decode_line(&bytes);
            let _ = dec(0).decode_line(&m);
        }
    }
}
