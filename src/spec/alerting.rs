//! Alert windows (DESIGN §5): the multi-window multi-burn-rate pairs, in
//! Sloth's `AlertWindows` shape — `page` and `ticket`, each `quick` and
//! `slow`, each `{budget_percent, long_window, short_window}` — read from
//! `alerting.windows` in slate.yml or `alerting:` per service (or under
//! `defaults:`) in the SLO spec. A tier can be `disable`d; a tier left out
//! keeps Google SRE's pairs.

use super::yaml::{Located, Node};
use super::Errors;
use crate::model::Span;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One pair: it fires while both windows burn at least
/// `budget_fraction × period / long`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlertWindow {
    pub severity: Severity,
    pub long: Span,
    pub short: Span,
    /// The share of the period's budget spent in the long window.
    pub budget_fraction: f64,
}

/// Google SRE's four pairs (the default).
pub const DEFAULT_WINDOWS: [AlertWindow; 4] = [
    pair(Severity::Page, Span::hours(1), Span::mins(5), 0.02),
    pair(Severity::Page, Span::hours(6), Span::mins(30), 0.05),
    pair(Severity::Ticket, Span::days(1), Span::hours(2), 0.10),
    pair(Severity::Ticket, Span::days(3), Span::hours(6), 0.10),
];

const fn pair(severity: Severity, long: Span, short: Span, budget_fraction: f64) -> AlertWindow {
    AlertWindow {
        severity,
        long,
        short,
        budget_fraction,
    }
}

const TIER_KEYS: &[&str] = &["page", "ticket"];
const SPEED_KEYS: &[&str] = &["quick", "slow"];
const PAIR_KEYS: &[&str] = &["budget_percent", "long_window", "short_window"];

/// Alert pairs as written: the tiers given (a tier left out keeps its
/// default pairs, which are dropped rather than refused when longer than
/// a period, as the defaults always are).
#[derive(Debug, Clone, PartialEq)]
pub struct Windows {
    pub pairs: Vec<AlertWindow>,
    /// Bit `Severity as u8`: the tier was written.
    pub written: u8,
}

impl Windows {
    /// The written pairs whose long window exceeds `period`.
    pub fn too_long(&self, period: Span) -> impl Iterator<Item = &AlertWindow> {
        self.pairs
            .iter()
            .filter(move |w| self.written >> w.severity as u8 & 1 == 1 && w.long > period)
    }
}

/// Reads an `AlertWindows` mapping at `path` (`alerting.windows`,
/// `api.alerting`); every error names its line and key. `None` when it
/// had errors.
pub(crate) fn parse_windows(v: &Located, path: &str, errors: &mut Errors) -> Option<Windows> {
    let before = errors.list.len();
    let Node::Map(entries) = &v.node else {
        errors.add(
            v.line,
            path,
            format!(
                "must be a mapping of `page` and `ticket` tiers, each with `quick` and `slow` pairs (or `disable`), found {}",
                v.kind()
            ),
        );
        return None;
    };
    let mut tiers: [Option<Vec<AlertWindow>>; 2] = [None, None];
    for (k, tv) in entries {
        let key = k.as_str().unwrap_or("");
        let severity = match key {
            "page" => Severity::Page,
            "ticket" => Severity::Ticket,
            _ => {
                errors.unknown_key(k.line, &format!("{path}.{key}"), TIER_KEYS, "alert tier");
                continue;
            }
        };
        let tpath = format!("{path}.{key}");
        tiers[severity as usize] = Some(match &tv.node {
            Node::Scalar(s) if s == "disable" || s == "disabled" => Vec::new(),
            Node::Map(m) if m.len() == 1 && m[0].0.as_str() == Some("disable") => {
                match m[0].1.as_str() {
                    Some("true") => Vec::new(),
                    Some("false") => DEFAULT_WINDOWS
                        .iter()
                        .filter(|w| w.severity == severity)
                        .copied()
                        .collect(),
                    _ => {
                        errors.add(
                            m[0].1.line,
                            &format!("{tpath}.disable"),
                            "must be true or false",
                        );
                        continue;
                    }
                }
            }
            Node::Map(m) => {
                let mut pairs = Vec::new();
                for speed in SPEED_KEYS {
                    if !m.iter().any(|(k, _)| k.as_str() == Some(speed)) {
                        errors.add(
                            tv.line,
                            &format!("{tpath}.{speed}"),
                            "missing: a tier has a `quick` and a `slow` pair (or write `disable`)",
                        );
                    }
                }
                for (sk, sv) in m {
                    let skey = sk.as_str().unwrap_or("");
                    let ppath = format!("{tpath}.{skey}");
                    if !SPEED_KEYS.contains(&skey) {
                        errors.unknown_key(sk.line, &ppath, SPEED_KEYS, "alert pair");
                        continue;
                    }
                    if let Some(p) = parse_pair(sv, &ppath, severity, errors) {
                        pairs.push(p);
                    }
                }
                pairs
            }
            _ => {
                errors.add(
                    tv.line,
                    &tpath,
                    "must be a mapping with `quick` and `slow` pairs, or `disable`",
                );
                continue;
            }
        });
    }
    if errors.list.len() > before {
        return None;
    }
    let mut out = Windows {
        pairs: Vec::new(),
        written: 0,
    };
    for (i, sev) in [Severity::Page, Severity::Ticket].into_iter().enumerate() {
        match tiers[i].take() {
            Some(p) => {
                out.pairs.extend(p);
                out.written |= 1 << i;
            }
            None => out
                .pairs
                .extend(DEFAULT_WINDOWS.iter().filter(|w| w.severity == sev)),
        }
    }
    Some(out)
}

fn parse_pair(
    v: &Located,
    path: &str,
    severity: Severity,
    errors: &mut Errors,
) -> Option<AlertWindow> {
    let Node::Map(m) = &v.node else {
        errors.add(
            v.line,
            path,
            "must be a mapping: {budget_percent: 2, long_window: 1h, short_window: 5m}",
        );
        return None;
    };
    let (mut percent, mut long, mut short) = (None, None, None);
    for (k, kv) in m {
        let key = k.as_str().unwrap_or("");
        let kpath = format!("{path}.{key}");
        let Some(value) = kv.as_str() else {
            errors.add(
                kv.line,
                &kpath,
                format!("expected a value, found {}", kv.kind()),
            );
            continue;
        };
        match key {
            "budget_percent" => match value.trim_end_matches('%').parse::<f64>() {
                Ok(p) if p > 0.0 && p <= 100.0 => percent = Some(p),
                _ => errors.add(
                    kv.line,
                    &kpath,
                    format!("`{value}` is not a percentage above 0 and at most 100 (e.g. 2 for 2% of the period's budget)"),
                ),
            },
            "long_window" | "short_window" => match window(value) {
                Ok(w) if key == "long_window" => long = Some((kv.line, w)),
                Ok(w) => short = Some(w),
                Err(msg) => errors.add(kv.line, &kpath, msg),
            },
            _ => errors.unknown_key(k.line, &kpath, PAIR_KEYS, "alert pair"),
        }
    }
    for (missing, key) in [
        (percent.is_none(), "budget_percent"),
        (long.is_none(), "long_window"),
        (short.is_none(), "short_window"),
    ] {
        if missing && !errors.list.iter().any(|e| e.key == format!("{path}.{key}")) {
            errors.add(v.line, &format!("{path}.{key}"), "missing");
        }
    }
    let (percent, (line, long), short) = (percent?, long?, short?);
    if short >= long {
        errors.add(
            line,
            &format!("{path}.long_window"),
            format!("the long window ({long}) must be longer than the short one ({short})"),
        );
        return None;
    }
    Some(AlertWindow {
        severity,
        long,
        short,
        budget_fraction: percent / 100.0,
    })
}

/// A window the rings can hold: from 1m to 90d, a whole number of its
/// slots (10 s up to 1h, 1 min up to 6h, 5 min up to 3d, 1 h beyond).
fn window(value: &str) -> Result<Span, String> {
    let w = Span::parse(value)?;
    if w < Span::mins(1) || w > Span::days(90) {
        return Err(format!("`{value}` must be between 1m and 90d"));
    }
    let slot = crate::model::resolution_for(w);
    if w.0 % slot.0 != 0 {
        return Err(format!(
            "`{value}` must be a whole number of {slot} (a window of this length is counted in {slot} slots)"
        ));
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Result<Vec<AlertWindow>, Vec<(usize, String, String)>> {
        let root = super::super::yaml::parse(text).unwrap();
        let mut errors = Errors::new(Path::new("x.yml"));
        let got = parse_windows(&root, "alerting.windows", &mut errors);
        if errors.list.is_empty() {
            Ok(got.unwrap().pairs)
        } else {
            Err(errors
                .list
                .into_iter()
                .map(|e| (e.line, e.key, e.message))
                .collect())
        }
    }

    #[test]
    fn sloth_shaped_windows_a_disabled_tier_and_a_default_one() {
        let w = parse(
            "page:\n  quick: {budget_percent: 4, long_window: 2h, short_window: 10m}\n  slow: {budget_percent: 10, long_window: 12h, short_window: 1h}\nticket: disable\n",
        )
        .unwrap();
        assert_eq!(
            w,
            vec![
                pair(Severity::Page, Span::hours(2), Span::mins(10), 0.04),
                pair(Severity::Page, Span::hours(12), Span::hours(1), 0.10),
            ]
        );
        let w = parse("ticket:\n  disable: true\n").unwrap();
        assert_eq!(w, DEFAULT_WINDOWS[..2].to_vec(), "page keeps its defaults");
    }

    #[test]
    fn bad_windows_name_their_line_and_key() {
        let e = parse(
            "page:\n  quick: {budget_percent: 0, long_window: 5m, short_window: 1h}\n  slow: {budget_percnt: 5, long_window: 6h, short_window: 30m}\ntickets: disable\n",
        )
        .unwrap_err();
        let keys: Vec<(usize, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
        assert!(
            keys.contains(&(2, "alerting.windows.page.quick.budget_percent")),
            "{e:?}"
        );
        assert!(
            keys.contains(&(3, "alerting.windows.page.slow.budget_percnt")),
            "{e:?}"
        );
        assert!(keys.contains(&(4, "alerting.windows.tickets")), "{e:?}");
        let e = parse("page:\n  quick: {budget_percent: 2, long_window: 5m, short_window: 1h}\n  slow: {budget_percent: 5, long_window: 6h, short_window: 30m}\n").unwrap_err();
        assert!(
            e[0].2.contains("must be longer than the short one"),
            "{e:?}"
        );
        let e = parse("page:\n  quick: {budget_percent: 2, long_window: 3601s, short_window: 5m}\n  slow: {budget_percent: 5, long_window: 6h, short_window: 30m}\n").unwrap_err();
        assert!(e[0].2.contains("whole number of 1m"), "{e:?}");
        let e = parse("page:\n  quick: {budget_percent: 2, long_window: 1h, short_window: 5m}\n")
            .unwrap_err();
        assert_eq!(e[0].1, "alerting.windows.page.slow", "{e:?}");
    }
}
