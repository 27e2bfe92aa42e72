//! Operations: the share self-test, mount inspection, upkeep, and systemd notification.

pub mod check;
pub mod maintenance;
pub mod mounts;
#[cfg(target_os = "linux")]
pub mod notify;
