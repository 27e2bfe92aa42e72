//! Stateless console sessions: a cookie holding who, when and a fingerprint of the user's
//! secret, sealed with HMAC-SHA256 under a key derived from the root secret, so any instance
//! on the share can check it and nothing is stored anywhere.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE: &str = "nasgate_session";
/// A session ends this long after its last renewal.
pub const IDLE_SECS: u64 = 3600;
/// A session ends this long after login, however much it is used.
pub const MAX_SECS: u64 = 12 * 3600;

/// Why a cookie is no session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not in the cookie's format.
    #[error("the session cookie is malformed")]
    Malformed,
    /// The seal does not match: forged or from another root secret.
    #[error("the session cookie's seal does not match")]
    BadSeal,
    /// Past its idle or absolute expiry.
    #[error("the session has expired")]
    Expired,
}

/// What a session cookie says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The access key logged in.
    #[serde(rename = "k")]
    pub access_key: String,
    /// Login time, Unix seconds.
    #[serde(rename = "i")]
    pub issued: u64,
    /// Idle expiry, Unix seconds.
    #[serde(rename = "e")]
    pub expires: u64,
    /// Fingerprint of the user's secret at login: a changed secret ends the session.
    #[serde(rename = "f")]
    pub fingerprint: String,
}

/// Issues and checks session cookies.
pub struct Sessions {
    key: [u8; 32],
}

type HmacSha256 = Hmac<Sha256>;

impl Sessions {
    /// Sessions sealed under a key derived from the root secret.
    pub fn new(root_secret: &str) -> Sessions {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"nasgate console"), root_secret.as_bytes());
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's output limit, so expand cannot fail.
        let _ = hk.expand(b"session seal v1", &mut key);
        Sessions { key }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = HmacSha256::new_from_slice(&self.key).expect("HMAC accepts any key");
        for p in parts {
            // Length-prefixed, so no two different part lists hash alike.
            m.update(&(p.len() as u64).to_be_bytes());
            m.update(p);
        }
        m.finalize().into_bytes().into()
    }

    /// The fingerprint of `access_key`'s current `secret` and its stored `seal` (which a
    /// disable renews).
    pub fn fingerprint(&self, access_key: &str, secret: &str, seal: &str) -> String {
        URL_SAFE_NO_PAD.encode(
            &self.mac(&[
                b"fingerprint",
                access_key.as_bytes(),
                secret.as_bytes(),
                seal.as_bytes(),
            ])[..16],
        )
    }

    /// A new session for `access_key` with `secret` and `seal`, at `now`.
    pub fn issue(&self, access_key: &str, secret: &str, seal: &str, now: u64) -> Session {
        Session {
            access_key: access_key.to_string(),
            issued: now,
            expires: now + IDLE_SECS,
            fingerprint: self.fingerprint(access_key, secret, seal),
        }
    }

    /// The cookie value for `s`.
    pub fn seal(&self, s: &Session) -> String {
        let payload = serde_json::to_vec(s).expect("a session serialises");
        let mac = self.mac(&[b"session", &payload]);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// The session in a cookie value, if sealed here and not expired at `now`.
    pub fn open(&self, cookie: &str, now: u64) -> Result<Session, SessionError> {
        let (payload, mac) = cookie.split_once('.').ok_or(SessionError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| SessionError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| SessionError::Malformed)?;
        let expected = self.mac(&[b"session", &payload]);
        if !bool::from(expected.as_slice().ct_eq(&mac)) {
            return Err(SessionError::BadSeal);
        }
        let s: Session = serde_json::from_slice(&payload).map_err(|_| SessionError::Malformed)?;
        if now >= s.expires || now >= s.issued.saturating_add(MAX_SECS) {
            return Err(SessionError::Expired);
        }
        Ok(s)
    }

    /// `s` renewed at `now` when more than half its idle lifetime has passed, else None.
    pub fn renewal(&self, s: &Session, now: u64) -> Option<Session> {
        if s.expires.saturating_sub(now) > IDLE_SECS / 2 {
            return None;
        }
        let expires = (now + IDLE_SECS).min(s.issued + MAX_SECS);
        (expires > s.expires).then(|| Session {
            expires,
            ..s.clone()
        })
    }

    /// The CSRF token of a session (for form posts, which cannot carry a custom header):
    /// stable across renewals, different for every login.
    pub fn csrf(&self, s: &Session) -> String {
        URL_SAFE_NO_PAD.encode(
            &self.mac(&[
                b"csrf",
                s.access_key.as_bytes(),
                &s.issued.to_be_bytes(),
                s.fingerprint.as_bytes(),
            ])[..24],
        )
    }

    /// Whether `token` is the CSRF token of `s`.
    pub fn csrf_matches(&self, s: &Session, token: &str) -> bool {
        bool::from(self.csrf(s).as_bytes().ct_eq(token.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_sessions_open_and_tampering_is_refused() {
        let s = Sessions::new("root-secret-1");
        let session = s.issue("alice", "alice-secret", "seal", 1000);
        let cookie = s.seal(&session);
        assert_eq!(s.open(&cookie, 1001), Ok(session.clone()));
        // Another root secret cannot open it.
        assert_eq!(
            Sessions::new("root-secret-2").open(&cookie, 1001),
            Err(SessionError::BadSeal)
        );
        // A payload edited to another user keeps the old seal: refused.
        let (_, mac) = cookie.split_once('.').unwrap();
        let forged = Session {
            access_key: "root".into(),
            ..session.clone()
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            s.open(&format!("{payload}.{mac}"), 1001),
            Err(SessionError::BadSeal)
        );
        assert_eq!(s.open("garbage", 1001), Err(SessionError::Malformed));
        assert_eq!(
            s.open(&cookie, 1000 + IDLE_SECS),
            Err(SessionError::Expired)
        );
    }

    #[test]
    fn renewal_after_half_the_lifetime_and_never_past_the_maximum() {
        let s = Sessions::new("r");
        let session = s.issue("a", "b", "s", 0);
        assert!(s.renewal(&session, IDLE_SECS / 2 - 1).is_none());
        let renewed = s.renewal(&session, IDLE_SECS / 2 + 1).unwrap();
        assert_eq!(renewed.expires, IDLE_SECS / 2 + 1 + IDLE_SECS);
        assert_eq!(s.csrf(&renewed), s.csrf(&session));
        // Near the absolute limit the renewal stops at it, and then nothing renews.
        let mut late = session.clone();
        late.expires = MAX_SECS - 100;
        let last = s.renewal(&late, MAX_SECS - 200).unwrap();
        assert_eq!(last.expires, MAX_SECS);
        assert!(s.renewal(&last, MAX_SECS - 10).is_none());
        assert_eq!(s.open(&s.seal(&last), MAX_SECS), Err(SessionError::Expired));
    }

    #[test]
    fn fingerprint_follows_the_secret() {
        let s = Sessions::new("r");
        assert_ne!(
            s.fingerprint("a", "one", "x"),
            s.fingerprint("a", "two", "x")
        );
        assert_ne!(
            s.fingerprint("a", "one", "x"),
            s.fingerprint("a", "one", "y")
        );
        assert_eq!(
            s.fingerprint("a", "one", "x"),
            s.fingerprint("a", "one", "x")
        );
    }
}
