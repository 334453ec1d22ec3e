//! The HTTP side of `slate run`: `/metrics`, `/healthz`, `/readyz` and
//! `/api/v1/services`, served from what the ingest side last published.
//! A scrape takes the published snapshot and counters (two `Arc` clones
//! under a lock held for nanoseconds) and writes text off the runtime's
//! thread: it never blocks ingest, and ingest never blocks it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::{Either, Full};
use hyper::body::Frame;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::prometheus::{render_chunks, Exposition, SCRAPE_CHUNK};
use super::snapshot::{Counters, KafkaGauges, ReloadState, Snapshot};
use crate::report::gate::judge;
use crate::report::ServiceReport;
use crate::spec::gate::GatePolicy;
use std::collections::BTreeMap;

/// Whether the service is ready, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(String),
}

/// What the ingest side publishes for the HTTP side to read.
#[derive(Debug)]
pub struct Published {
    pub snapshot: Mutex<Arc<Snapshot>>,
    pub counters: Mutex<Arc<Counters>>,
    pub kafka: Mutex<Arc<KafkaGauges>>,
    pub reload: Mutex<Option<ReloadState>>,
    pub readiness: Mutex<Readiness>,
    /// The deploy-gate policy, when one is configured.
    pub policy: Option<Arc<GatePolicy>>,
    /// Sloth's and Pyrra's series in `/metrics` too.
    pub compat: crate::spec::config::Compat,
    /// Asks the owner of the state for the live `services` object.
    pub services: Option<crossbeam_channel::Sender<ServicesRequest>>,
    /// Asks the owner of the state to re-read the SLO spec.
    pub reloads: Option<crossbeam_channel::Sender<ReloadRequest>>,
    /// Asks the owner of the state for the status page's report and charts.
    pub pages: Option<crossbeam_channel::Sender<PageRequest>>,
}

/// A request for what the status page draws: the live report and the
/// chart series recorded since the process started.
pub type PageRequest =
    tokio::sync::oneshot::Sender<(crate::report::Report, crate::report::chart::Charts)>;

/// A request to re-read the SLO spec; answered with what changed, or
/// why the new spec was refused.
pub type ReloadRequest = tokio::sync::oneshot::Sender<Result<String, String>>;

/// A request for the live `services` object, answered on the channel.
pub type ServicesRequest = tokio::sync::oneshot::Sender<BTreeMap<String, ServiceReport>>;

impl Default for Published {
    fn default() -> Self {
        Published {
            snapshot: Mutex::default(),
            counters: Mutex::default(),
            kafka: Mutex::default(),
            reload: Mutex::default(),
            readiness: Mutex::new(Readiness::NotReady("starting".into())),
            policy: None,
            compat: Default::default(),
            services: None,
            reloads: None,
            pages: None,
        }
    }
}

fn read<T: Clone>(m: &Mutex<T>) -> T {
    // A panic elsewhere while holding the lock cannot leave these values
    // half-written (they are replaced whole), so a poisoned lock is fine.
    m.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

pub fn publish<T>(m: &Mutex<T>, value: T) {
    *m.lock().unwrap_or_else(|p| p.into_inner()) = value;
}

impl Published {
    /// The exposition as of now, in chunks handed to `sink` as they are
    /// written (it returns false to stop).
    pub fn metrics(&self, sink: &mut dyn FnMut(String) -> bool) {
        let snapshot = read(&self.snapshot);
        let counters = read(&self.counters);
        let kafka = read(&self.kafka);
        let reload = read(&self.reload);
        render_chunks(
            &Exposition {
                snapshot: &snapshot,
                counters: &counters,
                kafka: Some(&kafka),
                reload,
                compat: self.compat,
            },
            SCRAPE_CHUNK,
            sink,
        );
    }

    /// The live `services` object of the report, from the apply thread
    /// (it answers between two batches); `None` when it is gone.
    async fn services(&self) -> Option<BTreeMap<String, ServiceReport>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.services.as_ref()?.send(tx).ok()?;
        tokio::time::timeout(std::time::Duration::from_secs(30), rx)
            .await
            .ok()?
            .ok()
    }

    /// The live status page (`/`): the report's page drawn from the live
    /// state, rendered off the runtime's thread.
    pub async fn status_page(&self) -> (StatusCode, String) {
        let unavailable = || {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the state is not available (starting or stopping?)\n".to_string(),
            )
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let Some(pages) = self.pages.as_ref() else {
            return unavailable();
        };
        if pages.send(tx).is_err() {
            return unavailable();
        }
        let Ok(Ok((report, charts))) =
            tokio::time::timeout(std::time::Duration::from_secs(30), rx).await
        else {
            return unavailable();
        };
        match tokio::task::spawn_blocking(move || {
            crate::report::html::render_live(&report, &charts)
        })
        .await
        {
            Ok(page) => (StatusCode::OK, page),
            Err(_) => unavailable(),
        }
    }

    /// Re-reads the SLO spec (`POST /-/reload`, SIGHUP): what changed, or
    /// why the new spec was refused and the old one kept.
    pub async fn reload(&self) -> Result<String, String> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || "the state is not available (stopping?)".to_string();
        self.reloads
            .as_ref()
            .ok_or_else(gone)?
            .send(tx)
            .map_err(|_| gone())?;
        tokio::time::timeout(std::time::Duration::from_secs(60), rx)
            .await
            .map_err(|_| "no answer within 60 s".to_string())?
            .map_err(|_| gone())?
    }

    /// The live `services` object of the report, as JSON.
    pub async fn services_json(&self) -> (StatusCode, String) {
        match self.services().await {
            // UNWRAP: a report is plain numbers and strings.
            Some(s) => (
                StatusCode::OK,
                serde_json::to_string(&s).expect("report serializes"),
            ),
            None => (
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "the state is not available (stopping?)"}).to_string(),
            ),
        }
    }

    /// The weekly review (`week=2026-W45` or `month=2026-11`, else the
    /// latest week): the status and the JSON body.
    pub async fn review_json(
        &self,
        week: Option<&str>,
        month: Option<&str>,
    ) -> (StatusCode, String) {
        use crate::report::review::{live_review, Reviewed};
        let error = |status, msg: String| (status, serde_json::json!({ "error": msg }).to_string());
        let which = match Reviewed::from_flags(week, month) {
            Ok(w) => w,
            Err(e) => return error(StatusCode::BAD_REQUEST, e),
        };
        let Some(services) = self.services().await else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the state is not available (stopping?)".into(),
            );
        };
        let gate = self
            .policy
            .as_ref()
            .and_then(|p| judge(p, &services, None).ok());
        match live_review(services, crate::model::wall_us(), which, gate) {
            // UNWRAP: a review is plain values.
            Ok(r) => (
                StatusCode::OK,
                serde_json::to_string(&r).expect("review serializes"),
            ),
            Err(e) => error(StatusCode::NOT_FOUND, e),
        }
    }

    /// The gate's verdict for `service` (every check without one): the
    /// status and the JSON body.
    pub async fn gate_json(&self, service: Option<&str>) -> (StatusCode, String) {
        let error = |status, msg: String| (status, serde_json::json!({ "error": msg }).to_string());
        let Some(policy) = &self.policy else {
            return error(
                StatusCode::NOT_FOUND,
                "no deploy-gate policy: start slate run with --policy FILE or gate.policy".into(),
            );
        };
        if matches!(read(&self.readiness), Readiness::NotReady(_)) {
            // Fail closed: half-rebuilt windows are no basis for a deploy.
            let why = match read(&self.readiness) {
                Readiness::NotReady(w) => w,
                Readiness::Ready => String::new(),
            };
            return error(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}"));
        }
        let Some(services) = self.services().await else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the state is not available (stopping?)".into(),
            );
        };
        match judge(policy, &services, service) {
            // UNWRAP: a verdict is plain values.
            Ok(v) => (
                StatusCode::OK,
                serde_json::to_string(&v).expect("verdict serializes"),
            ),
            Err(e) => error(StatusCode::NOT_FOUND, e),
        }
    }
}

/// A response body: whole, or streamed as it is written (`/metrics`).
type Body = Either<Full<Bytes>, Chunks>;

/// A body fed by the task writing it: `Some(chunk)`, then `None` once the
/// text is whole. A writer that stops before that (it failed) ends the
/// body in an error, so that the client sees a broken response rather
/// than a short one that parses.
struct Chunks(tokio::sync::mpsc::Receiver<Option<Bytes>>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|m| match m {
            Some(Some(chunk)) => Some(Ok(Frame::data(chunk))),
            Some(None) => None,
            None => Some(Err(std::io::Error::other(
                "the exposition stopped before its end",
            ))),
        })
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>, kind: &'static str) -> Response<Body> {
    let mut r = Response::new(Either::Left(Full::new(body.into())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

const PLAIN: &str = "text/plain; charset=utf-8";
const JSON: &str = "application/json";
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";
const HTML: &str = "text/html; charset=utf-8";
const ENDPOINTS: &str =
    "/ (the status page), /metrics, /healthz, /readyz, /api/v1/services, /api/v1/gate, /api/v1/review and POST /-/reload";

/// The value of `name` in a query string, decoded.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

/// `%XX` and `+` in a query value.
fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    req: Request<Incoming>,
    published: Arc<Published>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    if path == "/-/reload" {
        if req.method() != Method::POST && req.method() != Method::PUT {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "/-/reload: POST to re-read the SLO spec\n",
                PLAIN,
            );
            r.headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST, PUT"));
            return Ok(r);
        }
        // As Prometheus answers: 200, or 500 with why the spec was refused.
        return Ok(match published.reload().await {
            Ok(done) => text(StatusCode::OK, format!("{done}\n"), PLAIN),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reload refused, the previous SLO spec is kept: {e}\n"),
                PLAIN,
            ),
        });
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} {path}: only GET is served\n", req.method()),
            PLAIN,
        ));
    }
    let response = match path {
        "/metrics" => {
            // Writing the text takes milliseconds at thousands of
            // services: off the runtime's thread, sent as it is written.
            let (tx, rx) = tokio::sync::mpsc::channel::<Option<Bytes>>(4);
            let p = published.clone();
            tokio::task::spawn_blocking(move || {
                let mut open = true;
                p.metrics(&mut |chunk| {
                    open = tx.blocking_send(Some(Bytes::from(chunk))).is_ok();
                    open
                });
                if open {
                    let _ = tx.blocking_send(None);
                }
            });
            let mut r = Response::new(Either::Right(Chunks(rx)));
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(EXPOSITION));
            r
        }
        "/" => {
            let (status, body) = published.status_page().await;
            let kind = if status == StatusCode::OK {
                HTML
            } else {
                PLAIN
            };
            text(status, body, kind)
        }
        "/healthz" => text(StatusCode::OK, "ok\n", PLAIN),
        "/readyz" => match read(&published.readiness) {
            Readiness::Ready => text(StatusCode::OK, "ready\n", PLAIN),
            Readiness::NotReady(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
                PLAIN,
            ),
        },
        "/api/v1/services" => {
            let (status, body) = published.services_json().await;
            text(status, body, JSON)
        }
        "/api/v1/review" => {
            let param = |name| query_param(req.uri().query(), name);
            let (status, body) = published
                .review_json(param("week").as_deref(), param("month").as_deref())
                .await;
            text(status, body, JSON)
        }
        "/api/v1/gate" => {
            let service = query_param(req.uri().query(), "service");
            let (status, body) = published.gate_json(service.as_deref()).await;
            text(status, body, JSON)
        }
        other => text(
            StatusCode::NOT_FOUND,
            format!("{other}: not found; slate serves {ENDPOINTS}\n"),
            PLAIN,
        ),
    };
    Ok(response)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    published: Arc<Published>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, say: wait a little, keep serving.
                static ACCEPT: std::sync::LazyLock<crate::logs::Limiter> =
                    std::sync::LazyLock::new(Default::default);
                crate::warn_every!(ACCEPT, "accept", std::time::Duration::from_secs(10), target: "http", "accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let published = published.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, published.clone()));
            // A client that goes away mid-request is not our error.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(percent_decode("api-gateway"), "api-gateway");
        assert_eq!(percent_decode("a%20b+c%2Fd"), "a b c/d");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
    }
}
