//! The official AWS SDK for Rust as a test client: a path-style client for a test server,
//! error codes, whole bodies.

use aws_sdk_s3::Client;

use super::{ACCESS_KEY, SECRET_KEY};

/// A client of `endpoint` with the test credentials.
pub fn client(endpoint: &str) -> Client {
    client_with(endpoint, ACCESS_KEY, SECRET_KEY)
}

/// A client of `endpoint` with the given credentials.
pub fn client_with(endpoint: &str, access: &str, secret: &str) -> Client {
    let creds = aws_sdk_s3::config::Credentials::new(access, secret, None, None, "test");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

/// The S3 error code of a failed call (or the whole error when it is not a service error).
pub fn code<E, R>(e: &aws_sdk_s3::error::SdkError<E, R>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => s.err().code().unwrap_or("").to_string(),
        other => format!("{other:?}"),
    }
}

/// The whole body of `bucket/key`.
pub async fn body_of(c: &Client, bucket: &str, key: &str) -> Vec<u8> {
    c.get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("get")
        .body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}
