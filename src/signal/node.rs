//! The host signals of node_exporter that operators alert on, computed from its metrics the
//! way their usual PromQL does:
//!
//! | signal | from |
//! |---|---|
//! | `cpu_busy_percent` | `100 × (1 − Δidle / Δall)` of `node_cpu_seconds_total` summed over CPUs, between two scrapes |
//! | `memory_available_percent` | `100 × node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes` |
//! | `filesystem_free_percent` | `100 × node_filesystem_avail_bytes / node_filesystem_size_bytes` of one `mountpoint` (space an unprivileged user can still write) |
//! | `load_per_core` | `node_load1 / ` the number of CPUs in `node_cpu_seconds_total` |
//!
//! A metric that is missing, or a mount point that several filesystems share, is an error
//! with the reason: the check fails rather than guess.

use std::collections::BTreeSet;
use std::fmt;

use prometheus_parse::Scrape;

use super::selector::{Selector, scalar};

/// One host signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeSignal {
    /// CPU time not idle, % over the time between two scrapes.
    CpuBusyPercent,
    /// Memory available to new work, % of the total.
    MemoryAvailablePercent,
    /// Free space of the filesystem mounted at this path, % of its size.
    FilesystemFreePercent {
        /// `mountpoint` label, e.g. `/` or `/var/lib/postgresql`.
        mountpoint: String,
    },
    /// One-minute load average divided by the number of CPUs.
    LoadPerCore,
}

/// The names a configuration uses.
pub const NAMES: [&str; 4] =
    ["cpu_busy_percent", "memory_available_percent", "filesystem_free_percent", "load_per_core"];

impl NodeSignal {
    /// The signal named `name`; `mountpoint` for `filesystem_free_percent` only.
    ///
    /// # Errors
    /// An unknown name, or a mount point missing or given where it means nothing.
    pub fn parse(name: &str, mountpoint: Option<&str>) -> Result<NodeSignal, String> {
        let signal = match name {
            "cpu_busy_percent" => NodeSignal::CpuBusyPercent,
            "memory_available_percent" => NodeSignal::MemoryAvailablePercent,
            "load_per_core" => NodeSignal::LoadPerCore,
            "filesystem_free_percent" => match mountpoint {
                Some(m) if m.starts_with('/') => return Ok(NodeSignal::FilesystemFreePercent { mountpoint: m.into() }),
                Some(m) => return Err(format!("mountpoint `{m}` is not an absolute path")),
                None => return Err("filesystem_free_percent needs mountpoint = \"/…\"".into()),
            },
            other => return Err(format!("`{other}` is not a node signal")),
        };
        if mountpoint.is_some() {
            return Err(format!("mountpoint means nothing for {name}; only filesystem_free_percent takes one"));
        }
        Ok(signal)
    }

    /// Whether the signal needs two scrapes (a rate).
    pub fn needs_previous(&self) -> bool {
        matches!(self, NodeSignal::CpuBusyPercent)
    }

    /// The value from `now`, and for a rate from `previous` (the last scrape of the same
    /// target) too.
    ///
    /// # Errors
    /// A metric missing or ambiguous, no previous scrape for a rate, no time between them.
    pub fn value(&self, previous: Option<&Scrape>, now: &Scrape) -> Result<f64, String> {
        match self {
            NodeSignal::CpuBusyPercent => {
                let prev = previous.ok_or("CPU busy needs two scrapes; this is the first")?;
                let (a, b) = (CpuTimes::of(prev)?, CpuTimes::of(now)?);
                let (all, idle) = (b.all - a.all, b.idle - a.idle);
                if all <= 0.0 || idle < 0.0 {
                    return Err(format!(
                        "no CPU time counted between the two scrapes (Δall {all:.3} s, Δidle {idle:.3} s): counters reset or same scrape"
                    ));
                }
                Ok((100.0 * (1.0 - idle / all)).clamp(0.0, 100.0))
            }
            NodeSignal::MemoryAvailablePercent => {
                let avail = one(now, "node_memory_MemAvailable_bytes", &[])?;
                let total = one(now, "node_memory_MemTotal_bytes", &[])?;
                ratio_percent(avail, total, "node_memory_MemTotal_bytes")
            }
            NodeSignal::FilesystemFreePercent { mountpoint } => {
                let m = [("mountpoint", mountpoint.as_str())];
                let avail = one(now, "node_filesystem_avail_bytes", &m)?;
                let size = one(now, "node_filesystem_size_bytes", &m)?;
                ratio_percent(avail, size, "node_filesystem_size_bytes")
            }
            NodeSignal::LoadPerCore => {
                let load = one(now, "node_load1", &[])?;
                let cpus = CpuTimes::of(now)?.cpus;
                Ok(load / cpus as f64)
            }
        }
    }
}

impl fmt::Display for NodeSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeSignal::CpuBusyPercent => f.write_str("cpu_busy_percent"),
            NodeSignal::MemoryAvailablePercent => f.write_str("memory_available_percent"),
            NodeSignal::FilesystemFreePercent { mountpoint } => write!(f, "filesystem_free_percent of {mountpoint}"),
            NodeSignal::LoadPerCore => f.write_str("load_per_core"),
        }
    }
}

/// `100 × part / whole`, refusing a zero whole.
fn ratio_percent(part: f64, whole: f64, whole_name: &str) -> Result<f64, String> {
    if whole > 0.0 { Ok(100.0 * part / whole) } else { Err(format!("{whole_name} is {whole}, so no percentage")) }
}

/// The one sample of `name` with `labels`.
fn one(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Result<f64, String> {
    let sel = Selector { name: name.into(), labels: labels.iter().map(|(l, v)| ((*l).into(), (*v).into())).collect() };
    sel.value_in(scrape).map_err(|e| format!("{e} (is this node_exporter?)"))
}

/// CPU seconds summed over every CPU and mode, and the idle part, from one scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CpuTimes {
    all: f64,
    idle: f64,
    cpus: usize,
}

impl CpuTimes {
    fn of(scrape: &Scrape) -> Result<CpuTimes, String> {
        let mut t = CpuTimes { all: 0.0, idle: 0.0, cpus: 0 };
        let mut cpus = BTreeSet::new();
        for s in scrape.samples.iter().filter(|s| s.metric == "node_cpu_seconds_total") {
            let v = scalar(s).ok_or("node_cpu_seconds_total is not a counter")?;
            t.all += v;
            if s.labels.get("mode") == Some("idle") {
                t.idle += v;
            }
            cpus.insert(s.labels.get("cpu").unwrap_or("").to_string());
        }
        t.cpus = cpus.len();
        if t.cpus == 0 {
            return Err(format!(
                "no node_cpu_seconds_total among the {} samples scraped (is this node_exporter?)",
                scrape.samples.len()
            ));
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::signal::selector::parse_scrape;

    fn scrape(text: &str) -> Scrape {
        parse_scrape(text, DateTime::from_timestamp(1_700_000_000, 0).unwrap()).unwrap()
    }

    fn cpu(idle0: f64, user0: f64, idle1: f64, user1: f64) -> String {
        format!(
            "# TYPE node_cpu_seconds_total counter\n\
             node_cpu_seconds_total{{cpu=\"0\",mode=\"idle\"}} {idle0}\n\
             node_cpu_seconds_total{{cpu=\"0\",mode=\"user\"}} {user0}\n\
             node_cpu_seconds_total{{cpu=\"1\",mode=\"idle\"}} {idle1}\n\
             node_cpu_seconds_total{{cpu=\"1\",mode=\"user\"}} {user1}\n\
             node_load1 3\n"
        )
    }

    #[test]
    fn cpu_busy_is_the_share_of_time_not_idle_between_two_scrapes() {
        let a = scrape(&cpu(100.0, 50.0, 100.0, 50.0));
        // 2 CPUs × 10 s: 5 s idle on one, 10 s on the other; busy = 1 − 15/20 = 25 %.
        let b = scrape(&cpu(105.0, 55.0, 110.0, 50.0));
        assert_eq!(NodeSignal::CpuBusyPercent.value(Some(&a), &b), Ok(25.0));
        assert!(NodeSignal::CpuBusyPercent.value(None, &b).unwrap_err().contains("two scrapes"));
        assert!(NodeSignal::CpuBusyPercent.value(Some(&b), &b).unwrap_err().contains("no CPU time"));
        assert!(NodeSignal::CpuBusyPercent.value(Some(&b), &a).unwrap_err().contains("counters reset"));
    }

    #[test]
    fn load_per_core_divides_by_the_cpus_node_exporter_lists() {
        assert_eq!(NodeSignal::LoadPerCore.value(None, &scrape(&cpu(1.0, 1.0, 1.0, 1.0))), Ok(1.5));
        assert!(
            NodeSignal::LoadPerCore
                .value(None, &scrape("node_load1 3\n"))
                .unwrap_err()
                .contains("no node_cpu_seconds_total")
        );
    }

    #[test]
    fn memory_and_filesystem_are_percentages_of_their_total() {
        let s = scrape(
            "node_memory_MemAvailable_bytes 2.5e9\nnode_memory_MemTotal_bytes 1e10\n\
             node_filesystem_avail_bytes{mountpoint=\"/\",fstype=\"ext4\"} 30\n\
             node_filesystem_size_bytes{mountpoint=\"/\",fstype=\"ext4\"} 120\n\
             node_filesystem_avail_bytes{mountpoint=\"/dup\",fstype=\"ext4\"} 1\n\
             node_filesystem_avail_bytes{mountpoint=\"/dup\",fstype=\"xfs\"} 1\n\
             node_filesystem_size_bytes{mountpoint=\"/empty\"} 0\nnode_filesystem_avail_bytes{mountpoint=\"/empty\"} 0\n",
        );
        assert_eq!(NodeSignal::MemoryAvailablePercent.value(None, &s), Ok(25.0));
        let fs = |m: &str| NodeSignal::parse("filesystem_free_percent", Some(m)).unwrap().value(None, &s);
        assert_eq!(fs("/"), Ok(25.0));
        assert!(fs("/dup").unwrap_err().contains("ambiguous"));
        assert!(fs("/nope").unwrap_err().contains("no sample"));
        assert!(fs("/empty").unwrap_err().contains("no percentage"));
        assert!(NodeSignal::MemoryAvailablePercent.value(None, &scrape("")).unwrap_err().contains("node_exporter"));
    }

    #[test]
    fn signal_names_and_their_mount_point_are_checked() {
        for n in NAMES {
            let m = (n == "filesystem_free_percent").then_some("/");
            assert_eq!(NodeSignal::parse(n, m).unwrap().to_string().split(' ').next(), Some(n));
        }
        assert!(NodeSignal::parse("cpu", None).unwrap_err().contains("not a node signal"));
        assert!(NodeSignal::parse("filesystem_free_percent", None).unwrap_err().contains("needs mountpoint"));
        assert!(NodeSignal::parse("filesystem_free_percent", Some("var")).unwrap_err().contains("absolute"));
        assert!(NodeSignal::parse("load_per_core", Some("/")).unwrap_err().contains("means nothing"));
    }
}
