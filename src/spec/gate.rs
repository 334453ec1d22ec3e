//! The deploy-gate policy: the seed's `deploy-gate.yml`, as-is.
//!
//! ```yaml
//! deploy_enabled: true
//! checks:
//!   - service: api-gateway
//!     check: error_budget_remaining > 0.2
//!     action: block_deploy
//!   - service: user-service
//!     check: burn_rate_1h < 2
//!     action: warn_only
//!     slo: error_rate        # optional: one SLO instead of the worst
//! ```

use std::fmt;
use std::path::Path;

use super::yaml::{Located, Node};
use super::{Errors, SpecErrors};
use crate::model::{Span, BURN_WINDOWS};

/// What a check looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GateMetric {
    /// The lowest over the service's SLOs (or the one named).
    ErrorBudgetRemaining,
    /// The highest over the SLOs (or the one named), over this window.
    BurnRate(Span),
    /// One SLO's attainment (`slo:` needed when the service has several).
    Attainment,
}

impl fmt::Display for GateMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GateMetric::ErrorBudgetRemaining => f.write_str("error_budget_remaining"),
            GateMetric::BurnRate(w) => write!(f, "burn_rate_{w}"),
            GateMetric::Attainment => f.write_str("attainment"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateOp {
    Gt,
    Ge,
    Lt,
    Le,
}

impl GateOp {
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            GateOp::Gt => value > bound,
            GateOp::Ge => value >= bound,
            GateOp::Lt => value < bound,
            GateOp::Le => value <= bound,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            GateOp::Gt => ">",
            GateOp::Ge => ">=",
            GateOp::Lt => "<",
            GateOp::Le => "<=",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAction {
    BlockDeploy,
    WarnOnly,
}

impl GateAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GateAction::BlockDeploy => "block_deploy",
            GateAction::WarnOnly => "warn_only",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GateCheck {
    pub service: String,
    pub metric: GateMetric,
    pub op: GateOp,
    pub bound: f64,
    pub action: GateAction,
    pub slo: Option<String>,
    /// The check as written, for verdicts.
    pub text: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GatePolicy {
    pub deploy_enabled: bool,
    pub checks: Vec<GateCheck>,
}

const TOP_KEYS: &[&str] = &["deploy_enabled", "checks"];
const CHECK_KEYS: &[&str] = &["service", "check", "action", "slo"];
const METRICS: &[&str] = &[
    "error_budget_remaining",
    "attainment",
    "burn_rate_5m",
    "burn_rate_30m",
    "burn_rate_1h",
    "burn_rate_2h",
    "burn_rate_6h",
    "burn_rate_1d",
    "burn_rate_3d",
];

/// `METRIC OP NUMBER`.
pub fn parse_check(text: &str) -> Result<(GateMetric, GateOp, f64), String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [metric, op, number] = parts[..] else {
        return Err(format!(
            "`{text}`: write METRIC OP NUMBER, e.g. `error_budget_remaining > 0.2`"
        ));
    };
    let metric = match metric {
        "error_budget_remaining" => GateMetric::ErrorBudgetRemaining,
        "attainment" => GateMetric::Attainment,
        m => match m.strip_prefix("burn_rate_").map(Span::parse) {
            Some(Ok(w)) if BURN_WINDOWS.contains(&w) => GateMetric::BurnRate(w),
            _ => {
                let hint = super::yaml::closest(m, METRICS.iter().copied())
                    .map_or(String::new(), |c| format!("; did you mean `{c}`?"));
                return Err(format!(
                    "`{m}` is not a gate metric (error_budget_remaining, attainment, burn_rate_<5m|30m|1h|2h|6h|1d|3d>){hint}"
                ));
            }
        },
    };
    let op = match op {
        ">" => GateOp::Gt,
        ">=" => GateOp::Ge,
        "<" => GateOp::Lt,
        "<=" => GateOp::Le,
        o => return Err(format!("`{o}` is not a comparison (>, >=, <, <=)")),
    };
    let bound = number
        .parse::<f64>()
        .ok()
        .filter(|b| b.is_finite())
        .ok_or_else(|| format!("`{number}` is not a number"))?;
    Ok((metric, op, bound))
}

impl GatePolicy {
    pub fn load(path: &Path) -> Result<GatePolicy, SpecErrors> {
        let text = super::read_file(path)?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<GatePolicy, SpecErrors> {
        let root = super::parse_yaml(path, text)?;
        let mut errors = Errors::new(path);
        let mut policy = GatePolicy {
            deploy_enabled: true,
            checks: Vec::new(),
        };
        let Node::Map(top) = &root.node else {
            errors.add(
                root.line,
                "",
                "a gate policy is a mapping with deploy_enabled and checks",
            );
            return errors.finish(policy);
        };
        for (k, v) in top {
            let key = k.as_str().unwrap_or("");
            match key {
                "deploy_enabled" => match v.as_str() {
                    Some("true") => policy.deploy_enabled = true,
                    Some("false") => policy.deploy_enabled = false,
                    _ => errors.add(v.line, key, "must be true or false"),
                },
                "checks" => match &v.node {
                    Node::Seq(items) => {
                        for item in items {
                            if let Some(c) = check(item, &mut errors) {
                                policy.checks.push(c);
                            }
                        }
                    }
                    Node::Null => {}
                    _ => errors.add(v.line, key, "must be a list of checks"),
                },
                other => errors.unknown_key(k.line, other, TOP_KEYS, "gate policy"),
            }
        }
        errors.finish(policy)
    }
}

fn check(item: &Located, errors: &mut Errors) -> Option<GateCheck> {
    let Node::Map(entries) = &item.node else {
        errors.add(
            item.line,
            "checks",
            "each check is a mapping: service, check, action (and optionally slo)",
        );
        return None;
    };
    let (mut service, mut parsed, mut action, mut slo, mut text) = (None, None, None, None, None);
    for (k, v) in entries {
        let key = k.as_str().unwrap_or("");
        let path = format!("checks.{key}");
        let Some(value) = v.as_str() else {
            if CHECK_KEYS.contains(&key) {
                errors.add(
                    v.line,
                    &path,
                    format!("expected a value, found {}", v.kind()),
                );
            } else {
                errors.unknown_key(k.line, key, CHECK_KEYS, "check");
            }
            continue;
        };
        match key {
            "service" => service = Some(value.to_string()),
            "slo" => slo = Some(value.to_string()),
            "check" => match parse_check(value) {
                Ok(p) => {
                    parsed = Some(p);
                    text = Some(value.to_string());
                }
                Err(m) => errors.add(v.line, &path, m),
            },
            "action" => match value {
                "block_deploy" => action = Some(GateAction::BlockDeploy),
                "warn_only" => action = Some(GateAction::WarnOnly),
                a => errors.add(
                    v.line,
                    &path,
                    format!("`{a}` is not an action (block_deploy, warn_only)"),
                ),
            },
            other => errors.unknown_key(k.line, other, CHECK_KEYS, "check"),
        }
    }
    let before = errors.list.len();
    if service.is_none() {
        errors.add(
            item.line,
            "checks.service",
            "a check needs the service it is about",
        );
    }
    if parsed.is_none() && !entries.iter().any(|(k, _)| k.as_str() == Some("check")) {
        errors.add(
            item.line,
            "checks.check",
            "a check needs `check: METRIC OP NUMBER`",
        );
    }
    if action.is_none() && !entries.iter().any(|(k, _)| k.as_str() == Some("action")) {
        errors.add(
            item.line,
            "checks.action",
            "a check needs an action (block_deploy or warn_only)",
        );
    }
    if errors.list.len() > before {
        return None;
    }
    let (metric, op, bound) = parsed?;
    Some(GateCheck {
        service: service?,
        metric,
        op,
        bound,
        action: action?,
        slo,
        text: text?,
        line: item.line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_policy_loads_as_is() {
        let p = GatePolicy::parse(
            Path::new("deploy-gate.yml"),
            "deploy_enabled: true\nchecks:\n  - service: api-gateway\n    check: error_budget_remaining > 0.2\n    action: block_deploy\n  - service: user-service\n    check: error_budget_remaining > 0.1\n    action: warn_only\n",
        )
        .unwrap();
        assert!(p.deploy_enabled);
        assert_eq!(p.checks.len(), 2);
        assert_eq!(p.checks[0].metric, GateMetric::ErrorBudgetRemaining);
        assert_eq!(p.checks[0].op, GateOp::Gt);
        assert_eq!(p.checks[0].bound, 0.2);
        assert_eq!(p.checks[1].action, GateAction::WarnOnly);
    }

    #[test]
    fn every_error_has_its_line_and_key() {
        let err = GatePolicy::parse(
            Path::new("g.yml"),
            "deploy_enabeld: true\nchecks:\n  - service: api\n    check: burn_rate_7m > 1\n    action: block\n  - check: attainment >= 0.99\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("g.yml:1: `deploy_enabeld`: unknown gate policy key; did you mean `deploy_enabled`?"), "{err}");
        assert!(
            err.contains("g.yml:4: `checks.check`: `burn_rate_7m` is not a gate metric"),
            "{err}"
        );
        assert!(
            err.contains("g.yml:5: `checks.action`: `block` is not an action"),
            "{err}"
        );
        assert!(
            err.contains("g.yml:6: `checks.service`: a check needs the service"),
            "{err}"
        );
        assert!(
            err.contains("g.yml:6: `checks.action`: a check needs an action"),
            "{err}"
        );
        assert_eq!(
            parse_check("burn_rate_1h <= 14.4").unwrap(),
            (GateMetric::BurnRate(Span::hours(1)), GateOp::Le, 14.4)
        );
        assert!(parse_check("attainment > ").is_err());
    }
}
