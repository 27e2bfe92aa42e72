//! The `nasgate` command line: serve, check, fsck.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use nasgate::config;
use nasgate::lock::{LockConfig, Locks};
use nasgate::ops::check;
use nasgate::platform::{LockStyle, Root};

#[cfg(windows)]
mod service;

/// Serve a shared NAS directory as S3 (and, later, FUSE) from many hosts at once.
#[derive(Parser)]
#[command(name = "nasgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; boxing the serve flags would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve SHARE over S3 (default share: ./nasgate-data, created if missing).
    Serve(Box<ServeArgs>),
    /// Self-test a share on this host: create, write, fsync, rename and lock.
    Check {
        /// The mounted share to test.
        share: PathBuf,
        /// Longest a lock wait may take, in seconds.
        #[arg(long, env = "NASGATE_LOCK_TIMEOUT", default_value_t = 30)]
        lock_timeout: u64,
    },
    /// Check a share's objects against their metadata (and repair with --repair).
    Fsck {
        /// The mounted share to check.
        share: PathBuf,
        /// Fix what can safely be fixed (under the same locks, so instances may keep serving).
        #[arg(long)]
        repair: bool,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Hours after which an unfinished multipart upload counts as abandoned.
        #[arg(long, env = "NASGATE_UPLOAD_EXPIRY", default_value_t = 24)]
        upload_expiry: u64,
        /// Longest a lock wait may take, in seconds.
        #[arg(long, env = "NASGATE_LOCK_TIMEOUT", default_value_t = 30)]
        lock_timeout: u64,
    },
    /// Manage the users kept on a share (every instance on it picks changes up within 2 s).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Run as a Windows service: install (with serve flags), uninstall.
    #[cfg(windows)]
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Drive the store over stdin/stdout (tests and debugging).
    #[command(hide = true)]
    DebugStore {
        /// The share.
        share: PathBuf,
        /// Use classic POSIX locks even where OFD locks exist.
        #[arg(long)]
        classic: bool,
        /// Longest a lock wait may take, in milliseconds.
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
    },
    /// Drive the lock layer over stdin/stdout (tests and lock debugging).
    #[command(hide = true)]
    DebugLocks {
        /// The share.
        share: PathBuf,
        /// Use classic POSIX locks even where OFD locks exist.
        #[arg(long)]
        classic: bool,
        /// Longest a lock wait may take, in milliseconds.
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
        /// Pooled read-lock lease, in milliseconds.
        #[arg(long, default_value_t = 200)]
        lease_ms: u64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user (the secret is read from NASGATE_USER_SECRET, or stdin when unset).
    Add {
        /// The share.
        share: PathBuf,
        /// The new user's access key.
        access_key: String,
        #[command(flatten)]
        policy: PolicyArg,
    },
    /// List users, their status and policy.
    List {
        /// The share.
        share: PathBuf,
    },
    /// Remove a user.
    Remove {
        /// The share.
        share: PathBuf,
        /// The user's access key.
        access_key: String,
    },
    /// Let a disabled user sign requests again.
    Enable {
        /// The share.
        share: PathBuf,
        /// The user's access key.
        access_key: String,
    },
    /// Refuse a user's requests (kept on the share; `enable` undoes it).
    Disable {
        /// The share.
        share: PathBuf,
        /// The user's access key.
        access_key: String,
    },
    /// Give a user another policy.
    SetPolicy {
        /// The share.
        share: PathBuf,
        /// The user's access key.
        access_key: String,
        #[command(flatten)]
        policy: PolicyArg,
    },
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct PolicyArg {
    /// A built-in policy: readonly, readwrite, writeonly or consoleAdmin.
    #[arg(long)]
    policy: Option<String>,
    /// A custom policy document (AWS policy JSON).
    #[arg(long, value_name = "FILE")]
    policy_file: Option<PathBuf>,
}

/// What `nasgate service` does.
#[cfg(windows)]
#[derive(Subcommand)]
enum ServiceCommand {
    /// Register the service (automatic start) with these `serve` flags, e.g. `M:\export`.
    Install {
        /// Flags and SHARE as for `nasgate serve`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        serve_args: Vec<std::ffi::OsString>,
    },
    /// Stop the service (it drains like SIGTERM) and remove it.
    Uninstall,
    /// What the service control manager starts; not for use by hand.
    #[command(hide = true)]
    Run {
        /// Flags and SHARE as for `nasgate serve`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        serve_args: Vec<std::ffi::OsString>,
    },
}

/// Parses `argv` (`nasgate serve ...`) into serve flags, environment variables included.
#[cfg(windows)]
fn parse_serve(argv: &[std::ffi::OsString]) -> Result<ServeArgs> {
    match Cli::try_parse_from(argv)?.command {
        Command::Serve(args) => Ok(*args),
        _ => anyhow::bail!("not a serve command line"),
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The mounted share to serve; without it, ./nasgate-data (created if missing).
    #[arg(env = "NASGATE_SHARE")]
    share: Option<PathBuf>,
    /// Address to listen on for S3.
    #[arg(long, env = "NASGATE_ADDRESS", default_value = "127.0.0.1:9000")]
    address: String,
    /// Also mount the share as a POSIX tree at DIR (FUSE).
    #[arg(long, env = "NASGATE_MOUNT", value_name = "DIR")]
    mount: Option<PathBuf>,
    /// Seconds the kernel may cache names and attributes of the mount (files changed on the
    /// share by other hosts show up after at most this long).
    #[arg(long, env = "NASGATE_MOUNT_ATTR_TTL", default_value_t = 1.0)]
    mount_attr_ttl: f64,
    /// Let every user of this host use the mount, with the share's permission bits enforced.
    #[arg(long, env = "NASGATE_MOUNT_ALLOW_OTHER")]
    mount_allow_other: bool,
    /// Longest a lock wait may take, in seconds; then S3 answers 503 SlowDown.
    #[arg(long, env = "NASGATE_LOCK_TIMEOUT", default_value_t = 30)]
    lock_timeout: u64,
    /// Base domain for virtual-host-style requests (BUCKET.DOMAIN); path style always works.
    #[arg(long, env = "NASGATE_DOMAIN")]
    domain: Option<String>,
    /// Longest a client may stall while sending a body, in seconds; the upload is dropped.
    #[arg(long, env = "NASGATE_IDLE_TIMEOUT", default_value_t = 300)]
    idle_timeout: u64,
    /// Longest a client may take to send a request's headers (or a TLS handshake), in
    /// seconds; then the connection closes.
    #[arg(long, env = "NASGATE_HEADER_TIMEOUT", default_value_t = 20)]
    header_timeout: u64,
    /// Longest a connection may sit idle between requests, in seconds; then it closes.
    #[arg(long, env = "NASGATE_KEEPALIVE_TIMEOUT", default_value_t = 75)]
    keepalive_timeout: u64,
    /// Most client connections open at once; at the cap, accepting pauses until one closes.
    #[arg(long, env = "NASGATE_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Seconds between the share health probe's round trips (write, fsync, rename, read,
    /// lock) that readiness is answered from.
    #[arg(long, env = "NASGATE_PROBE_INTERVAL", default_value_t = 1.0)]
    probe_interval: f64,
    /// Seconds a share operation (the probe's) may hang before the share counts as stalled:
    /// not ready, and new S3 requests answer 503 SlowDown until it answers again.
    #[arg(long, env = "NASGATE_STALL_TIMEOUT", default_value_t = 1.0)]
    stall_timeout: f64,
    /// Seconds between sweeps of dead instances' staging files and expired uploads.
    #[arg(long, env = "NASGATE_SWEEP_INTERVAL", default_value_t = 600)]
    sweep_interval: u64,
    /// Hours after which an unfinished multipart upload is removed.
    #[arg(long, env = "NASGATE_UPLOAD_EXPIRY", default_value_t = 24)]
    upload_expiry: u64,
    /// Longest in-flight requests may run on after SIGTERM/SIGINT, in seconds.
    #[arg(long, env = "NASGATE_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    shutdown_timeout: u64,
    /// Refuse to serve (and report not ready) unless SHARE is a mount point, so a NAS that
    /// failed to mount never leaves its empty local folder taking writes.
    #[arg(long, env = "NASGATE_REQUIRE_MOUNT")]
    require_mount: bool,
    /// fsync: data, metadata and directories reach stable storage before success is
    /// reported; none: the filesystem flushes when it likes (a crash may lose recent writes).
    #[arg(long, env = "NASGATE_DURABILITY", value_enum, default_value = "fsync")]
    durability: DurabilityArg,
    /// Log format on stderr: text (human) or json (one object per line).
    #[arg(long, env = "NASGATE_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Bearer token /metrics requires; without it /metrics is open like the health checks.
    #[arg(long, env = "NASGATE_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(
        long,
        env = "NASGATE_TLS_CERT",
        requires = "tls_key",
        value_name = "FILE"
    )]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(
        long,
        env = "NASGATE_TLS_KEY",
        requires = "tls_cert",
        value_name = "FILE"
    )]
    tls_key: Option<PathBuf>,
    /// Serve the web console at /_nasgate/ (browsers opening / are sent there);
    /// --console=false turns it off.
    #[arg(
        long,
        env = "NASGATE_CONSOLE",
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    console: bool,
    /// Benchmarks only: skip the fcntl locks on the share (in-process locks stay). Never use
    /// this with more than one instance: nothing would keep hosts apart.
    #[arg(long, hide = true)]
    unsafe_no_share_locks: bool,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DurabilityArg {
    Fsync,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Check {
            share,
            lock_timeout,
        } => run_check(&share, lock_timeout),
        Command::Fsck {
            share,
            repair,
            json,
            upload_expiry,
            lock_timeout,
        } => fsck(&share, repair, json, upload_expiry, lock_timeout),
        Command::User { command } => user(command),
        Command::DebugLocks {
            share,
            classic,
            timeout_ms,
            lease_ms,
        } => debug_locks(&share, classic, timeout_ms, lease_ms),
        Command::DebugStore {
            share,
            classic,
            timeout_ms,
        } => debug_store(&share, classic, timeout_ms),
        #[cfg(windows)]
        Command::Service(ServiceCommand::Install { serve_args }) => service::install(&serve_args),
        #[cfg(windows)]
        Command::Service(ServiceCommand::Uninstall) => service::uninstall(),
        #[cfg(windows)]
        Command::Service(ServiceCommand::Run { serve_args }) => service::run(serve_args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("nasgate: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("NASGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,fuser=error"));
    // hyper warns once per header timeout: a slow-client flood must not become a log flood
    // (unless the operator asks for hyper's logs by name).
    let asked_for_hyper = std::env::var("NASGATE_LOG").is_ok_and(|v| v.contains("hyper"));
    if !asked_for_hyper {
        if let Ok(quiet) = "hyper=error".parse() {
            filter = filter.add_directive(quiet);
        }
    }
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

fn open_share(path: &std::path::Path, lock_timeout: u64) -> Result<(Arc<Root>, LockConfig)> {
    let root = Arc::new(Root::at(path).with_context(|| format!("share {}", path.display()))?);
    let lock_config = LockConfig {
        timeout: Duration::from_secs(lock_timeout),
        ..LockConfig::default()
    };
    Ok((root, lock_config))
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    init_logging(args.log_format);
    let address = config::listen_address(&args.address)?;
    let creds = config::credentials(|k| std::env::var(k).ok(), &address)?;
    let share = match &args.share {
        Some(p) => config::existing_share(p)?,
        None => config::default_share()?,
    };
    if let Some(dir) = &args.mount {
        check_mount_dir(dir, &share, args.mount_attr_ttl)?;
    }
    if cfg!(windows) && args.require_mount {
        anyhow::bail!("--require-mount is not available on Windows (there is no mount table)");
    }
    if args.require_mount && !nasgate::ops::mounts::is_mount_point(&share).unwrap_or(false) {
        anyhow::bail!(
            "share {} is not a mount point (--require-mount): is the NAS mounted?",
            share.display()
        );
    }
    if let Ok(Some(m)) = nasgate::ops::mounts::mount_of(&share) {
        for f in nasgate::ops::client_cache::findings(&m)
            .iter()
            .filter(|f| f.required)
        {
            tracing::warn!(
                fix = %f.fix,
                "{}: another host's writes may be read late (`nasgate check` lists every fix)",
                f.what
            );
        }
    }
    let (root, lock_config) = open_share(&share, args.lock_timeout)?;
    let test = check::self_test(&root, &lock_config, None)
        .map_err(|e| config::ConfigError::ShareCannotLock(share.clone(), e.to_string()))?;
    if args.unsafe_no_share_locks {
        tracing::warn!("share locks are OFF (--unsafe-no-share-locks): benchmarks only");
        nasgate::platform::disable_share_locks();
    }
    if creds.development {
        eprintln!(
            "nasgate: no credentials set; using the development pair {} / {} (loopback only)",
            config::DEV_ACCESS_KEY,
            config::DEV_SECRET_KEY
        );
    }
    let locks = Arc::new(Locks::new(root, &lock_config));
    let store = Arc::new(nasgate::store::Store::open(
        locks,
        nasgate::store::StoreConfig {
            durability: match args.durability {
                DurabilityArg::Fsync => nasgate::store::Durability::Fsync,
                DurabilityArg::None => nasgate::store::Durability::None,
            },
        },
    )?);
    let maintenance = nasgate::ops::maintenance::Maintenance {
        every: Duration::from_secs(args.sweep_interval.max(1)),
        upload_expiry: Duration::from_secs(args.upload_expiry * 3600),
    };
    let mount = match &args.mount {
        Some(dir) => Some(start_mount(&store, &share, dir, &args)?),
        None => None,
    };
    tracing::info!(share = %share.display(), %address, style = ?test.style, "serving");
    let s3_config = nasgate::s3::S3Config {
        credentials: creds,
        domain: args.domain.clone(),
        idle_timeout: Duration::from_secs(args.idle_timeout),
    };
    let max_connections = connection_cap(args.max_connections);
    let health = start_health(&store, args.require_mount.then(|| share.clone()), &args);
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let options = nasgate::server::ServerOptions {
        address,
        drain: Duration::from_secs(args.shutdown_timeout),
        metrics_token: args.metrics_token.clone(),
        tls: args.tls_cert.clone().zip(args.tls_key.clone()),
        health: health.clone(),
        limits: nasgate::server::connections::Limits {
            header_timeout: Duration::from_secs(args.header_timeout.max(1)),
            keepalive_timeout: Duration::from_secs(args.keepalive_timeout.max(1)),
            max_connections,
        },
        console: args.console,
    };
    runtime.block_on(nasgate::server::run(
        options,
        store.clone(),
        s3_config,
        maintenance,
    ))?;
    drop(runtime);
    if let Some(m) = mount {
        let path = m.path().to_path_buf();
        match m.unmount() {
            Ok(()) => tracing::info!(mount = %path.display(), "unmounted"),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    health.stop(Duration::from_secs(args.shutdown_timeout.max(1)));
    drop(store);
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Starts the share's health probe (and, with `--require-mount`, its mount check) and makes
/// it the process's, so the FUSE front consults it too.
fn start_health(
    store: &Arc<nasgate::store::Store>,
    require_mount: Option<PathBuf>,
    args: &ServeArgs,
) -> nasgate::ops::health::Health {
    use nasgate::ops::health;
    let store = Arc::downgrade(store);
    let h = health::Health::start(
        move || {
            if let Some(share) = &require_mount {
                if !nasgate::ops::mounts::is_mount_point(share).unwrap_or(false) {
                    return Err("the share is no longer a mount point (--require-mount)".into());
                }
            }
            match store.upgrade() {
                Some(s) => s.probe().map_err(|e| health::describe(&e)),
                None => Ok(()),
            }
        },
        Duration::from_secs_f64(args.probe_interval),
        Duration::from_secs_f64(args.stall_timeout),
    );
    health::install(h.clone());
    h
}

/// Raises the descriptor limit and fits the connection cap under it: each connection holds
/// one descriptor and may hold an object's open file besides.
fn connection_cap(wanted: usize) -> usize {
    match nasgate::platform::raise_open_file_limit() {
        Ok((soft, hard)) => {
            let room = usize::try_from(soft.saturating_sub(256) / 2).unwrap_or(usize::MAX);
            tracing::info!(soft, hard, "open file limit");
            if wanted > room {
                tracing::warn!(
                    wanted,
                    cap = room.max(1),
                    limit = soft,
                    "--max-connections lowered to fit the open file limit"
                );
                return room.max(1);
            }
            wanted.max(1)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open file limit");
            wanted.max(1)
        }
    }
}

#[cfg(unix)]
fn start_mount(
    store: &Arc<nasgate::store::Store>,
    share: &std::path::Path,
    dir: &std::path::Path,
    args: &ServeArgs,
) -> Result<mountd::Mount> {
    let options = mountd::MountOptions {
        attr_ttl: Duration::from_secs_f64(args.mount_attr_ttl),
        allow_other: args.mount_allow_other,
        ..mountd::MountOptions::default()
    };
    // On a local disk MD5 would hold the writer back, and the file is hashed again from the
    // page cache after the publish; on a NAS the writer waits for the network anyway, and
    // hashing afterwards would read every large file back over it.
    let local = matches!(
        nasgate::ops::mounts::mount_of(share).map(|m| m.as_ref().map(nasgate::ops::mounts::assess)),
        Ok(Some(nasgate::ops::mounts::Verdict::LocalOnly(_)))
    );
    let backend = nasgate::mount::StoreBackend::new(store.clone())
        .hashing_while_writing(!local)
        .with_observer(|op, errno, took| {
            let result = errno.map_or_else(|| "ok".to_string(), |e| e.name());
            nasgate::metrics::get().fuse(op, result, took);
        });
    let m = mountd::mount(Arc::new(backend), dir, &options)?;
    tracing::info!(mount = %m.path().display(), "mounted");
    Ok(m)
}

/// Windows has no FUSE: `--mount` is refused before anything touches the share.
#[cfg(windows)]
fn check_mount_dir(_dir: &std::path::Path, _share: &std::path::Path, _ttl: f64) -> Result<()> {
    anyhow::bail!("--mount is not available on Windows (no FUSE); serve S3 only")
}

/// What a FUSE mount is where there is none.
#[cfg(windows)]
enum NoMount {}

#[cfg(windows)]
impl NoMount {
    fn path(&self) -> &std::path::Path {
        match *self {}
    }
    fn unmount(self) -> Result<()> {
        match self {}
    }
}

#[cfg(windows)]
fn start_mount(
    _store: &Arc<nasgate::store::Store>,
    _share: &std::path::Path,
    _dir: &std::path::Path,
    _args: &ServeArgs,
) -> Result<NoMount> {
    anyhow::bail!("--mount is not available on Windows (no FUSE); serve S3 only")
}

/// Checks `--mount` before anything touches the share, so a bad mount point changes nothing.
#[cfg(unix)]
fn check_mount_dir(dir: &std::path::Path, share: &std::path::Path, ttl: f64) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => anyhow::bail!("mount point {} is not a directory", dir.display()),
        // A dead FUSE mount left by a crash: mounting clears it.
        Err(e) if e.raw_os_error() == Some(nasgate::platform::ENOTCONN) => return Ok(()),
        Err(e) => anyhow::bail!("mount point {}: {e}", dir.display()),
    }
    let inside = |a: &std::path::Path, b: &std::path::Path| match (
        std::fs::canonicalize(a),
        std::fs::canonicalize(b),
    ) {
        (Ok(a), Ok(b)) => a.starts_with(&b),
        _ => false,
    };
    if inside(dir, share) || inside(share, dir) {
        anyhow::bail!(
            "mount point {} and share {} must not contain one another",
            dir.display(),
            share.display()
        );
    }
    if !(ttl.is_finite() && ttl >= 0.0) {
        anyhow::bail!("--mount-attr-ttl must be a number of seconds, 0 or more");
    }
    Ok(())
}

fn run_check(share: &std::path::Path, lock_timeout: u64) -> Result<ExitCode> {
    use nasgate::ops::mounts::{self, Verdict};
    let share = config::existing_share(share)?;
    let (root, lock_config) = open_share(&share, lock_timeout)?;
    let style_name = |s: LockStyle| match s {
        _ if cfg!(windows) => "LockFileEx byte-range locks",
        LockStyle::Ofd => "open-file-description (OFD) fcntl locks",
        LockStyle::Classic => "classic POSIX fcntl locks",
    };
    println!("share:            {}", share.display());
    let mut caches = Vec::new();
    let verdict = match mounts::mount_of(&share) {
        // No mount table to read: what the share is (SMB or local) is not inspected.
        _ if cfg!(windows) => {
            println!("filesystem:       not inspected on Windows");
            None
        }
        Ok(Some(m)) => {
            println!(
                "filesystem:       {} from {} mounted at {}",
                m.fstype,
                m.source,
                m.mount_point.display()
            );
            println!("mount options:    {}", m.options.join(","));
            caches = nasgate::ops::client_cache::findings(&m);
            Some(mounts::assess(&m))
        }
        Ok(None) => None,
        Err(e) => {
            println!("filesystem:       unknown ({e})");
            None
        }
    };
    let exe = std::env::current_exe().context("locating the nasgate executable")?;
    let mut failed = false;
    match check::self_test(&root, &lock_config, Some(&exe)) {
        Ok(t) => {
            println!("create/write/fsync/rename: ok");
            println!("lock style:       {}", style_name(t.style));
            println!(
                "handles exclude:  {}",
                match t.handles_exclude {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "not testable in one process with classic locks",
                }
            );
            for (style, ok) in &t.across_processes {
                println!(
                    "across processes: {} {}",
                    if *ok { "exclude" } else { "DO NOT EXCLUDE" },
                    style_name(*style)
                );
                failed |= !ok;
            }
            println!("lock round trip:  {:?} (median of 9)", t.lock_round_trip);
        }
        Err(e) => {
            println!("self-test:        FAILED: {e}");
            failed = true;
        }
    }
    match &verdict {
        Some(Verdict::Shared(m)) => println!("sharing:          ok: {m}"),
        Some(Verdict::LocalOnly(m)) => println!("sharing:          note: {m}"),
        Some(Verdict::Doubtful(m)) => println!("sharing:          WARNING: {m}"),
        Some(Verdict::Unsafe(m)) => {
            println!("sharing:          UNSAFE: {m}");
            eprintln!("nasgate: WARNING: {m}");
            failed = true;
        }
        None if cfg!(windows) => println!(
            "sharing:          not assessed on Windows: the lock test across processes above is the proof"
        ),
        None => println!("sharing:          unknown: the mount could not be identified"),
    }
    for f in &caches {
        if f.required {
            // Read-after-write across hosts fails with this on, whatever nasgate does.
            println!("client cache:     MUST CHANGE: {}: {}", f.what, f.fix);
            failed = true;
        } else {
            println!(
                "client cache:     note: {} (nasgate copes; optional: {})",
                f.what, f.fix
            );
        }
    }
    if failed {
        println!("verdict:          FAILED");
        Ok(ExitCode::from(1))
    } else {
        println!("verdict:          ok");
        Ok(ExitCode::SUCCESS)
    }
}

fn fsck(
    share: &std::path::Path,
    repair: bool,
    json: bool,
    upload_expiry: u64,
    lock_timeout: u64,
) -> Result<ExitCode> {
    use nasgate::store::fsck::FsckOptions;
    use std::io::{IsTerminal, Write};
    let share = config::existing_share(share)?;
    let (root, lock_config) = open_share(&share, lock_timeout)?;
    let store = nasgate::store::Store::open(
        Arc::new(Locks::new(root, &lock_config)),
        nasgate::store::StoreConfig::default(),
    )?;
    let tty = std::io::stderr().is_terminal();
    let report = store.fsck(
        FsckOptions {
            repair,
            upload_expiry: Duration::from_secs(upload_expiry * 3600),
        },
        |n| {
            if tty && n % 100 == 0 {
                eprint!("\rchecked {n} objects");
                let _ = std::io::stderr().flush();
            }
        },
    )?;
    if tty {
        eprintln!("\rchecked {} objects", report.objects);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for f in &report.findings {
            println!(
                "{:<18} {}  {}{}",
                serde_json::to_value(f.problem)?.as_str().unwrap_or("?"),
                f.path,
                f.detail,
                if f.repaired { "  [repaired]" } else { "" }
            );
        }
        let repaired = report.findings.iter().filter(|f| f.repaired).count();
        println!(
            "fsck: {} buckets, {} objects, {} bytes verified, {} problems, {} repaired",
            report.buckets,
            report.objects,
            report.bytes_verified,
            report.findings.len(),
            repaired
        );
    }
    Ok(if report.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn user(command: UserCommand) -> Result<ExitCode> {
    use nasgate::access::{PolicyChoice, Status, UserAdmin};
    let share = match &command {
        UserCommand::Add { share, .. }
        | UserCommand::List { share }
        | UserCommand::Remove { share, .. }
        | UserCommand::Enable { share, .. }
        | UserCommand::Disable { share, .. }
        | UserCommand::SetPolicy { share, .. } => config::existing_share(share)?,
    };
    // User secrets are sealed with the root secret, so this needs the root pair the
    // instances run with; a loopback-only development share uses the development pair.
    let loopback = config::listen_address("127.0.0.1:0")?;
    let creds = config::credentials(|k| std::env::var(k).ok(), &loopback)?;
    if creds.development {
        eprintln!(
            "nasgate: no credentials set; sealing with the development pair (only instances using it will read these users)"
        );
    }
    let (root, lock_config) = open_share(&share, 30)?;
    let store = nasgate::store::Store::open(
        Arc::new(Locks::new(root, &lock_config)),
        nasgate::store::StoreConfig::default(),
    )?;
    let admin = UserAdmin::new(&store, &creds);
    let choice = |p: PolicyArg| -> Result<PolicyChoice> {
        Ok(match (p.policy, p.policy_file) {
            (Some(name), _) => PolicyChoice::Builtin(name),
            (None, Some(file)) => PolicyChoice::Custom(
                std::fs::read_to_string(&file)
                    .with_context(|| format!("policy file {}", file.display()))?,
            ),
            (None, None) => anyhow::bail!("give --policy NAME or --policy-file FILE"),
        })
    };
    match command {
        UserCommand::Add {
            access_key, policy, ..
        } => {
            let secret = match std::env::var("NASGATE_USER_SECRET") {
                Ok(s) => s,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the secret from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            admin.add(&access_key, &secret, &choice(policy)?)?;
            println!("added {access_key}");
        }
        UserCommand::List { .. } => {
            for u in admin.list()? {
                let status = match u.status {
                    Status::Enabled => "enabled",
                    Status::Disabled => "disabled",
                };
                println!("{}\t{status}\t{}", u.access_key, u.policy);
            }
        }
        UserCommand::Remove { access_key, .. } => {
            admin.remove(&access_key)?;
            println!("removed {access_key}");
        }
        UserCommand::Enable { access_key, .. } => {
            admin.set_status(&access_key, Status::Enabled)?;
            println!("enabled {access_key}");
        }
        UserCommand::Disable { access_key, .. } => {
            admin.set_status(&access_key, Status::Disabled)?;
            println!("disabled {access_key}");
        }
        UserCommand::SetPolicy {
            access_key, policy, ..
        } => {
            admin.set_policy(&access_key, &choice(policy)?)?;
            println!("set the policy of {access_key}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn debug_locks(
    share: &std::path::Path,
    classic: bool,
    timeout_ms: u64,
    lease_ms: u64,
) -> Result<ExitCode> {
    let share = config::existing_share(share)?;
    let root = Arc::new(Root::at(&share)?);
    let cfg = LockConfig {
        timeout: Duration::from_millis(timeout_ms),
        lease: Duration::from_millis(lease_ms),
        style: classic.then_some(LockStyle::Classic),
    };
    nasgate::debug::locks::run(Arc::new(Locks::new(root, &cfg)))?;
    Ok(ExitCode::SUCCESS)
}

fn debug_store(share: &std::path::Path, classic: bool, timeout_ms: u64) -> Result<ExitCode> {
    let share = config::existing_share(share)?;
    let root = Arc::new(Root::at(&share)?);
    let cfg = LockConfig {
        timeout: Duration::from_millis(timeout_ms),
        style: classic.then_some(LockStyle::Classic),
        ..LockConfig::default()
    };
    let store = nasgate::store::Store::open(
        Arc::new(Locks::new(root, &cfg)),
        nasgate::store::StoreConfig::default(),
    )?;
    nasgate::debug::store::run(&store)?;
    Ok(ExitCode::SUCCESS)
}
