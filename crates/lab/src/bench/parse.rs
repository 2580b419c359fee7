//! Readers of tool output and kernel counters: wrk, iperf3 `-J`, `/proc/PID/stat`,
//! `/proc/PID/status`, `/proc/stat`, `/proc/slabinfo` and `ip -j -s link`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::LabError;

fn bad(peer: &str, reason: impl Into<String>) -> LabError {
    LabError::Protocol {
        peer: peer.to_owned(),
        reason: reason.into(),
    }
}

/// What one wrk run measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WrkResult {
    /// Completed requests over the run.
    pub requests: u64,
    /// Completed requests per second.
    pub requests_per_s: f64,
    /// Median latency, milliseconds (with `--latency`).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, milliseconds (with `--latency`).
    pub p99_ms: Option<f64>,
    /// Socket errors of every kind (connect, read, write, timeout).
    pub socket_errors: u64,
    /// Responses that were not 2xx or 3xx.
    pub bad_responses: u64,
}

/// A wrk duration like `812.00us`, `1.23ms` or `2.01s`, in milliseconds.
fn wrk_duration_ms(s: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// Parses wrk's report (`Requests/sec:`, the `--latency` distribution, error lines).
pub fn parse_wrk(text: &str) -> Result<WrkResult, LabError> {
    let mut result = WrkResult {
        requests: 0,
        requests_per_s: f64::NAN,
        p50_ms: None,
        p99_ms: None,
        socket_errors: 0,
        bad_responses: 0,
    };
    for line in text.lines().map(str::trim) {
        if line.contains(" requests in ") {
            // "35325 requests in 20.00s, 8.19MB read"
            result.requests = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| bad("wrk", format!("unreadable request count in {line:?}")))?;
        } else if let Some(rate) = line.strip_prefix("Requests/sec:") {
            result.requests_per_s = rate
                .trim()
                .parse()
                .map_err(|_| bad("wrk", format!("unreadable rate in {line:?}")))?;
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 12, write 0, timeout 3"
            result.socket_errors = errors
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.bad_responses = n.trim().parse().unwrap_or(0);
        } else if let Some(rest) = line.strip_prefix("50%") {
            result.p50_ms = wrk_duration_ms(rest.trim());
        } else if let Some(rest) = line.strip_prefix("99%") {
            result.p99_ms = wrk_duration_ms(rest.trim());
        }
    }
    if result.requests_per_s.is_nan() {
        return Err(bad("wrk", format!("no `Requests/sec:` line in:\n{text}")));
    }
    Ok(result)
}

/// What one iperf3 client run measured (from its `-J` output).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct IperfResult {
    /// Bits per second the server received.
    pub received_bps: f64,
    /// TCP retransmissions of the sender.
    pub retransmits: u64,
}

/// Parses `iperf3 -c … -J` output.
pub fn parse_iperf3(json: &str) -> Result<IperfResult, LabError> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| bad("iperf3", format!("not JSON: {e}")))?;
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Err(bad("iperf3", error.to_owned()));
    }
    let received_bps = value
        .pointer("/end/sum_received/bits_per_second")
        .and_then(Value::as_f64)
        .ok_or_else(|| bad("iperf3", "no end.sum_received.bits_per_second"))?;
    let retransmits = value
        .pointer("/end/sum_sent/retransmits")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    Ok(IperfResult {
        received_bps,
        retransmits,
    })
}

/// User plus system CPU time of a process (all its threads), in clock ticks, from the text of
/// `/proc/PID/stat`.
pub fn parse_proc_stat_ticks(stat: &str) -> Result<u64, LabError> {
    // The command name may hold spaces and parentheses: fields count from the last `)`.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| bad("/proc/PID/stat", "no `)` after the command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let tick = |i: usize| -> Result<u64, LabError> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| bad("/proc/PID/stat", format!("field {} missing", i + 3)))
    };
    Ok(tick(11)? + tick(12)?)
}

/// The resident set size in bytes, from the text of `/proc/PID/status`.
pub fn parse_vm_rss(status: &str) -> Result<u64, LabError> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| bad("/proc/PID/status", "no VmRSS line"))
}

/// Machine-wide CPU time from the `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuTimes {
    /// User and nice time.
    pub user: u64,
    /// System time.
    pub system: u64,
    /// Hard and soft interrupt time.
    pub irq: u64,
    /// Idle and I/O wait time.
    pub idle: u64,
}

impl CpuTimes {
    /// Kernel time: system, irq and softirq.
    pub fn kernel(&self) -> u64 {
        self.system + self.irq
    }

    /// Time not idle.
    pub fn busy(&self) -> u64 {
        self.user + self.system + self.irq
    }

    /// The time between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            irq: self.irq.saturating_sub(earlier.irq),
            idle: self.idle.saturating_sub(earlier.idle),
        }
    }
}

/// Parses the `cpu` line of `/proc/stat`.
pub fn parse_cpu_times(stat: &str) -> Result<CpuTimes, LabError> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or_else(|| bad("/proc/stat", "no `cpu` line"))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    if v.len() < 7 {
        return Err(bad("/proc/stat", format!("short `cpu` line {line:?}")));
    }
    // user nice system idle iowait irq softirq [steal …]
    Ok(CpuTimes {
        user: v[0] + v[1],
        system: v[2],
        irq: v[5] + v[6],
        idle: v[3] + v[4],
    })
}

/// The object size in bytes of slab cache `name` in `/proc/slabinfo`.
pub fn parse_slab_objsize(slabinfo: &str, name: &str) -> Option<u64> {
    slabinfo.lines().find_map(|l| {
        let mut fields = l.split_whitespace();
        if fields.next()? != name {
            return None;
        }
        // name active_objs num_objs objsize …
        fields.nth(2)?.parse().ok()
    })
}

/// The sum of received packets over the interfaces of `ip -j -s link` (loopback left out).
pub fn parse_rx_packets(ip_json: &str) -> Result<u64, LabError> {
    let value: Value =
        serde_json::from_str(ip_json).map_err(|e| bad("ip -j -s link", e.to_string()))?;
    let links = value
        .as_array()
        .ok_or_else(|| bad("ip -j -s link", "not a list of links"))?;
    Ok(links
        .iter()
        .filter(|l| l.get("ifname").and_then(Value::as_str) != Some("lo"))
        .filter_map(|l| l.pointer("/stats64/rx/packets").and_then(Value::as_u64))
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// wrk 4.1.0's report layout, its figures edited to cover each unit and error line.
    const WRK: &str = "Running 2s test @ http://10.9.100.10/
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.45ms    2.10ms  31.02ms   84.12%
    Req/Sec     4.71k   612.33     5.80k    70.00%
  Latency Distribution
     50%    2.98ms
     75%    4.10ms
     90%    5.77ms
     99%  812.00us
  18811 requests in 2.00s, 2.89MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   9405.12
Transfer/sec:      1.45MB
";

    #[test]
    fn wrk_reports_parse() {
        let r = parse_wrk(WRK).expect("parses");
        assert!((r.requests_per_s - 9405.12).abs() < 1e-9);
        assert_eq!(r.p50_ms, Some(2.98));
        assert!((r.p99_ms.expect("p99") - 0.812).abs() < 1e-9);
        assert_eq!(r.socket_errors, 5);
        assert_eq!(r.bad_responses, 4);
        assert!(parse_wrk("unable to connect to 10.9.100.10:80").is_err());
        assert_eq!(wrk_duration_ms("1.50s"), Some(1500.0));
    }

    #[test]
    fn iperf3_reports_parse() {
        let json = r#"{"start":{},"intervals":[],"end":{"sum_sent":{"bytes":1,"bits_per_second":9.9e9,"retransmits":7},
            "sum_received":{"bytes":1,"bits_per_second":9.5e9}}}"#;
        let r = parse_iperf3(json).expect("parses");
        assert!((r.received_bps - 9.5e9).abs() < 1.0);
        assert_eq!(r.retransmits, 7);
        let failed = r#"{"start":{},"intervals":[],"end":{},"error":"unable to connect to server: Connection refused"}"#;
        let e = parse_iperf3(failed).expect_err("an error");
        assert!(e.to_string().contains("Connection refused"), "{e}");
    }

    #[test]
    fn kernel_counters_parse() {
        let stat = "4242 (tether (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 75 0 0 20 0 9 0 \
                    1234 100000 2000 18446744073709551615";
        assert_eq!(parse_proc_stat_ticks(stat).expect("parses"), 225);
        assert_eq!(
            parse_vm_rss("Name:\ttether\nVmRSS:\t   10240 kB\n").expect("rss"),
            10 << 20
        );
        let cpu = parse_cpu_times("cpu  10 2 30 400 5 6 7 0 0 0\ncpu0 1 1 1 1 1 1 1 0 0 0\n")
            .expect("cpu");
        assert_eq!(cpu.user, 12);
        assert_eq!(cpu.kernel(), 43);
        assert_eq!(cpu.busy(), 55);
        let slab = "slabinfo - version: 2.1\n# name <active_objs> <num_objs> <objsize> …\n\
                    nf_conntrack        1024   1050    320   25    2 : tunables 0 0 0\n";
        assert_eq!(parse_slab_objsize(slab, "nf_conntrack"), Some(320));
        assert_eq!(parse_slab_objsize(slab, "nf_conntrack_expect"), None);
        let links = r#"[{"ifname":"lo","stats64":{"rx":{"packets":5}}},
            {"ifname":"v0001b","stats64":{"rx":{"packets":100}}},
            {"ifname":"v0002a","stats64":{"rx":{"packets":23}}}]"#;
        assert_eq!(parse_rx_packets(links).expect("links"), 123);
    }
}
