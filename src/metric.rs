//! Prometheus metrics: the metric names (an interface, documented in docs/operations.md), the
//! exporter, and the small recording functions the milter, the evaluator and the DNS cache call.
//!
//! Recording goes through the `metrics` facade. Without `[metrics] listen` no recorder is
//! installed and every call here is a no-op, so `spoofguard check` and the tests pay nothing.
//! This module takes plain strings, not our verdict types, so that it depends on nothing else
//! in the crate and every module may call it.

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::PrometheusBuilder;
use std::net::SocketAddr;
use std::time::Duration;

/// Messages seen at end of message, by `decision` and `action`.
pub const MESSAGES: &str = "spoofguard_messages_total";
/// Findings (reasons) added to judged messages, by `reason` code.
pub const FINDINGS: &str = "spoofguard_findings_total";
/// Authentication results of judged messages, by `method` and `result`.
pub const AUTH_RESULTS: &str = "spoofguard_auth_results_total";
/// DNS cache look-ups, by `record` type and `outcome` (`hit` or `miss`).
pub const DNS_CACHE_LOOKUPS: &str = "spoofguard_dns_cache_lookups_total";
/// Time spent in each milter callback, by `stage`.
pub const STAGE_DURATION: &str = "spoofguard_milter_stage_duration_seconds";
/// Time spent judging a message, by evaluation `step`.
pub const EVALUATION_DURATION: &str = "spoofguard_evaluation_duration_seconds";
/// MTA connections open now.
pub const CONNECTIONS_OPEN: &str = "spoofguard_connections_open";
/// MTA connections accepted since start.
pub const CONNECTIONS: &str = "spoofguard_connections_total";
/// Configuration reloads (SIGHUP), by `result` (`ok` or `failed`).
pub const CONFIG_RELOADS: &str = "spoofguard_config_reloads_total";
/// Always 1, with the `version` label.
pub const BUILD_INFO: &str = "spoofguard_build_info";
/// Tasks alive in the async runtime, sampled every [`TASKS_SAMPLE_INTERVAL`].
pub const TASKS_ALIVE: &str = "spoofguard_tasks_alive";

/// How often [`TASKS_ALIVE`] is sampled: one atomic read, so the exporter never has to call
/// into the runtime while it renders.
pub const TASKS_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Histogram buckets in seconds: from 100 µs (a header callback) to 30 s (DNS time-outs).
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 30.0,
];

/// The exporter, configured with our buckets, before it is installed.
fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets(&BUCKETS)
        .expect("the bucket list is not empty")
}

/// Starts the HTTP exporter on `addr` (any path answers with the text format) and installs
/// the global recorder. Must run inside the tokio runtime. Fails if `addr` cannot be bound.
pub fn install(addr: SocketAddr) -> Result<(), String> {
    builder()
        .with_http_listener(addr)
        .install()
        .map_err(|e| e.to_string())?;
    describe();
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        tasks_alive(&rt);
        rt.spawn(sample_tasks(rt.clone()));
    }
    Ok(())
}

/// Sets [`TASKS_ALIVE`] every [`TASKS_SAMPLE_INTERVAL`], for as long as the runtime runs.
async fn sample_tasks(rt: tokio::runtime::Handle) {
    let mut tick = tokio::time::interval(TASKS_SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        tasks_alive(&rt);
    }
}

/// Records the number of tasks alive in `rt` now: spoofguard's own (the exporter and its
/// HTTP connections, the reload and sampling tasks), two per open MTA connection (indymilter's
/// session and its socket), and the resolver's. Returns it.
pub fn tasks_alive(rt: &tokio::runtime::Handle) -> usize {
    let n = rt.metrics().num_alive_tasks();
    gauge!(TASKS_ALIVE).set(n as f64);
    n
}

/// HELP and TYPE lines, and the series that should read 0 before anything happened.
fn describe() {
    describe_counter!(
        MESSAGES,
        "Messages at end of message, by decision and action taken"
    );
    describe_counter!(FINDINGS, "Reasons added to judged messages, by reason code");
    describe_counter!(
        AUTH_RESULTS,
        "Authentication results of judged messages, by method and result"
    );
    describe_counter!(
        DNS_CACHE_LOOKUPS,
        "DNS cache look-ups by record type and outcome; a miss is followed by a query"
    );
    describe_histogram!(
        STAGE_DURATION,
        Unit::Seconds,
        "Time spent in each milter callback"
    );
    describe_histogram!(
        EVALUATION_DURATION,
        Unit::Seconds,
        "Time spent judging a message, by step"
    );
    describe_gauge!(CONNECTIONS_OPEN, "MTA connections open now");
    describe_counter!(CONNECTIONS, "MTA connections accepted");
    describe_counter!(CONFIG_RELOADS, "Configuration reloads by result");
    describe_gauge!(
        BUILD_INFO,
        "Always 1; the version label is the running version"
    );
    describe_gauge!(
        TASKS_ALIVE,
        "Tasks alive in the async runtime, sampled every second"
    );
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    gauge!(CONNECTIONS_OPEN).set(0.0);
    counter!(CONNECTIONS).absolute(0);
    for result in ["ok", "failed"] {
        counter!(CONFIG_RELOADS, "result" => result).absolute(0);
    }
}

/// What the milter did with a message (the `action` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Continued: the MTA delivers it (also dry run, and skipped messages).
    Deliver,
    Quarantine,
    Reject,
    Tempfail,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Deliver => "deliver",
            Action::Quarantine => "quarantine",
            Action::Reject => "reject",
            Action::Tempfail => "tempfail",
        }
    }
}

/// One message finished: `decision` is `accept`, `tag`, `quarantine`, `reject`, `tempfail`,
/// or `skip` / `oversize` for messages not judged.
pub fn message(decision: &'static str, action: Action) {
    counter!(MESSAGES, "decision" => decision, "action" => action.as_str()).increment(1);
}

/// One finding with its reason code (`RULE:<name>` for rules).
pub fn finding(reason: &str) {
    counter!(FINDINGS, "reason" => reason.to_owned()).increment(1);
}

/// One authentication result: `method` is `spf`, `dkim` (once per signature), `arc` or
/// `dmarc`; `result` an RFC 8601 keyword.
pub fn auth_result(method: &'static str, result: &'static str) {
    counter!(AUTH_RESULTS, "method" => method, "result" => result).increment(1);
}

/// One look-up in our DNS cache.
pub fn dns_cache_lookup(record: &'static str, hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    counter!(DNS_CACHE_LOOKUPS, "record" => record, "outcome" => outcome).increment(1);
}

/// Time spent in one milter callback.
pub fn stage(stage: &'static str, elapsed: Duration) {
    histogram!(STAGE_DURATION, "stage" => stage).record(elapsed.as_secs_f64());
}

/// Time spent in one step of the evaluation (`auth`, `lookalike`, `total`).
pub fn evaluation_step(step: &'static str, elapsed: Duration) {
    histogram!(EVALUATION_DURATION, "step" => step).record(elapsed.as_secs_f64());
}

/// One SIGHUP reload.
pub fn config_reload(ok: bool) {
    let result = if ok { "ok" } else { "failed" };
    counter!(CONFIG_RELOADS, "result" => result).increment(1);
}

/// Counts an MTA connection as open while it lives.
#[derive(Debug)]
pub struct ConnectionGauge(());

impl ConnectionGauge {
    /// A new connection.
    pub fn open() -> Self {
        counter!(CONNECTIONS).increment(1);
        gauge!(CONNECTIONS_OPEN).increment(1.0);
        ConnectionGauge(())
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` against a private recorder and returns the text a scrape would get.
    fn render(f: impl FnOnce()) -> String {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            describe();
            f();
        });
        handle.render()
    }

    fn has(text: &str, line: &str) -> bool {
        text.lines().any(|l| l == line)
    }

    #[test]
    fn metric_lines_have_stable_names_and_labels() {
        let text = render(|| {
            message("reject", Action::Reject);
            message("reject", Action::Reject);
            message("reject", Action::Deliver);
            finding("DMARC_FAIL");
            finding("RULE:gift-card");
            auth_result("spf", "fail");
            auth_result("dkim", "pass");
            auth_result("dkim", "pass");
            dns_cache_lookup("txt", true);
            dns_cache_lookup("txt", false);
            config_reload(false);
            stage("eom", Duration::from_millis(3));
            evaluation_step("auth", Duration::from_micros(50));
        });
        for line in [
            "spoofguard_messages_total{decision=\"reject\",action=\"reject\"} 2",
            "spoofguard_messages_total{decision=\"reject\",action=\"deliver\"} 1",
            "spoofguard_findings_total{reason=\"DMARC_FAIL\"} 1",
            "spoofguard_findings_total{reason=\"RULE:gift-card\"} 1",
            "spoofguard_auth_results_total{method=\"spf\",result=\"fail\"} 1",
            "spoofguard_auth_results_total{method=\"dkim\",result=\"pass\"} 2",
            "spoofguard_dns_cache_lookups_total{record=\"txt\",outcome=\"hit\"} 1",
            "spoofguard_dns_cache_lookups_total{record=\"txt\",outcome=\"miss\"} 1",
            "spoofguard_config_reloads_total{result=\"failed\"} 1",
            "spoofguard_config_reloads_total{result=\"ok\"} 0",
            "spoofguard_milter_stage_duration_seconds_bucket{stage=\"eom\",le=\"0.0025\"} 0",
            "spoofguard_milter_stage_duration_seconds_bucket{stage=\"eom\",le=\"0.005\"} 1",
            "spoofguard_milter_stage_duration_seconds_count{stage=\"eom\"} 1",
            "spoofguard_evaluation_duration_seconds_count{step=\"auth\"} 1",
            "# TYPE spoofguard_milter_stage_duration_seconds histogram",
            "# TYPE spoofguard_messages_total counter",
        ] {
            assert!(has(&text, line), "missing {line:?} in\n{text}");
        }
        let build = format!(
            "spoofguard_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(has(&text, &build), "{text}");
    }

    #[test]
    fn connection_gauge_follows_open_connections() {
        let mut still_open = None;
        let text = render(|| {
            let a = ConnectionGauge::open();
            let b = ConnectionGauge::open();
            drop(a);
            still_open = Some(ConnectionGauge::open());
            drop(b);
        });
        drop(still_open);
        assert!(has(&text, "spoofguard_connections_open 1"), "{text}");
        assert!(has(&text, "spoofguard_connections_total 3"), "{text}");
    }

    /// The gauge follows the runtime's count: one more while a spawned task waits, back to
    /// the same number once it has ended.
    #[test]
    fn tasks_alive_counts_runtime_tasks() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (mut before, mut during, mut after) = (0, 0, 0);
        let text = render(|| {
            before = tasks_alive(&handle);
            let task = handle.spawn(async move {
                let _ = rx.await;
            });
            during = tasks_alive(&handle);
            tx.send(()).unwrap();
            rt.block_on(task).unwrap();
            after = tasks_alive(&handle);
        });
        assert_eq!((during, after), (before + 1, before), "{text}");
        assert!(
            has(&text, &format!("spoofguard_tasks_alive {after}")),
            "{text}"
        );
    }
}
