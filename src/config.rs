//! Settings from flags and the environment: the share, addresses, credentials, timeouts.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// The folder served when no SHARE is given: a newcomer's one-command start.
pub const DEFAULT_SHARE: &str = "nasgate-data";

/// The development access key used on loopback addresses when none is configured.
pub const DEV_ACCESS_KEY: &str = "nasgate";
/// The development secret key used on loopback addresses when none is configured.
pub const DEV_SECRET_KEY: &str = "nasgate-dev-secret";

/// Errors in the configuration, each a one-line reason for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The share path does not exist.
    #[error("share {0} does not exist (is the NAS mounted?)")]
    ShareMissing(PathBuf),
    /// The share path is not a directory.
    #[error("share {0} is not a directory")]
    ShareNotDirectory(PathBuf),
    /// The share is not writable by this process.
    #[error("share {0} is not writable: {1}")]
    ShareNotWritable(PathBuf, std::io::Error),
    /// Locks cannot be taken on the share.
    #[error("share {0} cannot take locks: {1}")]
    ShareCannotLock(PathBuf, String),
    /// The share cannot be read.
    #[error("share {0}: {1}")]
    ShareIo(PathBuf, std::io::Error),
    /// The listen address does not parse or resolve.
    #[error("address {0:?} is not HOST:PORT")]
    BadAddress(String),
    /// No credentials on a non-loopback address.
    #[error("no credentials: set NASGATE_ROOT_USER and NASGATE_ROOT_PASSWORD (or MINIO_ROOT_USER and MINIO_ROOT_PASSWORD) to listen on {0}")]
    NoCredentials(String),
    /// Only one of the pair is set.
    #[error("{0} is set but {1} is not")]
    HalfCredentials(&'static str, &'static str),
}

/// The root access key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: String,
    /// Whether this is the built-in development pair.
    pub development: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("development", &self.development)
            .finish_non_exhaustive()
    }
}

/// Resolves credentials from an environment lookup: NASGATE_* first, then MINIO_*, then the
/// development pair on loopback addresses only.
pub fn credentials(
    env: impl Fn(&str) -> Option<String>,
    address: &SocketAddr,
) -> Result<Credentials, ConfigError> {
    for (user, pass) in [
        ("NASGATE_ROOT_USER", "NASGATE_ROOT_PASSWORD"),
        ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"),
    ] {
        let u = env(user).filter(|v| !v.is_empty());
        let p = env(pass).filter(|v| !v.is_empty());
        match (u, p) {
            (Some(access_key), Some(secret_key)) => {
                return Ok(Credentials {
                    access_key,
                    secret_key,
                    development: false,
                })
            }
            (Some(_), None) => return Err(ConfigError::HalfCredentials(user, pass)),
            (None, Some(_)) => return Err(ConfigError::HalfCredentials(pass, user)),
            (None, None) => {}
        }
    }
    if address.ip().is_loopback() {
        Ok(Credentials {
            access_key: DEV_ACCESS_KEY.into(),
            secret_key: DEV_SECRET_KEY.into(),
            development: true,
        })
    } else {
        Err(ConfigError::NoCredentials(address.to_string()))
    }
}

/// Parses and resolves a HOST:PORT listen address.
pub fn listen_address(text: &str) -> Result<SocketAddr, ConfigError> {
    text.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ConfigError::BadAddress(text.to_string()))
}

/// Checks that an operator-given share exists, is a writable directory, without creating
/// anything: an absent NAS must never be papered over by a fresh local folder.
pub fn existing_share(path: &Path) -> Result<PathBuf, ConfigError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::ShareMissing(path.to_path_buf()))
        }
        Err(e) => return Err(ConfigError::ShareIo(path.to_path_buf(), e)),
    };
    if !meta.is_dir() {
        return Err(ConfigError::ShareNotDirectory(path.to_path_buf()));
    }
    let abs =
        std::fs::canonicalize(path).map_err(|e| ConfigError::ShareIo(path.to_path_buf(), e))?;
    crate::platform::writable(&abs).map_err(|e| ConfigError::ShareNotWritable(abs.clone(), e))?;
    Ok(abs)
}

/// The embedded default share, created if missing.
pub fn default_share() -> Result<PathBuf, ConfigError> {
    let path = Path::new(DEFAULT_SHARE);
    std::fs::create_dir_all(path).map_err(|e| ConfigError::ShareIo(path.to_path_buf(), e))?;
    existing_share(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn nasgate_credentials_win_over_minio_ones() {
        let a = listen_address("0.0.0.0:9000").unwrap();
        let c = credentials(
            env(&[
                ("NASGATE_ROOT_USER", "n"),
                ("NASGATE_ROOT_PASSWORD", "np"),
                ("MINIO_ROOT_USER", "m"),
                ("MINIO_ROOT_PASSWORD", "mp"),
            ]),
            &a,
        )
        .unwrap();
        assert_eq!((c.access_key.as_str(), c.secret_key.as_str()), ("n", "np"));
        let c = credentials(
            env(&[("MINIO_ROOT_USER", "m"), ("MINIO_ROOT_PASSWORD", "mp")]),
            &a,
        )
        .unwrap();
        assert_eq!(c.access_key, "m");
        assert!(!c.development);
    }

    #[test]
    fn development_pair_only_on_loopback() {
        let lo = listen_address("127.0.0.1:9000").unwrap();
        assert!(credentials(env(&[]), &lo).unwrap().development);
        let any = listen_address("0.0.0.0:9000").unwrap();
        assert!(matches!(
            credentials(env(&[]), &any),
            Err(ConfigError::NoCredentials(_))
        ));
        assert!(matches!(
            credentials(env(&[("NASGATE_ROOT_USER", "x")]), &lo),
            Err(ConfigError::HalfCredentials(..))
        ));
    }
}
