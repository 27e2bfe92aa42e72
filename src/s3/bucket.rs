//! Bucket operations: ListBuckets, Create/Head/DeleteBucket, GetBucketLocation,
//! GetBucketVersioning, ListObjects (V1 and V2) and DeleteObjects.

use std::sync::Arc;

use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use warp::http::{HeaderValue, StatusCode};

use crate::store::list::ListQuery;
use crate::store::StoreError;

use super::body::{self, Decoder};
use super::xml::{self, XmlWriter};
use super::{blocking, empty, xml_response, Request, S3Code, S3Error, S3Result, S3};

/// The owner S3 clients see (nasgate has one root identity).
pub(crate) const OWNER_ID: &str =
    "02d6176db174dc93cb1b899f7c6078f08654445fe8cf1b6ce98d8855f66bdbf4";
/// The owner's display name.
pub(crate) const OWNER_NAME: &str = "nasgate";

/// Characters kept as they are by `encoding-type=url` (S3 leaves `/` unencoded).
const URL_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// A key or prefix as a listing writes it: URL-encoded when the client asked for that, else
/// as it is, borrowed (a page writes a thousand of them).
fn listed_name(s: &str, url: bool) -> std::borrow::Cow<'_, str> {
    if url {
        std::borrow::Cow::Owned(encode_key(s))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// A key or prefix as `encoding-type=url` writes it (also the path of a key in a URL).
pub(crate) fn encode_key(s: &str) -> String {
    utf8_percent_encode(s, URL_SAFE).to_string()
}

pub(crate) fn write_owner(w: &mut XmlWriter, element: &str) {
    w.open(element)
        .text("ID", OWNER_ID)
        .text("DisplayName", OWNER_NAME)
        .close(element);
}

/// ListBuckets, paginated as current SDKs ask (`max-buckets`, `continuation-token`, `prefix`).
pub async fn list_buckets(s3: &Arc<S3>, req: Request) -> S3Result {
    let max = match req.param("max-buckets") {
        None => None,
        Some(v) => Some(
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .ok_or_else(|| {
                    S3Error::bad(
                        S3Code::InvalidArgument,
                        "max-buckets must be an integer from 1 to 10000",
                    )
                })?,
        ),
    };
    let after = match req.param("continuation-token") {
        Some(t) => Some(decode_token(t)?),
        None => None,
    };
    let prefix = req.param("prefix").map(str::to_string);
    let store = s3.store.clone();
    let access = s3.access.clone();
    let caller = req.caller.clone();
    let mut buckets = blocking(move || {
        let mut all = store.list_buckets()?;
        all.retain(|b| access.shows_bucket(&caller, &b.name));
        Ok(all)
    })
    .await?;
    buckets.sort_by(|a, b| a.name.cmp(&b.name));
    buckets.retain(|b| {
        prefix.as_deref().is_none_or(|p| b.name.starts_with(p))
            && after.as_deref().is_none_or(|a| b.name.as_str() > a)
    });
    let next = match max {
        Some(m) if buckets.len() > m => {
            buckets.truncate(m);
            buckets.last().map(|b| encode_token(&b.name))
        }
        _ => None,
    };
    let mut w = XmlWriter::new("ListAllMyBucketsResult");
    write_owner(&mut w, "Owner");
    w.open("Buckets");
    for b in &buckets {
        w.open("Bucket")
            .text("Name", &b.name)
            .text("CreationDate", &xml::iso8601(b.created))
            .close("Bucket");
    }
    w.close("Buckets");
    if let Some(t) = &next {
        w.text("ContinuationToken", t);
    }
    if let Some(p) = req.param("prefix") {
        w.text("Prefix", p);
    }
    Ok(xml_response(
        StatusCode::OK,
        w.finish("ListAllMyBucketsResult"),
    ))
}

/// CreateBucket (any location constraint is accepted: the share has one location).
pub async fn create(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let (decoder, _) = Decoder::for_request(&req)?;
    let body = body::collect(req.body, decoder, s3.config.idle_timeout, 64 * 1024).await?;
    let mut region = None;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let root = xml::Element::parse(&body).ok_or_else(S3Error::malformed_xml)?;
        region = root
            .child("LocationConstraint")
            .map(|l| l.text().trim().to_string())
            .filter(|l| !l.is_empty() && l != "us-east-1");
    }
    let store = s3.store.clone();
    let b = bucket.clone();
    blocking(move || match store.create_bucket(&b) {
        // S3 in us-east-1 answers a repeated create of one's own bucket with success (and
        // s3-compatible test suites expect it); other regions answer BucketAlreadyOwnedByYou.
        Err(StoreError::BucketExists(_)) if region.is_none() => Ok(()),
        r => Ok(r?),
    })
    .await?;
    let mut r = empty(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(&format!("/{bucket}")) {
        r.headers_mut().insert("location", v);
    }
    Ok(r)
}

/// HeadBucket.
pub async fn head(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let store = s3.store.clone();
    blocking(move || Ok(store.head_bucket(&bucket)?)).await?;
    let mut r = empty(StatusCode::OK);
    r.headers_mut()
        .insert("x-amz-bucket-region", HeaderValue::from_static("us-east-1"));
    Ok(r)
}

/// DeleteBucket.
pub async fn delete(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let store = s3.store.clone();
    blocking(move || Ok(store.delete_bucket(&bucket)?)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// GetBucketLocation (us-east-1, which S3 reports as empty).
pub async fn location(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let store = s3.store.clone();
    blocking(move || Ok(store.head_bucket(&bucket)?)).await?;
    let w = XmlWriter::new("LocationConstraint");
    Ok(xml_response(StatusCode::OK, w.finish("LocationConstraint")))
}

/// GetBucketVersioning: never enabled.
pub async fn versioning(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let store = s3.store.clone();
    blocking(move || Ok(store.head_bucket(&bucket)?)).await?;
    let w = XmlWriter::new("VersioningConfiguration");
    Ok(xml_response(
        StatusCode::OK,
        w.finish("VersioningConfiguration"),
    ))
}

fn max_keys(req: &Request, name: &str) -> Result<usize, S3Error> {
    match req.param(name) {
        None => Ok(1000),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(1000) as usize)
            .ok_or_else(|| {
                S3Error::bad(
                    S3Code::InvalidArgument,
                    format!("Provided {name} not an integer or within integer range"),
                )
            }),
    }
}

/// ListObjects (V1) and ListObjectsV2.
pub async fn list_objects(s3: &Arc<S3>, req: Request, v2: bool) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let prefix = req.param("prefix").unwrap_or("").to_string();
    let delimiter = req
        .param("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let max = max_keys(&req, "max-keys")?;
    let url = match req.param("encoding-type") {
        None => false,
        Some("url") => true,
        Some(_) => {
            return Err(S3Error::bad(
                S3Code::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            ))
        }
    };
    let token = req.param("continuation-token").map(str::to_string);
    let start_after = req.param("start-after").map(str::to_string);
    let marker = req.param("marker").map(str::to_string);
    let after = if v2 {
        let from_token = match &token {
            Some(t) => Some(decode_token(t)?),
            None => None,
        };
        from_token.or(start_after.clone())
    } else {
        marker.clone()
    };
    let fetch_owner = !v2 || req.param("fetch-owner") == Some("true");
    let store = s3.store.clone();
    let (b, p, d, a) = (
        bucket.clone(),
        prefix.clone(),
        delimiter.clone(),
        after.clone(),
    );
    let page = blocking(move || {
        if max == 0 {
            store.head_bucket(&b)?;
            return Ok(Default::default());
        }
        let q = ListQuery {
            prefix: &p,
            delimiter: d.as_deref(),
            start_after: a.as_deref(),
            max_keys: max,
        };
        Ok(store.list(&b, &q)?)
    })
    .await?;
    let enc = |s| listed_name(s, url);
    let mut w = XmlWriter::new("ListBucketResult");
    // About what one Contents element takes besides its key.
    w.reserve(
        page.objects
            .iter()
            .map(|o| o.key.len() + 200)
            .sum::<usize>(),
    );
    w.text("Name", &bucket).text("Prefix", &enc(&prefix));
    if v2 {
        if let Some(t) = &token {
            w.text("ContinuationToken", t);
        }
        if let Some(s) = &start_after {
            w.text("StartAfter", &enc(s));
        }
        w.text(
            "KeyCount",
            &(page.objects.len() + page.common_prefixes.len()).to_string(),
        );
        if page.is_truncated {
            if let Some(n) = &page.next {
                w.text("NextContinuationToken", &encode_token(n));
            }
        }
    } else {
        w.text("Marker", &enc(marker.as_deref().unwrap_or("")));
        if page.is_truncated {
            if let Some(n) = &page.next {
                w.text("NextMarker", &enc(n));
            }
        }
    }
    w.text("MaxKeys", &max.to_string());
    if let Some(d) = &delimiter {
        w.text("Delimiter", &enc(d));
    }
    if url {
        w.text("EncodingType", "url");
    }
    w.text(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    for o in &page.objects {
        w.open("Contents")
            .text("Key", &enc(&o.key))
            .time("LastModified", o.modified)
            .etag("ETag", &o.etag)
            .number("Size", o.size);
        if fetch_owner {
            write_owner(&mut w, "Owner");
        }
        w.text("StorageClass", "STANDARD").close("Contents");
    }
    for p in &page.common_prefixes {
        w.open("CommonPrefixes")
            .text("Prefix", &enc(p))
            .close("CommonPrefixes");
    }
    Ok(xml_response(StatusCode::OK, w.finish("ListBucketResult")))
}

/// Continuation tokens are the last listed item, base64: stateless, so the next page may be
/// asked of any instance.
fn encode_token(last: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(last.as_bytes())
}

fn decode_token(t: &str) -> Result<String, S3Error> {
    base64::engine::general_purpose::STANDARD
        .decode(t.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            S3Error::bad(
                S3Code::InvalidArgument,
                "The continuation token provided is incorrect",
            )
        })
}

/// DeleteObjects: up to 1000 keys, each deleted under its own lock; per-key errors.
pub async fn delete_objects(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let (decoder, _) = Decoder::for_request(&req)?;
    // S3 wants the body's integrity proven by Content-MD5 or a flexible checksum (browsers
    // have no MD5, so the console sends x-amz-checksum-sha256); whichever is sent must match.
    let content_md5 = req
        .header("content-md5")
        .map(crate::store::checksum::parse_content_md5)
        .transpose()
        .map_err(|e| {
            S3Error::bad(
                S3Code::from(&e),
                "The Content-MD5 you specified is not valid.",
            )
        })?;
    let sums = body::checksums(&req)?;
    let body = body::collect(req.body, decoder, s3.config.idle_timeout, 2 * 1024 * 1024).await?;
    if content_md5.is_some() || !sums.expected.is_empty() {
        let algorithms: Vec<_> = sums.expected.iter().map(|c| c.algorithm).collect();
        let mut h = crate::store::checksum::Hashers::new(&algorithms);
        h.update(&body);
        let digests = h.finish();
        let bad = |e: crate::store::checksum::ChecksumError| {
            S3Error::bad(S3Code::from(&e), e.to_string())
        };
        if let Some(md5) = &content_md5 {
            digests.verify_md5(md5).map_err(bad)?;
        }
        for c in &sums.expected {
            digests.verify(c).map_err(bad)?;
        }
    }
    let delete: xml::Delete = xml::parse(&body).ok_or_else(S3Error::malformed_xml)?;
    if delete.objects.len() > 1000 {
        return Err(S3Error::malformed_xml());
    }
    let store = s3.store.clone();
    let front = s3.clone();
    let caller = req.caller.clone();
    let quiet = delete.quiet;
    let results = blocking(move || {
        store.head_bucket(&bucket)?;
        Ok(delete
            .objects
            .into_iter()
            .map(|o| {
                let r = match o.version_id.as_deref() {
                    Some(v) if v != "null" => Err(S3Error::new(
                        StatusCode::NOT_FOUND,
                        S3Code::NoSuchVersion,
                        "The specified version does not exist.",
                    )),
                    _ => super::may_delete(&front, &caller, &bucket, &o.key)
                        .map_err(S3Error::from)
                        .and_then(|()| store.delete(&bucket, &o.key).map_err(S3Error::from)),
                };
                (o.key, r)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let mut w = XmlWriter::new("DeleteResult");
    for (key, r) in &results {
        match r {
            Ok(()) if !quiet => {
                w.open("Deleted").text("Key", key).close("Deleted");
            }
            Ok(()) => {}
            Err(e) => {
                w.open("Error")
                    .text("Key", key)
                    .text("Code", e.code.as_str())
                    .text("Message", &e.message)
                    .close("Error");
            }
        }
    }
    Ok(xml_response(StatusCode::OK, w.finish("DeleteResult")))
}

/// Bucket configurations nasgate does not keep: a GET answers as S3 does for a bucket
/// without one (404 with the specific code, or an empty document where S3 returns one).
pub(crate) const CONFIGS: [(&str, Option<S3Code>, &str); 14] = [
    (
        "policy",
        Some(S3Code::NoSuchBucketPolicy),
        "The bucket policy does not exist",
    ),
    (
        "cors",
        Some(S3Code::NoSuchCORSConfiguration),
        "The CORS configuration does not exist",
    ),
    (
        "lifecycle",
        Some(S3Code::NoSuchLifecycleConfiguration),
        "The lifecycle configuration does not exist",
    ),
    (
        "tagging",
        Some(S3Code::NoSuchTagSet),
        "The TagSet does not exist",
    ),
    (
        "encryption",
        Some(S3Code::ServerSideEncryptionConfigurationNotFoundError),
        "The server side encryption configuration was not found",
    ),
    (
        "website",
        Some(S3Code::NoSuchWebsiteConfiguration),
        "The specified bucket does not have a website configuration",
    ),
    (
        "replication",
        Some(S3Code::ReplicationConfigurationNotFoundError),
        "The replication configuration was not found",
    ),
    (
        "object-lock",
        Some(S3Code::ObjectLockConfigurationNotFoundError),
        "Object Lock configuration does not exist for this bucket",
    ),
    (
        "ownershipControls",
        Some(S3Code::OwnershipControlsNotFoundError),
        "The bucket ownership controls were not found",
    ),
    (
        "publicAccessBlock",
        Some(S3Code::NoSuchPublicAccessBlockConfiguration),
        "The public access block configuration was not found",
    ),
    ("logging", None, "BucketLoggingStatus"),
    ("notification", None, "NotificationConfiguration"),
    ("accelerate", None, "AccelerateConfiguration"),
    ("requestPayment", None, "RequestPaymentConfiguration"),
];

/// GET of a bucket configuration nasgate does not keep.
pub async fn config(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let store = s3.store.clone();
    blocking(move || Ok(store.head_bucket(&bucket)?)).await?;
    let Some((_, code, text)) = CONFIGS.iter().find(|c| req.has(c.0)) else {
        return Err(S3Error::not_implemented("This bucket configuration"));
    };
    match code {
        Some(code) => Err(S3Error::new(StatusCode::NOT_FOUND, *code, *text)),
        None => {
            let mut w = XmlWriter::new(text);
            if *text == "RequestPaymentConfiguration" {
                w.text("Payer", "BucketOwner");
            }
            Ok(xml_response(StatusCode::OK, w.finish(text)))
        }
    }
}

/// The request's object (or, without a key, its bucket) must exist.
async fn must_exist(s3: &Arc<S3>, bucket: String, key: Option<String>) -> Result<(), S3Error> {
    let store = s3.store.clone();
    blocking(move || match key {
        Some(k) => Ok(store
            .head(&bucket, &k, &crate::store::ReadConditions::default())
            .map(|_| ())?),
        None => Ok(store.head_bucket(&bucket).map(|_| ())?),
    })
    .await
}

/// GetBucketAcl / GetObjectAcl: the one root identity owns everything with full control.
pub async fn get_acl(s3: &Arc<S3>, req: Request) -> S3Result {
    must_exist(s3, req.bucket()?.to_string(), req.key.clone()).await?;
    let mut w = XmlWriter::new("AccessControlPolicy");
    write_owner(&mut w, "Owner");
    w.open("AccessControlList").open("Grant");
    w.open_with(
        "Grantee",
        "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\"",
    )
    .text("ID", OWNER_ID)
    .text("DisplayName", OWNER_NAME)
    .close("Grantee");
    w.text("Permission", "FULL_CONTROL")
        .close("Grant")
        .close("AccessControlList");
    Ok(xml_response(
        StatusCode::OK,
        w.finish("AccessControlPolicy"),
    ))
}

/// PutBucketAcl / PutObjectAcl: only the private ACL nasgate always has is accepted.
pub async fn put_acl(s3: &Arc<S3>, req: Request) -> S3Result {
    let canned = req.header("x-amz-acl").unwrap_or("private");
    let has_grants = req
        .headers
        .keys()
        .any(|k| k.as_str().starts_with("x-amz-grant-"));
    let has_body = req
        .header("content-length")
        .is_some_and(|l| l.trim() != "0");
    if canned != "private" || has_grants || has_body {
        return Err(S3Error::not_implemented("An ACL other than private"));
    }
    must_exist(s3, req.bucket()?.to_string(), req.key.clone()).await?;
    Ok(empty(StatusCode::OK))
}
