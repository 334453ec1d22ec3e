//! `slate replay --html`: one self-contained page. Its figures are the JSON
//! report's (the one number, every episode, every SLO), its charts are there
//! for every service with SLOs (at most 50, the costliest first), and it
//! needs nothing from the network. With Chromium (the README's test
//! script), the page is opened headless: it renders its charts, logs no
//! console message and makes no request.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Replays `input` with `--html`; returns (page, JSON report).
fn replay_html(dir: &Path, slo: &str, input: &str) -> (String, Value) {
    let html = dir.join("report.html");
    let o = Command::new(env!("CARGO_BIN_EXE_slate"))
        .args(["replay", "--no-progress", "-o", "json", "--slo", slo])
        .arg("--html")
        .arg(&html)
        .arg(input)
        .current_dir(ROOT)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (
        std::fs::read_to_string(&html).unwrap(),
        serde_json::from_slice(&o.stdout).unwrap(),
    )
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// Nothing in the page can make a request: no script, no external
/// resource, no URL but the SVG namespace.
fn assert_self_contained(page: &str) {
    for banned in [
        "<script", " src=", "href=", "url(", "@import", "<link", "<iframe",
    ] {
        assert!(!page.contains(banned), "the page holds {banned:?}");
    }
    let urls = count(page, "http://") + count(page, "https://");
    assert_eq!(
        urls,
        count(page, "xmlns=\"http://www.w3.org/2000/svg\""),
        "a URL other than the SVG namespace"
    );
}

#[test]
fn the_fixture_page_holds_the_reports_figures_and_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let (page, report) = replay_html(
        dir.path(),
        "fixtures/service-slos.yml",
        "fixtures/incidents.jsonl.gz",
    );
    assert_self_contained(&page);
    assert!(page.starts_with("<!doctype html>"));
    assert!(page.contains("prefers-color-scheme: dark"));

    // The one number and the SLO count, as the table writes them.
    let rel = report["summary"]["reliability"].as_f64().unwrap() * 100.0;
    assert!(page.contains(&format!(">{rel:.3}%<")), "reliability {rel}");
    let (met, slos) = (
        report["summary"]["slos_met"].as_u64().unwrap(),
        report["summary"]["slos"].as_u64().unwrap(),
    );
    assert!(page.contains(&format!(">{met} of {slos}<")));

    // Every incident is a row of the incident table (the first ones shown,
    // the rest folded), the costliest first, with each of its pairs'
    // episodes folded in it.
    let services = report["services"].as_object().unwrap();
    let mut spent: Vec<f64> = services
        .values()
        .flat_map(|s| s["incidents"].as_array().unwrap())
        .map(|a| a["budget_consumed"].as_f64().unwrap())
        .collect();
    let episodes: usize = services
        .values()
        .map(|s| s["alerts"].as_array().unwrap().len())
        .sum();
    assert!(spent.len() >= 3, "the fixture has incidents");
    assert!(episodes > spent.len(), "several pairs fire in one incident");
    let incidents = &page
        [page.find("<table class=\"incidents\">").unwrap()..page.find("<h2>SLOs</h2>").unwrap()];
    assert_eq!(count(incidents, "<tr><td>"), spent.len());
    assert_eq!(count(incidents, "<details class=\"pairs\">"), spent.len());
    assert_eq!(
        count(incidents, "<div>page ") + count(incidents, "<div>ticket "),
        episodes
    );
    spent.sort_by(|a, b| b.total_cmp(a));
    let first_row = &incidents[incidents.find("<tr><td>").unwrap()..];
    let first_row = &first_row[..first_row.find("</tr>").unwrap()];
    // (As the table writes percentages: three decimals above 99%.)
    let p = spent[0] * 100.0;
    let written = if p > 99.0 && p != 100.0 {
        format!("{p:.3}%")
    } else {
        format!("{p:.2}%")
    };
    assert!(
        first_row.contains(&written),
        "{first_row} should spend {}",
        spent[0]
    );

    // Every SLO of every service is a row of the SLO table.
    let slo_table = &page[page.find("<table class=\"slos\">").unwrap()..];
    let slo_table = &slo_table[..slo_table.find("</table>").unwrap()];
    let n_slos: usize = services
        .values()
        .map(|s| s["slos"].as_object().unwrap().len())
        .sum();
    assert_eq!(count(slo_table, "<tr><td>"), n_slos);

    // Per service: a section; per SLO a budget and a burn-rate chart, with
    // each of its episodes a band in both; a latency chart.
    assert_eq!(count(&page, "<section class=\"service\">"), services.len());
    assert_eq!(count(&page, "<svg "), 2 * n_slos + services.len());
    let bands = count(&page, "<rect class=\"page\"") + count(&page, "<rect class=\"ticket\"");
    assert_eq!(bands, 2 * episodes);
    // Every chart has its first line drawn (budget, the 1h burn, p50),
    // and the burn charts their four thresholds.
    assert_eq!(
        count(&page, "<path class=\"line s0\""),
        2 * n_slos + services.len()
    );
    assert!(count(&page, "<line class=\"thr") >= 4 * n_slos);

    // Sections in order of the budget spent (the highest consumed first).
    let worst = |s: &Value| {
        s["slos"]
            .as_object()
            .unwrap()
            .values()
            .filter_map(|o| o["budget_consumed"].as_f64())
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let mut order: Vec<(&String, f64)> = services.iter().map(|(n, s)| (n, worst(s))).collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let positions: Vec<usize> = order
        .iter()
        .map(|(n, _)| {
            page.find(&format!("<section class=\"service\"><h2>{n}</h2>"))
                .unwrap()
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

#[test]
fn at_most_fifty_services_are_charted_the_costliest_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = String::from("services:\n");
    let mut lines = String::new();
    // Service k: 200 events over 20 minutes, k of them failing.
    for k in 0..55 {
        spec.push_str(&format!("  svc{k:02}:\n    slo_error_rate: 99%\n"));
    }
    for i in 0..200 {
        for k in 0..55 {
            let status = if i < k { 500 } else { 200 };
            lines.push_str(&format!(
                "{{\"ts\":\"2026-11-01T10:{:02}:{:02}Z\",\"service\":\"svc{k:02}\",\"status\":{status},\"latency_ms\":5}}\n",
                i * 6 / 60,
                i * 6 % 60
            ));
        }
    }
    let slo = dir.path().join("slos.yml");
    std::fs::write(&slo, spec).unwrap();
    let input: PathBuf = dir.path().join("events.jsonl");
    std::fs::write(&input, lines).unwrap();
    let (page, report) = replay_html(dir.path(), slo.to_str().unwrap(), input.to_str().unwrap());
    assert_self_contained(&page);
    assert_eq!(report["services"].as_object().unwrap().len(), 55);
    assert_eq!(count(&page, "<section class=\"service\">"), 50);
    assert!(page.contains("Charts for the 50 services that spent the most budget, of 55 with SLOs"));
    // The table has all 55; the charts go from svc54 (54 errors) down to
    // svc05, in that order.
    let slo_table = &page[page.find("<table class=\"slos\">").unwrap()..];
    assert_eq!(
        count(
            &slo_table[..slo_table.find("</table>").unwrap()],
            "<tr><td>svc"
        ),
        55
    );
    let pos = |k: usize| page.find(&format!("<section class=\"service\"><h2>svc{k:02}</h2>"));
    for k in 0..5 {
        assert!(pos(k).is_none(), "svc{k:02} is among the cheapest");
    }
    for k in 5..54 {
        assert!(
            pos(k + 1).unwrap() < pos(k).unwrap(),
            "svc{:02} before svc{k:02}",
            k + 1
        );
    }
}

/// Hosts Chromium itself calls (updates, time, sign-in), not the page.
fn chromium_own(request: &str) -> bool {
    let host = request
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let host = host.split(['/', ':']).next().unwrap_or("");
    host.ends_with(".gvt1.com")
        || host.starts_with("clients") && host.ends_with(".google.com")
        || [
            "update.googleapis.com",
            "accounts.google.com",
            "content-autofill.googleapis.com",
            "optimizationguide-pa.googleapis.com",
            "safebrowsingohttpgateway.googleapis.com",
        ]
        .contains(&host)
}

fn chromium(args: &[&str], proxy: u16, profile: &Path) -> std::process::Output {
    let bin = std::env::var("SLATE_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        // Every request, even to loopback, goes to a proxy this test holds.
        .arg(format!("--proxy-server=127.0.0.1:{proxy}"))
        .arg("--proxy-bypass-list=<-loopback>")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{bin}: {e}; the test script installs Debian's chromium"))
}

#[test]
#[ignore = "needs chromium: run by scripts/test"]
fn chromium_renders_the_charts_with_no_console_message_and_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let (page, _) = replay_html(
        dir.path(),
        "fixtures/service-slos.yml",
        "fixtures/slow-burn.jsonl.gz",
    );
    let file = dir.path().join("report.html");
    in_chromium(dir.path(), &page, &file, 16, "");
}

/// The live status page (`/` of `slate run`), drawn from an engine that
/// took three days of generated traffic with its alert trackers and
/// charts ticking as live does: self-contained, its charts rendered, no
/// console message and no request; light and dark screenshots
/// (`status-light.png`, `status-dark.png` with `SLATE_KEEP_SCREENSHOTS`).
#[test]
#[ignore = "needs chromium: run by scripts/test"]
fn chromium_renders_the_live_status_page() {
    use slate::engine::{Engine, EngineSettings};
    use slate::evaluate::AlertTracker;
    use slate::model::{Event, Span};
    use slate::report::chart::Charts;
    use slate::spec::SloSpec;

    let spec = SloSpec::load(&Path::new(ROOT).join("fixtures/service-slos.yml")).unwrap();
    let mut engine = Engine::new(
        &spec,
        EngineSettings {
            calendar: true,
            calendar_days: 100,
            ..EngineSettings::default()
        },
    );
    let ids: Vec<u32> = ["api-gateway", "user-service", "batch-processor"]
        .iter()
        .map(|n| engine.resolve(n).unwrap())
        .collect();
    let mut trackers: Vec<Option<AlertTracker>> = ids
        .iter()
        .map(|&id| Some(AlertTracker::new(engine.service(id))))
        .collect();
    let mut charts = Charts::new(Span::mins(1)).limited(200);
    const MIN: i64 = 60_000_000;
    let t0 = 1_794_000_000_000_000 / MIN * MIN;
    for m in 0..3 * 1440i64 {
        let t = t0 + m * MIN;
        for (k, &id) in ids.iter().enumerate() {
            for i in 0..30i64 {
                // An error burst on api-gateway in the second day's
                // afternoon; user-service slow for 20 minutes every evening.
                let burst = k == 0 && (2000..2060).contains(&m);
                let slow = k == 1 && (1200..1220).contains(&(m % 1440));
                engine.record(&Event {
                    ts: t + i * 2_000_000,
                    service: id,
                    error: burst && i % 2 == 0 || (m * 30 + i) % 1499 == 0,
                    latency_us: Some(if slow {
                        700_000
                    } else {
                        20_000 + (m * 7 + i * 13) as u64 % 90_000
                    }),
                });
            }
        }
        engine.advance_all(t + MIN);
        for (tr, &id) in trackers.iter_mut().zip(&ids) {
            tr.as_mut().unwrap().tick(engine.service(id), t + MIN, 0);
        }
        charts.tick(&engine, t + MIN);
    }
    let now = t0 + 3 * 1440 * MIN;
    let report = slate::export::snapshot::live_report(
        &engine,
        &trackers,
        now,
        |_| true,
        slate::report::EventsReport {
            accepted: 3 * 1440 * 90,
            rejected: 0,
            rejected_by_reason: slate::report::Ordered(Vec::new()),
            outside_span: 0,
            input_errors: Vec::new(),
        },
    );
    let page = slate::report::html::render_live(&report, &charts);
    assert!(page.contains(r#"<meta http-equiv="refresh" content="30">"#));
    assert!(!report.services["api-gateway"].incidents.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("status.html");
    in_chromium(dir.path(), &page, &file, 16, "status-");
}

/// Writes `page` to `file` and opens it in headless Chromium: the DOM has
/// its charts (at least `min_svgs`), no console message, no request; a
/// screenshot light and dark (kept as `{prefix}light.png`, `…dark.png`
/// in `$SLATE_KEEP_SCREENSHOTS`).
fn in_chromium(dir: &Path, page: &str, file: &Path, min_svgs: usize, prefix: &str) {
    assert_self_contained(page);
    std::fs::write(file, page).unwrap();
    let url = format!("file://{}", file.display());

    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let requests = requests.clone();
        std::thread::spawn(move || {
            for conn in proxy.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut line = String::new();
                let _ = BufReader::new(conn.take(4096)).read_line(&mut line);
                requests.lock().unwrap().push(line.trim().to_string());
            }
        });
    }

    // The DOM after load: every chart is there as SVG with its lines.
    let profile = dir.join("profile");
    let o = chromium(&["--dump-dom", &url], port, &profile);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let dom = String::from_utf8_lossy(&o.stdout);
    assert_eq!(count(&dom, "<svg "), count(page, "<svg "));
    assert!(count(&dom, "<svg ") >= min_svgs, "{}", count(&dom, "<svg "));
    assert_eq!(
        count(&dom, "<path class=\"line"),
        count(page, "<path class=\"line")
    );
    let log = String::from_utf8_lossy(&o.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "console messages:\n{}",
        console.join("\n")
    );

    // A screenshot, light and dark.
    for (name, dark) in [("light.png", false), ("dark.png", true)] {
        let shot = dir.join(name);
        let mut args = vec![
            "--window-size=1280,2400".to_string(),
            format!("--screenshot={}", shot.display()),
        ];
        if dark {
            args.push("--force-dark-mode".into());
        }
        args.push(url.clone());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = chromium(&refs, port, &profile);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let png = std::fs::read(&shot).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // A page of charts, not a blank one: a blank 1280×2400 PNG
        // compresses to a few KB.
        assert!(png.len() > 100_000, "{name}: {} bytes", png.len());
        if let Ok(keep) = std::env::var("SLATE_KEEP_SCREENSHOTS") {
            std::fs::copy(&shot, Path::new(&keep).join(format!("{prefix}{name}"))).unwrap();
        }
    }

    let page_requests: Vec<String> = requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !r.is_empty() && !chromium_own(r))
        .cloned()
        .collect();
    assert!(
        page_requests.is_empty(),
        "the page made requests: {page_requests:?}"
    );
}

#[test]
fn each_charts_last_point_is_the_reports_figure() {
    use slate::replay::{replay_with_charts, ReplayOptions};
    use slate::source::file::InputName;
    use slate::spec::{Config, SloSpec};
    for fixture in ["fixtures/incidents.jsonl.gz", "fixtures/slow-burn.jsonl.gz"] {
        let (report, charts) = replay_with_charts(ReplayOptions {
            inputs: vec![InputName(Path::new(ROOT).join(fixture))],
            spec: SloSpec::load(&Path::new(ROOT).join("fixtures/service-slos.yml")).unwrap(),
            config: Config::default(),
            from: None,
            to: None,
            incidents: Vec::new(),
            threads: 1,
            dead_letter: None,
            progress: false,
            charts: true,
            save_state: None,
        })
        .unwrap();
        let charts = charts.expect("charts were asked for");
        let n = charts.times.len();
        assert!((100..=slate::report::chart::MAX_POINTS).contains(&n), "{n}");
        for s in charts.services.iter().flatten() {
            let r = &report.services[&s.name];
            for ((slo, o), series) in r.slos.0.iter().zip(&s.slos) {
                let last = series.budget_remaining.last().copied().map(f64::from);
                match (o.budget_remaining, last) {
                    (Some(want), Some(got)) => assert!(
                        (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                        "{fixture} {}/{slo}: chart ends at {got}, report says {want}",
                        s.name
                    ),
                    (None, Some(got)) => assert!(got.is_nan(), "{}/{slo}", s.name),
                    (_, None) => panic!("no points"),
                }
                let want_1h = o.burn_rate.0.iter().find(|(w, _)| w == "1h").unwrap().1;
                let got_1h = f64::from(*series.burn[0].last().unwrap());
                if let Some(want) = want_1h {
                    assert!(
                        (got_1h - want).abs() <= 1e-6 * want.max(1.0),
                        "{}/{slo}",
                        s.name
                    );
                }
            }
        }
    }
}
