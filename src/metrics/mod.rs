//! The module's counters: their layout over a slice of `AtomicU64` (in production, shared
//! memory mapped before Apache forks, so every process and thread adds to the same numbers)
//! and their rendering as Prometheus text exposition or JSON.
//!
//! Pure: no Apache types, no I/O. The slice is handed in, so tests use a `Vec`.
//!
//! Layout: slot 0 holds [`LAYOUT_MAGIC`] (a mapping made by another build is not reused), then
//! one slot per [`Counter`], then the round-trip histogram: one slot per bucket (counts of
//! observations that fell in that bucket only; rendering makes them cumulative), then the sum
//! of observed microseconds.
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use crate::web::json::json_string;

/// Changes whenever the layout does.
pub const LAYOUT_MAGIC: u64 = 0x6d73_6d65_7472_0004;

/// Validation outcomes, named by the stable `reason()` texts of
/// `flow::authenticate::Refusal` and `session_store::Rejection`, plus `ok`.
pub const VALIDATION_OUTCOMES: [&str; 12] = [
    "ok",
    "no-cookie",
    "malformed-cookie",
    "ambiguous-cookie",
    "unknown",
    "malformed-record",
    "expired",
    "revoked-user",
    "revoked-all",
    "store-error",
    "store-timeout",
    // A reason this build does not know (kept so a new reason is counted, not lost).
    "other",
];

/// Results of `memsession-login` and `memsession-login-form`. `limited`: refused (429)
/// because a budget of failed password logins was spent.
pub const LOGIN_RESULTS: [&str; 4] = ["ok", "failed", "store-unavailable", "limited"];

/// Upper bounds (seconds) of the store round-trip histogram buckets; +Inf is implied.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Index into [`LOGIN_RESULTS`].
    Login(usize),
    /// Index into [`VALIDATION_OUTCOMES`].
    Validation(usize),
    Logout,
    LogoutStoreError,
    /// `memsession-logout` with `scope=all` ended every session of a user on every server.
    LogoutEverywhere,
    /// `scope=all` could not reach every server (503; re-run).
    LogoutEverywhereIncomplete,
    CsrfRefused,
    /// `MemSession On` issued a session after another auth module succeeded.
    SessionIssued,
    SessionIssueFailed,
    /// `MemSession On` issued no session: the user's `MemSessionMintLimit` was spent.
    SessionMintLimited,
    StoreRoundTrip,
    StoreTimeout,
    StoreError,
    BreakerOpened,
}

const SIMPLE: [Counter; 12] = [
    Counter::Logout,
    Counter::LogoutStoreError,
    Counter::LogoutEverywhere,
    Counter::LogoutEverywhereIncomplete,
    Counter::CsrfRefused,
    Counter::SessionIssued,
    Counter::SessionIssueFailed,
    Counter::SessionMintLimited,
    Counter::StoreRoundTrip,
    Counter::StoreTimeout,
    Counter::StoreError,
    Counter::BreakerOpened,
];

const COUNTERS: usize = LOGIN_RESULTS.len() + VALIDATION_OUTCOMES.len() + SIMPLE.len();
const HISTOGRAM_BASE: usize = 1 + COUNTERS;
const HISTOGRAM_SLOTS: usize = LATENCY_BUCKETS.len() + 1;
const SUM_SLOT: usize = HISTOGRAM_BASE + HISTOGRAM_SLOTS;

/// Slots a mapping must hold.
pub const SLOTS: usize = SUM_SLOT + 1;

impl Counter {
    /// The outcome counter for a `reason()` text; unknown texts count as `other`.
    pub fn validation(reason: &str) -> Counter {
        let index = VALIDATION_OUTCOMES
            .iter()
            .position(|known| *known == reason)
            .unwrap_or(VALIDATION_OUTCOMES.len() - 1);
        Counter::Validation(index)
    }

    pub const LOGIN_OK: Counter = Counter::Login(0);
    pub const LOGIN_FAILED: Counter = Counter::Login(1);
    pub const LOGIN_STORE_UNAVAILABLE: Counter = Counter::Login(2);
    pub const LOGIN_LIMITED: Counter = Counter::Login(3);

    fn slot(self) -> usize {
        let index = match self {
            Counter::Login(i) => i.min(LOGIN_RESULTS.len() - 1),
            Counter::Validation(i) => LOGIN_RESULTS.len() + i.min(VALIDATION_OUTCOMES.len() - 1),
            simple => {
                let position = SIMPLE.iter().position(|c| *c == simple).unwrap_or(0);
                LOGIN_RESULTS.len() + VALIDATION_OUTCOMES.len() + position
            }
        };
        1 + index
    }
}

/// A view of the counters over `slots`.
#[derive(Clone, Copy)]
pub struct Metrics<'a> {
    slots: &'a [AtomicU64],
}

impl<'a> Metrics<'a> {
    /// Zeroes `slots` and stamps the layout. Only for a fresh mapping, before anyone else
    /// sees it. `None` if it is too small.
    pub fn initialise(slots: &'a [AtomicU64]) -> Option<Metrics<'a>> {
        if slots.len() < SLOTS {
            return None;
        }
        for slot in slots {
            slot.store(0, Ordering::Relaxed);
        }
        slots[0].store(LAYOUT_MAGIC, Ordering::Release);
        Some(Metrics { slots })
    }

    /// A view of a mapping initialised by this layout; `None` if it is not one.
    pub fn attach(slots: &'a [AtomicU64]) -> Option<Metrics<'a>> {
        (slots.len() >= SLOTS && slots[0].load(Ordering::Acquire) == LAYOUT_MAGIC)
            .then_some(Metrics { slots })
    }

    pub fn incr(&self, counter: Counter) {
        self.slots[counter.slot()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.slots[counter.slot()].load(Ordering::Relaxed)
    }

    /// Records one store round trip of `elapsed` in the histogram.
    pub fn observe_round_trip(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.slots[HISTOGRAM_BASE + bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.slots[SUM_SLOT].fetch_add(micros, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut buckets = [0u64; HISTOGRAM_SLOTS];
        for (i, bucket) in buckets.iter_mut().enumerate() {
            *bucket = self.slots[HISTOGRAM_BASE + i].load(Ordering::Relaxed);
        }
        Snapshot {
            logins: std::array::from_fn(|i| self.get(Counter::Login(i))),
            validations: std::array::from_fn(|i| self.get(Counter::Validation(i))),
            logouts: self.get(Counter::Logout),
            logout_store_errors: self.get(Counter::LogoutStoreError),
            logouts_everywhere: self.get(Counter::LogoutEverywhere),
            logouts_everywhere_incomplete: self.get(Counter::LogoutEverywhereIncomplete),
            csrf_refused: self.get(Counter::CsrfRefused),
            sessions_issued: self.get(Counter::SessionIssued),
            session_issue_failed: self.get(Counter::SessionIssueFailed),
            sessions_mint_limited: self.get(Counter::SessionMintLimited),
            store_round_trips: self.get(Counter::StoreRoundTrip),
            store_timeouts: self.get(Counter::StoreTimeout),
            store_errors: self.get(Counter::StoreError),
            breaker_opened: self.get(Counter::BreakerOpened),
            latency_buckets: buckets,
            latency_sum_micros: self.slots[SUM_SLOT].load(Ordering::Relaxed),
        }
    }
}

/// The counters at one moment (each read on its own: concurrent requests may land between).
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub logins: [u64; LOGIN_RESULTS.len()],
    pub validations: [u64; VALIDATION_OUTCOMES.len()],
    pub logouts: u64,
    pub logout_store_errors: u64,
    pub logouts_everywhere: u64,
    pub logouts_everywhere_incomplete: u64,
    pub csrf_refused: u64,
    pub sessions_issued: u64,
    pub session_issue_failed: u64,
    pub sessions_mint_limited: u64,
    pub store_round_trips: u64,
    pub store_timeouts: u64,
    pub store_errors: u64,
    pub breaker_opened: u64,
    /// Per bucket, not cumulative; the last is +Inf.
    pub latency_buckets: [u64; HISTOGRAM_SLOTS],
    pub latency_sum_micros: u64,
}

impl Snapshot {
    fn latency_count(&self) -> u64 {
        self.latency_buckets.iter().sum()
    }
}

/// What the status handler learnt about one memcached server at scrape time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerReport {
    pub address: String,
    pub up: bool,
    /// Why it is down (empty when up).
    pub error: String,
    pub version: String,
    pub uptime: Option<u64>,
    pub curr_items: Option<u64>,
    pub evictions: Option<u64>,
    pub bytes: Option<u64>,
    pub limit_maxbytes: Option<u64>,
    pub curr_connections: Option<u64>,
    /// This process's breaker for the server: `closed`, `open` or `half-open`.
    pub breaker: &'static str,
}

impl ServerReport {
    /// Fills the figures from a `stats` answer.
    pub fn with_stats(mut self, stats: &[(String, String)]) -> ServerReport {
        let find = |name: &str| {
            stats
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        self.uptime = find("uptime");
        self.curr_items = find("curr_items");
        self.evictions = find("evictions");
        self.bytes = find("bytes");
        self.limit_maxbytes = find("limit_maxbytes");
        self.curr_connections = find("curr_connections");
        if let Some((_, version)) = stats.iter().find(|(n, _)| n == "version") {
            self.version = version.clone();
        }
        self
    }
}

/// Prometheus label value escaping (backslash, double quote, newline).
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn seconds(micros: u64) -> String {
    format!("{}", micros as f64 / 1_000_000.0)
}

/// Prometheus text exposition format 0.0.4.
pub fn render_prometheus(snapshot: &Snapshot, servers: &[ServerReport]) -> String {
    let mut out = String::with_capacity(4096);
    header(
        &mut out,
        "memsession_logins_total",
        "counter",
        "Logins at memsession-login and memsession-login-form, by result.",
    );
    for (result, value) in LOGIN_RESULTS.iter().zip(snapshot.logins) {
        let _ = writeln!(
            out,
            "memsession_logins_total{{result=\"{result}\"}} {value}"
        );
    }
    header(
        &mut out,
        "memsession_validations_total",
        "counter",
        "Requests authenticated on the session cookie, by outcome.",
    );
    for (outcome, value) in VALIDATION_OUTCOMES.iter().zip(snapshot.validations) {
        let _ = writeln!(
            out,
            "memsession_validations_total{{outcome=\"{outcome}\"}} {value}"
        );
    }
    let simple = [
        (
            "memsession_logouts_total",
            "Logouts at memsession-logout.",
            snapshot.logouts,
        ),
        (
            "memsession_logout_store_errors_total",
            "Logouts whose store delete failed (the session ends at its expiry).",
            snapshot.logout_store_errors,
        ),
        (
            "memsession_logouts_everywhere_total",
            "Sign-outs everywhere (memsession-logout, scope=all): every session of a user ended.",
            snapshot.logouts_everywhere,
        ),
        (
            "memsession_logouts_everywhere_incomplete_total",
            "Sign-outs everywhere that missed a memcached server (answered 503).",
            snapshot.logouts_everywhere_incomplete,
        ),
        (
            "memsession_csrf_refusals_total",
            "Unsafe requests refused by MemSessionCSRFCheck (403).",
            snapshot.csrf_refused,
        ),
        (
            "memsession_sessions_issued_total",
            "Sessions issued by MemSession On after another auth module succeeded.",
            snapshot.sessions_issued,
        ),
        (
            "memsession_session_issue_failures_total",
            "MemSession On could not issue a session (store unavailable).",
            snapshot.session_issue_failed,
        ),
        (
            "memsession_sessions_mint_limited_total",
            "Requests MemSession On authenticated without issuing a session: the user's \
             MemSessionMintLimit was spent (a client that ignores cookies).",
            snapshot.sessions_mint_limited,
        ),
        (
            "memsession_store_round_trips_total",
            "memcached operations (get/multi-get, store, delete), whatever their outcome.",
            snapshot.store_round_trips,
        ),
        (
            "memsession_store_timeouts_total",
            "memcached operations that ran out of MemSessionTimeout.",
            snapshot.store_timeouts,
        ),
        (
            "memsession_store_errors_total",
            "memcached operations that failed otherwise (refused, reset, breaker open...).",
            snapshot.store_errors,
        ),
        (
            "memsession_store_breaker_opens_total",
            "Times a process's circuit breaker for a memcached server opened.",
            snapshot.breaker_opened,
        ),
    ];
    for (name, help, value) in simple {
        header(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let name = "memsession_store_round_trip_seconds";
    header(
        &mut out,
        name,
        "histogram",
        "Wall time of memcached operations, as the module saw it.",
    );
    let mut cumulative = 0u64;
    for (bound, count) in LATENCY_BUCKETS.iter().zip(snapshot.latency_buckets) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let count = snapshot.latency_count();
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {}", seconds(snapshot.latency_sum_micros));
    let _ = writeln!(out, "{name}_count {count}");

    render_servers(&mut out, servers);
    out
}

/// A memcached figure: metric name, type, help, and where to find it.
type Figure = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ServerReport) -> Option<u64>,
);

fn render_servers(out: &mut String, servers: &[ServerReport]) {
    if servers.is_empty() {
        return;
    }
    header(
        out,
        "memsession_memcached_up",
        "gauge",
        "Whether the memcached server answered stats at this scrape.",
    );
    for s in servers {
        let _ = writeln!(
            out,
            "memsession_memcached_up{{server=\"{}\",version=\"{}\"}} {}",
            label(&s.address),
            label(&s.version),
            u8::from(s.up)
        );
    }
    header(
        out,
        "memsession_memcached_breaker_open",
        "gauge",
        "1 when the scraping process's circuit breaker for the server is open or half-open.",
    );
    for s in servers {
        let _ = writeln!(
            out,
            "memsession_memcached_breaker_open{{server=\"{}\"}} {}",
            label(&s.address),
            u8::from(s.breaker != "closed")
        );
    }
    let figures: [Figure; 6] = [
        (
            "memsession_memcached_uptime_seconds",
            "gauge",
            "memcached uptime.",
            |s| s.uptime,
        ),
        (
            "memsession_memcached_curr_items",
            "gauge",
            "Items stored (all keys, not only this prefix).",
            |s| s.curr_items,
        ),
        (
            "memsession_memcached_evictions_total",
            "counter",
            "Items evicted for memory (sessions and epochs lost early).",
            |s| s.evictions,
        ),
        (
            "memsession_memcached_bytes",
            "gauge",
            "Bytes used by items.",
            |s| s.bytes,
        ),
        (
            "memsession_memcached_limit_bytes",
            "gauge",
            "Memory limit (-m).",
            |s| s.limit_maxbytes,
        ),
        (
            "memsession_memcached_curr_connections",
            "gauge",
            "Open connections.",
            |s| s.curr_connections,
        ),
    ];
    for (name, kind, help, value) in figures {
        if servers.iter().all(|s| value(s).is_none()) {
            continue;
        }
        header(out, name, kind, help);
        for s in servers {
            if let Some(v) = value(s) {
                let _ = writeln!(out, "{name}{{server=\"{}\"}} {v}", label(&s.address));
            }
        }
    }
}

fn json_opt(value: Option<u64>) -> String {
    value.map_or_else(|| "null".to_string(), |v| v.to_string())
}

/// One memcached server as a JSON object (shared with `memsessionctl`).
pub fn server_json(s: &ServerReport) -> String {
    format!(
        "{{\"server\":{},\"up\":{},\"error\":{},\"version\":{},\"uptime\":{},\"curr_items\":{},\
         \"evictions\":{},\"bytes\":{},\"limit_maxbytes\":{},\"curr_connections\":{},\
         \"breaker\":{}}}",
        json_string(&s.address),
        s.up,
        if s.error.is_empty() {
            "null".to_string()
        } else {
            json_string(&s.error)
        },
        json_string(&s.version),
        json_opt(s.uptime),
        json_opt(s.curr_items),
        json_opt(s.evictions),
        json_opt(s.bytes),
        json_opt(s.limit_maxbytes),
        json_opt(s.curr_connections),
        json_string(s.breaker),
    )
}

/// The same figures as [`render_prometheus`], as one JSON object for humans and scripts.
pub fn render_json(snapshot: &Snapshot, servers: &[ServerReport]) -> String {
    let object = |names: &[&str], values: &[u64]| {
        let fields: Vec<String> = names
            .iter()
            .zip(values)
            .map(|(n, v)| format!("{}:{v}", json_string(n)))
            .collect();
        format!("{{{}}}", fields.join(","))
    };
    let mut cumulative = 0u64;
    let mut buckets: Vec<String> = LATENCY_BUCKETS
        .iter()
        .zip(snapshot.latency_buckets)
        .map(|(bound, count)| {
            cumulative += count;
            format!("{}:{cumulative}", json_string(&bound.to_string()))
        })
        .collect();
    buckets.push(format!("\"+Inf\":{}", snapshot.latency_count()));
    let servers: Vec<String> = servers.iter().map(server_json).collect();
    format!(
        "{{\"logins\":{},\"validations\":{},\"logouts\":{},\"logout_store_errors\":{},\
         \"logouts_everywhere\":{},\"logouts_everywhere_incomplete\":{},\
         \"csrf_refusals\":{},\"sessions_issued\":{},\"session_issue_failures\":{},\
         \"sessions_mint_limited\":{},\
         \"store\":{{\"round_trips\":{},\"timeouts\":{},\"errors\":{},\"breaker_opens\":{},\
         \"round_trip_seconds\":{{\"buckets\":{{{}}},\"sum\":{},\"count\":{}}}}},\
         \"memcached\":[{}]}}\n",
        object(&LOGIN_RESULTS, &snapshot.logins),
        object(&VALIDATION_OUTCOMES, &snapshot.validations),
        snapshot.logouts,
        snapshot.logout_store_errors,
        snapshot.logouts_everywhere,
        snapshot.logouts_everywhere_incomplete,
        snapshot.csrf_refused,
        snapshot.sessions_issued,
        snapshot.session_issue_failed,
        snapshot.sessions_mint_limited,
        snapshot.store_round_trips,
        snapshot.store_timeouts,
        snapshot.store_errors,
        snapshot.breaker_opened,
        buckets.join(","),
        seconds(snapshot.latency_sum_micros),
        snapshot.latency_count(),
        servers.join(","),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> Vec<AtomicU64> {
        (0..SLOTS).map(|_| AtomicU64::new(7)).collect()
    }

    #[test]
    fn attach_needs_the_layout_stamp() {
        let mem = slots();
        assert!(Metrics::attach(&mem).is_none(), "garbage is not attached");
        let short: Vec<AtomicU64> = (0..SLOTS - 1).map(|_| AtomicU64::new(0)).collect();
        assert!(Metrics::initialise(&short).is_none());
        let m = Metrics::initialise(&mem).unwrap();
        assert_eq!(m.get(Counter::Logout), 0, "initialise zeroes");
        m.incr(Counter::Logout);
        let again = Metrics::attach(&mem).unwrap();
        assert_eq!(again.get(Counter::Logout), 1);
    }

    #[test]
    fn every_counter_has_its_own_slot() {
        let mem = slots();
        let m = Metrics::initialise(&mem).unwrap();
        let mut all: Vec<Counter> = SIMPLE.to_vec();
        all.extend((0..LOGIN_RESULTS.len()).map(Counter::Login));
        all.extend((0..VALIDATION_OUTCOMES.len()).map(Counter::Validation));
        let mut seen: Vec<usize> = all.iter().map(|c| c.slot()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), all.len());
        assert!(seen.iter().all(|s| (1..HISTOGRAM_BASE).contains(s)));
        for (n, c) in all.iter().enumerate() {
            for _ in 0..=n {
                m.incr(*c);
            }
        }
        for (n, c) in all.iter().enumerate() {
            assert_eq!(m.get(*c), n as u64 + 1, "{c:?}");
        }
    }

    #[test]
    fn reasons_map_to_outcomes() {
        assert_eq!(Counter::validation("ok"), Counter::Validation(0));
        assert_eq!(
            Counter::validation("store-timeout"),
            Counter::Validation(10)
        );
        assert_eq!(
            Counter::validation("something-new"),
            Counter::Validation(VALIDATION_OUTCOMES.len() - 1)
        );
    }

    #[test]
    fn histogram_is_cumulative_in_the_exposition() {
        let mem = slots();
        let m = Metrics::initialise(&mem).unwrap();
        m.observe_round_trip(Duration::from_micros(50)); // <= 0.0001
        m.observe_round_trip(Duration::from_micros(100)); // <= 0.0001 (inclusive)
        m.observe_round_trip(Duration::from_millis(3)); // <= 0.005
        m.observe_round_trip(Duration::from_secs(9)); // +Inf
        let text = render_prometheus(&m.snapshot(), &[]);
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("{prefix} missing in\n{text}"))
                .to_string()
        };
        assert_eq!(
            line("memsession_store_round_trip_seconds_bucket{le=\"0.0001\"}"),
            "memsession_store_round_trip_seconds_bucket{le=\"0.0001\"} 2"
        );
        assert!(line("memsession_store_round_trip_seconds_bucket{le=\"0.0025\"}").ends_with(" 2"));
        assert!(line("memsession_store_round_trip_seconds_bucket{le=\"0.005\"}").ends_with(" 3"));
        assert!(line("memsession_store_round_trip_seconds_bucket{le=\"2.5\"}").ends_with(" 3"));
        assert!(line("memsession_store_round_trip_seconds_bucket{le=\"+Inf\"}").ends_with(" 4"));
        assert!(line("memsession_store_round_trip_seconds_count").ends_with(" 4"));
        assert_eq!(
            line("memsession_store_round_trip_seconds_sum"),
            "memsession_store_round_trip_seconds_sum 9.00315"
        );
    }

    #[test]
    fn exposition_is_well_formed() {
        let mem = slots();
        let m = Metrics::initialise(&mem).unwrap();
        m.incr(Counter::validation("revoked-user"));
        m.incr(Counter::LOGIN_OK);
        let servers = [
            ServerReport {
                address: "unix:/run/a \"b\".sock".into(),
                up: true,
                breaker: "closed",
                ..Default::default()
            }
            .with_stats(&[
                ("version".into(), "1.6.21".into()),
                ("curr_items".into(), "12".into()),
                ("evictions".into(), "0".into()),
            ]),
            ServerReport {
                address: "127.0.0.1:11211".into(),
                error: "refused".into(),
                breaker: "open",
                ..Default::default()
            },
        ];
        let text = render_prometheus(&m.snapshot(), &servers);
        assert!(text.contains("memsession_validations_total{outcome=\"revoked-user\"} 1\n"));
        assert!(text.contains("memsession_logins_total{result=\"ok\"} 1\n"));
        assert!(text.contains(
            "memsession_memcached_up{server=\"unix:/run/a \\\"b\\\".sock\",version=\"1.6.21\"} 1\n"
        ));
        assert!(text.contains("memsession_memcached_up{server=\"127.0.0.1:11211\",version=\"\"} 0"));
        assert!(text.contains("memsession_memcached_breaker_open{server=\"127.0.0.1:11211\"} 1"));
        assert!(text
            .contains("memsession_memcached_curr_items{server=\"unix:/run/a \\\"b\\\".sock\"} 12"));
        for line in text.lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP ") || line.starts_with("# TYPE "),
                    "{line}"
                );
                continue;
            }
            let (_, value) = line.rsplit_once(' ').expect(line);
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        let json = render_json(&m.snapshot(), &servers);
        assert!(json.contains("\"validations\":{\"ok\":0,"), "{json}");
        assert!(json.contains("\"revoked-user\":1"), "{json}");
        assert!(json.contains("\"server\":\"127.0.0.1:11211\",\"up\":false,\"error\":\"refused\""));
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
