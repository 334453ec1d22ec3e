//! Corrections (DESIGN §4): windows of planned maintenance or known bad
//! data, one-off or recurring, per service and SLO. Events and slices
//! inside one count for no SLO (they are counted apart as excluded), live
//! and in replay, so they spend no budget and fire no alert; a replay
//! applies them to the past.
//!
//! Recurrence is a subset of RFC 5545's RRULE, enough for maintenance
//! windows: `FREQ=DAILY|WEEKLY|MONTHLY`, `INTERVAL`, `BYDAY` (weekly),
//! `COUNT`, `UNTIL`; anything else is an error that says so. Occurrences
//! repeat the first window's start and length in UTC.

use std::sync::Arc;

use jiff::civil::Weekday;

use super::yaml::{Located, Node};
use super::Errors;
use crate::model::{parse_rfc3339, Micros, Span};

const DAY: Micros = 86_400_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct Correction {
    /// `None`: every service (`"*"`).
    pub services: Option<Vec<String>>,
    /// `None`: every SLO of those services.
    pub slos: Option<Vec<String>>,
    /// The first window: `[start, start + length)`.
    pub start: Micros,
    pub length: Micros,
    pub rule: Option<Rule>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub freq: Freq,
    pub interval: i64,
    /// Weekly: the days, Monday first (default: the start's).
    pub by_day: Vec<Weekday>,
    /// No window starts after this.
    pub until: Option<Micros>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    Daily,
    Weekly,
    Monthly,
}

impl Correction {
    pub fn applies_to_service(&self, name: &str) -> bool {
        self.services
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == name))
    }

    pub fn applies_to_slo(&self, name: &str) -> bool {
        self.slos
            .as_ref()
            .is_none_or(|s| s.iter().any(|n| n == name))
    }

    /// The window starts in `[lo, hi]`, in order.
    fn starts_between(&self, lo: Micros, hi: Micros) -> Vec<Micros> {
        let mut out = Vec::new();
        let Some(rule) = &self.rule else {
            if (lo..=hi).contains(&self.start) {
                out.push(self.start);
            }
            return out;
        };
        let hi = rule.until.map_or(hi, |u| hi.min(u));
        let lo = lo.max(self.start);
        if lo > hi {
            return out;
        }
        match rule.freq {
            Freq::Daily => {
                let step = rule.interval * DAY;
                let mut k = (lo - self.start).div_euclid(step);
                loop {
                    let s = self.start + k * step;
                    if s > hi {
                        break;
                    }
                    if s >= lo {
                        out.push(s);
                    }
                    k += 1;
                }
            }
            Freq::Weekly => {
                // Weeks from the Monday of the start's week, at the start's
                // time of day.
                let day0 = self.start.div_euclid(DAY) * DAY;
                let tod = self.start - day0;
                let monday0 = day0 - weekday_of(day0).to_monday_zero_offset() as i64 * DAY;
                let step = rule.interval * 7 * DAY;
                let mut w = (lo - tod - monday0).div_euclid(step).max(0);
                loop {
                    let monday = monday0 + w * step;
                    if monday + tod > hi {
                        break;
                    }
                    for d in &rule.by_day {
                        let s = monday + d.to_monday_zero_offset() as i64 * DAY + tod;
                        if s >= lo && s <= hi {
                            out.push(s);
                        }
                    }
                    w += 1;
                }
            }
            Freq::Monthly => {
                let Ok(first) = jiff::Timestamp::from_microsecond(self.start) else {
                    return out;
                };
                let first = first.to_zoned_datetime(jiff::tz::TimeZone::UTC).datetime();
                let lo_months = months_between(self.start, lo) - 1;
                let mut k = (lo_months.max(0) / rule.interval) * rule.interval;
                loop {
                    let y = first.year() as i64 + (first.month() as i64 - 1 + k) / 12;
                    let m = (first.month() as i64 - 1 + k) % 12 + 1;
                    k += rule.interval;
                    // A month without the day (the 31st) has no window.
                    let Ok(dt) = jiff::civil::DateTime::new(
                        y as i16,
                        m as i8,
                        first.day(),
                        first.hour(),
                        first.minute(),
                        first.second(),
                        first.subsec_nanosecond(),
                    ) else {
                        if y > 9000 {
                            break;
                        }
                        continue;
                    };
                    let Ok(z) = dt.to_zoned_datetime(jiff::tz::TimeZone::UTC) else {
                        break;
                    };
                    let s = z.timestamp().as_microsecond();
                    if s > hi {
                        break;
                    }
                    if s >= lo {
                        out.push(s);
                    }
                }
            }
        }
        out
    }

    /// Whether `ts` lies in one of its windows, and the time until which
    /// that answer holds (the next window's start or the current one's
    /// end; a later time only asks again).
    pub fn state_at(&self, ts: Micros) -> (bool, Micros) {
        let covering = self.starts_between(ts.saturating_sub(self.length - 1), ts);
        if let Some(end) = covering.iter().map(|s| s + self.length).max() {
            return (true, end);
        }
        let horizon = match &self.rule {
            None => Micros::MAX,
            Some(r) => {
                let step = match r.freq {
                    Freq::Daily => r.interval * DAY,
                    Freq::Weekly => r.interval * 7 * DAY,
                    Freq::Monthly => r.interval * 31 * DAY,
                };
                ts.saturating_add(2 * step)
            }
        };
        let next = self
            .starts_between(ts + 1, horizon)
            .first()
            .copied()
            .unwrap_or(horizon);
        (false, next)
    }
}

fn weekday_of(day_start: Micros) -> Weekday {
    // 1970-01-01 was a Thursday.
    let days = day_start.div_euclid(DAY);
    Weekday::Thursday.wrapping_add(days.rem_euclid(7))
}

/// Whole months from `a` to `b` (UTC), roughly: enough to start a search.
fn months_between(a: Micros, b: Micros) -> i64 {
    (b - a).div_euclid(31 * DAY)
}

/// Parses `FREQ=WEEKLY;BYDAY=SU;…` for a correction starting at `start`.
fn parse_rule(text: &str, start: Micros, length: Micros) -> Result<Rule, String> {
    let mut freq = None;
    let mut interval = 1;
    let mut by_day = Vec::new();
    let mut until = None;
    let mut count = None;
    let text = text.strip_prefix("RRULE:").unwrap_or(text);
    for part in text.split(';').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not NAME=VALUE"))?;
        match k.to_ascii_uppercase().as_str() {
            "FREQ" => {
                freq = Some(match v.to_ascii_uppercase().as_str() {
                    "DAILY" => Freq::Daily,
                    "WEEKLY" => Freq::Weekly,
                    "MONTHLY" => Freq::Monthly,
                    other => {
                        return Err(format!(
                            "FREQ={other} is not supported: slate repeats corrections DAILY, WEEKLY or MONTHLY"
                        ))
                    }
                })
            }
            "INTERVAL" => {
                interval = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| format!("INTERVAL={v}: give a whole number from 1"))?
            }
            "BYDAY" => {
                for d in v.split(',') {
                    by_day.push(match d.to_ascii_uppercase().as_str() {
                        "MO" => Weekday::Monday,
                        "TU" => Weekday::Tuesday,
                        "WE" => Weekday::Wednesday,
                        "TH" => Weekday::Thursday,
                        "FR" => Weekday::Friday,
                        "SA" => Weekday::Saturday,
                        "SU" => Weekday::Sunday,
                        other => {
                            return Err(format!(
                                "BYDAY={other}: give days as MO, TU, WE, TH, FR, SA, SU (without a number)"
                            ))
                        }
                    });
                }
            }
            "COUNT" => {
                count = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=100_000).contains(n))
                        .ok_or_else(|| format!("COUNT={v}: give a whole number from 1"))?,
                )
            }
            "UNTIL" => {
                until = Some(parse_until(v).ok_or_else(|| {
                    format!("UNTIL={v}: give a time as 20261231T000000Z or RFC 3339")
                })?)
            }
            other => {
                return Err(format!(
                    "{other} is not supported: slate reads FREQ, INTERVAL, BYDAY, COUNT and UNTIL"
                ))
            }
        }
    }
    let freq = freq.ok_or("no FREQ: give FREQ=DAILY, WEEKLY or MONTHLY")?;
    if !by_day.is_empty() && freq != Freq::Weekly {
        return Err("BYDAY goes with FREQ=WEEKLY only".into());
    }
    if count.is_some() && until.is_some() {
        return Err("give COUNT or UNTIL, not both".into());
    }
    if by_day.is_empty() && freq == Freq::Weekly {
        by_day.push(weekday_of(start.div_euclid(DAY) * DAY));
    }
    by_day.sort_by_key(|d| d.to_monday_zero_offset());
    by_day.dedup();
    let mut rule = Rule {
        freq,
        interval,
        by_day,
        until,
    };
    if let Some(n) = count {
        // COUNT windows from the start: the last one's start is the UNTIL.
        let c = Correction {
            services: None,
            slos: None,
            start,
            length,
            rule: Some(rule.clone()),
            reason: String::new(),
        };
        let mut hi = start;
        let mut found = Vec::new();
        while found.len() < n {
            let step = 366 * DAY * interval;
            found = c.starts_between(start, hi + step);
            hi += step;
            if hi - start > 2_000 * 366 * DAY {
                break;
            }
        }
        rule.until = found.get(n - 1).copied().or(found.last().copied());
    }
    Ok(rule)
}

/// `20261231T000000Z` (RFC 5545) or RFC 3339.
fn parse_until(v: &str) -> Option<Micros> {
    if let Some(t) = parse_rfc3339(v.as_bytes()) {
        return Some(t);
    }
    let b = v.as_bytes();
    if b.len() == 16 && b[8] == b'T' && b[15] == b'Z' {
        let iso = format!(
            "{}-{}-{}T{}:{}:{}Z",
            &v[0..4],
            &v[4..6],
            &v[6..8],
            &v[9..11],
            &v[11..13],
            &v[13..15]
        );
        return parse_rfc3339(iso.as_bytes());
    }
    if b.len() == 8 && b.iter().all(u8::is_ascii_digit) {
        let iso = format!("{}-{}-{}T23:59:59Z", &v[0..4], &v[4..6], &v[6..8]);
        return parse_rfc3339(iso.as_bytes());
    }
    None
}

const KEYS: &[&str] = &[
    "services", "slos", "start", "end", "duration", "rrule", "reason",
];

/// The top-level `corrections:` list; `known` says whether a service and
/// an SLO of it are in the spec (services, then SLOs by name).
pub(crate) fn parse(
    node: &Located,
    errors: &mut Errors,
    known_service: &dyn Fn(&str) -> bool,
    known_slo: &dyn Fn(Option<&[String]>, &str) -> bool,
) -> Vec<Arc<Correction>> {
    let mut out = Vec::new();
    let items = match &node.node {
        Node::Seq(items) => items,
        Node::Null => return out,
        _ => {
            errors.add(
                node.line,
                "corrections",
                "must be a list of corrections ({services, start, end | duration, …})",
            );
            return out;
        }
    };
    for (n, item) in items.iter().enumerate() {
        let ctx = format!("corrections[{n}]");
        let Node::Map(entries) = &item.node else {
            errors.add(
                item.line,
                &ctx,
                "a correction is a mapping: services, start, end or duration, and rrule, slos, reason",
            );
            continue;
        };
        let get = |k: &str| entries.iter().find(|(key, _)| key.as_str() == Some(k));
        for (k, _) in entries {
            let key = k.as_str().unwrap_or("");
            if !KEYS.contains(&key) {
                errors.unknown_key(k.line, &format!("{ctx}.{key}"), KEYS, "correction");
            }
        }
        let names = |k: &str| -> Result<Option<Vec<String>>, (usize, String)> {
            let Some((_, v)) = get(k) else {
                return Ok(None);
            };
            match &v.node {
                Node::Scalar(s) if s == "*" => Ok(None),
                Node::Scalar(s) => Ok(Some(vec![s.clone()])),
                Node::Seq(list) => list
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or((x.line, format!("{k}: a list of names")))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                _ => Err((v.line, format!("{k}: a name, a list of names, or \"*\""))),
            }
        };
        let services = match (get("services"), names("services")) {
            (None, _) => {
                errors.add(
                    item.line,
                    &ctx,
                    "no services: name them (services: [api-gateway]) or give \"*\" for all",
                );
                continue;
            }
            (_, Err((line, m))) => {
                errors.add(line, &format!("{ctx}.services"), m);
                continue;
            }
            (_, Ok(s)) => s,
        };
        for s in services.iter().flatten() {
            if !known_service(s) {
                errors.add(
                    get("services").map_or(item.line, |(_, v)| v.line),
                    &format!("{ctx}.services"),
                    format!("{s} is not a service of this spec"),
                );
            }
        }
        let slos = match names("slos") {
            Ok(s) => s,
            Err((line, m)) => {
                errors.add(line, &format!("{ctx}.slos"), m);
                continue;
            }
        };
        for s in slos.iter().flatten() {
            if !known_slo(services.as_deref(), s) {
                errors.add(
                    get("slos").map_or(item.line, |(_, v)| v.line),
                    &format!("{ctx}.slos"),
                    format!("no service of this correction has an SLO named {s}"),
                );
            }
        }
        let time = |k: &str| -> Option<Result<(usize, Micros), (usize, String)>> {
            let (_, v) = get(k)?;
            Some(match v.as_str().and_then(|s| parse_rfc3339(s.as_bytes())) {
                Some(t) => Ok((v.line, t)),
                None => Err((
                    v.line,
                    "give a time as RFC 3339 (2026-11-01T02:00:00Z)".into(),
                )),
            })
        };
        let start = match time("start") {
            Some(Ok((_, t))) => t,
            Some(Err((line, m))) => {
                errors.add(line, &format!("{ctx}.start"), m);
                continue;
            }
            None => {
                errors.add(item.line, &ctx, "no start: give start: RFC 3339 time");
                continue;
            }
        };
        let length = match (time("end"), get("duration")) {
            (Some(_), Some((_, d))) => {
                errors.add(
                    d.line,
                    &format!("{ctx}.duration"),
                    "give end or duration, not both",
                );
                continue;
            }
            (Some(Ok((line, end))), None) => {
                if end <= start {
                    errors.add(
                        line,
                        &format!("{ctx}.end"),
                        "the correction ends before it starts: end must be after start",
                    );
                    continue;
                }
                end - start
            }
            (Some(Err((line, m))), None) => {
                errors.add(line, &format!("{ctx}.end"), m);
                continue;
            }
            (None, Some((_, d))) => match d.as_str().map(Span::parse) {
                Some(Ok(s)) if s.0 > 0 => s.0,
                _ => {
                    errors.add(
                        d.line,
                        &format!("{ctx}.duration"),
                        "give a duration longer than zero, such as 2h",
                    );
                    continue;
                }
            },
            (None, None) => {
                errors.add(item.line, &ctx, "no end: give end (a time) or duration");
                continue;
            }
        };
        let rule = match get("rrule") {
            None => None,
            Some((_, v)) => match v.as_str().map(|r| parse_rule(r, start, length)) {
                Some(Ok(r)) => Some(r),
                Some(Err(m)) => {
                    errors.add(v.line, &format!("{ctx}.rrule"), m);
                    continue;
                }
                None => {
                    errors.add(
                        v.line,
                        &format!("{ctx}.rrule"),
                        "give a rule such as FREQ=WEEKLY;BYDAY=SU",
                    );
                    continue;
                }
            },
        };
        let reason = get("reason")
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_string();
        out.push(Arc::new(Correction {
            services,
            slos,
            start,
            length,
            rule,
            reason,
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Micros {
        parse_rfc3339(s.as_bytes()).unwrap()
    }

    fn weekly(start: &str, len: Micros, rule: &str) -> Correction {
        let start = at(start);
        Correction {
            services: None,
            slos: None,
            start,
            length: len,
            rule: Some(parse_rule(rule, start, len).unwrap()),
            reason: String::new(),
        }
    }

    /// Membership minute by minute against the windows listed by hand.
    fn check(c: &Correction, windows: &[(&str, &str)], from: &str, to: &str) {
        let windows: Vec<(Micros, Micros)> = windows.iter().map(|(a, b)| (at(a), at(b))).collect();
        let mut t = at(from);
        while t < at(to) {
            let want = windows.iter().any(|&(a, b)| a <= t && t < b);
            let (inside, until) = c.state_at(t);
            assert_eq!(inside, want, "at {}", crate::model::format_rfc3339(t));
            assert!(until > t);
            // The answer holds until `until`.
            let mid = t + (until - t) / 2;
            if until < at(to) {
                assert_eq!(windows.iter().any(|&(a, b)| a <= mid && mid < b), want);
            }
            t += 60_000_000;
        }
    }

    #[test]
    fn weekly_windows_on_the_days_given() {
        // Sundays and Wednesdays 02:00–04:00, from Sunday 2026-11-01, three times.
        let c = weekly(
            "2026-11-01T02:00:00Z",
            2 * 3_600_000_000,
            "FREQ=WEEKLY;BYDAY=SU,WE;COUNT=3",
        );
        check(
            &c,
            &[
                ("2026-11-01T02:00:00Z", "2026-11-01T04:00:00Z"),
                ("2026-11-04T02:00:00Z", "2026-11-04T04:00:00Z"),
                ("2026-11-08T02:00:00Z", "2026-11-08T04:00:00Z"),
            ],
            "2026-10-31T00:00:00Z",
            "2026-11-16T00:00:00Z",
        );
    }

    #[test]
    fn daily_every_other_day_until_and_monthly_skipping_short_months() {
        let start = at("2026-11-01T23:30:00Z");
        let c = Correction {
            services: None,
            slos: None,
            start,
            length: 3_600_000_000,
            rule: Some(
                parse_rule("FREQ=DAILY;INTERVAL=2;UNTIL=20261105T235959Z", start, 1).unwrap(),
            ),
            reason: String::new(),
        };
        check(
            &c,
            &[
                ("2026-11-01T23:30:00Z", "2026-11-02T00:30:00Z"),
                ("2026-11-03T23:30:00Z", "2026-11-04T00:30:00Z"),
                ("2026-11-05T23:30:00Z", "2026-11-06T00:30:00Z"),
            ],
            "2026-11-01T00:00:00Z",
            "2026-11-09T00:00:00Z",
        );
        let start = at("2026-10-31T10:00:00Z");
        let m = Correction {
            services: None,
            slos: None,
            start,
            length: 3_600_000_000,
            rule: Some(parse_rule("FREQ=MONTHLY", start, 1).unwrap()),
            reason: String::new(),
        };
        // November has no 31st.
        check(
            &m,
            &[
                ("2026-10-31T10:00:00Z", "2026-10-31T11:00:00Z"),
                ("2026-12-31T10:00:00Z", "2026-12-31T11:00:00Z"),
            ],
            "2026-10-30T00:00:00Z",
            "2027-01-02T00:00:00Z",
        );
    }

    #[test]
    fn rules_that_do_not_parse_say_why() {
        let s = at("2026-11-01T00:00:00Z");
        for (rule, says) in [
            ("FREQ=HOURLY", "not supported"),
            ("FREQ=WEEKLY;BYDAY=1SU", "without a number"),
            ("BYDAY=SU", "no FREQ"),
            ("FREQ=DAILY;BYDAY=SU", "WEEKLY only"),
            ("FREQ=DAILY;BYSETPOS=1", "slate reads FREQ"),
            ("FREQ=DAILY;COUNT=2;UNTIL=20270101", "not both"),
            ("FREQ=DAILY;INTERVAL=0", "whole number"),
            ("weekly", "NAME=VALUE"),
        ] {
            let e = parse_rule(rule, s, 1).unwrap_err();
            assert!(e.contains(says), "{rule}: {e}");
        }
    }
}
