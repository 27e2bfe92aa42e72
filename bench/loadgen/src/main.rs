//! loadgen: a small S3 load generator that verifies every byte it reads.
//!
//! One JSON line per run on stdout; errors (non-2xx, short or wrong bodies, broken
//! connections, wrong listings) are counted, the first few printed on stderr, and any
//! error makes the exit status 1, so a fast but wrong server never scores.

mod body;
mod client;
mod sample;
mod sign;
mod workloads;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::{json, Map, Value};

use client::Target;
use sign::Signer;
use workloads::Opts;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Workload {
    /// PUT objects of --size, each worker overwriting its own keys.
    Put,
    /// GET objects of --size (populated first, untimed), verifying every byte.
    Get,
    /// PUT, GET, HEAD, DELETE of fresh small objects, one request per operation.
    Mixed,
    /// ListObjectsV2 pages of --page keys over a bucket of --keys objects (populated untimed).
    List,
    /// Multipart upload of --size in --part-size parts, --concurrency parts at a time.
    Multipart,
    /// No server: recursive readdir + stat of --dir (the listing baseline).
    Walk,
    /// No server: open + read + close of files of --size under --dir (the GET anchor on a NAS).
    FileRead,
    /// No server: write temp + fsync + rename over files of --size under --dir (the PUT anchor).
    FileReplace,
    /// No server: file-replace, then fsync of the directory, so the new name survives a crash
    /// as a PUT's reply promises (the floor of a durable publish).
    FileReplaceDurable,
}

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Verifying S3 load generator for nasgate's benchmarks"
)]
struct Args {
    workload: Workload,
    /// Server address (http only).
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
    #[arg(long, default_value = "bench")]
    bucket: String,
    #[arg(long, default_value = "nasgate")]
    access_key: String,
    #[arg(long, default_value = "nasgate-dev-secret")]
    secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Plain unsigned GETs of /BUCKET/KEY (static file servers); implies --no-populate.
    #[arg(long)]
    no_sign: bool,
    /// Do not create objects before a GET/list run: they must be there already.
    #[arg(long)]
    no_populate: bool,
    /// Object size: bytes, or with K/M/G (binary units, KiB/MiB/GiB also accepted)
    /// [default: 4K; list: 16].
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    part_size: u64,
    /// Connections, one worker each.
    #[arg(long, short = 'c', default_value_t = 1)]
    concurrency: usize,
    /// Distinct objects (default: one per connection; list: 10000).
    #[arg(long)]
    keys: Option<usize>,
    /// Key prefix (default: "<workload>-<size>/"; list: none).
    #[arg(long)]
    prefix: Option<String>,
    /// Timed phase length in seconds (default 10 unless --ops is given).
    #[arg(long)]
    duration: Option<f64>,
    /// Number of operations in the timed phase (list: pages; multipart, walk: repetitions).
    #[arg(long)]
    ops: Option<u64>,
    /// Keys per ListObjectsV2 page.
    #[arg(long, default_value_t = 1000)]
    page: usize,
    /// Server process to sample (/proc) for peak RSS and CPU during the timed phase.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Directory to walk (walk) or to work in (file-read, file-replace, file-replace-durable).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Free-form label copied into the output (e.g. the target's name).
    #[arg(long, default_value = "")]
    label: String,
    /// Runtime threads (default: number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1 << 10,
        "m" | "mib" | "mb" => 1 << 20,
        "g" | "gib" | "gb" => 1 << 30,
        _ => return Err(format!("bad size unit in {s:?}")),
    };
    Ok(n * mult)
}

fn size_name(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}KiB", n >> 10),
        n => format!("{n}B"),
    }
}

fn main() {
    let a = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = a.threads {
        rt.worker_threads(t);
    }
    let rt = rt.enable_all().build().expect("tokio runtime");
    let code = match rt.block_on(run(&a)) {
        Ok(errors) => i32::from(errors > 0),
        Err(e) => {
            eprintln!("loadgen: {e}");
            2
        }
    };
    // Do not wait for connection tasks still parked in the runtime.
    rt.shutdown_timeout(Duration::from_millis(100));
    std::process::exit(code);
}

async fn run(a: &Args) -> Result<u64, String> {
    if a.workload == Workload::Walk {
        return walk(a);
    }
    let host = a
        .endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    if host.contains("://") || host.contains('/') {
        return Err(format!(
            "--endpoint must be http://HOST:PORT, not {}",
            a.endpoint
        ));
    }
    let signer = (!a.no_sign).then(|| Signer {
        access_key: a.access_key.clone(),
        secret_key: a.secret_key.clone(),
        region: a.region.clone(),
    });
    let target = Arc::new(Target {
        host,
        bucket: a.bucket.clone(),
        signer,
    });
    let list = a.workload == Workload::List;
    let name = format!("{:?}", a.workload).to_lowercase();
    let size = a.size.unwrap_or(if list { 16 } else { 4096 });
    let o = Opts {
        size,
        concurrency: a.concurrency.max(1),
        keys: a
            .keys
            .unwrap_or(if list { 10_000 } else { a.concurrency.max(1) })
            .max(1),
        prefix: a.prefix.clone().unwrap_or_else(|| {
            if list {
                String::new()
            } else {
                format!("{name}-{}/", size_name(size))
            }
        }),
        duration: match (a.duration, a.ops) {
            (Some(d), _) => Some(Duration::from_secs_f64(d)),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(10)),
        },
        ops: a.ops,
        populate: !a.no_populate && !a.no_sign,
        part_size: a.part_size.max(1),
        page: a.page.max(1),
        server_pid: a.server_pid,
    };
    let out = match a.workload {
        Workload::Put => workloads::put(target, &o).await?,
        Workload::Get => workloads::get(target, &o).await?,
        Workload::Mixed => workloads::mixed(target, &o).await?,
        Workload::List => workloads::list(target, &o).await?,
        Workload::Multipart => workloads::multipart(target, &o).await?,
        Workload::FileRead | Workload::FileReplace | Workload::FileReplaceDurable => {
            let dir = a.dir.as_deref().ok_or("file workloads need --dir")?;
            let op = match a.workload {
                Workload::FileRead => workloads::FileOp::Read,
                Workload::FileReplace => workloads::FileOp::Replace,
                _ => workloads::FileOp::DurableReplace,
            };
            workloads::files(dir, op, &o)?
        }
        Workload::Walk => unreachable!(),
    };
    let mut lat = out.lat_us;
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1000.0
    };
    let secs = out.seconds.max(1e-9);
    let mut j = Map::new();
    j.insert("workload".into(), name.into());
    j.insert("target".into(), a.label.clone().into());
    j.insert("size".into(), o.size.into());
    j.insert("concurrency".into(), o.concurrency.into());
    j.insert("keys".into(), o.keys.into());
    j.insert("ops".into(), out.ops.into());
    j.insert("seconds".into(), round(out.seconds, 3));
    j.insert("ops_per_s".into(), round(out.ops as f64 / secs, 1));
    j.insert(
        "mib_per_s".into(),
        round(out.bytes as f64 / 1048576.0 / secs, 1),
    );
    j.insert("p50_ms".into(), round(pct(0.50), 3));
    j.insert("p99_ms".into(), round(pct(0.99), 3));
    j.insert("errors".into(), out.errors.into());
    if let Some(u) = &out.usage {
        j.insert("server_peak_rss_kib".into(), u.peak_rss_kib.into());
        j.insert("server_cpu_s".into(), round(u.cpu_s, 2));
        j.insert("server_cpu_pct".into(), round(u.cpu_pct, 1));
        j.insert("server_hwm_reset".into(), u.hwm_reset.into());
    } else {
        j.insert("server_peak_rss_kib".into(), Value::Null);
        j.insert("server_cpu_pct".into(), Value::Null);
    }
    for (k, v) in out.extra {
        j.insert(k.into(), v);
    }
    println!("{}", Value::Object(j));
    Ok(out.errors)
}

fn round(x: f64, digits: i32) -> Value {
    let m = 10f64.powi(digits);
    json!((x * m).round() / m)
}

/// Recursive readdir + lstat of every entry, repeated; the median pass is reported.
fn walk(a: &Args) -> Result<u64, String> {
    let dir = a.dir.as_deref().ok_or("walk needs --dir")?;
    fn visit(d: &Path, n: &mut u64) -> std::io::Result<()> {
        for e in std::fs::read_dir(d)? {
            let p = e?.path();
            let md = std::fs::symlink_metadata(&p)?;
            *n += 1;
            if md.is_dir() {
                visit(&p, n)?;
            }
        }
        Ok(())
    }
    let passes = a.ops.unwrap_or(20).max(1);
    let mut times = Vec::new();
    let mut files = 0;
    for _ in 0..passes {
        let t = Instant::now();
        files = 0;
        visit(dir, &mut files).map_err(|e| format!("walk {}: {e}", dir.display()))?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let j = json!({
        "workload": "walk", "target": a.label, "size": 0, "concurrency": 1, "keys": files,
        "ops": passes, "seconds": round(times.iter().sum(), 4), "ops_per_s": round(1.0 / median, 1),
        "mib_per_s": 0.0, "p50_ms": round(median * 1000.0, 3),
        "p99_ms": round(times[times.len() - 1] * 1000.0, 3), "errors": 0,
        "ms_per_1000_entries": round(median * 1000.0 * 1000.0 / files.max(1) as f64, 3),
        "server_peak_rss_kib": null, "server_cpu_pct": null,
    });
    println!("{j}");
    Ok(0)
}
