//! W3C extended log files: IIS and CloudFront. The `#Fields:` header names
//! the columns and may repeat mid-file (IIS starts a new header when it
//! restarts); other `#` lines are comments, not records. Columns are
//! separated by spaces (IIS) or tabs (CloudFront). `time-taken` is in
//! milliseconds in IIS and in seconds in CloudFront, told apart by
//! CloudFront's `x-edge-*` fields. Times are UTC, as both write them.

use super::{service_or_default, status_from, Decoded, Reason, Rejection};
use crate::model::{parse_rfc3339_cached, DayCache};
use crate::spec::config::{InputConfig, StatusSet};

/// The columns of the header in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    date: usize,
    time: usize,
    status: usize,
    time_taken: Option<usize>,
    /// Service columns, best first.
    service: Vec<usize>,
    path: Option<usize>,
    us_per_unit: f64,
    columns: usize,
}

impl Layout {
    /// From `#Fields: date time ...`; `None` when it lacks date, time or
    /// status.
    pub fn parse(header: &[u8]) -> Option<Layout> {
        let text = std::str::from_utf8(header.strip_prefix(b"#Fields:")?).ok()?;
        let names: Vec<String> = text
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        let at = |n: &str| names.iter().position(|x| x == n);
        let service = [
            "x-host-header",
            "cs(host)",
            "cs-host",
            "s-sitename",
            "s-computername",
        ]
        .iter()
        .filter_map(|n| at(n))
        .collect();
        let cloudfront = names.iter().any(|n| n.starts_with("x-edge-"));
        Some(Layout {
            date: at("date")?,
            time: at("time")?,
            status: at("sc-status")?,
            time_taken: at("time-taken"),
            service,
            path: at("cs-uri-stem"),
            us_per_unit: if cloudfront { 1e6 } else { 1e3 },
            columns: names.len(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct W3cDecoder {
    error_statuses: StatusSet,
    default_service: Option<&'static str>,
    constant: bool,
}

impl W3cDecoder {
    pub fn new(cfg: &InputConfig) -> W3cDecoder {
        W3cDecoder {
            error_statuses: cfg.error_statuses.clone(),
            default_service: cfg
                .constant_service
                .as_deref()
                .or(cfg.default_service.as_deref())
                .map(super::interned),
            constant: cfg.constant_service.is_some(),
        }
    }

    pub fn decode_with<'a>(
        &self,
        line: &'a [u8],
        layout: Option<&Layout>,
        days: &mut DayCache,
    ) -> Result<Decoded<'a>, Rejection> {
        let layout = layout.ok_or_else(|| {
            Rejection::new(
                Reason::FormatMismatch,
                "no #Fields: header before this line",
            )
        })?;
        let sep = if memchr::memchr(b'\t', line).is_some() {
            b'\t'
        } else {
            b' '
        };
        let cols: Vec<&[u8]> = line.split(|&b| b == sep).collect();
        if cols.len() != layout.columns {
            return Err(Rejection::new(
                Reason::FormatMismatch,
                format!(
                    "{} columns where #Fields: names {}",
                    cols.len(),
                    layout.columns
                ),
            ));
        }
        let mut stamp = Vec::with_capacity(24);
        stamp.extend_from_slice(cols[layout.date]);
        stamp.push(b'T');
        stamp.extend_from_slice(cols[layout.time]);
        stamp.push(b'Z');
        let ts = parse_rfc3339_cached(&stamp, days)
            .ok_or_else(|| Rejection::new(Reason::BadTimestamp, "date and time do not parse"))?;
        let code = status_from(cols[layout.status])
            .ok_or_else(|| Rejection::new(Reason::BadStatus, "sc-status must be 100–599"))?;
        let latency_us = match layout.time_taken.map(|i| cols[i]) {
            None | Some(b"-") => None,
            Some(v) => {
                let v: f64 = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .filter(|v: &f64| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| {
                        Rejection::new(Reason::BadLatency, "time-taken is not a duration")
                    })?;
                Some((v * layout.us_per_unit).round() as u64)
            }
        };
        let found = if self.constant {
            None
        } else {
            layout
                .service
                .iter()
                .map(|&i| cols[i])
                .find(|v| !v.is_empty() && *v != b"-")
        };
        let service = service_or_default(
            found,
            &self.default_service,
            "no service column (cs(Host), s-sitename, ...): give --service NAME",
        )?;
        Ok(Decoded {
            ts,
            service,
            error: self.error_statuses.contains(code),
            latency_us,
            path: layout
                .path
                .and_then(|i| std::str::from_utf8(cols[i]).ok())
                .filter(|p| *p != "-")
                .map(std::borrow::Cow::Borrowed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_rfc3339;

    fn dec() -> W3cDecoder {
        W3cDecoder::new(&InputConfig::default())
    }

    /// IIS's default W3C fields, as its documentation lists them.
    #[test]
    fn iis_with_its_default_fields() {
        let layout = Layout::parse(b"#Fields: date time s-sitename s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken").unwrap();
        let e = dec()
            .decode_with(b"2019-05-08 00:00:01 W3SVC1 10.0.0.4 GET /default.htm - 80 - 10.0.0.5 Mozilla/5.0+(Windows+NT+10.0) - 500 0 0 15", Some(&layout), &mut DayCache::default())
            .unwrap();
        assert_eq!(e.ts, parse_rfc3339(b"2019-05-08T00:00:01Z").unwrap());
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("W3SVC1", true, Some(15_000))
        );
    }

    /// The example line of CloudFront's standard-log documentation.
    #[test]
    fn cloudfront_in_seconds() {
        let layout = Layout::parse(b"#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len sc-range-start sc-range-end").unwrap();
        let line = "2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.100\tGET\td111111abcdef8.cloudfront.net\t/index.html\t200\t-\tMozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)\t-\t-\tHit\tSOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==\td111111abcdef8.cloudfront.net\thttps\t23\t0.001\t-\tTLSv1.2\tECDHE-RSA-AES128-GCM-SHA256\tHit\tHTTP/2.0\t-\t-\t11040\t0.001\tHit\ttext/html\t78\t-\t-";
        let e = dec()
            .decode_with(line.as_bytes(), Some(&layout), &mut DayCache::default())
            .unwrap();
        assert_eq!(e.ts, parse_rfc3339(b"2019-12-04T21:02:31Z").unwrap());
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("d111111abcdef8.cloudfront.net", false, Some(1_000))
        );
    }

    #[test]
    fn lines_without_a_header_or_with_other_columns_are_mismatches() {
        let d = dec();
        assert_eq!(
            d.decode_with(b"2019-05-08 00:00:01 a 200", None, &mut DayCache::default())
                .unwrap_err()
                .reason,
            Reason::FormatMismatch
        );
        let layout = Layout::parse(b"#Fields: date time s-sitename sc-status").unwrap();
        assert_eq!(
            d.decode_with(
                b"2019-05-08 00:00:01 a 200 extra",
                Some(&layout),
                &mut DayCache::default()
            )
            .unwrap_err()
            .reason,
            Reason::FormatMismatch
        );
        assert!(
            Layout::parse(b"#Fields: c-ip cs-method").is_none(),
            "no date, time or status"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), pos in proptest::prelude::any::<proptest::sample::Index>(), byte in proptest::prelude::any::<u8>()) {
            let layout = Layout::parse(b"#Fields: date time s-sitename cs-uri-stem sc-status time-taken").unwrap();
            let line = b"2019-05-08 00:00:01 W3SVC1 /default.htm 200 15";
            let mut m = line.to_vec();
            let i = pos.index(m.len());
            m[i] = byte;
            let d = dec();
            let _ = d.decode_with(&bytes, Some(&layout), &mut DayCache::default());
            let _ = d.decode_with(&m, Some(&layout), &mut DayCache::default());
            let _ = Layout::parse(&bytes);
        }
    }
}
