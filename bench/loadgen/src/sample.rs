//! Server resource sampling from /proc during the timed phase.
//!
//! Peak RSS: the kernel's high-water mark is reset when sampling starts (writing `5` to
//! `/proc/PID/clear_refs`, which needs permission over the process), so `VmHWM` at the end
//! is the peak of the timed phase alone; the largest `VmRSS` seen every 100 ms is the
//! fallback when the reset is refused. CPU: utime + stime from `/proc/PID/stat`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Sampler {
    pid: u32,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
    hwm_reset: bool,
    cpu0: f64,
    t0: Instant,
}

pub struct Usage {
    pub peak_rss_kib: u64,
    pub cpu_s: f64,
    pub cpu_pct: f64,
    pub hwm_reset: bool,
}

impl Sampler {
    pub fn start(pid: u32) -> Self {
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                peak = peak.max(status_kib(pid, "VmRSS:").unwrap_or(0));
                if flag.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Sampler {
            pid,
            stop,
            thread: Some(thread),
            hwm_reset,
            cpu0: cpu_secs(pid),
            t0: Instant::now(),
        }
    }

    pub fn finish(mut self) -> Usage {
        let wall = self.t0.elapsed().as_secs_f64();
        let cpu_s = cpu_secs(self.pid) - self.cpu0;
        self.stop.store(true, Ordering::Relaxed);
        let sampled = self.thread.take().unwrap().join().unwrap_or(0);
        let hwm = if self.hwm_reset {
            status_kib(self.pid, "VmHWM:").unwrap_or(0)
        } else {
            0
        };
        Usage {
            peak_rss_kib: sampled.max(hwm),
            cpu_s,
            cpu_pct: if wall > 0.0 {
                100.0 * cpu_s / wall
            } else {
                0.0
            },
            hwm_reset: self.hwm_reset,
        }
    }
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// utime + stime of the process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) may contain spaces: count fields after its closing ')'.
    let Some(rest) = s.rfind(')').map(|i| &s[i + 1..]) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 }
}
