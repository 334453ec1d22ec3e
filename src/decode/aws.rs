//! AWS load-balancer access logs: Application Load Balancer (`alb`) and
//! Classic ELB (`elb`). Space-separated fields, some in double quotes.
//! Latency is the sum of the three processing times; `-1` in any of them
//! means the request never reached a target: an error without a latency.

use std::borrow::Cow;

use super::{service_from, status_from, Decoded, Reason, Rejection};
use crate::model::{parse_rfc3339_cached, DayCache};
use crate::spec::config::{Format, InputConfig, StatusSet};

#[derive(Debug, Clone)]
pub struct AwsDecoder {
    classic: bool,
    error_statuses: StatusSet,
    constant_service: Option<String>,
}

/// The index of the quote that closes a quoted field whose content
/// starts at `from`: the next `"` not escaped by a backslash (AWS writes a
/// quote inside a user agent as `\"`).
fn closing_quote(line: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let q = at + memchr::memchr(b'"', &line[at..])?;
        let backslashes = line[from..q]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        if backslashes % 2 == 0 {
            return Some(q);
        }
        at = q + 1;
    }
}

/// Splits a line into fields at single spaces; a field that starts with a
/// quote runs to the closing quote ([`closing_quote`]). At most
/// `N` fields are kept; the rest of the line is ignored (AWS adds fields
/// at the end over time).
fn fields<const N: usize>(line: &[u8]) -> Option<([&[u8]; N], usize)> {
    let mut out: [&[u8]; N] = [&[]; N];
    let mut n = 0;
    let mut i = 0;
    while i < line.len() && n < N {
        let (start, end, next) = if line[i] == b'"' {
            let close = closing_quote(line, i + 1)?;
            (i + 1, close, close + 1)
        } else {
            let end = memchr::memchr(b' ', &line[i..]).map_or(line.len(), |p| i + p);
            (i, end, end)
        };
        out[n] = &line[start..end];
        n += 1;
        i = next;
        if i < line.len() {
            if line[i] != b' ' {
                return None;
            }
            i += 1;
        }
    }
    Some((out, n))
}

impl AwsDecoder {
    pub fn new(cfg: &InputConfig) -> AwsDecoder {
        AwsDecoder {
            classic: cfg.format == Format::Elb,
            error_statuses: cfg.error_statuses.clone(),
            constant_service: cfg.constant_service.clone(),
        }
    }

    pub fn decode_with<'a>(
        &self,
        line: &'a [u8],
        days: &mut DayCache,
    ) -> Result<Decoded<'a>, Rejection> {
        let mismatch =
            || Rejection::new(Reason::FormatMismatch, "not an AWS load-balancer log line");
        // ALB lines start with the request type; Classic ELB with the time.
        let (f, n) = fields::<19>(line).ok_or_else(mismatch)?;
        let base = if self.classic { 0 } else { 1 };
        let need = if self.classic { 13 } else { 17 };
        if n < need {
            return Err(mismatch());
        }
        let ts = parse_rfc3339_cached(f[base], days)
            .ok_or_else(|| Rejection::new(Reason::BadTimestamp, "the time field does not parse"))?;
        let mut total = 0f64;
        let mut reached = true;
        for t in &f[base + 4..base + 7] {
            let v: f64 = std::str::from_utf8(t)
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|v: &f64| v.is_finite())
                .ok_or_else(|| {
                    Rejection::new(Reason::BadLatency, "a processing time is not a number")
                })?;
            if v == -1.0 {
                reached = false;
            } else if v < 0.0 {
                return Err(Rejection::new(
                    Reason::BadLatency,
                    "a processing time is negative",
                ));
            } else {
                total += v;
            }
        }
        let status = status_from(f[base + 7])
            .ok_or_else(|| Rejection::new(Reason::BadStatus, "status must be 100–599"))?;
        let service: Cow<'a, str> = match &self.constant_service {
            Some(s) => Cow::Owned(s.clone()),
            None => {
                let raw = if self.classic {
                    f[1]
                } else {
                    target_group(f[16])
                        .or_else(|| (n > 18 && f[18] != b"-").then_some(f[18]))
                        .unwrap_or(f[2])
                };
                Cow::Borrowed(service_from(raw)?)
            }
        };
        Ok(Decoded {
            ts,
            service,
            // A request that reached no target failed, whatever the code.
            error: !reached || self.error_statuses.contains(status),
            latency_us: reached.then(|| (total * 1e6).round() as u64),
            path: super::request_path(f[base + 11]).map(Cow::Borrowed),
        })
    }
}

/// `arn:aws:elasticloadbalancing:...:targetgroup/NAME/ID` → `NAME`.
fn target_group(arn: &[u8]) -> Option<&[u8]> {
    let at = memchr::memmem::find(arn, b"targetgroup/")? + "targetgroup/".len();
    let rest = &arn[at..];
    let end = memchr::memchr(b'/', rest).unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_rfc3339;

    fn dec(format: Format) -> AwsDecoder {
        AwsDecoder::new(&InputConfig {
            format,
            ..InputConfig::default()
        })
    }

    /// The HTTP example of AWS's ALB access-log documentation.
    const ALB: &[u8] = br#"http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-""#;

    #[test]
    fn alb_documentation_example() {
        let e = dec(Format::Alb)
            .decode_with(ALB, &mut DayCache::default())
            .unwrap();
        assert_eq!(e.ts, parse_rfc3339(b"2018-07-02T22:23:00.186641Z").unwrap());
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("my-targets", false, Some(1_000))
        );
    }

    /// AWS's example of a request the load balancer could not send on.
    #[test]
    fn alb_minus_one_means_no_target_and_an_error() {
        let line = br#"https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 - -1 -1 -1 502 - 34 366 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.46.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 - "Root=1-58337262-36d228ad5d99923122bbe354" "www.example.com" "arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" "-" "-" "-" "-""#;
        let e = dec(Format::Alb)
            .decode_with(line, &mut DayCache::default())
            .unwrap();
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("www.example.com", true, None)
        );
    }

    /// The example of AWS's Classic Load Balancer documentation.
    /// A user agent with quotes in it, as AWS writes it (`\"`), is one
    /// field (16 of 666 lines of a real ALB capture had one).
    #[test]
    fn an_escaped_quote_stays_inside_its_field() {
        let line = br#"https 2015-11-07T18:45:33.964284Z elb1 88.231.208.225:54305 10.0.2.143:80 0.000023 0.000356 0.000022 200 200 0 41690 "GET http://example.com:80/?mode=json HTTP/1.1" "Optional(\"Mozilla/5.0 (iPhone)\") (example iOS Application)" - - arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 "Root=1-58337262-36d228ad5d99923122bbe354""#;
        let e = dec(Format::Alb)
            .decode_with(line, &mut DayCache::default())
            .unwrap();
        assert!(!e.error);
        assert_eq!(e.latency_us, Some(401));
        assert_eq!(e.service, "my-targets");
        assert_eq!(
            closing_quote(br#"a\\"b"#, 0),
            Some(3),
            "an escaped backslash does not escape the quote"
        );
        assert_eq!(closing_quote(br#"a\"b"#, 0), None);
    }

    #[test]
    fn classic_elb_documentation_example() {
        let line = br#"2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -"#;
        let e = dec(Format::Elb)
            .decode_with(line, &mut DayCache::default())
            .unwrap();
        assert_eq!(e.ts, parse_rfc3339(b"2015-05-13T23:39:43.945958Z").unwrap());
        assert_eq!(
            (e.service.as_ref(), e.error, e.latency_us),
            ("my-loadbalancer", false, Some(1_178))
        );
    }

    #[test]
    fn broken_lines_are_rejected_by_reason() {
        let d = dec(Format::Alb);
        let reason = |l: &[u8]| {
            d.decode_with(l, &mut DayCache::default())
                .unwrap_err()
                .reason
        };
        assert_eq!(reason(b"hello"), Reason::FormatMismatch);
        assert_eq!(reason(&ALB[..60]), Reason::FormatMismatch);
        let bad_time = [&b"http 2018-13-02T22:23:00Z"[..], &ALB[32..]].concat();
        assert_eq!(reason(&bad_time), Reason::BadTimestamp);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), pos in proptest::prelude::any::<proptest::sample::Index>(), byte in proptest::prelude::any::<u8>()) {
            let mut mutated = ALB.to_vec();
            let i = pos.index(mutated.len());
            mutated[i] = byte;
            for f in [Format::Alb, Format::Elb] {
                let _ = dec(f).decode_with(&bytes, &mut DayCache::default());
                let _ = dec(f).decode_with(&mutated, &mut DayCache::default());
            }
        }
    }
}
