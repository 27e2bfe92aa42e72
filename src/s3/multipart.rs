//! Multipart operations: Create/Complete/AbortMultipartUpload, UploadPart, UploadPartCopy,
//! ListParts and ListMultipartUploads. Parts may arrive at any instance on the share.

use std::sync::Arc;

use warp::http::{HeaderValue, StatusCode};

use crate::store::checksum::ChecksumAlgorithm;
use crate::store::object::ReadConditions;
use crate::store::StoreError;

use super::body::{self, Decoder};
use super::bucket::write_owner;
use super::object::{content_md5, copy_source, etag_header, set_checksum_headers, write_condition};
use super::xml::{self, XmlWriter};
use super::{blocking, empty, metadata_from, xml_response, Request, S3Code, S3Error, S3Result, S3};

fn upload_id(req: &Request) -> Result<String, S3Error> {
    req.param("uploadId")
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .ok_or_else(|| S3Error::bad(S3Code::InvalidArgument, "uploadId is required"))
}

fn part_number(req: &Request) -> Result<u32, S3Error> {
    req.param("partNumber")
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|n| (1..=10_000).contains(n))
        .ok_or_else(|| {
            S3Error::bad(
                S3Code::InvalidArgument,
                "Part number must be an integer between 1 and 10000, inclusive",
            )
        })
}

/// CreateMultipartUpload.
pub async fn create(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let meta = metadata_from(&req.headers)?;
    let checksum = match req
        .header("x-amz-checksum-algorithm")
        .or(req.header("x-amz-sdk-checksum-algorithm"))
    {
        Some(v) => Some(ChecksumAlgorithm::parse(v).ok_or_else(|| {
            S3Error::bad(
                S3Code::InvalidRequest,
                "Checksum algorithm provided is unsupported.",
            )
        })?),
        None => None,
    };
    let store = s3.store.clone();
    let (b, k) = (bucket.clone(), key.clone());
    let id = blocking(move || Ok(store.create_upload(&b, &k, meta, checksum)?)).await?;
    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.text("Bucket", &bucket)
        .text("Key", &key)
        .text("UploadId", &id);
    let mut r = xml_response(StatusCode::OK, w.finish("InitiateMultipartUploadResult"));
    if let Some(c) = checksum {
        r.headers_mut().insert(
            "x-amz-checksum-algorithm",
            HeaderValue::from_static(c.name()),
        );
    }
    Ok(r)
}

/// UploadPart.
pub async fn upload_part(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let id = upload_id(&req)?;
    let number = part_number(&req)?;
    let md5 = content_md5(&req)?;
    let (decoder, size) = Decoder::for_data(&req)?;
    let sums = body::checksums(&req)?;
    let store = s3.store.clone();
    let (requested, expected) = (sums.requested.clone(), sums.expected.clone());
    let part = blocking(move || {
        Ok(store.begin_part(&bucket, &key, &id, number, size, md5, &requested, expected)?)
    })
    .await?;
    let store = s3.store.clone();
    let trailer = sums.trailer;
    let (info, digests) = body::receive(
        req.body,
        decoder,
        part,
        s3.config.idle_timeout,
        None,
        move |mut p, trailers| {
            if let Some(alg) = trailer {
                p.expect_checksum(body::trailer_checksum(&trailers, alg)?);
            }
            Ok(p.finish(&store)?)
        },
    )
    .await?;
    let mut r = empty(StatusCode::OK);
    r.headers_mut().insert("etag", etag_header(&info.etag));
    set_checksum_headers(&mut r, &digests.checksums);
    Ok(r)
}

/// UploadPartCopy: a part copied from (a range of) an existing object.
pub async fn upload_part_copy(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let id = upload_id(&req)?;
    let number = part_number(&req)?;
    let (src_bucket, src_key) = copy_source(&req)?;
    let range = req.header("x-amz-copy-source-range").map(str::to_string);
    let cond = ReadConditions {
        if_match: req.header("x-amz-copy-source-if-match").map(str::to_string),
        if_none_match: req
            .header("x-amz-copy-source-if-none-match")
            .map(str::to_string),
        if_modified_since: req
            .header("x-amz-copy-source-if-modified-since")
            .and_then(|v| httpdate::parse_http_date(v).ok()),
        if_unmodified_since: req
            .header("x-amz-copy-source-if-unmodified-since")
            .and_then(|v| httpdate::parse_http_date(v).ok()),
    };
    let store = s3.store.clone();
    let info = blocking(move || {
        let source = store
            .get(&src_bucket, &src_key, &cond)
            .map_err(|e| match e {
                StoreError::NotModified { .. } => S3Error::from(StoreError::PreconditionFailed),
                e => S3Error::from(e),
            })?;
        let size = source.info().size;
        let (offset, len) = match range {
            None => (0, size),
            Some(r) => parse_copy_range(&r, size)?,
        };
        let mut part =
            store.begin_part(&bucket, &key, &id, number, Some(len), None, &[], Vec::new())?;
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < len {
            let want = ((len - done) as usize).min(buf.len());
            let n = source
                .read_at(&mut buf[..want], offset + done)
                .map_err(|e| {
                    S3Error::from(StoreError::Io {
                        op: "read",
                        path: src_key.clone().into(),
                        source: e,
                    })
                })?;
            if n == 0 {
                break;
            }
            part.write(&buf[..n])?;
            done += n as u64;
        }
        drop(source);
        Ok(part.finish(&store)?.0)
    })
    .await?;
    let mut w = XmlWriter::new("CopyPartResult");
    w.text("LastModified", &xml::iso8601(info.modified))
        .text("ETag", &format!("\"{}\"", info.etag));
    Ok(xml_response(StatusCode::OK, w.finish("CopyPartResult")))
}

/// `bytes=first-last` of x-amz-copy-source-range (both ends required, inside the object).
fn parse_copy_range(header: &str, size: u64) -> Result<(u64, u64), S3Error> {
    let bad = || {
        S3Error::bad(
            S3Code::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
    };
    let spec = header.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a > b {
        return Err(bad());
    }
    if b >= size {
        return Err(S3Error::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            S3Code::InvalidRange,
            "The requested range is not satisfiable",
        ));
    }
    Ok((a, b - a + 1))
}

/// CompleteMultipartUpload.
pub async fn complete(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let id = upload_id(&req)?;
    let condition = write_condition(&req)?;
    let (decoder, _) = Decoder::for_request(&req)?;
    let bytes = body::collect(req.body, decoder, s3.config.idle_timeout, 4 * 1024 * 1024).await?;
    let doc: xml::CompleteMultipartUpload =
        xml::parse(&bytes).ok_or_else(S3Error::malformed_xml)?;
    if doc.parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    let parts: Vec<(u32, String)> = doc.parts.into_iter().map(|p| (p.number, p.etag)).collect();
    let store = s3.store.clone();
    let (b, k) = (bucket.clone(), key.clone());
    let info =
        blocking(move || Ok(store.complete_upload(&b, &k, &id, &parts, &condition)?)).await?;
    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    w.text("Location", &format!("/{bucket}/{key}"))
        .text("Bucket", &bucket)
        .text("Key", &key)
        .text("ETag", &format!("\"{}\"", info.etag));
    Ok(xml_response(
        StatusCode::OK,
        w.finish("CompleteMultipartUploadResult"),
    ))
}

/// AbortMultipartUpload.
pub async fn abort(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let id = upload_id(&req)?;
    let store = s3.store.clone();
    blocking(move || Ok(store.abort_upload(&bucket, &key, &id)?)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// ListParts.
pub async fn list_parts(s3: &Arc<S3>, req: Request) -> S3Result {
    let (bucket, key) = (req.bucket()?.to_string(), req.key()?.to_string());
    let id = upload_id(&req)?;
    let marker: u32 = req
        .param("part-number-marker")
        .map(|m| {
            m.parse()
                .map_err(|_| S3Error::bad(S3Code::InvalidArgument, "Invalid part-number-marker"))
        })
        .transpose()?
        .unwrap_or(0);
    let max: usize = req
        .param("max-parts")
        .map(|m| {
            m.parse::<usize>()
                .map_err(|_| S3Error::bad(S3Code::InvalidArgument, "Invalid max-parts"))
        })
        .transpose()?
        .unwrap_or(1000)
        .min(1000);
    let store = s3.store.clone();
    let (b, k, i) = (bucket.clone(), key.clone(), id.clone());
    let (upload, parts, more) =
        blocking(move || Ok(store.list_parts(&b, &k, &i, marker, max)?)).await?;
    let mut w = XmlWriter::new("ListPartsResult");
    w.text("Bucket", &bucket)
        .text("Key", &key)
        .text("UploadId", &id)
        .text("PartNumberMarker", &marker.to_string());
    if let Some(last) = parts.last() {
        w.text("NextPartNumberMarker", &last.number.to_string());
    }
    w.text("MaxParts", &max.to_string())
        .text("IsTruncated", if more { "true" } else { "false" });
    if let Some(c) = upload.checksum {
        w.text("ChecksumAlgorithm", c.name());
    }
    for p in &parts {
        w.open("Part")
            .text("PartNumber", &p.number.to_string())
            .text("LastModified", &xml::iso8601(p.modified))
            .text("ETag", &format!("\"{}\"", p.etag))
            .text("Size", &p.size.to_string())
            .close("Part");
    }
    write_owner(&mut w, "Initiator");
    write_owner(&mut w, "Owner");
    w.text("StorageClass", "STANDARD");
    Ok(xml_response(StatusCode::OK, w.finish("ListPartsResult")))
}

/// ListMultipartUploads (prefix, delimiter, key and upload-id markers).
pub async fn list_uploads(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let prefix = req.param("prefix").unwrap_or("").to_string();
    let delimiter = req
        .param("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let key_marker = req
        .param("key-marker")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let id_marker = req
        .param("upload-id-marker")
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let max: usize = req
        .param("max-uploads")
        .map(|m| {
            m.parse::<usize>()
                .map_err(|_| S3Error::bad(S3Code::InvalidArgument, "Invalid max-uploads"))
        })
        .transpose()?
        .unwrap_or(1000)
        .min(1000);
    let store = s3.store.clone();
    let (b, p, km, im) = (
        bucket.clone(),
        prefix.clone(),
        key_marker.clone(),
        id_marker.clone(),
    );
    let (uploads, more) =
        blocking(move || Ok(store.list_uploads(&b, &p, km.as_deref(), im.as_deref(), max)?))
            .await?;
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.text("Bucket", &bucket)
        .text("KeyMarker", key_marker.as_deref().unwrap_or(""))
        .text("UploadIdMarker", id_marker.as_deref().unwrap_or(""));
    if more {
        if let Some(last) = uploads.last() {
            w.text("NextKeyMarker", &last.key)
                .text("NextUploadIdMarker", &last.upload_id);
        }
    }
    w.text("Prefix", &prefix);
    if let Some(d) = &delimiter {
        w.text("Delimiter", d);
    }
    w.text("MaxUploads", &max.to_string())
        .text("IsTruncated", if more { "true" } else { "false" });
    let mut prefixes: Vec<String> = Vec::new();
    for u in &uploads {
        if let Some(d) = &delimiter {
            if let Some(pos) = u.key[prefix.len()..].find(d.as_str()) {
                let cp = u.key[..prefix.len() + pos + d.len()].to_string();
                if prefixes.last() != Some(&cp) {
                    prefixes.push(cp);
                }
                continue;
            }
        }
        w.open("Upload")
            .text("Key", &u.key)
            .text("UploadId", &u.upload_id);
        write_owner(&mut w, "Initiator");
        write_owner(&mut w, "Owner");
        w.text("StorageClass", "STANDARD")
            .text("Initiated", &xml::iso8601(u.initiated))
            .close("Upload");
    }
    for p in &prefixes {
        w.open("CommonPrefixes")
            .text("Prefix", p)
            .close("CommonPrefixes");
    }
    Ok(xml_response(
        StatusCode::OK,
        w.finish("ListMultipartUploadsResult"),
    ))
}
