//! Operations: the share self-test, the share's health probe, mount inspection and client
//! caches, upkeep, and systemd notification.

pub mod check;
pub mod client_cache;
pub mod health;
pub mod maintenance;
pub mod mounts;
#[cfg(target_os = "linux")]
pub mod notify;
