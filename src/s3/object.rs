//! Object operations: PutObject, GetObject/HeadObject (ranges, part numbers, conditionals,
//! response overrides), DeleteObject, CopyObject and object tagging.

use std::sync::Arc;
use std::time::SystemTime;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use warp::http::{HeaderValue, Response, StatusCode};
use warp::hyper::Body;

use crate::store::checksum::{parse_content_md5, Checksum};
use crate::store::object::{
    CopyOptions, ObjectInfo, PutOptions, ReadConditions, Upload, WriteCondition,
};
use crate::store::{meta, StoreError};

use super::body::{self, Decoder};
use super::xml::{self, XmlWriter};
use super::{
    blocking, empty, metadata_from, stream_object, xml_response, Request, S3Code, S3Error,
    S3Result, S3,
};

/// Characters left as they are in a URL-encoded tag set.
const TAG_SAFE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encodes tags as S3 keeps them: `k=v&k2=v2`, URL-encoded.
pub fn encode_tags(tags: &[(String, String)]) -> String {
    tags.iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, TAG_SAFE),
                utf8_percent_encode(v, TAG_SAFE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Parses and validates a URL-encoded tag set (x-amz-tagging or the stored form).
pub fn parse_tag_query(q: &str) -> Result<Vec<(String, String)>, S3Error> {
    let dec = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| S3Error::bad(S3Code::InvalidTag, "The tag set is not valid UTF-8"))
    };
    let mut tags = Vec::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((dec(k)?, dec(v)?));
    }
    check_tags(&tags)?;
    Ok(tags)
}

fn check_tags(tags: &[(String, String)]) -> Result<(), S3Error> {
    if tags.len() > 10 {
        return Err(S3Error::bad(
            S3Code::BadRequest,
            "Object tags cannot be greater than 10",
        ));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(S3Error::bad(
                S3Code::InvalidTag,
                "The TagKey you have provided is invalid",
            ));
        }
        if v.chars().count() > 256 {
            return Err(S3Error::bad(
                S3Code::InvalidTag,
                "The TagValue you have provided is invalid",
            ));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(S3Error::bad(
                S3Code::InvalidTag,
                "Cannot provide multiple Tags with the same key",
            ));
        }
    }
    Ok(())
}

fn http_time(req: &Request, name: &str) -> Option<SystemTime> {
    req.header(name)
        .and_then(|v| httpdate::parse_http_date(v).ok())
}

/// Conditional-read headers of a GET/HEAD (or, with `prefix`, of a copy source).
fn read_conditions(req: &Request, prefix: &str) -> ReadConditions {
    let h = |n: &str| format!("{prefix}{n}");
    ReadConditions {
        if_match: req.header(&h("if-match")).map(str::to_string),
        if_none_match: req.header(&h("if-none-match")).map(str::to_string),
        if_modified_since: http_time(req, &h("if-modified-since")),
        if_unmodified_since: http_time(req, &h("if-unmodified-since")),
    }
}

/// If-None-Match: * / If-Match on a write.
pub(crate) fn write_condition(req: &Request) -> Result<WriteCondition, S3Error> {
    match (req.header("if-none-match"), req.header("if-match")) {
        (Some(_), Some(_)) => Err(S3Error::bad(
            S3Code::InvalidRequest,
            "If-Match and If-None-Match cannot be used together",
        )),
        (Some(v), None) if v.trim() == "*" => Ok(WriteCondition::IfAbsent),
        (Some(_), None) => Err(S3Error::not_implemented(
            "If-None-Match with a value other than *",
        )),
        (None, Some(v)) => Ok(WriteCondition::IfMatch(v.to_string())),
        (None, None) => Ok(WriteCondition::Always),
    }
}

/// Content-MD5, validated.
pub(crate) fn content_md5(req: &Request) -> Result<Option<[u8; 16]>, S3Error> {
    req.header("content-md5")
        .map(|v| {
            parse_content_md5(v).map_err(|e| {
                S3Error::bad(
                    S3Code::from(&e),
                    "The Content-MD5 you specified is not valid.",
                )
            })
        })
        .transpose()
}

pub(crate) fn set_checksum_headers(resp: &mut Response<Body>, sums: &[Checksum]) {
    for c in sums {
        if let Ok(v) = HeaderValue::from_str(&c.value) {
            resp.headers_mut().insert(c.algorithm.header(), v);
        }
    }
}

pub(crate) fn etag_header(etag: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// PutObject.
pub async fn put(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let meta = metadata_from(&req.headers)?;
    let condition = write_condition(&req)?;
    let content_md5 = content_md5(&req)?;
    let (decoder, size) = Decoder::for_data(&req)?;
    let sums = body::checksums(&req)?;
    let options = PutOptions {
        meta,
        condition,
        content_md5,
        checksums: sums.requested.clone(),
        expected: sums.expected.clone(),
        size,
    };
    let store = s3.store.clone();
    let begin = move || -> Result<Upload, S3Error> { Ok(store.begin_put(&bucket, &key, options)?) };
    // A small body is read first and staged, written and published in one blocking task;
    // a larger one waits for the staging file, so a refused PUT (no such bucket, say) is
    // answered before the client sends the body it announced with `Expect: 100-continue`.
    let start: Box<dyn FnOnce() -> Result<Upload, S3Error> + Send> =
        if size.is_some_and(|n| n <= body::HELD) {
            Box::new(begin)
        } else {
            let upload = blocking(begin).await?;
            Box::new(move || Ok(upload))
        };
    let store = s3.store.clone();
    let trailer = sums.trailer;
    let info = body::receive_into(
        req.body,
        decoder,
        start,
        s3.config.idle_timeout,
        None,
        move |mut up, trailers| {
            if let Some(alg) = trailer {
                up.expect_checksum(body::trailer_checksum(&trailers, alg)?);
            }
            Ok(up.finish(&store)?)
        },
    )
    .await?;
    let mut resp = empty(StatusCode::OK);
    resp.headers_mut().insert("etag", etag_header(&info.etag));
    set_checksum_headers(&mut resp, &info.checksums);
    Ok(resp)
}

/// Which bytes of an object to send.
enum Span {
    Whole,
    Part { offset: u64, len: u64 },
}

/// Parses a Range header against `size`: `Ok(None)` means "send the whole object" (absent,
/// unparsable or multi-range headers, as S3 does).
fn parse_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, S3Error> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let unsatisfiable = || {
        S3Error::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            S3Code::InvalidRange,
            "The requested range is not satisfiable",
        )
    };
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 {
            return Err(unsatisfiable());
        }
        let n = n.min(size);
        return Ok(Some((size - n, n)));
    }
    let Ok(start) = a.parse::<u64>() else {
        return Ok(None);
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    let end = if b.is_empty() {
        size - 1
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.min(size - 1),
            _ => return Ok(None),
        }
    };
    Ok(Some((start, end - start + 1)))
}

fn span_for(req: &Request, info: &ObjectInfo) -> Result<Span, S3Error> {
    if let Some(p) = req.param("partNumber") {
        let n: u32 = p
            .parse()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                S3Error::bad(
                    S3Code::InvalidArgument,
                    "Part number must be an integer between 1 and 10000, inclusive",
                )
            })?;
        if req.header("range").is_some() {
            return Err(S3Error::bad(
                S3Code::InvalidRequest,
                "Cannot specify both Range header and partNumber query parameter",
            ));
        }
        if info.parts.is_empty() {
            return if n == 1 {
                Ok(Span::Part {
                    offset: 0,
                    len: info.size,
                })
            } else {
                Err(S3Error::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    S3Code::InvalidPartNumber,
                    "The requested partnumber is not satisfiable",
                ))
            };
        }
        let mut offset = 0;
        for part in &info.parts {
            if part.number == n {
                return Ok(Span::Part {
                    offset,
                    len: part.size,
                });
            }
            offset += part.size;
        }
        return Err(S3Error::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            S3Code::InvalidPartNumber,
            "The requested partnumber is not satisfiable",
        ));
    }
    match req.header("range") {
        Some(r) => Ok(match parse_range(r, info.size)? {
            Some((offset, len)) => Span::Part { offset, len },
            None => Span::Whole,
        }),
        None => Ok(Span::Whole),
    }
}

/// Headers describing an object (shared by GET and HEAD).
fn object_headers(resp: &mut Response<Body>, req: &Request, info: &ObjectInfo) {
    let h = resp.headers_mut();
    h.insert("etag", etag_header(&info.etag));
    if let Ok(v) = HeaderValue::from_str(&xml::http_date(info.modified)) {
        h.insert("last-modified", v);
    }
    h.insert("accept-ranges", HeaderValue::from_static("bytes"));
    for (k, v) in &info.meta {
        if !(meta::STANDARD_HEADERS.contains(&k.as_str()) || k.starts_with(meta::USER_PREFIX)) {
            continue;
        }
        let name = k.to_ascii_lowercase();
        if let (Ok(n), Ok(v)) = (
            warp::http::header::HeaderName::from_bytes(name.as_bytes()),
            super::text_header(v).ok_or(()),
        ) {
            h.insert(n, v);
        }
    }
    if let Some(tags) = info.tags() {
        let n = tags.split('&').filter(|p| !p.is_empty()).count();
        h.insert("x-amz-tagging-count", HeaderValue::from(n));
    }
    if !info.parts.is_empty() && req.has("partNumber") {
        h.insert("x-amz-mp-parts-count", HeaderValue::from(info.parts.len()));
    }
    // A checksum describes the whole object: S3 sends it only when the whole object is sent.
    let whole = resp.status() == StatusCode::OK;
    if whole
        && req
            .header("x-amz-checksum-mode")
            .is_some_and(|m| m.eq_ignore_ascii_case("enabled"))
    {
        set_checksum_headers(resp, &info.checksums);
    }
    for (param, header) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(v) = req.param(param).and_then(|v| HeaderValue::from_str(v).ok()) {
            resp.headers_mut().insert(header, v);
        }
    }
}

/// GetObject and HeadObject.
pub async fn get(s3: &Arc<S3>, req: Request, head: bool) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let cond = read_conditions(&req, "");
    let store = s3.store.clone();
    let reader = blocking(move || Ok(store.get(&bucket, &key, &cond)?)).await?;
    let info = reader.info().clone();
    let span = span_for(&req, &info)?;
    let (status, offset, len) = match span {
        Span::Whole => (StatusCode::OK, 0, info.size),
        Span::Part { offset, len } => (StatusCode::PARTIAL_CONTENT, offset, len),
    };
    let mut resp = if head {
        drop(reader);
        empty(status)
    } else {
        let mut r = Response::new(stream_object(reader, offset, len));
        *r.status_mut() = status;
        r
    };
    object_headers(&mut resp, &req, &info);
    let h = resp.headers_mut();
    h.insert("content-length", HeaderValue::from(len));
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!(
            "bytes {}-{}/{}",
            offset,
            (offset + len).saturating_sub(1),
            info.size
        );
        if let Ok(v) = HeaderValue::from_str(&range) {
            h.insert("content-range", v);
        }
    }
    Ok(resp)
}

/// DeleteObject.
pub async fn delete(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let store = s3.store.clone();
    blocking(move || Ok(store.delete(&bucket, &key)?)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// The bucket and key named by x-amz-copy-source (`/bucket/key` or `bucket/key`,
/// URL-encoded, optionally `?versionId=null`).
pub(crate) fn copy_source(req: &Request) -> Result<(String, String), S3Error> {
    let raw = req.header("x-amz-copy-source").unwrap_or("");
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    if let Some(v) = query.strip_prefix("versionId=") {
        if v != "null" {
            return Err(S3Error::new(
                StatusCode::NOT_FOUND,
                S3Code::NoSuchVersion,
                "The specified version does not exist.",
            ));
        }
    }
    let decoded = percent_decode_str(path).decode_utf8_lossy().into_owned();
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    match decoded.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b.to_string(), k.to_string())),
        _ => Err(S3Error::bad(
            S3Code::InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )),
    }
}

/// CopyObject.
pub async fn copy(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let (src_bucket, src_key) = copy_source(&req)?;
    let replace_meta = match req.header("x-amz-metadata-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => {
            return Err(S3Error::bad(
                S3Code::InvalidArgument,
                "Unknown metadata directive.",
            ))
        }
    };
    let replace_tags = match req.header("x-amz-tagging-directive") {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(_) => {
            return Err(S3Error::bad(
                S3Code::InvalidArgument,
                "Unknown tagging directive.",
            ))
        }
    };
    let mut new_meta = metadata_from(&req.headers)?;
    let tags = new_meta.remove(meta::TAGGING);
    let options = CopyOptions {
        metadata: replace_meta.then_some(new_meta),
        tags: replace_tags.then_some(tags),
        source: read_conditions(&req, "x-amz-copy-source-"),
        condition: write_condition(&req)?,
    };
    let store = s3.store.clone();
    let info = blocking(move || {
        store
            .copy(&src_bucket, &src_key, &bucket, &key, &options)
            .map_err(|e| match e {
                // S3 answers 412 for every failed copy-source condition.
                StoreError::NotModified { .. } => S3Error::from(StoreError::PreconditionFailed),
                e => S3Error::from(e),
            })
    })
    .await?;
    let mut w = XmlWriter::new("CopyObjectResult");
    w.text("LastModified", &xml::iso8601(info.modified))
        .text("ETag", &format!("\"{}\"", info.etag));
    Ok(xml_response(StatusCode::OK, w.finish("CopyObjectResult")))
}

/// GetObjectTagging.
pub async fn get_tags(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let store = s3.store.clone();
    let info = blocking(move || Ok(store.head(&bucket, &key, &ReadConditions::default())?)).await?;
    let tags = match info.tags() {
        Some(t) => parse_tag_query(t).unwrap_or_default(),
        None => Vec::new(),
    };
    let mut w = XmlWriter::new("Tagging");
    w.open("TagSet");
    for (k, v) in &tags {
        w.open("Tag").text("Key", k).text("Value", v).close("Tag");
    }
    w.close("TagSet");
    Ok(xml_response(StatusCode::OK, w.finish("Tagging")))
}

/// PutObjectTagging.
pub async fn put_tags(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let (decoder, _) = Decoder::for_request(&req)?;
    let bytes = body::collect(req.body, decoder, s3.config.idle_timeout, 64 * 1024).await?;
    let tagging: xml::Tagging = xml::parse(&bytes).ok_or_else(S3Error::malformed_xml)?;
    let tags: Vec<(String, String)> = tagging.tags.into_iter().map(|t| (t.key, t.value)).collect();
    check_tags(&tags)?;
    let encoded = encode_tags(&tags);
    let store = s3.store.clone();
    blocking(move || Ok(store.set_tags(&bucket, &key, Some(&encoded))?)).await?;
    Ok(empty(StatusCode::OK))
}

/// DeleteObjectTagging.
pub async fn delete_tags(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let store = s3.store.clone();
    blocking(move || Ok(store.set_tags(&bucket, &key, None)?)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_7233_as_s3_applies_it() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some((90, 10)));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some((90, 10)));
        assert_eq!(parse_range("bytes=-1000", 100).unwrap(), Some((0, 100)));
        assert_eq!(parse_range("bytes=50-1000", 100).unwrap(), Some((50, 50)));
        assert!(parse_range("bytes=100-", 100).is_err());
        assert!(parse_range("bytes=-0", 100).is_err());
        assert_eq!(parse_range("bytes=5-2", 100).unwrap(), None);
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100).unwrap(), None);
    }

    #[test]
    fn tags_round_trip_and_are_validated() {
        let t = vec![
            ("a b".to_string(), "c&d=e".to_string()),
            ("k".into(), "".into()),
        ];
        let enc = encode_tags(&t);
        assert_eq!(parse_tag_query(&enc).unwrap(), t);
        let many: Vec<_> = (0..11)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert!(check_tags(&many).is_err());
        assert!(check_tags(&[("k".into(), "1".into()), ("k".into(), "2".into())]).is_err());
    }
}
