//! Medians, min–max ranges, the ratio table and the JSON file of a benchmark run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::Mode;

/// A measured quantity: its key in the JSON file, what it is, and which way is better.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    /// Key in the JSON file.
    pub key: &'static str,
    /// Row label.
    pub label: &'static str,
    /// Whether a larger value is better (rates) or a smaller one (latency, CPU, memory).
    pub higher_is_better: bool,
}

/// Every metric, in table order.
pub const METRICS: &[Metric] = &[
    Metric {
        key: "udp_pps",
        label: "UDP forwarding, 64 B, <=0.1% loss (kpps)",
        higher_is_better: true,
    },
    Metric {
        key: "udp_max_pps",
        label: "UDP received at offered max (kpps)",
        higher_is_better: true,
    },
    Metric {
        key: "udp_max_loss_pct",
        label: "UDP loss at offered max (%)",
        higher_is_better: false,
    },
    Metric {
        key: "conn_per_s",
        label: "new TCP connections/s (k)",
        higher_is_better: true,
    },
    Metric {
        key: "connect_p50_us",
        label: "TCP connect time p50 (us)",
        higher_is_better: false,
    },
    Metric {
        key: "connect_p99_us",
        label: "TCP connect time p99 (us)",
        higher_is_better: false,
    },
    Metric {
        key: "http_rps",
        label: "keep-alive HTTP requests/s (k)",
        higher_is_better: true,
    },
    Metric {
        key: "http_p50_ms",
        label: "keep-alive latency p50 (ms)",
        higher_is_better: false,
    },
    Metric {
        key: "http_p99_ms",
        label: "keep-alive latency p99 (ms)",
        higher_is_better: false,
    },
    Metric {
        key: "iperf_gbps",
        label: "bulk TCP, iperf3 (Gbit/s)",
        higher_is_better: true,
    },
    Metric {
        key: "cpu_s_per_mpkt_udp",
        label: "director CPU s / Mpkt (UDP)",
        higher_is_better: false,
    },
    Metric {
        key: "cpu_s_per_mpkt_http",
        label: "director CPU s / Mpkt (HTTP)",
        higher_is_better: false,
    },
    Metric {
        key: "machine_s_per_mpkt_udp",
        label: "whole-lab CPU s / Mpkt (UDP)",
        higher_is_better: false,
    },
    Metric {
        key: "machine_s_per_mpkt_http",
        label: "whole-lab CPU s / Mpkt (HTTP)",
        higher_is_better: false,
    },
    Metric {
        key: "mem_mb_per_mflow",
        label: "director memory per M flows (MB)",
        higher_is_better: false,
    },
];

/// Median, minimum and maximum of one metric over the runs, and the runs themselves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest run.
    pub min: f64,
    /// The largest run.
    pub max: f64,
    /// Every run, in order.
    pub runs: Vec<f64>,
}

impl Summary {
    /// Summarizes `runs`; `None` when there are none (the metric does not apply).
    pub fn of(runs: &[f64]) -> Option<Summary> {
        if runs.is_empty() {
            return None;
        }
        let mut sorted = runs.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])
        };
        Some(Summary {
            median,
            min: sorted[0],
            max: sorted[n - 1],
            runs: runs.to_vec(),
        })
    }
}

/// Every mode's runs of every metric, and notes on how each was measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// Machine and settings the run used.
    pub machine: BTreeMap<String, String>,
    /// Per mode name, per metric key, the summary.
    pub modes: BTreeMap<String, BTreeMap<String, Summary>>,
    /// Per mode name, what a person should know about its figures.
    pub notes: BTreeMap<String, Vec<String>>,
}

impl Results {
    /// Records one mode's raw samples (metric key to one value per run).
    pub fn record(&mut self, mode: Mode, samples: &BTreeMap<&'static str, Vec<f64>>) {
        let entry = self.modes.entry(mode.key().to_owned()).or_default();
        for (key, runs) in samples {
            if let Some(summary) = Summary::of(runs) {
                entry.insert((*key).to_owned(), summary);
            }
        }
    }

    fn median(&self, mode: Mode, key: &str) -> Option<f64> {
        self.modes.get(mode.key())?.get(key).map(|s| s.median)
    }

    /// The medians with their min–max, one row per metric and one column per mode.
    pub fn medians_table(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "| metric |");
        for mode in Mode::ALL {
            let _ = write!(out, " {} |", mode.label());
        }
        let _ = write!(out, "\n|---|");
        for _ in Mode::ALL {
            let _ = write!(out, "---|");
        }
        out.push('\n');
        for metric in METRICS {
            let _ = write!(out, "| {} |", metric.label);
            for mode in Mode::ALL {
                match self.modes.get(mode.key()).and_then(|m| m.get(metric.key)) {
                    Some(s) => {
                        let _ = write!(
                            out,
                            " {} ({}–{}) |",
                            fmt_value(metric.key, s.median),
                            fmt_value(metric.key, s.min),
                            fmt_value(metric.key, s.max)
                        );
                    }
                    None => out.push_str(" n/a |"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// Ratios of the medians: Tether NAT and DSR over nftables and over HAProxy.
    pub fn ratio_table(&self) -> String {
        let pairs = [
            (Mode::TetherNat, Mode::Nftables),
            (Mode::TetherNat, Mode::Haproxy),
            (Mode::TetherDsr, Mode::Nftables),
            (Mode::TetherDsr, Mode::Haproxy),
        ];
        let mut out = String::from("| metric | better |");
        for (a, b) in pairs {
            let _ = write!(out, " {} / {} |", a.label(), b.label());
        }
        out.push_str("\n|---|---|---|---|---|---|\n");
        for metric in METRICS {
            let _ = write!(
                out,
                "| {} | {} |",
                metric.label,
                if metric.higher_is_better {
                    "higher"
                } else {
                    "lower"
                }
            );
            for (a, b) in pairs {
                match (self.median(a, metric.key), self.median(b, metric.key)) {
                    (Some(x), Some(y)) if y > 0.0 => {
                        let _ = write!(out, " {:.2}× |", x / y);
                    }
                    _ => out.push_str(" n/a |"),
                }
            }
            out.push('\n');
        }
        out
    }
}

/// A value in the unit of its row (rates in thousands).
fn fmt_value(key: &str, v: f64) -> String {
    match key {
        "udp_pps" | "udp_max_pps" | "conn_per_s" | "http_rps" => format!("{:.1}", v / 1000.0),
        "udp_max_loss_pct" | "iperf_gbps" | "http_p50_ms" | "http_p99_ms" => format!("{v:.2}"),
        "mem_mb_per_mflow" | "connect_p50_us" | "connect_p99_us" => format!("{v:.0}"),
        _ => format!("{v:.3}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ratios() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 4.0]).expect("runs");
        assert!((s.median - 3.5).abs() < 1e-12);
        assert!((s.min - 1.0).abs() < 1e-12 && (s.max - 5.0).abs() < 1e-12);
        assert!(Summary::of(&[]).is_none());

        let mut results = Results::default();
        let mut nat = BTreeMap::new();
        nat.insert("conn_per_s", vec![3000.0, 1000.0, 2000.0]);
        results.record(Mode::TetherNat, &nat);
        let mut nft = BTreeMap::new();
        nft.insert("conn_per_s", vec![4000.0]);
        results.record(Mode::Nftables, &nft);
        let ratios = results.ratio_table();
        assert!(
            ratios.contains("| new TCP connections/s (k) | higher | 0.50× | n/a |"),
            "{ratios}"
        );
        let medians = results.medians_table();
        assert!(medians.contains("2.0 (1.0–3.0)"), "{medians}");
    }
}
