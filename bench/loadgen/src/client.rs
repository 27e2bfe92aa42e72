//! One keep-alive HTTP/1.1 connection per worker, with TCP_NODELAY, on raw hyper.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::body::{ReqBody, Verifier};
use crate::sign::{self, Signer};

/// Where requests go and how they are signed.
pub struct Target {
    /// `host:port` to connect to, also sent as `Host`.
    pub host: String,
    pub bucket: String,
    /// `None` for plain unsigned requests (the nginx anchor).
    pub signer: Option<Signer>,
}

impl Target {
    /// Path of an object (keys are made of URL-safe characters and `/`).
    pub fn path(&self, key: &str) -> String {
        format!(
            "/{}/{}",
            self.bucket,
            sign::uri_encode(key.as_bytes(), false)
        )
    }
}

pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<ReqBody>>,
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Self {
        Conn {
            target,
            sender: None,
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Opens the connection now (so that connecting is not timed).
    pub async fn connect(&mut self) -> Result<(), String> {
        let tcp = TcpStream::connect(&self.target.host)
            .await
            .map_err(|e| format!("connect {}: {e}", self.target.host))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request; `query` is the raw query string (without `?`).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        query: &str,
        extra: &[(&str, &str)],
        body: ReqBody,
    ) -> Result<Response<Incoming>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.connect().await?;
        }
        let sender = self.sender.as_mut().unwrap();
        if sender.ready().await.is_err() {
            self.connect().await?;
        }
        let uri = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        let mut req = Request::builder().method(method.clone()).uri(uri);
        let t = &self.target;
        req = req.header("host", &t.host);
        for (n, v) in extra {
            req = req.header(*n, *v);
        }
        if body.len() > 0 || method == Method::PUT || method == Method::POST {
            req = req.header("content-length", body.len());
        }
        if let Some(signer) = &t.signer {
            let date = sign::amz_date(SystemTime::now());
            let mut hs: Vec<(&str, &str)> = vec![
                ("host", &t.host),
                ("x-amz-content-sha256", sign::UNSIGNED_PAYLOAD),
                ("x-amz-date", &date),
            ];
            hs.extend_from_slice(extra);
            let auth = signer.authorization(method.as_str(), path, query, &hs);
            req = req
                .header("x-amz-content-sha256", sign::UNSIGNED_PAYLOAD)
                .header("x-amz-date", &date)
                .header("authorization", auth);
        }
        let req = req.body(body).map_err(|e| format!("request: {e}"))?;
        let sender = self.sender.as_mut().unwrap();
        match sender.send_request(req).await {
            Ok(r) => Ok(r),
            Err(e) => {
                self.sender = None;
                Err(format!("{method} {path}: {e}"))
            }
        }
    }
}

/// Reads a body whole (small responses: XML, errors), at most `limit` bytes.
pub async fn read_small(
    resp: Response<Incoming>,
    limit: usize,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let (parts, mut body) = resp.into_parts();
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading body: {e}"))?;
        if let Some(d) = frame.data_ref() {
            if buf.len() + d.len() > limit {
                return Err(format!("response body over {limit} bytes"));
            }
            buf.extend_from_slice(d);
        }
    }
    Ok((parts.status, parts.headers, buf.freeze()))
}

/// Reads a body whole and fails unless the status is 2xx.
pub async fn expect_ok(resp: Response<Incoming>, what: &str) -> Result<(HeaderMap, Bytes), String> {
    let (status, headers, body) = read_small(resp, 64 << 20).await?;
    if !status.is_success() {
        return Err(format!("{what}: HTTP {status}: {}", snippet(&body)));
    }
    Ok((headers, body))
}

/// Streams a body through `v` and fails on a non-2xx status or any difference.
pub async fn read_verify(
    resp: Response<Incoming>,
    mut v: Verifier,
    what: &str,
) -> Result<u64, String> {
    if !resp.status().is_success() {
        let (status, _, body) = read_small(resp, 1 << 20).await?;
        return Err(format!("{what}: HTTP {status}: {}", snippet(&body)));
    }
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("{what}: reading body after {n} bytes: {e}"))?;
        if let Some(d) = frame.data_ref() {
            v.update(d);
            n += d.len() as u64;
        }
    }
    v.finish().map_err(|e| format!("{what}: {e}"))?;
    Ok(n)
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(300)]);
    s.replace('\n', " ")
}
