//! The sidecar's HTTP endpoints (`--http-listen`), served by tiny_http on a thread of their own:
//! `/metrics` (Prometheus text format), `/healthz` (liveness: FRR answers), `/readyz` (readiness: the sessions,
//! and the last apply) and `/status` (the same facts as JSON, for `openpe-sidecar status --http`).
//!
//! Requests are answered one at a time: each costs one vtysh process at most, and scrapes and probes come a
//! few per minute. The thread never changes namespace (the whole process lives in the router namespace).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tiny_http::{Header, Method, Request, Response, Server};

use super::metrics::{Health, Report};
use crate::error::{Error, Result};
use crate::{log_debug, log_info, log_warn};

const TEXT: &str = "text/plain; charset=utf-8";
/// What Prometheus expects of the text format.
const METRICS: &str = "text/plain; version=0.0.4; charset=utf-8";
const JSON: &str = "application/json";

fn header(value: &str) -> Header {
    Header::from_bytes("Content-Type", value).expect("a valid static header")
}

fn respond(req: Request, code: u16, content_type: &str, body: String) {
    // tiny_http leaves the body out of an answer to HEAD.
    let url = req.url().to_string();
    let resp = Response::from_string(body).with_status_code(code).with_header(header(content_type));
    if let Err(e) = req.respond(resp) {
        log_debug!("HTTP {url}: the client went away before the answer: {e}");
    }
}

fn handle(health: &Health, req: Request) {
    if !matches!(req.method(), Method::Get | Method::Head) {
        return respond(req, 405, TEXT, "only GET and HEAD\n".into());
    }
    let path = req.url().split('?').next().unwrap_or("").to_string();
    match path.as_str() {
        "/metrics" => {
            let body = health.metrics();
            respond(req, 200, METRICS, body)
        }
        "/healthz" => match health.liveness() {
            Ok(why) => respond(req, 200, TEXT, format!("ok: {why}\n")),
            Err(why) => respond(req, 503, TEXT, format!("not live: {why}\n")),
        },
        "/readyz" => {
            let r = health.report();
            let (code, word) = if r.ready { (200, "ready") } else { (503, "not ready") };
            respond(req, code, TEXT, format!("{word}: {}\n", r.reason))
        }
        "/status" => {
            let r = health.report();
            respond(req, 200, JSON, serde_json::to_string(&r).unwrap_or_else(|_| "{}".into()))
        }
        _ => respond(req, 404, TEXT, "not found: /metrics, /healthz, /readyz, /status\n".into()),
    }
}

/// Listen on `addr` now (so a bad address fails the start-up), and answer on a new thread until the process
/// ends.
pub fn serve(addr: SocketAddr, health: Arc<Health>) -> Result<JoinHandle<()>> {
    let server = Server::http(addr)
        .map_err(|e| Error::io(format!("--http-listen {addr}: cannot listen: {e}; pick a free address and port")))?;
    log_info!("serving /metrics, /healthz, /readyz and /status on http://{addr}");
    std::thread::Builder::new()
        .name("openpe-http".into())
        .spawn(move || {
            for req in server.incoming_requests() {
                handle(&health, req);
            }
            log_warn!("the HTTP server on {addr} stopped");
        })
        .map_err(|e| Error::io(format!("cannot start the HTTP thread: {e}")))
}

/// `openpe-sidecar status --http ADDR:PORT`: the running sidecar's report, from its `/status`.
pub fn fetch_report(addr: SocketAddr) -> Result<Report> {
    let fail = |what: String| Error::io(format!("cannot ask the sidecar at http://{addr}/status: {what}"));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| fail(format!("connect: {e}")))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| fail(e.to_string()))?;
    write!(s, "GET /status HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n").map_err(|e| fail(e.to_string()))?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| fail(format!("read: {e}")))?;
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(|| fail("not an HTTP response".into()))?;
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(fail(format!("answered {status:?}")));
    }
    serde_json::from_str(body).map_err(|e| fail(format!("not a report: {e}")))
}
