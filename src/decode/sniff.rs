//! `--format auto`: try every known format on an input's first lines and
//! pick the one that reads the most of them, saying which and why. Too
//! few lines read by any format is an error that asks for `--format`.

use super::{Decoder, LineContext};
use crate::spec::config::{Envelope, Format, InputConfig};

/// Candidates in order of preference when several read the same lines.
const CANDIDATES: &[(Format, Option<&str>)] = &[
    (Format::Json, None),
    (Format::NginxJson, None),
    (Format::EnvoyJson, None),
    (Format::Ecs, None),
    (Format::Traefik, None),
    (Format::Caddy, None),
    (Format::W3c, None),
    (Format::Alb, None),
    (Format::Elb, None),
    (Format::Haproxy, None),
    (Format::Envoy, Some("istio")),
    (Format::Envoy, Some("default")),
    (Format::Nginx, Some("main")),
    (Format::Nginx, Some("combined")),
    (Format::Apache, Some("combined")),
    (Format::Apache, Some("common")),
];

/// The service a candidate without one reads lines with while sniffing.
const STAND_IN: &str = "-";

/// Lines of the sample that are looked at.
pub const SAMPLE_LINES: usize = 50;

/// What sniffing found: the input settings to use and a sentence for the
/// user.
#[derive(Debug, Clone)]
pub struct Sniffed {
    pub input: InputConfig,
    pub why: String,
}

/// A format's `--format` name, with its layout when it has one.
pub fn name(format: Format, layout: Option<&str>) -> String {
    let base = Format::NAMES
        .iter()
        .copied()
        .find(|n| Format::parse(n).ok() == Some(format))
        .unwrap_or("?");
    match layout {
        // A layout of the user's own is too long to repeat.
        Some(l) if l.len() <= 16 => format!("{base} ({l})"),
        _ => base.to_string(),
    }
}

/// Whether `cfg` leaves something to sniff: `--format auto`, `--envelope
/// auto`, or `--format envoy` without a layout (default or Istio's).
pub fn wanted(cfg: &InputConfig) -> bool {
    cfg.format == Format::Auto
        || cfg.envelope() == Envelope::Auto
        || (cfg.format == Format::Envoy && cfg.log_format.is_none())
}

/// Picks a format (and envelope) for `sample` (the first bytes of an
/// input), where `cfg` leaves them to sniff. `cfg` is the user's input
/// section; what it fixes is kept.
pub fn sniff(sample: &[u8], cfg: &InputConfig) -> Result<Sniffed, String> {
    let lines: Vec<&[u8]> = sample
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.trim_ascii().is_empty())
        .take(SAMPLE_LINES)
        .collect();
    if lines.is_empty() {
        return Err("--format auto: the input has no lines to look at; give --format".into());
    }
    let envelopes: Vec<Envelope> = match cfg.envelope() {
        Envelope::Auto => Envelope::CONCRETE.to_vec(),
        e => vec![e],
    };
    let envoy_only = [
        (Format::Envoy, Some("istio")),
        (Format::Envoy, Some("default")),
    ];
    let given = [(cfg.format, None)];
    let formats: &[(Format, Option<&str>)] = match cfg.format {
        Format::Auto => CANDIDATES,
        Format::Envoy if cfg.log_format.is_none() => &envoy_only,
        _ => &given,
    };
    // (lines read, of them with a service of their own, records, envelope,
    // format, layout): a shape that finds the service in the lines beats
    // one that reads them only with the stand-in (Caddy's lines are also
    // generic JSON, with no `service`). Ties keep the earlier candidate:
    // bare lines before any envelope.
    // Then, among envelopes, the one whose own time is where it keeps it
    // (Vector's `timestamp`, Filebeat's `@timestamp`: both hold `message`).
    type Best<'l> = (
        usize,
        usize,
        usize,
        usize,
        Envelope,
        Format,
        Option<&'l str>,
    );
    let mut best: Option<Best> = None;
    for &envelope in &envelopes {
        for &(format, layout) in formats {
            let mut try_cfg = InputConfig {
                format,
                envelope: Some(envelope),
                log_format: layout
                    .map(str::to_string)
                    .or_else(|| cfg.log_format.clone().filter(|_| format.is_text())),
                ..cfg.clone()
            };
            // A layout without a service still shows whether lines fit it.
            let stand_in = try_cfg.constant_service.is_none() && try_cfg.default_service.is_none();
            if stand_in {
                try_cfg.default_service = Some(STAND_IN.into());
            }
            let Ok(decoder) = Decoder::new(&try_cfg) else {
                continue;
            };
            let mut ctx = LineContext::default();
            let (mut records, mut ok, mut own) = (0, 0, 0);
            let timed = lines
                .iter()
                .filter(|l| decoder.envelope_has_own_time(decoder.trim_record(l)))
                .count();
            for (i, line) in lines.iter().enumerate() {
                decoder.decode_record(
                    decoder.trim_record(line),
                    &mut ctx,
                    (i as u64, (0, 0)),
                    &mut |d| {
                        records += 1;
                        if let Ok(d) = d {
                            ok += 1;
                            own += (!stand_in || d.service != STAND_IN) as usize;
                        }
                    },
                );
            }
            if best.is_none_or(|(b, bo, bt, ..)| (ok, own, timed) > (b, bo, bt)) {
                best = Some((ok, own, timed, records, envelope, format, layout));
            }
        }
    }
    let what = |envelope: Envelope, format, layout| {
        let mut parts = Vec::new();
        if cfg.envelope() == Envelope::Auto {
            parts.push(match envelope {
                Envelope::None => "--envelope auto: the lines are bare".to_string(),
                e => format!("--envelope auto: found {}", e.name()),
            });
        }
        if formats.len() > 1 {
            parts.push(format!(
                "--format {}: picked {}",
                if cfg.format == Format::Auto {
                    "auto"
                } else {
                    "envoy"
                },
                name(format, layout)
            ));
        }
        parts.join("; ")
    };
    match best {
        Some((ok, own, _, records, envelope, format, layout)) if ok > 0 && ok * 2 >= records => {
            let input = InputConfig {
                format,
                envelope: Some(envelope),
                log_format: layout.map(str::to_string).or_else(|| cfg.log_format.clone()),
                ..cfg.clone()
            };
            Ok(Sniffed {
                why: format!(
                    "{}: {ok} of the first {records} lines read as it{}",
                    what(envelope, format, layout),
                    if own == 0 && cfg.constant_service.is_none() && cfg.default_service.is_none() {
                        "; they name no service: give --service NAME (or --service-field)"
                    } else {
                        ""
                    }
                ),
                input,
            })
        }
        Some((ok, _, _, records, envelope, format, layout)) => Err(format!(
            "{}: no format reads these lines (at best {}{} read {ok} of {records}); give --format (and --log-format for nginx, apache or envoy){}",
            if cfg.format == Format::Auto { "--format auto" } else { "--envelope auto" },
            name(format, layout),
            match envelope {
                Envelope::None => String::new(),
                e => format!(" inside {}", e.name()),
            },
            if cfg.envelope() == Envelope::Auto { " or --envelope" } else { "" },
        )),
        None => Err("--format auto: no format reads these lines; give --format".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto() -> InputConfig {
        InputConfig {
            format: Format::Auto,
            ..InputConfig::default()
        }
    }

    fn picked(sample: &str) -> (Format, Option<String>) {
        let s = sniff(sample.as_bytes(), &auto()).unwrap();
        (s.input.format, s.input.log_format)
    }

    /// Every candidate is named by its `--format` name, never `?`.
    #[test]
    fn every_candidate_has_its_name() {
        for &(format, layout) in CANDIDATES {
            let n = name(format, layout);
            assert!(!n.starts_with('?'), "{format:?}");
            let base = n.split(' ').next().unwrap();
            assert_eq!(Format::parse(base), Ok(format));
        }
    }

    #[test]
    fn picks_each_format_from_its_own_lines() {
        assert_eq!(
            picked(r#"{"ts":"2026-11-24T10:00:00Z","service":"a","status":200}"#).0,
            Format::Json
        );
        assert_eq!(picked(r#"{"time_iso8601":"2026-11-24T10:00:00+00:00","host":"a","status":"200","request_time":"0.1"}"#).0, Format::NginxJson);
        assert_eq!(picked(r#"{"StartUTC":"2026-11-24T10:00:00Z","DownstreamStatus":200,"Duration":1000,"ServiceName":"a"}"#).0, Format::Traefik);
        assert_eq!(
            picked(
                r#"1.2.3.4 - - [24/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8""#
            ),
            (Format::Nginx, Some("combined".into()))
        );
        assert_eq!(
            picked(
                r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#
            ),
            (Format::Apache, Some("common".into()))
        );
        assert_eq!(
            picked(r#"Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} "GET /index.html HTTP/1.1""#).0,
            Format::Haproxy
        );
        assert_eq!(picked("#Software: Microsoft Internet Information Services 10.0\n#Fields: date time s-sitename sc-status time-taken\n2026-11-24 10:00:00 W3SVC1 200 15\n").0, Format::W3c);
        assert_eq!(
            picked(
                r#"[2016-04-15T20:17:00.310Z] "POST /api/v1/locations HTTP/2" 204 - 154 0 226 100 "10.0.35.28" "nsq2http" "cc21d9b0-cf5c-432b-8c7e-98aeb7988cd2" "locations" "tcp://10.0.2.1:80""#
            ),
            (Format::Envoy, Some("default".into()))
        );
    }

    #[test]
    fn unsure_is_an_error() {
        let e = sniff(b"hello world\nthis is not a log\n", &auto()).unwrap_err();
        assert!(e.contains("give --format"), "{e}");
        assert!(sniff(b"\n\n", &auto()).unwrap_err().contains("no lines"));
    }
}
