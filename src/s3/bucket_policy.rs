//! Bucket policies over S3: Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus. What a
//! policy means and where it is kept is `crate::access`'s business.

use std::sync::Arc;

use warp::http::{HeaderValue, Response, StatusCode};
use warp::hyper::Body;

use super::body::{self, Decoder};
use super::xml::XmlWriter;
use super::{blocking, empty, xml_response, Request, S3Result, S3};

/// PutBucketPolicy: a refused document answers MalformedPolicy and stores nothing.
pub async fn put(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let (decoder, _) = Decoder::for_request(&req)?;
    let limit = crate::access::MAX_POLICY_BYTES as u64;
    let text = body::collect(req.body, decoder, s3.config.idle_timeout, limit).await?;
    let access = s3.access.clone();
    blocking(move || Ok(access.put_bucket_policy(&bucket, &text)?)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// GetBucketPolicy: the document as stored.
pub async fn get(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let access = s3.access.clone();
    let text = blocking(move || Ok(access.get_bucket_policy(&bucket)?)).await?;
    let mut r = Response::new(Body::from(text));
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    Ok(r)
}

/// DeleteBucketPolicy.
pub async fn delete(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let access = s3.access.clone();
    blocking(move || Ok(access.delete_bucket_policy(&bucket)?)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// GetBucketPolicyStatus: public when a statement allows everyone something.
pub async fn status(s3: &Arc<S3>, req: Request) -> S3Result {
    let bucket = req.bucket()?.to_string();
    let access = s3.access.clone();
    let public = blocking(move || Ok(access.bucket_is_public(&bucket)?)).await?;
    let mut w = XmlWriter::new("PolicyStatus");
    w.text("IsPublic", if public { "true" } else { "false" });
    Ok(xml_response(StatusCode::OK, w.finish("PolicyStatus")))
}
