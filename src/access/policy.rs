//! The policy language: the subset of AWS IAM/bucket policies that MinIO's built-in policies and
//! `mc anonymous` write, parsed strictly (anything else is refused, never ignored) and
//! evaluated without I/O.

use std::collections::BTreeMap;

use serde_json::Value;

/// Why a policy document is refused (answered as MalformedPolicy).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn bad<T>(why: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(why.into()))
}

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants what the statement matches.
    Allow,
    /// Refuses what the statement matches, whatever else allows it.
    Deny,
}

/// Who a statement of a bucket policy applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    /// No Principal element (identity policies of users).
    Unstated,
    /// `*`: everyone, signed or not.
    Everyone,
    /// These access keys (from `arn:aws:iam::ACCOUNT:user/KEY` or the bare key).
    Users(Vec<String>),
}

/// A string condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// Exact match with any value.
    StringEquals,
    /// Exact match with none of the values.
    StringNotEquals,
    /// Wildcard match with any value.
    StringLike,
    /// Wildcard match with none of the values.
    StringNotLike,
}

/// One condition: operator, key (`s3:prefix`, `s3:delimiter`), values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// How values compare.
    pub operator: Operator,
    /// The context key.
    pub key: String,
    /// The values.
    pub values: Vec<String>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Allow or Deny.
    pub effect: Effect,
    /// Who it applies to.
    pub principals: Principals,
    /// Action patterns (`s3:GetObject`, `s3:*`).
    pub actions: Vec<String>,
    /// Whether `actions` lists the actions it does NOT apply to (NotAction).
    pub not_action: bool,
    /// Resource ARN patterns.
    pub resources: Vec<String>,
    /// All must hold.
    pub conditions: Vec<Condition>,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Its statements.
    pub statements: Vec<Statement>,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An unsigned request.
    Anonymous,
    /// A signed request by this access key.
    User(String),
}

/// One request as policies see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// The action (`s3:GetObject`).
    pub action: &'a str,
    /// The resource ARN (`arn:aws:s3:::bucket/key`).
    pub resource: &'a str,
    /// Condition keys present in the request (`s3:prefix` -> value).
    pub context: &'a BTreeMap<String, String>,
}

/// What the policies say about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A statement allows it and none denies it.
    Allow,
    /// A statement denies it.
    ExplicitDeny,
    /// Nothing allows it.
    NotAllowed,
}

/// Actions a policy may name (other names are refused unless they hold a wildcard).
pub const ACTIONS: &[&str] = &[
    "s3:AbortMultipartUpload",
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "s3:DeleteBucketPolicy",
    "s3:DeleteObject",
    "s3:DeleteObjectTagging",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketNotification",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketPolicy",
    "s3:GetBucketPolicyStatus",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetObject",
    "s3:GetObjectAcl",
    "s3:GetObjectTagging",
    "s3:GetReplicationConfiguration",
    "s3:ListAllMyBuckets",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
    "s3:PutBucketAcl",
    "s3:PutBucketPolicy",
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectTagging",
];

/// Condition keys nasgate fills in.
const CONDITION_KEYS: &[&str] = &["s3:prefix", "s3:delimiter"];

const ARN_PREFIX: &str = "arn:aws:s3:::";

fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => bad(format!("{what} must hold strings")),
            })
            .collect(),
        _ => bad(format!(
            "{what} must be a string or a non-empty list of strings"
        )),
    }
}

fn principals(v: &Value) -> Result<Principals, PolicyError> {
    let users = |list: Vec<String>| -> Result<Principals, PolicyError> {
        if list.iter().any(|p| p == "*") {
            return Ok(Principals::Everyone);
        }
        let mut keys = Vec::new();
        for p in list {
            let key = match p.strip_prefix("arn:aws:iam::") {
                Some(rest) => match rest.split_once(":user/") {
                    Some((_, k)) if !k.is_empty() => k.to_string(),
                    _ => return bad(format!("unsupported principal {p:?}")),
                },
                None if !p.contains(':') && !p.is_empty() => p,
                None => return bad(format!("unsupported principal {p:?}")),
            };
            keys.push(key);
        }
        Ok(Principals::Users(keys))
    };
    match v {
        Value::String(s) if s == "*" => Ok(Principals::Everyone),
        Value::Object(m) => {
            if let Some(other) = m.keys().find(|k| *k != "AWS") {
                return bad(format!("unsupported principal type {other:?}"));
            }
            match m.get("AWS") {
                Some(aws) => users(strings(aws, "Principal AWS")?),
                None => bad("Principal needs an AWS entry"),
            }
        }
        _ => bad("Principal must be \"*\" or {\"AWS\": [...]}"),
    }
}

fn check_action(a: &str) -> Result<(), PolicyError> {
    if a == "*" || (a.starts_with("s3:") && a.contains(['*', '?'])) || ACTIONS.contains(&a) {
        Ok(())
    } else {
        bad(format!("unknown action {a:?}"))
    }
}

fn check_resource(r: &str, bucket: Option<&str>) -> Result<(), PolicyError> {
    if r == "*" && bucket.is_none() {
        return Ok(());
    }
    let Some(rest) = r.strip_prefix(ARN_PREFIX) else {
        return bad(format!("resource {r:?} is not an arn:aws:s3::: ARN"));
    };
    if rest.is_empty() {
        return bad(format!("resource {r:?} names no bucket"));
    }
    if let Some(b) = bucket {
        let named = rest.split('/').next().unwrap_or("");
        if named != b {
            return bad(format!("resource {r:?} is outside bucket {b}"));
        }
    }
    Ok(())
}

fn conditions(v: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(ops) = v else {
        return bad("Condition must be an object");
    };
    let mut out = Vec::new();
    for (op, keys) in ops {
        let operator = match op.as_str() {
            "StringEquals" => Operator::StringEquals,
            "StringNotEquals" => Operator::StringNotEquals,
            "StringLike" => Operator::StringLike,
            "StringNotLike" => Operator::StringNotLike,
            other => return bad(format!("unsupported condition operator {other:?}")),
        };
        let Value::Object(keys) = keys else {
            return bad(format!("condition {op} must be an object"));
        };
        for (key, values) in keys {
            if !CONDITION_KEYS.contains(&key.as_str()) {
                return bad(format!("unsupported condition key {key:?}"));
            }
            out.push(Condition {
                operator,
                key: key.clone(),
                values: strings(values, "condition values")?,
            });
        }
    }
    Ok(out)
}

impl Policy {
    /// Parses a user (identity) policy: Principal may be absent.
    pub fn parse_identity(text: &[u8]) -> Result<Policy, PolicyError> {
        Policy::parse(text, None)
    }

    /// Parses a bucket policy of `bucket`: every statement names a Principal and only
    /// resources of that bucket.
    pub fn parse_bucket(text: &[u8], bucket: &str) -> Result<Policy, PolicyError> {
        Policy::parse(text, Some(bucket))
    }

    fn parse(text: &[u8], bucket: Option<&str>) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_slice(text)
            .map_err(|e| PolicyError(format!("policies must be valid JSON: {e}")))?;
        let Value::Object(doc) = doc else {
            return bad("a policy is a JSON object");
        };
        for k in doc.keys() {
            if !["Version", "Id", "Statement"].contains(&k.as_str()) {
                return bad(format!("unsupported policy element {k:?}"));
            }
        }
        match doc.get("Version") {
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(_) => return bad("Version must be 2012-10-17 or 2008-10-17"),
            None => return bad("missing Version"),
        }
        let list = match doc.get("Statement") {
            Some(Value::Array(l)) if !l.is_empty() => l.clone(),
            Some(s @ Value::Object(_)) => vec![s.clone()],
            _ => return bad("Statement must be a non-empty list"),
        };
        let mut statements = Vec::new();
        for s in &list {
            let Value::Object(s) = s else {
                return bad("each statement is a JSON object");
            };
            for k in s.keys() {
                if ![
                    "Sid",
                    "Effect",
                    "Principal",
                    "Action",
                    "NotAction",
                    "Resource",
                    "Condition",
                ]
                .contains(&k.as_str())
                {
                    return bad(format!("unsupported statement element {k:?}"));
                }
            }
            let effect = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return bad("Effect must be Allow or Deny"),
            };
            let principals = match s.get("Principal") {
                Some(p) => principals(p)?,
                None if bucket.is_some() => {
                    return bad("bucket policy statements need a Principal")
                }
                None => Principals::Unstated,
            };
            let (actions, not_action) = match (s.get("Action"), s.get("NotAction")) {
                (Some(a), None) => (strings(a, "Action")?, false),
                (None, Some(a)) => (strings(a, "NotAction")?, true),
                _ => return bad("a statement needs exactly one of Action and NotAction"),
            };
            for a in &actions {
                check_action(a)?;
            }
            let resources = match s.get("Resource") {
                Some(r) => strings(r, "Resource")?,
                None => return bad("a statement needs a Resource"),
            };
            for r in &resources {
                check_resource(r, bucket)?;
            }
            let conditions = match s.get("Condition") {
                Some(c) => conditions(c)?,
                None => Vec::new(),
            };
            statements.push(Statement {
                effect,
                principals,
                actions,
                not_action,
                resources,
                conditions,
            });
        }
        Ok(Policy { statements })
    }

    /// What this policy alone says about `q`.
    pub fn decide(&self, q: &Query) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            if s.matches(q) {
                match s.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NotAllowed
        }
    }

    /// Whether some Allow statement for `principal` could reach `bucket` or objects in it (to
    /// decide which buckets a ListBuckets shows).
    pub fn reaches_bucket(&self, principal: &Principal, bucket: &str) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.applies_to(principal)
                && s.grants_more_than_listing_buckets()
                && s.resources.iter().any(|r| {
                    let rest = if r == "*" {
                        "*"
                    } else {
                        r.strip_prefix(ARN_PREFIX).unwrap_or("")
                    };
                    let named = rest.split('/').next().unwrap_or("");
                    wildcard_match(named, bucket) || named.ends_with('*')
                })
        })
    }
}

impl Statement {
    fn applies_to(&self, principal: &Principal) -> bool {
        match (&self.principals, principal) {
            (Principals::Unstated, _) => true,
            (Principals::Everyone, _) => true,
            (Principals::Users(keys), Principal::User(k)) => keys.iter().any(|x| x == k),
            (Principals::Users(_), Principal::Anonymous) => false,
        }
    }

    /// Whether it allows some action besides ListAllMyBuckets (which says nothing about
    /// any one bucket).
    fn grants_more_than_listing_buckets(&self) -> bool {
        ACTIONS
            .iter()
            .filter(|a| **a != "s3:ListAllMyBuckets")
            .any(|a| self.actions.iter().any(|p| wildcard_match(p, a)) != self.not_action)
    }

    fn matches(&self, q: &Query) -> bool {
        let action_listed = self.actions.iter().any(|a| wildcard_match(a, q.action));
        self.applies_to(q.principal)
            && action_listed != self.not_action
            && self
                .resources
                .iter()
                .any(|r| r == "*" || wildcard_match(r, q.resource))
            && self.conditions.iter().all(|c| c.holds(q.context))
    }
}

impl Condition {
    fn holds(&self, context: &BTreeMap<String, String>) -> bool {
        // A key the request does not carry satisfies no positive test and every negated one,
        // as in AWS.
        let Some(value) = context.get(&self.key) else {
            return matches!(
                self.operator,
                Operator::StringNotEquals | Operator::StringNotLike
            );
        };
        match self.operator {
            Operator::StringEquals => self.values.iter().any(|v| v == value),
            Operator::StringNotEquals => !self.values.iter().any(|v| v == value),
            Operator::StringLike => self.values.iter().any(|v| wildcard_match(v, value)),
            Operator::StringNotLike => !self.values.iter().any(|v| wildcard_match(v, value)),
        }
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters and `?` one.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Greedy with backtracking to the last star: linear in practice, never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The built-in user policies by name, as JSON.
pub fn builtin(name: &str) -> Option<&'static str> {
    Some(match name {
        "readonly" => {
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetBucketLocation","s3:GetObject","s3:ListBucket","s3:ListAllMyBuckets"],"Resource":["arn:aws:s3:::*"]}]}"#
        }
        "writeonly" => {
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],"Resource":["arn:aws:s3:::*"]}]}"#
        }
        "readwrite" | "consoleAdmin" => {
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::*"]}]}"#
        }
        _ => return None,
    })
}

/// Names of the built-in policies.
pub const BUILTIN: &[&str] = &["readonly", "readwrite", "writeonly", "consoleAdmin"];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// What `mc anonymous set download b/public` writes.
    const MC_DOWNLOAD: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetBucketLocation"],"Resource":["arn:aws:s3:::b"]},{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:ListBucket"],"Resource":["arn:aws:s3:::b"],"Condition":{"StringLike":{"s3:prefix":["public/*"]}}},{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::b/public/*"]}]}"#;

    const DENY_SECRET: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]},{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123:user/eve"},"Action":["s3:GetObject"],"Resource":"arn:aws:s3:::b/secret/*"}]}"#;

    const NOT_ACTION: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":["s3:DeleteObject","s3:Delete*Policy"],"Resource":"arn:aws:s3:::*"}]}"#;

    /// (who, action, resource, context, policy, is a bucket policy, expected decision)
    type Row<'a> = (
        &'a Principal,
        &'a str,
        &'a str,
        &'a BTreeMap<String, String>,
        &'a str,
        bool,
        Decision,
    );

    #[test]
    fn decisions_table() {
        let anon = Principal::Anonymous;
        let eve = Principal::User("eve".into());
        let bob = Principal::User("bob".into());
        let none = ctx(&[]);
        let list_public = ctx(&[("s3:prefix", "public/x")]);
        let list_root = ctx(&[("s3:prefix", "")]);
        let ro = builtin("readonly").unwrap();
        let wo = builtin("writeonly").unwrap();
        let rw = builtin("readwrite").unwrap();
        use Decision::*;
        #[rustfmt::skip]
        let table: &[Row] = &[
            (&anon, "s3:GetObject", "arn:aws:s3:::b/public/a.txt", &none, MC_DOWNLOAD, true, Allow),
            (&anon, "s3:GetObject", "arn:aws:s3:::b/private/a.txt", &none, MC_DOWNLOAD, true, NotAllowed),
            (&anon, "s3:GetObject", "arn:aws:s3:::c/public/a.txt", &none, MC_DOWNLOAD, true, NotAllowed),
            (&anon, "s3:PutObject", "arn:aws:s3:::b/public/a.txt", &none, MC_DOWNLOAD, true, NotAllowed),
            (&anon, "s3:ListBucket", "arn:aws:s3:::b", &list_public, MC_DOWNLOAD, true, Allow),
            (&anon, "s3:ListBucket", "arn:aws:s3:::b", &list_root, MC_DOWNLOAD, true, NotAllowed),
            (&anon, "s3:ListBucket", "arn:aws:s3:::b", &none, MC_DOWNLOAD, true, NotAllowed),
            (&anon, "s3:GetBucketLocation", "arn:aws:s3:::b", &none, MC_DOWNLOAD, true, Allow),
            (&eve, "s3:GetObject", "arn:aws:s3:::b/secret/k", &none, DENY_SECRET, true, ExplicitDeny),
            (&bob, "s3:GetObject", "arn:aws:s3:::b/secret/k", &none, DENY_SECRET, true, Allow),
            (&anon, "s3:GetObject", "arn:aws:s3:::b/secret/k", &none, DENY_SECRET, true, Allow),
            (&eve, "s3:GetObject", "arn:aws:s3:::b/open/k", &none, DENY_SECRET, true, Allow),
            (&bob, "s3:GetObject", "arn:aws:s3:::x/k", &none, ro, false, Allow),
            (&bob, "s3:ListBucket", "arn:aws:s3:::x", &none, ro, false, Allow),
            (&bob, "s3:PutObject", "arn:aws:s3:::x/k", &none, ro, false, NotAllowed),
            (&bob, "s3:DeleteObject", "arn:aws:s3:::x/k", &none, ro, false, NotAllowed),
            (&bob, "s3:PutObject", "arn:aws:s3:::x/k", &none, wo, false, Allow),
            (&bob, "s3:GetObject", "arn:aws:s3:::x/k", &none, wo, false, NotAllowed),
            (&bob, "s3:DeleteBucket", "arn:aws:s3:::x", &none, rw, false, Allow),
            (&bob, "s3:GetObject", "arn:aws:s3:::x/k", &none, NOT_ACTION, false, Allow),
            (&bob, "s3:DeleteObject", "arn:aws:s3:::x/k", &none, NOT_ACTION, false, NotAllowed),
            (&bob, "s3:DeleteBucketPolicy", "arn:aws:s3:::x", &none, NOT_ACTION, false, NotAllowed),
        ];
        for (i, (who, action, resource, context, text, is_bucket, want)) in table.iter().enumerate()
        {
            let p = if *is_bucket {
                Policy::parse_bucket(text.as_bytes(), "b").unwrap()
            } else {
                Policy::parse_identity(text.as_bytes()).unwrap()
            };
            let q = Query {
                principal: who,
                action,
                resource,
                context,
            };
            assert_eq!(p.decide(&q), *want, "row {i}: {who:?} {action} {resource}");
        }
    }

    #[test]
    fn unknown_features_are_refused() {
        let bad_docs = [
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","NotResource":"x"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"IpAddress":{"aws:SourceIp":"1.2.3.4/32"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*","Condition":{"StringLike":{"aws:Referer":"x"}}}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:FlyAway","Resource":"arn:aws:s3:::b/*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
            r#"{"Version":"2099-01-01","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#,
            r#"{"Statement":[]}"#,
            r#"not json"#,
        ];
        for d in bad_docs {
            assert!(Policy::parse_bucket(d.as_bytes(), "b").is_err(), "{d}");
        }
        for name in BUILTIN {
            Policy::parse_identity(builtin(name).unwrap().as_bytes()).unwrap();
        }
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "abbc"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("arn:aws:s3:::b/p*", "arn:aws:s3:::b/p/q/r"));
        assert!(!wildcard_match("arn:aws:s3:::b/p*", "arn:aws:s3:::c/p"));
        assert!(wildcard_match("**a", "xa"));
    }

    fn arb_statement() -> impl Strategy<Value = (bool, String, String)> {
        (
            any::<bool>(),
            prop::sample::select(vec!["s3:*", "s3:GetObject", "s3:Get*", "s3:PutObject", "*"]),
            prop::sample::select(vec![
                "arn:aws:s3:::b/*",
                "arn:aws:s3:::b/k",
                "arn:aws:s3:::b/?",
                "arn:aws:s3:::*",
                "arn:aws:s3:::b",
            ]),
        )
            .prop_map(|(allow, a, r)| (allow, a.to_string(), r.to_string()))
    }

    proptest! {
        /// Adding a matching Deny statement anywhere turns any decision into ExplicitDeny.
        #[test]
        fn explicit_deny_always_wins(
            stmts in prop::collection::vec(arb_statement(), 0..6),
            at in 0usize..7,
            action in prop::sample::select(vec!["s3:GetObject", "s3:PutObject", "s3:ListBucket"]),
            key in "[a-z]{1,3}",
        ) {
            let resource = format!("arn:aws:s3:::b/{key}");
            let mut list: Vec<String> = stmts.iter().map(|(allow, a, r)| format!(
                r#"{{"Effect":"{}","Principal":"*","Action":"{a}","Resource":"{r}"}}"#,
                if *allow { "Allow" } else { "Deny" })).collect();
            let deny = format!(
                r#"{{"Effect":"Deny","Principal":{{"AWS":["*"]}},"Action":"{action}","Resource":"{resource}"}}"#);
            list.insert(at.min(list.len()), deny);
            let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, list.join(","));
            // Identity parsing: the generated resources may lie outside one bucket.
            let p = Policy::parse_identity(doc.as_bytes()).unwrap();
            let c = BTreeMap::new();
            for who in [Principal::Anonymous, Principal::User("u".into())] {
                let q = Query { principal: &who, action, resource: &resource, context: &c };
                prop_assert_eq!(p.decide(&q), Decision::ExplicitDeny);
            }
        }
    }
}
