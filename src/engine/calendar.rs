//! Per-day good and total counts of each SLO, days cut in the service's
//! calendar time zone (`period_timezone`, UTC by default), from which a
//! report sums its ISO weeks and months (DESIGN §7, `calendar`): "how
//! reliable were we last month?" for a calendar month, this week against
//! the last.
//!
//! A day is looked up once per event: the day the last event fell in is
//! kept, so only the first event of a day (or a late one) asks the time
//! zone where its day starts.
//!
//! May import `model`.

use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::model::Micros;
pub use crate::spec::slo::CalendarPeriod;

/// One calendar day of a service: `[start, end)` in microseconds (a day is
/// 23 or 25 hours across a DST change), and per SLO (total, bad).
#[derive(Debug, Clone, PartialEq)]
pub struct Day<'a> {
    pub start: Micros,
    pub end: Micros,
    pub counts: &'a [(u32, u32)],
}

/// Kept flat and small, as live keeps about a hundred days of every
/// service: 16 bytes a day and 8 a day per SLO (a day's counts fit in
/// u32: 50,000 events a second for a day).
#[derive(Debug, Clone)]
pub struct CalendarDays {
    tz: TimeZone,
    slos: usize,
    /// Days with counts, oldest first: their bounds, and `slos` counts
    /// each in `counts`.
    bounds: Vec<(Micros, Micros)>,
    counts: Vec<(u32, u32)>,
    /// The day the last lookup found.
    last: usize,
    /// At most this many days are kept (live), the oldest dropped first;
    /// 0 keeps every day (a replay's span).
    keep: usize,
}

/// Serialized as [`SavedDays`], from the days in place (a snapshot pass
/// writes every changed service's).
impl serde::Serialize for CalendarDays {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        struct Counts<'a>(&'a [(u32, u32)]);
        impl serde::Serialize for Counts<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().map(|&(t, b)| (t as u64, b as u64)))
            }
        }
        struct Days<'a>(&'a CalendarDays);
        impl serde::Serialize for Days<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.days().map(|d| (d.start, d.end, Counts(d.counts))))
            }
        }
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(self.tz.iana_name().unwrap_or("UTC"))?;
        t.serialize_element(&Days(self))?;
        t.end()
    }
}

/// Equal when they hold the same days (the lookup cache aside).
impl PartialEq for CalendarDays {
    fn eq(&self, o: &Self) -> bool {
        (&self.tz, self.slos, &self.bounds, &self.counts, self.keep)
            == (&o.tz, o.slos, &o.bounds, &o.counts, o.keep)
    }
}

/// Days as a snapshot saves them: the time zone's name and, per day, its
/// bounds and each SLO's (total, bad).
pub type SavedDays = (String, Vec<(Micros, Micros, Vec<(u64, u64)>)>);

impl CalendarDays {
    pub fn new(tz: TimeZone, slos: usize) -> CalendarDays {
        CalendarDays {
            tz,
            slos,
            bounds: Vec::new(),
            counts: Vec::new(),
            last: 0,
            keep: 0,
        }
    }

    /// Keeps at most `days` days (0: all).
    pub fn keeping(mut self, days: usize) -> CalendarDays {
        self.keep = days;
        self
    }

    pub fn set_keep(&mut self, days: usize) {
        self.keep = days;
    }

    pub fn slos(&self) -> usize {
        self.slos
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    pub fn days(&self) -> impl Iterator<Item = Day<'_>> {
        self.bounds
            .iter()
            .enumerate()
            .map(|(k, &(start, end))| Day {
                start,
                end,
                counts: &self.counts[k * self.slos..(k + 1) * self.slos],
            })
    }

    /// Days as it serializes them ([`SavedDays`]), if they were cut in this
    /// zone for as many SLOs (else they do not fit, and none are taken).
    pub fn restore(&mut self, saved: SavedDays) {
        if self.tz.iana_name().unwrap_or("UTC") != saved.0 {
            return;
        }
        let days = saved.1;
        let fits = days.iter().all(|(s, e, c)| s < e && c.len() == self.slos)
            && days.windows(2).all(|w| w[0].1 <= w[1].0);
        if !fits {
            return;
        }
        self.bounds = days.iter().map(|d| (d.0, d.1)).collect();
        self.counts = days
            .iter()
            .flat_map(|d| d.2.iter().map(|&(t, b)| (clamp(t), clamp(b))))
            .collect();
        self.last = 0;
    }

    /// These days under a reloaded plan: `slos[j]` is the old index of
    /// SLO `j` when it did not change; a new or changed SLO starts with
    /// no counts.
    pub fn replanned(&self, slos: &[Option<usize>]) -> CalendarDays {
        let mut c = CalendarDays::new(self.tz.clone(), slos.len()).keeping(self.keep);
        c.bounds = self.bounds.clone();
        for d in self.days() {
            c.counts.extend(
                slos.iter()
                    .map(|o| o.and_then(|i| d.counts.get(i).copied()).unwrap_or((0, 0))),
            );
        }
        c
    }

    /// The counts of the day holding `ts`, made if it has none yet; `None`
    /// only for a time the time zone cannot place (out of jiff's range),
    /// or a day older than every day kept.
    #[inline]
    pub fn day_mut(&mut self, ts: Micros) -> Option<&mut [(u32, u32)]> {
        let hit = self
            .bounds
            .get(self.last)
            .is_some_and(|&(s, e)| s <= ts && ts < e);
        if hit {
            let k = self.last * self.slos;
            return Some(&mut self.counts[k..k + self.slos]);
        }
        self.find_day(ts)
    }

    /// The day holding `ts` when it is not the last one found.
    #[cold]
    fn find_day(&mut self, ts: Micros) -> Option<&mut [(u32, u32)]> {
        let mut k = self.bounds.partition_point(|&(_, e)| e <= ts);
        if self.bounds.get(k).is_none_or(|&(s, _)| s > ts) {
            let (start, end) = day_bounds(&self.tz, ts)?;
            if self.keep > 0 && self.bounds.len() >= self.keep {
                if k == 0 {
                    // Older than every day kept.
                    return None;
                }
                self.bounds.remove(0);
                self.counts.drain(..self.slos);
                k -= 1;
            }
            self.bounds.insert(k, (start, end));
            let at = k * self.slos;
            self.counts
                .splice(at..at, std::iter::repeat_n((0, 0), self.slos));
        }
        self.last = k;
        let at = k * self.slos;
        Some(&mut self.counts[at..at + self.slos])
    }

    /// Adds to SLO `i` of the day holding `ts`: `total` occurrences and
    /// `bad` bad ones (negative: a slice judged again as good).
    pub fn add(&mut self, ts: Micros, i: usize, total: u32, bad: i32) {
        if let Some(c) = self.day_mut(ts).and_then(|d| d.get_mut(i)) {
            c.0 = c.0.saturating_add(total);
            c.1 = c.1.saturating_add_signed(bad);
        }
    }

    /// SLO `i`'s (total, bad) over the days that start in `[from, to]`.
    pub fn sum(&self, i: usize, from: Micros, to: Micros) -> (u64, u64) {
        let k = self.bounds.partition_point(|&(s, _)| s < from);
        let mut out = (0u64, 0u64);
        for (j, &(s, _)) in self.bounds.iter().enumerate().skip(k) {
            if s > to {
                break;
            }
            if let Some(&(t, b)) = self.counts.get(j * self.slos + i) {
                out.0 += t as u64;
                out.1 += b as u64;
            }
        }
        out
    }

    /// The ISO week (`2026-W40`) and month (`2026-10`) a day belongs to.
    pub fn labels(&self, day: &Day) -> (String, String) {
        let Ok(t) = Timestamp::from_microsecond(day.start) else {
            return (String::from("?"), String::from("?"));
        };
        let date = t.to_zoned_datetime(self.tz.clone()).date();
        (week_label(date), month_label(date))
    }
}

/// One calendar period: `[start, end)` in microseconds, and its length in
/// days (a 31-day month is 31 days, whatever DST does to its hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodBounds {
    pub start: Micros,
    pub end: Micros,
    pub days: i64,
}

impl PeriodBounds {
    /// Its length as the burn-rate thresholds take it.
    pub fn length(&self) -> crate::model::Span {
        crate::model::Span::days(self.days)
    }
}

/// The period holding `ts` in `tz`; `None` out of jiff's range.
pub fn period_bounds(p: CalendarPeriod, tz: &TimeZone, ts: Micros) -> Option<PeriodBounds> {
    use jiff::civil::Date;
    let date = Timestamp::from_microsecond(ts)
        .ok()?
        .to_zoned_datetime(tz.clone())
        .date();
    let (first, days): (Date, i64) = match p {
        CalendarPeriod::Week => {
            let back = date.weekday().to_monday_zero_offset() as i64;
            (date.checked_sub(jiff::Span::new().days(back)).ok()?, 7)
        }
        CalendarPeriod::Month => (date.first_of_month(), date.days_in_month() as i64),
        CalendarPeriod::Quarter => {
            let m = (date.month() - 1) / 3 * 3 + 1;
            let first = Date::new(date.year(), m, 1).ok()?;
            let days = (0..3)
                .map(|k| {
                    first
                        .checked_add(jiff::Span::new().months(k))
                        .map_or(30, |d| d.days_in_month() as i64)
                })
                .sum();
            (first, days)
        }
    };
    let last = first.checked_add(jiff::Span::new().days(days)).ok()?;
    let at = |d: Date| -> Option<Micros> {
        Some(
            d.to_zoned_datetime(tz.clone())
                .ok()?
                .timestamp()
                .as_microsecond(),
        )
    };
    Some(PeriodBounds {
        start: at(first)?,
        end: at(last)?,
        days,
    })
}

/// The ISO week a date belongs to: `2026-W45`.
pub fn week_label(d: jiff::civil::Date) -> String {
    let w = d.iso_week_date();
    format!("{:04}-W{:02}", w.year(), w.week())
}

/// The month a date belongs to: `2026-11`.
pub fn month_label(d: jiff::civil::Date) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

fn clamp(v: u64) -> u32 {
    v.min(u32::MAX as u64) as u32
}

/// The day holding `ts` in `tz`: its first and its next day's first
/// microsecond.
fn day_bounds(tz: &TimeZone, ts: Micros) -> Option<(Micros, Micros)> {
    let z = Timestamp::from_microsecond(ts)
        .ok()?
        .to_zoned_datetime(tz.clone());
    let start = z.start_of_day().ok()?;
    let end = start.tomorrow().ok()?.start_of_day().ok()?;
    Some((
        start.timestamp().as_microsecond(),
        end.timestamp().as_microsecond(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_rfc3339;

    fn at(s: &str) -> Micros {
        parse_rfc3339(s.as_bytes()).unwrap()
    }

    #[test]
    fn days_follow_the_time_zone_and_its_dst_changes() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let mut c = CalendarDays::new(tz, 1);
        // 2026-10-25 is 25 hours long in Berlin (CEST → CET).
        c.add(at("2026-10-24T23:30:00Z"), 0, 1, 1);
        c.add(at("2026-10-25T12:00:00Z"), 0, 1, 0);
        // Late, into the day before.
        c.add(at("2026-10-24T21:59:00Z"), 0, 1, 0);
        let d: Vec<Day> = c.days().collect();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].start, at("2026-10-23T22:00:00Z"));
        assert_eq!(d[0].counts, [(1, 0)]);
        assert_eq!(
            (d[1].start, d[1].end),
            (at("2026-10-24T22:00:00Z"), at("2026-10-25T23:00:00Z"))
        );
        assert_eq!(d[1].counts, [(2, 1)]);
        assert_eq!(c.labels(&d[1]), ("2026-W43".into(), "2026-10".into()));
    }

    #[test]
    fn calendar_periods_start_at_their_boundary_in_their_zone() {
        let utc = TimeZone::UTC;
        let b = period_bounds(CalendarPeriod::Quarter, &utc, at("2026-11-18T12:00:00Z")).unwrap();
        assert_eq!(
            (b.start, b.end, b.days),
            (at("2026-10-01T00:00:00Z"), at("2027-01-01T00:00:00Z"), 92)
        );
        let b = period_bounds(CalendarPeriod::Quarter, &utc, at("2028-02-29T23:59:59Z")).unwrap();
        assert_eq!(
            (b.start, b.days),
            (at("2028-01-01T00:00:00Z"), 91),
            "a leap Q1"
        );
        let b = period_bounds(CalendarPeriod::Month, &utc, at("2027-02-10T00:00:00Z")).unwrap();
        assert_eq!((b.end, b.days), (at("2027-03-01T00:00:00Z"), 28));
        // Sunday 2027-01-03 is in ISO week 53 of 2026, from Monday 12-28.
        let b = period_bounds(CalendarPeriod::Week, &utc, at("2027-01-03T23:00:00Z")).unwrap();
        assert_eq!((b.start, b.days), (at("2026-12-28T00:00:00Z"), 7));
        // Berlin's October is 31 days and one hour (CEST → CET); its
        // thresholds still take 31 days.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let b = period_bounds(CalendarPeriod::Month, &berlin, at("2026-10-31T23:30:00Z")).unwrap();
        assert_eq!(
            (b.start, b.end, b.days),
            (at("2026-10-31T23:00:00Z"), at("2026-11-30T23:00:00Z"), 30),
            "already November in Berlin"
        );
        let b = period_bounds(CalendarPeriod::Month, &berlin, at("2026-10-15T00:00:00Z")).unwrap();
        assert_eq!(b.end - b.start, 31 * 86_400_000_000 + 3_600_000_000);
        assert_eq!(b.length(), crate::model::Span::days(31));
    }

    #[test]
    fn iso_weeks_cross_years_and_slices_judged_again_move_their_day() {
        let mut c = CalendarDays::new(TimeZone::UTC, 2);
        c.add(at("2027-01-01T10:00:00Z"), 1, 1, 1);
        c.add(at("2027-01-01T10:00:00Z"), 1, 0, -1);
        let d = c.days().next().unwrap();
        assert_eq!(d.counts, [(0, 0), (1, 0)]);
        // 2027-01-01 is a Friday of ISO week 53 of 2026.
        assert_eq!(c.labels(&d), ("2026-W53".into(), "2027-01".into()));
    }
}

#[cfg(test)]
mod keep_tests {
    use super::*;

    #[test]
    fn live_keeps_its_latest_days_and_a_snapshot_brings_them_back() {
        const DAY: Micros = 86_400_000_000;
        let t0 = 1_793_491_200_000_000; // 2026-11-01T00:00Z
        let mut c = CalendarDays::new(TimeZone::UTC, 2).keeping(3);
        for d in 0..5 {
            c.add(t0 + d * DAY + 5, 0, 1, 0);
            c.add(t0 + d * DAY + 7, 1, 1, 1);
        }
        let days: Vec<Day> = c.days().collect();
        assert_eq!(days.len(), 3);
        assert_eq!(days[0].start, t0 + 2 * DAY);
        assert!(days.iter().all(|d| d.counts == [(1, 0), (1, 1)]));
        // Older than every day kept: not counted.
        assert!(c.day_mut(t0).is_none());
        let saved: SavedDays = postcard::from_bytes(&postcard::to_allocvec(&c).unwrap()).unwrap();
        let mut back = CalendarDays::new(TimeZone::UTC, 2).keeping(3);
        back.restore(saved.clone());
        assert_eq!(back, c);
        // Another zone's days, or another SLO count's, do not fit.
        let mut other = CalendarDays::new(TimeZone::get("Europe/Berlin").unwrap(), 2);
        other.restore(saved.clone());
        assert_eq!(other.days().count(), 0);
        let mut three = CalendarDays::new(TimeZone::UTC, 3);
        three.restore(saved);
        assert_eq!(three.days().count(), 0);
        // A reload that drops SLO 0 and adds one.
        let re = c.replanned(&[Some(1), None]);
        assert!(re.days().all(|d| d.counts == [(1, 1), (0, 0)]));
    }
}
