//! Users: access keys with their secret, status and policy, kept as one JSON document on the
//! share (`.minio.sys/config/nasgate/users.json`, see `USERS_FILE`).
//!
//! SigV4 verification needs the secret itself, so a hash would not do: secrets are sealed
//! with ChaCha20-Poly1305 under a key derived (HKDF-SHA256) from the root secret. Whoever can
//! read the share but not the root secret learns no user secret; changing the root secret
//! makes the stored secrets unreadable (those users then fail to sign in until re-added).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

use super::policy::{self, Policy, PolicyError};

/// Where the users live on the share.
pub fn users_file() -> PathBuf {
    PathBuf::from(crate::store::layout::SYS).join("config/nasgate/users.json")
}

/// Errors of user management.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The access key is not acceptable.
    #[error("access key {0:?} must be 3 to 128 characters of letters, digits, '.', '_', '-', '@', '+', '='")]
    BadAccessKey(String),
    /// The secret is not acceptable.
    #[error("secret key must be 8 to 256 printable ASCII characters")]
    BadSecret,
    /// The key is the root key.
    #[error("{0} is the root access key; it is configured by the environment")]
    IsRoot(String),
    /// The user exists already.
    #[error("user {0} exists already")]
    Exists(String),
    /// No such user.
    #[error("no user {0}")]
    NoSuchUser(String),
    /// The policy name is unknown or its JSON is refused.
    #[error("policy: {0}")]
    Policy(#[from] PolicyError),
    /// users.json cannot be understood.
    #[error("users file is damaged: {0}")]
    Damaged(String),
    /// A secret cannot be sealed or opened with this root secret.
    #[error("a user secret cannot be decrypted with this root secret")]
    Crypto,
}

/// Enabled or disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// May sign requests.
    Enabled,
    /// Refused at authentication.
    Disabled,
}

/// One user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredUser {
    /// base64(nonce || ChaCha20-Poly1305 ciphertext of the secret).
    pub sealed_secret: String,
    /// Enabled or disabled.
    pub status: Status,
    /// A built-in policy name, or "custom" for `custom_policy`.
    pub policy: String,
    /// The custom policy document, when `policy` is "custom".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_policy: Option<serde_json::Value>,
}

/// The whole users document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsersDoc {
    /// Format version.
    pub version: u32,
    /// Users by access key.
    pub users: BTreeMap<String, StoredUser>,
}

impl UsersDoc {
    /// Parses users.json (empty bytes: no users).
    pub fn parse(bytes: &[u8]) -> Result<UsersDoc, UserError> {
        if bytes.is_empty() {
            return Ok(UsersDoc {
                version: 1,
                ..UsersDoc::default()
            });
        }
        serde_json::from_slice(bytes).map_err(|e| UserError::Damaged(e.to_string()))
    }

    /// The document as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// A user ready to check requests against.
#[derive(Debug, Clone)]
pub struct User {
    /// The secret, decrypted.
    pub secret: String,
    /// Whether requests are accepted.
    pub enabled: bool,
    /// The identity policy.
    pub policy: Policy,
    /// The stored seal of the secret: a new one (fresh nonce) on every add and disable, so
    /// console sessions that fingerprint it stay ended when a disabled user is enabled again.
    pub seal: String,
}

/// What a policy argument names: a built-in or a custom document.
#[derive(Debug, Clone)]
pub enum PolicyChoice {
    /// A built-in name.
    Builtin(String),
    /// Custom JSON text.
    Custom(String),
}

impl PolicyChoice {
    /// Checks the choice and returns what to store.
    pub fn to_stored(&self) -> Result<(String, Option<serde_json::Value>), UserError> {
        match self {
            PolicyChoice::Builtin(name) => match policy::builtin(name) {
                Some(_) => Ok((name.clone(), None)),
                None => Err(PolicyError(format!(
                    "unknown policy {name:?} (built-in: {})",
                    policy::BUILTIN.join(", ")
                ))
                .into()),
            },
            PolicyChoice::Custom(text) => {
                Policy::parse_identity(text.as_bytes())?;
                let v = serde_json::from_str(text)
                    .map_err(|e| UserError::Policy(PolicyError(e.to_string())))?;
                Ok(("custom".into(), Some(v)))
            }
        }
    }
}

/// Checks an access key's shape.
pub fn check_access_key(key: &str) -> Result<(), UserError> {
    let ok = (3..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@+=".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(UserError::BadAccessKey(key.into()))
    }
}

/// Checks a secret's shape.
pub fn check_secret(secret: &str) -> Result<(), UserError> {
    if (8..=256).contains(&secret.len()) && secret.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(UserError::BadSecret)
    }
}

/// Seals and opens user secrets with a key derived from the root secret.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl Sealer {
    /// The sealer for this root secret.
    pub fn new(root_secret: &str) -> Sealer {
        let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(b"nasgate users"), root_secret.as_bytes());
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
        let _ = hk.expand(b"user secret sealing v1", &mut key);
        Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
        }
    }

    /// Seals `secret` for `access_key` (the key is bound in, so sealed values cannot be
    /// swapped between users).
    pub fn seal(&self, access_key: &str, secret: &str) -> Result<String, UserError> {
        let nonce_bytes: [u8; 12] = uuid::Uuid::new_v4().as_bytes()[..12]
            .try_into()
            .map_err(|_| UserError::Crypto)?;
        let nonce = Nonce::from_slice(&nonce_bytes);
        let ct = self
            .cipher
            .encrypt(
                nonce,
                chacha20poly1305::aead::Payload {
                    msg: secret.as_bytes(),
                    aad: access_key.as_bytes(),
                },
            )
            .map_err(|_| UserError::Crypto)?;
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&ct);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    /// Opens a sealed secret of `access_key`.
    pub fn open(&self, access_key: &str, sealed: &str) -> Result<String, UserError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| UserError::Crypto)?;
        if raw.len() < 12 {
            return Err(UserError::Crypto);
        }
        let (nonce, ct) = raw.split_at(12);
        let pt = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                chacha20poly1305::aead::Payload {
                    msg: ct,
                    aad: access_key.as_bytes(),
                },
            )
            .map_err(|_| UserError::Crypto)?;
        String::from_utf8(pt).map_err(|_| UserError::Crypto)
    }
}

/// Decodes every user of a document; users whose secret or policy cannot be read are left
/// out (and logged), so one damaged entry never locks everyone out.
pub fn load(doc: &UsersDoc, sealer: &Sealer) -> BTreeMap<String, User> {
    let mut out = BTreeMap::new();
    for (key, u) in &doc.users {
        let secret = match sealer.open(key, &u.sealed_secret) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(access_key = %key, "user skipped: {e}");
                continue;
            }
        };
        let policy = match policy_of(u) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(access_key = %key, "user skipped: {e}");
                continue;
            }
        };
        out.insert(
            key.clone(),
            User {
                secret,
                enabled: u.status == Status::Enabled,
                policy,
                seal: u.sealed_secret.clone(),
            },
        );
    }
    out
}

/// The policy a stored user has.
pub fn policy_of(u: &StoredUser) -> Result<Policy, UserError> {
    if u.policy == "custom" {
        let v = u
            .custom_policy
            .as_ref()
            .ok_or_else(|| UserError::Damaged("custom policy missing".into()))?;
        let text = serde_json::to_vec(v).unwrap_or_default();
        return Ok(Policy::parse_identity(&text)?);
    }
    let text = policy::builtin(&u.policy)
        .ok_or_else(|| PolicyError(format!("unknown policy {:?}", u.policy)))?;
    Ok(Policy::parse_identity(text.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_root_and_key() {
        let s = Sealer::new("root-secret-1");
        let sealed = s.seal("app1", "app1-secret-xyz").unwrap();
        assert!(!sealed.contains("app1-secret"));
        assert_eq!(s.open("app1", &sealed).unwrap(), "app1-secret-xyz");
        assert!(s.open("app2", &sealed).is_err());
        assert!(Sealer::new("root-secret-2").open("app1", &sealed).is_err());
    }

    #[test]
    fn access_keys_and_secrets_are_checked() {
        assert!(check_access_key("app-1").is_ok());
        assert!(check_access_key("a/b").is_err());
        assert!(check_access_key("ab").is_err());
        assert!(check_secret("short").is_err());
        assert!(check_secret("long enough").is_err());
        assert!(check_secret("long-enough").is_ok());
    }
}
