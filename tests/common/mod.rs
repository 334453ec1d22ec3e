//! Helpers shared by the tests that talk to a running slate over HTTP.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

/// A loopback port nothing listens on (free for a server to bind, or
/// closed for a client to fail on).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped (a test that fails stops it too).
pub struct KillOnDrop(pub std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends SIGTERM to `child` and waits for it to exit: its status and
/// what it wrote (stdout and stderr, read while it stops).
pub fn sigterm(child: std::process::Child) -> std::process::Output {
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    child.wait_with_output().unwrap()
}

/// Produces one keyed message, waiting while the producer's queue is full.
pub fn send(p: &rdkafka::producer::BaseProducer, topic: &str, key: &str, payload: &[u8]) {
    let mut rec = rdkafka::producer::BaseRecord::to(topic)
        .key(key)
        .payload(payload);
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((_, r)) => {
                rec = r;
                p.poll(Duration::from_millis(10));
            }
        }
    }
}

/// `GET path` → (status, body); `None` when nothing answers.
pub fn try_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    request(addr, "GET", path)
}

/// `POST path` with no body.
pub fn post(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "POST", path).unwrap_or_else(|| panic!("nothing answers at http://{addr}{path}"))
}

fn request(addr: SocketAddr, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: slate\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.get(9..12)?.parse().ok()?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Some((status, body))
}

/// A chunked body (`/metrics` is streamed); `None` if it is cut short.
fn dechunk(mut rest: &str) -> Option<String> {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        body.push_str(after.get(..size)?);
        rest = after.get(size..)?.strip_prefix("\r\n")?;
    }
}

pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_get(addr, path).unwrap_or_else(|| panic!("nothing answers at http://{addr}{path}"))
}

/// `name{labels}` → value, from an exposition.
pub fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// The sum of a family's samples.
pub fn sum(m: &BTreeMap<String, f64>, family: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(family) && k[family.len()..].starts_with('{'))
        .map(|(_, v)| v)
        .sum()
}

pub const INGESTED: &str = r#"slate_events_ingested_total{source="kafka"}"#;

/// Waits until `cond` holds on a scrape, or fails with the last one.
pub fn wait_for(
    addr: SocketAddr,
    what: &str,
    within: Duration,
    cond: impl Fn(&BTreeMap<String, f64>) -> bool,
) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some((200, text)) = try_get(addr, "/metrics") {
            let m = samples(&text);
            if cond(&m) {
                return m;
            }
            last = text;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}; last scrape:\n{last}");
}

/// The exact nearest-rank quantile.
pub fn nearest_rank(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}
