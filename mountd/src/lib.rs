//! mountd: the FUSE front of nasgate. It shows the share's objects as a POSIX tree and turns
//! every open, read, write, rename and lock into calls on a [`Backend`] (nasgate's store),
//! which takes the same locks as the S3 front. See SEMANTICS.md for what tools can rely on.

pub mod backend;
mod core;
#[cfg(test)]
mod core_model;
mod fs;
mod interrupt;
mod io_rules;
#[cfg(test)]
mod memory;
mod nodes;
mod offload;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use backend::{
    Attr, AttrChange, Backend, Creator, Draft, Errno, Kind, LockOwner, LockType, RangeLock, Reader,
    Result, StatFs, Time,
};

/// Why a mount could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The mount point is not usable.
    #[error("mount point {}: {why}", path.display())]
    MountPoint {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The kernel or fusermount refused.
    #[error("cannot mount {}: {source} (is fuse3 installed and /dev/fuse available?)", path.display())]
    Mount {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// Unmounting failed.
    #[error("cannot unmount {}: {source}", path.display())]
    Unmount {
        /// The directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// How to mount.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// How long the kernel may cache attributes and names.
    pub attr_ttl: Duration,
    /// Let every user of the host use the mount, with the share's permission bits enforced.
    pub allow_other: bool,
    /// Request threads.
    pub threads: usize,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            attr_ttl: Duration::from_secs(1),
            allow_other: false,
            threads: 4,
        }
    }
}

/// A live mount; unmounted by `unmount` or when dropped.
pub struct Mount {
    session: Option<fuser::BackgroundSession>,
    path: PathBuf,
}

impl Mount {
    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts and waits for the request threads to end. A mount still in use is detached
    /// lazily, so a stop never hangs on a tool that keeps a file open.
    pub fn unmount(mut self) -> std::result::Result<(), MountError> {
        self.stop()
    }

    fn stop(&mut self) -> std::result::Result<(), MountError> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(_) if detach(&self.path).is_ok() => Ok(()),
            Err(source) => Err(MountError::Unmount {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!("{e}");
        }
    }
}

/// Detaches whatever is mounted at `path`, even if busy or dead.
fn detach(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: umount2 with a NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    // Not root: fusermount3 may unmount what this user mounted.
    let status = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg("-z")
        .arg(path)
        .stderr(std::process::Stdio::null())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("fusermount3 -u failed"))
    }
}

/// Checks the mount point, clearing a dead mount a crashed instance left there.
fn prepare(path: &Path) -> std::result::Result<(), MountError> {
    let bad = |why: String| MountError::MountPoint {
        path: path.to_path_buf(),
        why,
    };
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(bad("not a directory".into())),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            tracing::warn!(
                path = %path.display(),
                "clearing a dead FUSE mount left by an earlier run"
            );
            detach(path).map_err(|e| bad(format!("a dead mount is in the way: {e}")))?;
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => Err(bad("not a directory".into())),
                Err(e) => Err(bad(e.to_string())),
            }
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Mounts `backend` at `path` and serves it from background threads until unmounted.
pub fn mount(
    backend: Arc<dyn Backend>,
    path: &Path,
    options: &MountOptions,
) -> std::result::Result<Mount, MountError> {
    prepare(path)?;
    let path = std::fs::canonicalize(path).map_err(|e| MountError::MountPoint {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::FSName("nasgate".into()),
        fuser::MountOption::Subtype("nasgate".into()),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        // Reads of up to 1 MiB per request, as writes (max_write) and read-ahead.
        fuser::MountOption::CUSTOM(format!("max_read={}", fs::MAX_IO)),
    ];
    if options.allow_other {
        config.acl = fuser::SessionACL::All;
        config
            .mount_options
            .push(fuser::MountOption::DefaultPermissions);
    }
    config.n_threads = Some(options.threads.max(1));
    config.clone_fd = true;
    let notifier = Arc::new(std::sync::OnceLock::new());
    let fs = fs::Fs::new(backend, options.attr_ttl, notifier.clone());
    let session = fuser::spawn_mount(fs, &path, &config).map_err(|source| MountError::Mount {
        path: path.clone(),
        source,
    })?;
    let _ = notifier.set(session.notifier());
    Ok(Mount {
        session: Some(session),
        path,
    })
}
