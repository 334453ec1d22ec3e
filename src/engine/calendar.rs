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

/// One calendar day of a service: `[start, end)` in microseconds (a day is
/// 23 or 25 hours across a DST change), and per SLO (total, bad).
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub start: Micros,
    pub end: Micros,
    pub counts: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CalendarDays {
    tz: TimeZone,
    slos: usize,
    /// Days with counts, oldest first.
    days: Vec<Day>,
    /// The day the last lookup found.
    last: usize,
}

impl CalendarDays {
    pub fn new(tz: TimeZone, slos: usize) -> CalendarDays {
        CalendarDays {
            tz,
            slos,
            days: Vec::new(),
            last: 0,
        }
    }

    pub fn days(&self) -> &[Day] {
        &self.days
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The counts of the day holding `ts`, made if it has none yet; `None`
    /// only for a time the time zone cannot place (out of jiff's range).
    #[inline]
    pub fn day_mut(&mut self, ts: Micros) -> Option<&mut Vec<(u64, u64)>> {
        let hit = self
            .days
            .get(self.last)
            .is_some_and(|d| d.start <= ts && ts < d.end);
        if hit {
            return Some(&mut self.days[self.last].counts);
        }
        self.find_day(ts)
    }

    /// The day holding `ts` when it is not the last one found.
    #[cold]
    fn find_day(&mut self, ts: Micros) -> Option<&mut Vec<(u64, u64)>> {
        let k = self.days.partition_point(|d| d.end <= ts);
        if self.days.get(k).is_none_or(|d| d.start > ts) {
            let (start, end) = day_bounds(&self.tz, ts)?;
            self.days.insert(
                k,
                Day {
                    start,
                    end,
                    counts: vec![(0, 0); self.slos],
                },
            );
        }
        self.last = k;
        Some(&mut self.days[k].counts)
    }

    /// Adds to SLO `i` of the day holding `ts`: `total` occurrences and
    /// `bad` bad ones (negative: a slice judged again as good).
    pub fn add(&mut self, ts: Micros, i: usize, total: u64, bad: i64) {
        if let Some(c) = self.day_mut(ts).and_then(|d| d.get_mut(i)) {
            c.0 += total;
            c.1 = c.1.saturating_add_signed(bad);
        }
    }

    /// The ISO week (`2026-W40`) and month (`2026-10`) a day belongs to.
    pub fn labels(&self, day: &Day) -> (String, String) {
        let Ok(t) = Timestamp::from_microsecond(day.start) else {
            return (String::from("?"), String::from("?"));
        };
        let date = t.to_zoned_datetime(self.tz.clone()).date();
        let w = date.iso_week_date();
        (
            format!("{:04}-W{:02}", w.year(), w.week()),
            format!("{:04}-{:02}", date.year(), date.month()),
        )
    }
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
        let d = c.days();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].start, at("2026-10-23T22:00:00Z"));
        assert_eq!(d[0].counts, vec![(1, 0)]);
        assert_eq!(
            (d[1].start, d[1].end),
            (at("2026-10-24T22:00:00Z"), at("2026-10-25T23:00:00Z"))
        );
        assert_eq!(d[1].counts, vec![(2, 1)]);
        assert_eq!(c.labels(&d[1]), ("2026-W43".into(), "2026-10".into()));
    }

    #[test]
    fn iso_weeks_cross_years_and_slices_judged_again_move_their_day() {
        let mut c = CalendarDays::new(TimeZone::UTC, 2);
        c.add(at("2027-01-01T10:00:00Z"), 1, 1, 1);
        c.add(at("2027-01-01T10:00:00Z"), 1, 0, -1);
        let d = &c.days()[0];
        assert_eq!(d.counts, vec![(0, 0), (1, 0)]);
        // 2027-01-01 is a Friday of ISO week 53 of 2026.
        assert_eq!(c.labels(d), ("2026-W53".into(), "2027-01".into()));
    }
}
