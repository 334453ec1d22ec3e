//! `deploy/`: the Prometheus alert rules and the Grafana dashboard name only
//! series slate emits, with labels and label values it gives them — read
//! from an exposition rendered by slate itself, every family present. With
//! promtool (the README's test script), the rules, their unit tests, the
//! scrape config and every dashboard query are checked by Prometheus's own
//! parser too.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use slate::decode::{Reason, RejectCounts};
use slate::engine::{Engine, EngineSettings};
use slate::evaluate::AlertTracker;
use slate::export::prometheus::{render, Exposition};
use slate::export::snapshot::{Counters, KafkaGauges, ReloadState, Snapshot};
use slate::model::{parse_rfc3339, Event, MICROS_PER_SEC};
use slate::spec::SloSpec;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const RULES: &str = "deploy/prometheus/slate-rules.yml";
const DASHBOARD: &str = "deploy/grafana/dashboards/slate-slo.json";

/// Labels Prometheus adds to every series it scrapes, and the series it
/// makes for every target.
const TARGET_LABELS: &[&str] = &["job", "instance"];
const PROMETHEUS_SERIES: &[&str] = &["up"];

/// family → label → values seen, from a real exposition with every family.
type Families = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// The text slate writes for a spec with every kind of SLO.
fn exposition_text(compat: slate::spec::config::Compat) -> String {
    let spec = SloSpec::parse(
        Path::new("slos.yml"),
        "services:\n  api:\n    slo_latency_p99: 200ms\n    slo_error_rate: 99%\n    slo_availability: 99.9%\n  batch:\n    slo_freshness: 1h\n    slo_success_rate: 99%\n",
    )
    .unwrap();
    let mut engine = Engine::new(&spec, EngineSettings::default());
    let t0 = parse_rfc3339(b"2026-11-24T10:00:00Z").unwrap();
    let mut trackers = Vec::new();
    for name in ["api", "batch"] {
        let id = engine.resolve(name).unwrap();
        for i in 0..3600i64 {
            engine.record(&Event {
                ts: t0 + i * MICROS_PER_SEC,
                service: id,
                error: i % 7 == 0,
                latency_us: Some(1_000 + i as u64 * 100),
            });
        }
    }
    let now = t0 + 3600 * MICROS_PER_SEC;
    engine.advance_all(now);
    for (_, s) in engine.services() {
        let mut t = AlertTracker::new(s);
        t.tick(s, now, 0);
        trackers.push(Some(t));
    }
    let mut rejected = RejectCounts::default();
    rejected.add(Reason::InvalidJson);
    let snapshot = Snapshot::take(&engine, &trackers, now, |_| true);
    let counters = Counters::from_engine(&engine, vec![("kafka", 7201)], rejected);
    let kafka = KafkaGauges {
        lag: vec![("logs".into(), 0, 5)],
        spread: vec![("logs".into(), 0)],
        catching_up: vec![("logs".into(), 0, false)],
        state: Some(slate::export::snapshot::StateGauges {
            gaps: vec![("logs".into(), 0, 7)],
            ..Default::default()
        }),
    };
    render(&Exposition {
        snapshot: &snapshot,
        counters: &counters,
        kafka: Some(&kafka),
        reload: Some(ReloadState {
            successful: true,
            at: 1.0,
        }),
        compat,
    })
}

fn exposition() -> Families {
    // slate's own series only: what the rules and dashboard may use.
    let text = exposition_text(Default::default());
    let mut families = Families::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families
                .entry(rest.split(' ').next().unwrap().into())
                .or_default();
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let head = line.rsplit_once(' ').unwrap().0;
        let (name, labels) = head.split_once('{').unwrap_or((head, "}"));
        let fam = families.entry(name.into()).or_default();
        for pair in labels
            .trim_end_matches('}')
            .split("\",")
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once("=\"").unwrap();
            fam.entry(k.into())
                .or_default()
                .insert(v.trim_end_matches('"').into());
        }
    }
    families
}

/// What a PromQL expression refers to.
#[derive(Debug, Default)]
struct Refs {
    /// (metric, label, op, value) for every matcher; a metric with no
    /// matcher appears with an empty label.
    selectors: Vec<(String, String, String, String)>,
    /// Labels named in by/without/on/ignoring/group_left/group_right.
    grouping: Vec<String>,
}

/// Words that are not series: binary operators and modifiers, and the
/// aggregations (which may take `by (…)` before their parenthesis).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];
const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// A small PromQL scanner: enough to find every metric name, matcher and
/// grouping label (strings, ranges and numbers skipped; an identifier
/// followed by `(` is a function or an aggregation).
fn refs(expr: &str) -> Refs {
    let b = expr.as_bytes();
    let mut out = Refs::default();
    let mut i = 0;
    let ident = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && (b[*i].is_ascii_alphanumeric() || b"_:".contains(&b[*i])) {
            *i += 1;
        }
        expr[s..*i].to_string()
    };
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let string = |i: &mut usize| {
        let q = b[*i];
        *i += 1;
        let s = *i;
        while *i < b.len() && b[*i] != q {
            *i += if b[*i] == b'\\' { 2 } else { 1 };
        }
        *i += 1;
        expr[s..*i - 1].to_string()
    };
    let matchers = |i: &mut usize, metric: &str, out: &mut Refs| {
        *i += 1; // {
        loop {
            skip_ws(i);
            if b[*i] == b'}' {
                *i += 1;
                return;
            }
            if b[*i] == b',' {
                *i += 1;
                continue;
            }
            let label = ident(i);
            skip_ws(i);
            let s = *i;
            while b"=!~".contains(&b[*i]) {
                *i += 1;
            }
            let op = expr[s..*i].to_string();
            skip_ws(i);
            let value = string(i);
            out.selectors.push((metric.into(), label, op, value));
        }
    };
    while i < b.len() {
        let c = b[i];
        if c == b'"' || c == b'\'' {
            string(&mut i);
        } else if c == b'[' {
            while b[i] != b']' {
                i += 1;
            }
            i += 1;
        } else if c == b'{' {
            matchers(&mut i, "", &mut out);
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let name = ident(&mut i);
            let mut j = i;
            skip_ws(&mut j);
            if GROUPING.contains(&name.as_str()) {
                if j < b.len() && b[j] == b'(' {
                    i = j + 1;
                    loop {
                        skip_ws(&mut i);
                        if b[i] == b')' {
                            i += 1;
                            break;
                        }
                        if b[i] == b',' {
                            i += 1;
                            continue;
                        }
                        out.grouping.push(ident(&mut i));
                    }
                }
            } else if j < b.len() && b[j] == b'(' || KEYWORDS.contains(&name.as_str()) {
                // A function or an aggregation; its arguments follow.
            } else if j < b.len() && b[j] == b'{' {
                i = j;
                matchers(&mut i, &name, &mut out);
            } else {
                out.selectors
                    .push((name, String::new(), String::new(), String::new()));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every `expr` of the rules file.
fn rule_exprs() -> Exprs {
    let text = std::fs::read_to_string(Path::new(ROOT).join(RULES)).unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let mut out = Vec::new();
    for group in docs[0]["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .unwrap()
                .to_string();
            out.push((name, rule["expr"].as_str().unwrap().to_string()));
        }
    }
    assert!(out.len() >= 8, "{out:?}");
    out
}

/// Every query of the dashboard: panel targets, and the expression inside
/// each `label_values(EXPR, LABEL)` variable (with the label it reads).
/// (where, PromQL) pairs.
type Exprs = Vec<(String, String)>;

fn dashboard_exprs() -> (Exprs, Exprs) {
    let text = std::fs::read_to_string(Path::new(ROOT).join(DASHBOARD)).unwrap();
    let d: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push((
                p["title"].as_str().unwrap().to_string(),
                t["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    let mut label_values = Vec::new();
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"].as_str().unwrap();
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .unwrap_or_else(|| panic!("variable {}: not label_values(…): {q}", v["name"]));
        let (e, label) = inner.rsplit_once(',').unwrap();
        exprs.push((format!("variable {}", v["name"]), e.trim().to_string()));
        label_values.push((e.trim().to_string(), label.trim().to_string()));
    }
    assert!(exprs.len() >= 15, "{exprs:?}");
    (exprs, label_values)
}

/// The problems with one expression, against what slate emits.
fn problems(fam: &Families, what: &str, expr: &str) -> Vec<String> {
    let r = refs(expr);
    let mut out = Vec::new();
    let mut labels_here: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
    let mut metrics = 0;
    for (metric, label, op, value) in &r.selectors {
        if metric.is_empty() {
            out.push(format!("{what}: a selector without a metric name: {expr}"));
            continue;
        }
        metrics += 1;
        if PROMETHEUS_SERIES.contains(&metric.as_str()) {
            continue;
        }
        let Some(f) = fam.get(metric) else {
            out.push(format!("{what}: slate emits no series `{metric}`: {expr}"));
            continue;
        };
        labels_here.extend(f.keys().map(String::as_str));
        if label.is_empty() || TARGET_LABELS.contains(&label.as_str()) {
            continue;
        }
        let Some(values) = f.get(label) else {
            out.push(format!(
                "{what}: `{metric}` has no label `{label}` (it has {:?})",
                f.keys().collect::<Vec<_>>()
            ));
            continue;
        };
        // Literal values and alternatives of fixed label sets (windows,
        // severities, quantiles) must be values slate gives; variables and
        // patterns are the user's.
        let fixed = [
            "window",
            "severity",
            "long_window",
            "short_window",
            "quantile",
        ];
        if (op == "=" || op == "=~") && fixed.contains(&label.as_str()) && !value.contains('$') {
            for alt in value.split('|') {
                if !values.contains(alt) {
                    out.push(format!(
                        "{what}: `{metric}` never has {label}=\"{alt}\" (it has {values:?})"
                    ));
                }
            }
        }
    }
    if metrics == 0 {
        out.push(format!("{what}: names no series: {expr}"));
    }
    for g in &r.grouping {
        if !labels_here.contains(g.as_str()) {
            out.push(format!(
                "{what}: groups by `{g}`, which no series here has: {expr}"
            ));
        }
    }
    out
}

#[test]
fn the_scanner_finds_names_matchers_and_grouping() {
    let r = refs(
        r#"sum by (instance, topic) (rate(slate_x_total{a="1|2", b=~"$v"}[5m])) / on(instance) group_left up > 0.5 and absent(y)"#,
    );
    let sel: Vec<_> = r
        .selectors
        .iter()
        .map(|(m, l, o, v)| format!("{m}|{l}|{o}|{v}"))
        .collect();
    assert_eq!(
        sel,
        [
            "slate_x_total|a|=|1|2",
            "slate_x_total|b|=~|$v",
            "up|||",
            "y|||"
        ]
    );
    assert_eq!(r.grouping, ["instance", "topic", "instance"]);
}

#[test]
fn rules_and_dashboard_name_only_series_slate_emits() {
    let fam = exposition();
    // The exposition really has every family the rules and dashboard may use.
    for f in [
        "slate_alert_firing",
        "slate_kafka_consumer_lag",
        "slate_config_last_reload_successful",
        "slate_latency_seconds",
        "slate_burn_rate",
    ] {
        assert!(fam.contains_key(f), "{f} missing from {:?}", fam.keys());
    }
    let mut found = Vec::new();
    for (name, expr) in rule_exprs() {
        found.extend(problems(&fam, &format!("rule {name}"), &expr));
    }
    let (exprs, label_values) = dashboard_exprs();
    for (title, expr) in &exprs {
        found.extend(problems(&fam, &format!("panel {title:?}"), expr));
    }
    for (expr, label) in label_values {
        let metric = refs(&expr).selectors[0].0.clone();
        if !fam.get(&metric).is_some_and(|f| f.contains_key(&label)) {
            found.push(format!(
                "variable reads `{label}` of `{metric}`, which has none"
            ));
        }
    }
    assert!(found.is_empty(), "\n{}", found.join("\n"));

    // And it can fail: a misspelt series, a label slate does not give, a
    // window it does not have.
    assert_eq!(problems(&fam, "t", "slate_request_total").len(), 1);
    assert_eq!(
        problems(&fam, "t", r#"slate_burn_rate{endpoint="/"}"#).len(),
        1
    );
    assert_eq!(
        problems(&fam, "t", r#"slate_latency_seconds{window="1d"}"#).len(),
        1
    );
    assert_eq!(
        problems(&fam, "t", "sum by (zone) (slate_requests_total)").len(),
        1
    );
}

/// The promtool binary (`SLATE_PROMTOOL`, else on the PATH).
fn promtool() -> String {
    std::env::var("SLATE_PROMTOOL").unwrap_or_else(|_| "promtool".into())
}

fn promtool_ok(args: &[&str]) {
    tool_ok(&promtool(), args);
}

#[test]
#[ignore = "needs promtool: run by scripts/test"]
fn promtool_finds_only_the_colons_of_the_compatibility_series() {
    use std::io::Write;
    let check = |text: &str| {
        let mut child = Command::new(promtool())
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert_eq!(check(&exposition_text(Default::default())).trim(), "");
    let said = check(&exposition_text(slate::spec::config::Compat {
        sloth: true,
        pyrra: true,
    }));
    assert!(!said.trim().is_empty(), "promtool flags the colons");
    for line in said.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("slo:") || line.contains("pyrra_"),
            "promtool on the compatibility series: {line}"
        );
    }
}

#[test]
#[ignore = "needs promtool: run by scripts/test"]
fn promtool_checks_rules_config_and_every_dashboard_query() {
    promtool_ok(&["check", "rules", RULES]);
    promtool_ok(&["test", "rules", "deploy/prometheus/slate-rules.test.yml"]);
    promtool_ok(&["check", "config", "deploy/prometheus/prometheus.yml"]);
    // Dashboard queries through Prometheus's parser: each as a recording
    // rule, Grafana's variables given values.
    let (exprs, _) = dashboard_exprs();
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (_, e)) in exprs.iter().enumerate() {
        let e = e
            .replace("$__rate_interval", "1m")
            .replace("$service", ".*")
            .replace("$slo", ".*");
        rules.push_str(&format!(
            "      - record: dashboard:query{i}\n        expr: {}\n",
            serde_json::to_string(&e).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-queries.yml");
    std::fs::write(&path, rules).unwrap();
    promtool_ok(&["check", "rules", path.to_str().unwrap()]);
}

fn yaml(path: &str) -> yaml_rust2::Yaml {
    let text = std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap();
    yaml_rust2::YamlLoader::load_from_str(&text)
        .unwrap()
        .remove(0)
}

fn strings(y: &yaml_rust2::Yaml) -> Vec<String> {
    y.as_vec()
        .unwrap_or_else(|| panic!("not a list: {y:?}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn slate_bin(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap()
}

/// docker-compose.yml cannot be run here (no Docker engine), so what it
/// runs is run as far as it can be: every file it mounts exists, slate's
/// command is a configuration `slate check` accepts, the load generator's
/// flags are ones `slate gen` takes, and the services name each other as
/// the files they mount expect.
#[test]
fn the_compose_stack_runs_what_exists() {
    let compose = yaml("docker-compose.yml");
    let services = &compose["services"];
    for name in [
        "kafka",
        "kafka-init",
        "slate",
        "loadgen",
        "prometheus",
        "grafana",
    ] {
        assert!(!services[name].is_badvalue(), "no service {name}");
    }
    // Every mounted host path exists; container paths map back to them.
    let mut mounts = BTreeMap::new();
    let mut named = BTreeMap::new();
    for (_, svc) in services.as_hash().unwrap() {
        for v in svc["volumes"].as_vec().into_iter().flatten() {
            let v = v.as_str().unwrap();
            let mut parts = v.split(':');
            let (host, inside) = (parts.next().unwrap(), parts.next().unwrap());
            if !host.starts_with('.') && !host.starts_with('/') {
                // A named volume: declared at the top level.
                assert!(
                    !compose["volumes"][host].is_badvalue(),
                    "{v}: the volume {host} is not declared under volumes:"
                );
                named.insert(inside.to_string(), host.to_string());
                continue;
            }
            assert!(
                Path::new(ROOT).join(host).exists(),
                "{v}: {host} is missing"
            );
            mounts.insert(inside.to_string(), host.to_string());
        }
    }
    let local = |p: &str| -> String {
        mounts
            .get(p)
            .unwrap_or_else(|| panic!("{p} is not mounted"))
            .clone()
    };

    // slate run's config, SLO spec and policy, through slate check.
    let cmd = strings(&services["slate"]["command"]);
    assert_eq!(cmd[0], "run");
    let mut check = vec!["check".to_string()];
    let mut it = cmd[1..].iter();
    while let Some(flag) = it.next() {
        let value = it.next().unwrap();
        check.push(flag.clone());
        check.push(local(value));
    }
    let cfg = yaml(&local("/etc/slate/slate.yml"));
    let policy = cfg["gate"]["policy"].as_str().unwrap();
    check.push("--policy".into());
    check.push(local(&format!("/etc/slate/{policy}")));
    let o = slate_bin(&check);
    assert!(
        o.status.success(),
        "{check:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    // slate's state dir is a volume: the image declares it, and compose
    // keeps it in a named volume, so that a restart keeps the budgets.
    let state_dir = cfg["state"]["dir"].as_str().unwrap();
    assert_eq!(
        named.get(state_dir).map(String::as_str),
        Some("slate-state"),
        "state.dir {state_dir} is not on a named volume: {named:?}"
    );
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("VOLUME {state_dir}")),
        "the image declares no VOLUME {state_dir}"
    );

    // The brokers and topic slate reads are the ones kafka-init creates and
    // the load generator writes.
    let brokers = cfg["kafka"]["brokers"].as_str().unwrap();
    let topic = &strings(&cfg["kafka"]["topics"])[0];
    let init = strings(&services["kafka-init"]["command"]);
    let after = |args: &[String], flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args[i + 1].clone())
            .unwrap_or_else(|| panic!("no {flag} in {args:?}"))
    };
    assert_eq!(after(&init, "--topic"), *topic);
    assert_eq!(after(&init, "--bootstrap-server"), brokers);
    assert!(brokers.starts_with("kafka:"));

    // The load generator's command, for one second, to stdout.
    let gen = strings(&services["loadgen"]["command"]);
    assert_eq!(after(&gen, "--kafka"), brokers);
    assert_eq!(after(&gen, "--topic"), *topic);
    let mut local_gen = Vec::new();
    let mut it = gen.iter();
    while let Some(a) = it.next() {
        if a == "--kafka" || a == "--topic" {
            it.next();
        } else {
            local_gen.push(a.clone());
        }
    }
    local_gen.extend(["--duration".into(), "1s".into()]);
    let o = slate_bin(&local_gen);
    assert!(
        o.status.success(),
        "{local_gen:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).lines().count() > 10);

    // Prometheus scrapes slate where it listens; Grafana reads Prometheus.
    let prom = yaml(&format!("{}/prometheus.yml", local("/etc/prometheus")));
    let target = prom["scrape_configs"][0]["static_configs"][0]["targets"][0]
        .as_str()
        .unwrap();
    let port = cfg["http"]["listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap();
    assert_eq!(target, format!("slate:{port}"));
    let ds = yaml(&format!(
        "{}/datasources/prometheus.yml",
        local("/etc/grafana/provisioning")
    ));
    assert_eq!(
        ds["datasources"][0]["url"].as_str(),
        Some("http://prometheus:9090")
    );
    let dash = &services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"];
    let dash = dash.as_str().unwrap();
    let dir = local("/var/lib/grafana/dashboards");
    let file = dash.strip_prefix("/var/lib/grafana/dashboards/").unwrap();
    assert!(Path::new(ROOT).join(&dir).join(file).exists());
}

/// The one document of a Kubernetes manifest.
fn manifest(name: &str) -> yaml_rust2::Yaml {
    let m = yaml(&format!("deploy/kubernetes/{name}"));
    assert!(!m["kind"].is_badvalue(), "{name}: no kind");
    m
}

fn text(y: &yaml_rust2::Yaml) -> &str {
    y.as_str().unwrap_or_else(|| panic!("not a string: {y:?}"))
}

/// `deploy/kubernetes/` cannot be applied here (no cluster), so what it
/// runs is run as far as it can be: slate's arguments, with the pod's name
/// for `$(POD_NAME)` and the ConfigMap's files where it mounts them, pass
/// `slate check` and start `slate run` (alive, not ready without a broker,
/// stopped cleanly by SIGTERM); and the StatefulSet, the Service, the
/// ConfigMap, the image and slate's config name each other consistently.
#[test]
fn the_kubernetes_manifests_run_what_exists() {
    let sts = manifest("statefulset.yaml");
    let svc = manifest("service.yaml");
    let cm = manifest("configmap.yaml");
    assert_eq!(text(&sts["kind"]), "StatefulSet");
    assert_eq!(text(&svc["kind"]), "Service");
    assert_eq!(text(&cm["kind"]), "ConfigMap");
    let pod = &sts["spec"]["template"];
    let containers = pod["spec"]["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];

    // The ConfigMap's files, where the pod mounts them.
    let mount = |name: &str| -> String {
        c["volumeMounts"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|m| text(&m["name"]) == name)
            .map(|m| text(&m["mountPath"]).to_string())
            .unwrap_or_else(|| panic!("no volumeMount {name}"))
    };
    let volumes = pod["spec"]["volumes"].as_vec().unwrap();
    let config_volume = volumes
        .iter()
        .find(|v| !v["configMap"].is_badvalue())
        .expect("a ConfigMap volume");
    assert_eq!(
        text(&config_volume["configMap"]["name"]),
        text(&cm["metadata"]["name"])
    );
    let etc = mount(text(&config_volume["name"]));
    let dir = tempfile::tempdir().unwrap();
    let local = |p: &str| -> String {
        let key = p
            .strip_prefix(&format!("{etc}/"))
            .unwrap_or_else(|| panic!("{p} is not in the ConfigMap's mount {etc}"));
        assert!(
            !cm["data"][key].is_badvalue(),
            "{p}: the ConfigMap has no {key}"
        );
        dir.path().join(key).to_str().unwrap().to_string()
    };
    let port = common::free_port();
    let cfg_text = text(&cm["data"]["slate.yml"]);
    let cfg = yaml_rust2::YamlLoader::load_from_str(cfg_text)
        .unwrap()
        .remove(0);
    for (key, body) in cm["data"].as_hash().unwrap() {
        let mut body =
            text(body).replace(&format!("{etc}/"), &format!("{}/", dir.path().display()));
        if text(key) == "slate.yml" {
            // Here: a loopback port, the state in the test's dir, no broker.
            let listen = text(&cfg["http"]["listen"]);
            body = body
                .replace(&format!("\"{listen}\""), &format!("\"127.0.0.1:{port}\""))
                .replace(
                    text(&cfg["kafka"]["brokers"]),
                    &format!("127.0.0.1:{}", common::free_port()),
                );
        }
        std::fs::write(dir.path().join(text(key)), body).unwrap();
    }

    // The arguments, with what Kubernetes gives them: $(POD_NAME) is the
    // pod's name, from the downward API.
    let env = c["env"].as_vec().unwrap();
    let pod_name = env
        .iter()
        .find(|e| text(&e["name"]) == "POD_NAME")
        .expect("POD_NAME in env");
    assert_eq!(
        text(&pod_name["valueFrom"]["fieldRef"]["fieldPath"]),
        "metadata.name"
    );
    let first_pod = format!("{}-0", text(&sts["metadata"]["name"]));
    let args = strings(&c["args"]);
    assert_eq!(args[0], "run");
    assert!(
        args.windows(2)
            .any(|w| w[0] == "--instance-id" && w[1] == "$(POD_NAME)"),
        "kafka.instance_id is the pod name: {args:?}"
    );
    let mut run = vec!["run".to_string()];
    let mut check = vec!["check".to_string()];
    let mut it = args[1..].iter();
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} has no value"));
        let value = match flag.as_str() {
            "--config" | "--slo" | "--policy" => {
                check.push(flag.clone());
                check.push(local(value));
                local(value)
            }
            _ => value.replace("$(POD_NAME)", &first_pod),
        };
        run.push(flag.clone());
        run.push(value);
    }
    let policy = text(&cfg["gate"]["policy"]);
    check.extend(["--policy".to_string(), local(policy)]);
    let o = slate_bin(&check);
    assert!(
        o.status.success(),
        "{check:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(&run)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while common::try_get(addr, "/healthz").map(|r| r.0) != Some(200) {
        if std::time::Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{run:?} did not serve /healthz: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The probes' paths: alive at once, not ready without a broker.
    assert_eq!(text(&c["livenessProbe"]["httpGet"]["path"]), "/healthz");
    assert_eq!(text(&c["readinessProbe"]["httpGet"]["path"]), "/readyz");
    assert_eq!(common::try_get(addr, "/readyz").unwrap().0, 503);
    let out = common::sigterm(child);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The names: the Service selects the pods and is the StatefulSet's;
    // its port is the container's, which is where slate listens and
    // where Prometheus is told to scrape.
    let labels = pod["metadata"]["labels"].as_hash().unwrap();
    for (k, v) in svc["spec"]["selector"].as_hash().unwrap() {
        assert_eq!(labels.get(k), Some(v), "the Service's selector {k:?}");
    }
    assert_eq!(
        sts["spec"]["selector"]["matchLabels"].as_hash().unwrap(),
        svc["spec"]["selector"].as_hash().unwrap()
    );
    assert_eq!(
        text(&sts["spec"]["serviceName"]),
        text(&svc["metadata"]["name"])
    );
    let listen_port: i64 = text(&cfg["http"]["listen"])
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let container_port = &c["ports"][0];
    assert_eq!(container_port["containerPort"].as_i64(), Some(listen_port));
    let svc_port = &svc["spec"]["ports"][0];
    assert_eq!(text(&svc_port["targetPort"]), text(&container_port["name"]));
    assert_eq!(svc_port["port"].as_i64(), Some(listen_port));
    let annotations = &pod["metadata"]["annotations"];
    assert_eq!(text(&annotations["prometheus.io/scrape"]), "true");
    assert_eq!(
        text(&annotations["prometheus.io/port"]),
        listen_port.to_string()
    );
    assert_eq!(text(&annotations["prometheus.io/path"]), "/metrics");
    for p in [&c["livenessProbe"], &c["readinessProbe"]] {
        assert_eq!(text(&p["httpGet"]["port"]), text(&container_port["name"]));
    }

    // The state: in the state topic, so that a pod needs no volume of its
    // own and writes no file (its root filesystem is read-only); the pods
    // run as the image's user.
    assert!(
        cfg["kafka"]["state_topic"].as_str().is_some(),
        "the instances hand partitions over through kafka.state_topic"
    );
    assert!(sts["spec"]["volumeClaimTemplates"].is_badvalue());
    assert_eq!(
        c["securityContext"]["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).unwrap();
    let uid = pod["spec"]["securityContext"]["runAsUser"]
        .as_i64()
        .unwrap();
    assert!(
        dockerfile.contains(&format!("USER {uid}:")),
        "the image's user is not {uid}"
    );
}

/// The Python tools the test script installs (`SLATE_PYTOOLS/bin`).
fn pytool(name: &str) -> String {
    match std::env::var("SLATE_PYTOOLS") {
        Ok(dir) => format!("{dir}/bin/{name}"),
        Err(_) => name.into(),
    }
}

fn tool_ok(bin: &str, args: &[&str]) {
    let o = Command::new(bin)
        .args(args)
        .current_dir(ROOT)
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e}; the test script installs it"));
    assert!(
        o.status.success(),
        "{bin} {args:?}:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
#[ignore = "needs hadolint and check-jsonschema: run by scripts/test"]
fn dockerfile_lint_and_compose_and_workflow_schemas() {
    tool_ok(&pytool("hadolint"), &["Dockerfile"]);
    tool_ok(
        &pytool("check-jsonschema"),
        &[
            "--builtin-schema",
            "vendor.compose-spec",
            "docker-compose.yml",
        ],
    );
    tool_ok(
        &pytool("check-jsonschema"),
        &[
            "--builtin-schema",
            "vendor.github-workflows",
            "deploy/ci/github-actions.yml",
        ],
    );
    // Kubernetes' own schemas (bundled by kubernetes-validate), strict: an
    // unknown or misspelt field is an error.
    tool_ok(
        &pytool("kubernetes-validate"),
        &[
            "--strict",
            "deploy/kubernetes/configmap.yaml",
            "deploy/kubernetes/service.yaml",
            "deploy/kubernetes/statefulset.yaml",
        ],
    );
}
