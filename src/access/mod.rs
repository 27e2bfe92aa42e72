//! Access control: who may do what. Users and bucket policies live on the share (through the
//! store); each instance caches them and re-checks each document with one stat at most every
//! `RECHECK`, so a change made by any instance or `nasgate user` reaches every other instance
//! within that bound. `Access::authorize` is the one decision the S3 front asks for every
//! request; the policy language itself is in `policy` and has no I/O.

pub mod action;
pub mod policy;
pub mod users;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::Credentials;
use crate::store::config::{bucket_policy, Version};
use crate::store::{Store, StoreError};

pub use action::action;
pub use policy::{Decision, Policy, PolicyError, Principal};
pub use users::{PolicyChoice, Sealer, Status, User, UserError, UsersDoc};

/// Longest a change to users or bucket policies takes to reach an instance that did not make it.
pub const RECHECK: Duration = Duration::from_secs(2);

/// Most bucket policies cached before the cache starts over.
const MAX_CACHED_BUCKETS: usize = 4096;

fn valid_bucket(name: &str) -> bool {
    crate::store::layout::check_bucket(name).is_ok()
}

/// Largest bucket policy accepted (AWS's limit).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// Who signed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The root pair from the environment: allowed everything.
    Root,
    /// A user from the share.
    User(String),
    /// An unsigned request.
    Anonymous,
}

impl Caller {
    /// The access key for logs ("" for anonymous).
    pub fn access_key<'a>(&'a self, root: &'a str) -> &'a str {
        match self {
            Caller::Root => root,
            Caller::User(k) => k,
            Caller::Anonymous => "",
        }
    }
}

/// Why a request was refused (the label of the denial metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// A statement denies it explicitly.
    ExplicitDeny,
    /// A signed request no statement allows.
    NotAllowed,
    /// An unsigned request no bucket policy allows.
    Anonymous,
    /// The bucket's stored policy cannot be read, so nothing but root is let in.
    UnreadablePolicy,
}

impl Denial {
    /// The metric label.
    pub fn name(self) -> &'static str {
        match self {
            Denial::ExplicitDeny => "explicit_deny",
            Denial::NotAllowed => "not_allowed",
            Denial::Anonymous => "anonymous",
            Denial::UnreadablePolicy => "unreadable_policy",
        }
    }
}

/// Errors of access decisions and of managing users and policies.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The request is not allowed.
    #[error("access denied")]
    Denied(Denial),
    /// The policy document is refused.
    #[error("{0}")]
    Malformed(#[from] PolicyError),
    /// The bucket has no policy.
    #[error("the bucket policy does not exist")]
    NoPolicy,
    /// User management failed.
    #[error(transparent)]
    User(#[from] UserError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One request as the access check sees it.
#[derive(Debug, Clone, Default)]
pub struct Target<'a> {
    /// The bucket, if any.
    pub bucket: Option<&'a str>,
    /// The key, if any.
    pub key: Option<&'a str>,
    /// Condition keys (`s3:prefix`, `s3:delimiter`).
    pub context: BTreeMap<String, String>,
}

struct Cached<T> {
    value: T,
    version: Option<Version>,
    checked: Option<Instant>,
}

impl<T> Cached<T> {
    fn new(value: T) -> Cached<T> {
        Cached {
            value,
            version: None,
            checked: None,
        }
    }

    fn due(&self) -> bool {
        self.checked.is_none_or(|t| t.elapsed() >= RECHECK)
    }
}

/// A bucket's policy as cached: absent, parsed, or present but unreadable.
#[derive(Clone)]
enum BucketPolicy {
    None,
    Parsed(Arc<Policy>),
    Unreadable,
}

/// Users and bucket policies of one share, cached per instance.
pub struct Access {
    store: Arc<Store>,
    root: Credentials,
    sealer: Sealer,
    users: Mutex<Cached<Arc<BTreeMap<String, User>>>>,
    buckets: Mutex<HashMap<String, Cached<BucketPolicy>>>,
    /// Held while users are re-read from the share.
    refreshing: Mutex<()>,
    /// Held while a bucket policy is re-read from the share.
    refreshing_buckets: Mutex<()>,
}

impl Access {
    /// Access control on `store`'s share with this root pair.
    pub fn new(store: Arc<Store>, root: Credentials) -> Access {
        let sealer = Sealer::new(&root.secret_key);
        Access {
            store,
            root,
            sealer,
            users: Mutex::new(Cached::new(Arc::new(BTreeMap::new()))),
            buckets: Mutex::new(HashMap::new()),
            refreshing: Mutex::new(()),
            refreshing_buckets: Mutex::new(()),
        }
    }

    /// The root access key.
    pub fn root_key(&self) -> &str {
        &self.root.access_key
    }

    /// Who an access key is and its secret, for signature checks; None for unknown and
    /// disabled keys.
    pub fn secret_for(&self, access_key: &str) -> Option<(Caller, String)> {
        if access_key == self.root.access_key {
            return Some((Caller::Root, self.root.secret_key.clone()));
        }
        let users = self.users();
        let u = users.get(access_key)?;
        if !u.enabled {
            crate::metrics::get().denied("disabled_user");
            return None;
        }
        Some((Caller::User(access_key.to_string()), u.secret.clone()))
    }

    /// Like `secret_for`, with the user's current seal (empty for root): what a console
    /// session's fingerprint covers, so a new secret or a disable ends the session.
    pub fn secret_and_seal(&self, access_key: &str) -> Option<(Caller, String, String)> {
        if access_key == self.root.access_key {
            return Some((Caller::Root, self.root.secret_key.clone(), String::new()));
        }
        let users = self.users();
        let u = users.get(access_key)?;
        if !u.enabled {
            crate::metrics::get().denied("disabled_user");
            return None;
        }
        Some((
            Caller::User(access_key.to_string()),
            u.secret.clone(),
            u.seal.clone(),
        ))
    }

    /// Whether answering a request on `bucket` would first have to look at the share (a
    /// re-check is due); the front then runs `refresh` on the blocking pool, so the async
    /// workers never wait on the NAS for access decisions.
    pub fn is_due(&self, bucket: Option<&str>) -> bool {
        self.users.lock().due()
            || bucket.is_some_and(|b| {
                valid_bucket(b) && self.buckets.lock().get(b).is_none_or(Cached::due)
            })
    }

    /// Re-checks (and if changed re-reads) the users and `bucket`'s policy where due.
    pub fn refresh(&self, bucket: Option<&str>) {
        let _ = self.users();
        if let Some(b) = bucket {
            let _ = self.bucket_policy(b);
        }
    }

    fn users(&self) -> Arc<BTreeMap<String, User>> {
        let (due, loaded) = {
            let c = self.users.lock();
            (c.due(), c.checked.is_some())
        };
        if due {
            // One re-check at a time; others go on with the last known users meanwhile,
            // except before the first load, when there are none to go on with.
            let _one = if loaded {
                self.refreshing.try_lock()
            } else {
                Some(self.refreshing.lock())
            };
            if _one.is_some() && self.users.lock().due() {
                self.reload_users();
            }
        }
        self.users.lock().value.clone()
    }

    fn reload_users(&self) {
        let rel = users::users_file();
        let known = self.users.lock().version;
        let fresh = match self.store.config_version(&rel) {
            Ok(v) if v == known && v.is_some() => None,
            Ok(_) => match self.store.read_config(&rel) {
                Ok(Some((bytes, version))) => match UsersDoc::parse(&bytes) {
                    Ok(doc) => Some((Arc::new(users::load(&doc, &self.sealer)), Some(version))),
                    Err(e) => {
                        tracing::warn!("users not reloaded: {e}");
                        None
                    }
                },
                Ok(None) => Some((Arc::new(BTreeMap::new()), None)),
                Err(e) => {
                    tracing::warn!("users not reloaded: {e}");
                    None
                }
            },
            // A NAS hiccup keeps the last known users rather than locking everyone out.
            Err(e) => {
                tracing::warn!("users not re-checked: {e}");
                None
            }
        };
        let mut c = self.users.lock();
        if let Some((value, version)) = fresh {
            c.value = value;
            c.version = version;
        }
        c.checked = Some(Instant::now());
    }

    fn bucket_policy(&self, bucket: &str) -> Result<BucketPolicy, StoreError> {
        if !valid_bucket(bucket) {
            // No such bucket can exist, so no policy either (and no path is built from it).
            return Ok(BucketPolicy::None);
        }
        let (due, loaded) = match self.buckets.lock().get(bucket) {
            Some(c) => (c.due(), true),
            None => (true, false),
        };
        if due {
            let _one = if loaded {
                self.refreshing_buckets.try_lock()
            } else {
                Some(self.refreshing_buckets.lock())
            };
            let still_due = self.buckets.lock().get(bucket).is_none_or(Cached::due);
            if _one.is_some() && still_due {
                self.reload_bucket_policy(bucket)?;
            }
        }
        Ok(self
            .buckets
            .lock()
            .get(bucket)
            .map_or(BucketPolicy::None, |c| c.value.clone()))
    }

    fn reload_bucket_policy(&self, bucket: &str) -> Result<(), StoreError> {
        let rel = bucket_policy(bucket);
        let known = self.buckets.lock().get(bucket).map(|c| c.version);
        let v = self.store.config_version(&rel)?;
        let fresh = if known == Some(v) {
            None
        } else {
            Some(match self.store.read_config(&rel)? {
                Some((bytes, version)) => {
                    let value = match Policy::parse_bucket(&bytes, bucket) {
                        Ok(p) => BucketPolicy::Parsed(Arc::new(p)),
                        Err(e) => {
                            tracing::warn!(bucket, "bucket policy unreadable: {e}");
                            BucketPolicy::Unreadable
                        }
                    };
                    (value, Some(version))
                }
                None => (BucketPolicy::None, None),
            })
        };
        let mut all = self.buckets.lock();
        if all.len() >= MAX_CACHED_BUCKETS && !all.contains_key(bucket) {
            // Requests naming many absent buckets must not grow the cache without bound.
            all.clear();
        }
        let c = all
            .entry(bucket.to_string())
            .or_insert_with(|| Cached::new(BucketPolicy::None));
        if let Some((value, version)) = fresh {
            c.value = value;
            c.version = version;
        }
        c.checked = Some(Instant::now());
        Ok(())
    }

    fn forget_bucket(&self, bucket: &str) {
        self.buckets.lock().remove(bucket);
    }

    /// Decides whether `caller` may do `action` on `target`: root always; a user when its
    /// own policy or the bucket's allows it and neither denies it; anonymous only where the
    /// bucket's policy allows it.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        target: &Target,
    ) -> Result<(), AccessError> {
        let principal = match caller {
            Caller::Root => return Ok(()),
            Caller::User(k) => Principal::User(k.clone()),
            Caller::Anonymous => Principal::Anonymous,
        };
        let resource = match (target.bucket, target.key) {
            (None, _) => "arn:aws:s3:::*".to_string(),
            (Some(b), None) => format!("arn:aws:s3:::{b}"),
            (Some(b), Some(k)) => format!("arn:aws:s3:::{b}/{k}"),
        };
        let q = policy::Query {
            principal: &principal,
            action,
            resource: &resource,
            context: &target.context,
        };
        let mut decisions = Vec::with_capacity(2);
        if let Caller::User(k) = caller {
            let users = self.users();
            match users.get(k) {
                Some(u) if u.enabled => decisions.push(u.policy.decide(&q)),
                _ => return Err(self.deny(Denial::NotAllowed)),
            }
        }
        if let Some(b) = target.bucket {
            match self.bucket_policy(b)? {
                BucketPolicy::None => {}
                BucketPolicy::Parsed(p) => decisions.push(p.decide(&q)),
                BucketPolicy::Unreadable => return Err(self.deny(Denial::UnreadablePolicy)),
            }
        }
        if decisions.contains(&Decision::ExplicitDeny) {
            return Err(self.deny(Denial::ExplicitDeny));
        }
        if decisions.contains(&Decision::Allow) {
            return Ok(());
        }
        Err(self.deny(match caller {
            Caller::Anonymous => Denial::Anonymous,
            _ => Denial::NotAllowed,
        }))
    }

    fn deny(&self, why: Denial) -> AccessError {
        crate::metrics::get().denied(why.name());
        AccessError::Denied(why)
    }

    /// Whether ListBuckets shows `bucket` to `caller`: root sees all; others see the buckets
    /// some Allow statement of their policy or of the bucket's policy reaches.
    pub fn shows_bucket(&self, caller: &Caller, bucket: &str) -> bool {
        let principal = match caller {
            Caller::Root => return true,
            Caller::User(k) => Principal::User(k.clone()),
            Caller::Anonymous => Principal::Anonymous,
        };
        if let Caller::User(k) = caller {
            if let Some(u) = self.users().get(k) {
                if u.enabled && u.policy.reaches_bucket(&principal, bucket) {
                    return true;
                }
            }
        }
        matches!(self.bucket_policy(bucket), Ok(BucketPolicy::Parsed(p)) if p.reaches_bucket(&principal, bucket))
    }

    /// The stored policy text of `bucket`.
    pub fn get_bucket_policy(&self, bucket: &str) -> Result<Vec<u8>, AccessError> {
        self.store.head_bucket(bucket)?;
        match self.store.read_config(&bucket_policy(bucket))? {
            Some((bytes, _)) => Ok(bytes),
            None => Err(AccessError::NoPolicy),
        }
    }

    /// Whether `bucket`'s policy allows anyone at all something (GetBucketPolicyStatus).
    pub fn bucket_is_public(&self, bucket: &str) -> Result<bool, AccessError> {
        let text = self.get_bucket_policy(bucket)?;
        let p = Policy::parse_bucket(&text, bucket)?;
        Ok(p.statements.iter().any(|s| {
            s.effect == policy::Effect::Allow && s.principals == policy::Principals::Everyone
        }))
    }

    /// Checks and stores `bucket`'s policy; a refused document changes nothing.
    pub fn put_bucket_policy(&self, bucket: &str, text: &[u8]) -> Result<(), AccessError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError("policies are limited to 20 KiB".into()).into());
        }
        Policy::parse_bucket(text, bucket)?;
        self.store.head_bucket(bucket)?;
        let rel = bucket_policy(bucket);
        self.store
            .update_config(&rel, |_| Ok::<_, AccessError>(Some(text.to_vec())))?;
        self.forget_bucket(bucket);
        Ok(())
    }

    /// Removes `bucket`'s policy (none is no error).
    pub fn delete_bucket_policy(&self, bucket: &str) -> Result<(), AccessError> {
        self.store.head_bucket(bucket)?;
        let rel = bucket_policy(bucket);
        if self.store.config_version(&rel)?.is_some() {
            self.store
                .update_config(&rel, |_| Ok::<_, AccessError>(None))?;
        }
        self.forget_bucket(bucket);
        Ok(())
    }
}

/// User management on a share (the `nasgate user` commands).
pub struct UserAdmin<'a> {
    store: &'a Store,
    sealer: Sealer,
    root_key: String,
}

/// A user as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Access key.
    pub access_key: String,
    /// Enabled or disabled.
    pub status: Status,
    /// Policy name ("custom" for a custom document).
    pub policy: String,
}

impl<'a> UserAdmin<'a> {
    /// Manages the users of `store` with this root pair (its secret seals user secrets).
    pub fn new(store: &'a Store, root: &Credentials) -> UserAdmin<'a> {
        UserAdmin {
            store,
            sealer: Sealer::new(&root.secret_key),
            root_key: root.access_key.clone(),
        }
    }

    fn change(
        &self,
        f: impl FnOnce(&mut UsersDoc) -> Result<(), AccessError>,
    ) -> Result<(), AccessError> {
        let rel: PathBuf = users::users_file();
        self.store.update_config(&rel, |current| {
            let mut doc = UsersDoc::parse(current.unwrap_or_default())?;
            doc.version = 1;
            f(&mut doc)?;
            Ok(Some(doc.to_bytes()))
        })
    }

    /// Adds a user.
    pub fn add(
        &self,
        access_key: &str,
        secret: &str,
        policy: &PolicyChoice,
    ) -> Result<(), AccessError> {
        users::check_access_key(access_key)?;
        users::check_secret(secret)?;
        if access_key == self.root_key {
            return Err(UserError::IsRoot(access_key.into()).into());
        }
        let (name, custom) = policy.to_stored()?;
        let sealed = self.sealer.seal(access_key, secret)?;
        self.change(|doc| {
            if doc.users.contains_key(access_key) {
                return Err(UserError::Exists(access_key.into()).into());
            }
            doc.users.insert(
                access_key.into(),
                users::StoredUser {
                    sealed_secret: sealed,
                    status: Status::Enabled,
                    policy: name,
                    custom_policy: custom,
                },
            );
            Ok(())
        })
    }

    fn edit(
        &self,
        access_key: &str,
        f: impl FnOnce(&mut users::StoredUser),
    ) -> Result<(), AccessError> {
        self.change(|doc| match doc.users.get_mut(access_key) {
            Some(u) => {
                f(u);
                Ok(())
            }
            None => Err(UserError::NoSuchUser(access_key.into()).into()),
        })
    }

    /// Removes a user.
    pub fn remove(&self, access_key: &str) -> Result<(), AccessError> {
        self.change(|doc| match doc.users.remove(access_key) {
            Some(_) => Ok(()),
            None => Err(UserError::NoSuchUser(access_key.into()).into()),
        })
    }

    /// Enables or disables a user. Disabling re-seals the secret (same secret, new nonce):
    /// console sessions fingerprint the seal, so enabling the user again does not bring
    /// back the sessions the disable ended.
    pub fn set_status(&self, access_key: &str, status: Status) -> Result<(), AccessError> {
        self.change(|doc| match doc.users.get_mut(access_key) {
            Some(u) => {
                if status == Status::Disabled && u.status != Status::Disabled {
                    // A seal that does not open is left as it is: that user is skipped
                    // anyway, and disabling must not fail on it.
                    if let Ok(secret) = self.sealer.open(access_key, &u.sealed_secret) {
                        u.sealed_secret = self.sealer.seal(access_key, &secret)?;
                    }
                }
                u.status = status;
                Ok(())
            }
            None => Err(UserError::NoSuchUser(access_key.into()).into()),
        })
    }

    /// Gives a user another policy.
    pub fn set_policy(&self, access_key: &str, policy: &PolicyChoice) -> Result<(), AccessError> {
        let (name, custom) = policy.to_stored()?;
        self.edit(access_key, |u| {
            u.policy = name;
            u.custom_policy = custom;
        })
    }

    /// All users.
    pub fn list(&self) -> Result<Vec<Listed>, AccessError> {
        let doc = match self.store.read_config(&users::users_file())? {
            Some((bytes, _)) => UsersDoc::parse(&bytes)?,
            None => UsersDoc::default(),
        };
        Ok(doc
            .users
            .into_iter()
            .map(|(k, u)| Listed {
                access_key: k,
                status: u.status,
                policy: u.policy,
            })
            .collect())
    }
}
