//! The deploy-gate verdict: a policy judged against a `services` object
//! (a replay report's, or a running slate's). Fails closed: a service
//! without data blocks; a service or SLO the source does not know is an
//! error, not a pass.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ServiceReport;
use crate::spec::gate::{GateAction, GateCheck, GateMetric, GatePolicy};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateVerdict {
    pub allow: bool,
    pub deploy_enabled: bool,
    pub checks: Vec<CheckVerdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckVerdict {
    pub service: String,
    pub check: String,
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<String>,
    /// The value judged (`null`: no data).
    pub value: Option<f64>,
    /// The SLO that gave it (the worst, when the check names none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_slo: Option<String>,
    /// `pass`, `warn` or `block`.
    pub result: &'static str,
    pub reason: String,
}

/// The value a check looks at and the SLO it comes from, or why there is
/// none (`Ok(None)`: no data).
fn value<'a>(check: &GateCheck, svc: &'a ServiceReport) -> Result<Option<(f64, &'a str)>, String> {
    let slos = &svc.slos.0;
    if slos.is_empty() {
        return Err(format!("service {} has no SLO to judge", check.service));
    }
    let chosen: Vec<_> = match &check.slo {
        Some(name) => match slos.iter().find(|(n, _)| n == name) {
            Some(s) => vec![s],
            None => {
                return Err(format!(
                    "service {} has no SLO `{name}` (it has {})",
                    check.service,
                    slos.iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        },
        None => slos.iter().collect(),
    };
    let values = chosen.iter().filter_map(|(name, s)| {
        let v = match check.metric {
            GateMetric::ErrorBudgetRemaining => s.budget_remaining,
            GateMetric::Attainment => s.attainment,
            GateMetric::BurnRate(w) => {
                let label = w.to_string();
                s.burn_rate
                    .0
                    .iter()
                    .find(|(l, _)| *l == label)
                    .and_then(|(_, b)| *b)
            }
        };
        v.map(|v| (v, name.as_str()))
    });
    let lowest = |a: (f64, &'a str), b: (f64, &'a str)| if b.0 < a.0 { b } else { a };
    let highest = |a: (f64, &'a str), b: (f64, &'a str)| if b.0 > a.0 { b } else { a };
    Ok(match check.metric {
        GateMetric::ErrorBudgetRemaining => values.reduce(lowest),
        GateMetric::BurnRate(_) => values.reduce(highest),
        GateMetric::Attainment => {
            if chosen.len() > 1 {
                return Err(format!(
                    "service {} has {} SLOs: say which with `slo:` ({})",
                    check.service,
                    chosen.len(),
                    chosen
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            values.reduce(lowest)
        }
    })
}

/// A figure for people: four decimals, trailing zeros dropped.
fn short(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Judges every check of `policy` (those of `only`, when given). An error
/// names what the source does not know.
pub fn judge(
    policy: &GatePolicy,
    services: &BTreeMap<String, ServiceReport>,
    only: Option<&str>,
) -> Result<GateVerdict, String> {
    if let Some(name) = only {
        if !services.contains_key(name) {
            return Err(format!("service {name}: the source knows no such service"));
        }
    }
    let mut checks = Vec::new();
    for c in policy
        .checks
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.service))
    {
        let svc = services
            .get(&c.service)
            .ok_or_else(|| format!("service {}: the source knows no such service", c.service))?;
        let v = value(c, svc)?;
        // What a check that does not hold (or has no data) gives.
        let failing = match c.action {
            GateAction::BlockDeploy => "block",
            GateAction::WarnOnly => "warn",
        };
        let (result, reason) = if !policy.deploy_enabled {
            (
                "block",
                "deploy_enabled is false: every deploy is blocked".to_string(),
            )
        } else {
            match v {
                None => (
                    failing,
                    "no data: the service has no events in the window".to_string(),
                ),
                Some((x, slo)) if c.op.holds(x, c.bound) => {
                    ("pass", format!("{} of {slo} is {}", c.metric, short(x)))
                }
                Some((x, slo)) => (
                    failing,
                    format!(
                        "{} of {slo} is {}, not {} {}",
                        c.metric,
                        short(x),
                        c.op.as_str(),
                        c.bound
                    ),
                ),
            }
        };
        checks.push(CheckVerdict {
            service: c.service.clone(),
            check: c.text.clone(),
            action: c.action.as_str(),
            slo: c.slo.clone(),
            value: v.map(|(x, _)| x),
            value_slo: v.map(|(_, slo)| slo.to_string()),
            result,
            reason,
        });
    }
    Ok(GateVerdict {
        allow: policy.deploy_enabled && checks.iter().all(|c| c.result != "block"),
        deploy_enabled: policy.deploy_enabled,
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Ordered, Quantiles, SloReport};
    use std::path::Path;

    fn slo(budget: Option<f64>, burn_1h: Option<f64>) -> SloReport {
        SloReport {
            objective: 0.999,
            attainment: budget.map(|b| 1.0 - (1.0 - b) * 0.001),
            met: budget.map(|b| b >= 0.0),
            budget_consumed: budget.map(|b| 1.0 - b),
            budget_remaining: budget,
            burn_rate: Ordered(vec![("1h".into(), burn_1h)]),
            good: 0,
            total: 0,
            coverage: None,
            excluded: 0,
        }
    }

    fn service(slos: Vec<(&str, SloReport)>) -> ServiceReport {
        ServiceReport {
            requests: 1,
            errors: 0,
            error_rate: Some(0.0),
            throughput_rps: None,
            latency_ms: Quantiles {
                p50: None,
                p95: None,
                p99: None,
            },
            freshness_s: None,
            slos: Ordered(slos.into_iter().map(|(n, s)| (n.to_string(), s)).collect()),
            alerts: Vec::new(),
            incidents: Vec::new(),
            calendar: Ordered::default(),
            period: None,
            period_timezone: None,
            last_event: None,
        }
    }

    fn policy(text: &str) -> GatePolicy {
        GatePolicy::parse(Path::new("g.yml"), text).unwrap()
    }

    #[test]
    fn verdicts_take_the_worst_slo_and_fail_closed() {
        let mut services = BTreeMap::new();
        services.insert(
            "api".to_string(),
            service(vec![
                ("latency_p99", slo(Some(0.5), Some(0.4))),
                ("error_rate", slo(Some(0.15), Some(3.0))),
            ]),
        );
        services.insert(
            "quiet".to_string(),
            service(vec![("error_rate", slo(None, None))]),
        );
        let p = policy(
            "checks:\n  - service: api\n    check: error_budget_remaining > 0.2\n    action: block_deploy\n  - service: api\n    check: burn_rate_1h < 2\n    action: warn_only\n  - service: api\n    check: error_budget_remaining > 0.4\n    slo: latency_p99\n    action: block_deploy\n",
        );
        let v = judge(&p, &services, None).unwrap();
        assert!(!v.allow);
        let results: Vec<_> = v.checks.iter().map(|c| (c.result, c.value)).collect();
        assert_eq!(
            results,
            [
                ("block", Some(0.15)),
                ("warn", Some(3.0)),
                ("pass", Some(0.5))
            ]
        );
        // Warnings alone allow.
        let warn = policy(
            "checks:\n  - service: api\n    check: burn_rate_1h < 2\n    action: warn_only\n",
        );
        assert!(judge(&warn, &services, None).unwrap().allow);
        // No data blocks.
        let q = policy("checks:\n  - service: quiet\n    check: error_budget_remaining > 0\n    action: block_deploy\n");
        let v = judge(&q, &services, None).unwrap();
        assert_eq!((v.allow, v.checks[0].value), (false, None));
        // Deploys disabled: everything blocks.
        let off = policy("deploy_enabled: false\nchecks:\n  - service: api\n    check: burn_rate_1h < 10\n    action: warn_only\n");
        assert!(!judge(&off, &services, None).unwrap().allow);
        // Unknown service, unknown SLO, ambiguous attainment: errors.
        let unknown = policy(
            "checks:\n  - service: nope\n    check: attainment > 0.9\n    action: block_deploy\n",
        );
        assert!(judge(&unknown, &services, None)
            .unwrap_err()
            .contains("no such service"));
        assert!(judge(&p, &services, Some("nope")).is_err());
        let ambiguous = policy(
            "checks:\n  - service: api\n    check: attainment > 0.9\n    action: block_deploy\n",
        );
        assert!(judge(&ambiguous, &services, None)
            .unwrap_err()
            .contains("say which"));
        // Only one service's checks.
        let v = judge(&p, &services, Some("api")).unwrap();
        assert_eq!(v.checks.len(), 3);
    }
}
