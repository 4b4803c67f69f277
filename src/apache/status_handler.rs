//! `SetHandler memsession-status`: the shared counters (every process and thread of this
//! httpd) and each memcached server's figures fetched at scrape time, as Prometheus text
//! exposition (default) or JSON (`?format=json`, or `Accept: application/json`).
//!
//! Each server costs one `stats` round trip bounded by `MemSessionTimeout`; a server whose
//! circuit breaker is open is reported down at once. Protect the location like any other
//! (`Require ip 127.0.0.1`, `Require user ...`): it reveals traffic figures, not sessions.
use std::ffi::c_int;

use super::handlers::no_store;
use super::log::Level;
use super::request::{Headers, Method, Request};
use super::shared_metrics;
use super::status;
use crate::admin::server_reports;
use crate::flow::query;
use crate::metrics;

pub const HANDLER: &str = "memsession-status";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

fn wants_json(request: &Request) -> bool {
    if let Some(format) = request
        .args()
        .and_then(|args| query::parameter(args, "format"))
    {
        return format.eq_ignore_ascii_case("json");
    }
    request
        .header(Headers::In, c"Accept")
        .is_some_and(|accept| accept.to_ascii_lowercase().contains("application/json"))
}

pub fn handle(request: &mut Request) -> c_int {
    if !matches!(request.method(), "GET" | "HEAD") {
        request.allow_methods(&[Method::Get]);
        return status::METHOD_NOT_ALLOWED;
    }
    let Some(store) = request.session_store() else {
        return status::INTERNAL_SERVER_ERROR;
    };
    no_store(request);
    let Some(counters) = shared_metrics::metrics() else {
        request.log(
            Level::Error,
            format_args!(
                "memsession-status: the shared counters were not set up at start-up (see the \
                 error log of the start)"
            ),
        );
        return request.respond(
            status::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "memsession-status: counters unavailable\n",
        );
    };
    let snapshot = counters.snapshot();
    let servers = server_reports(store.client());
    if wants_json(request) {
        let body = metrics::render_json(&snapshot, &servers);
        request.respond(status::HTTP_OK, "application/json", &body)
    } else {
        let body = metrics::render_prometheus(&snapshot, &servers);
        request.respond(status::HTTP_OK, PROMETHEUS, &body)
    }
}
