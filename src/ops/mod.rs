//! Operations: the share self-test, mount inspection and client caches, upkeep, and systemd notification.

pub mod check;
pub mod client_cache;
pub mod maintenance;
pub mod mounts;
#[cfg(target_os = "linux")]
pub mod notify;
