//! Request bodies: undoing `aws-chunked`, checking the signed payload hash and the trailers,
//! and feeding the store from a blocking task in bounded chunks, so a 10 GiB PUT uses the
//! memory of a 1 MiB one. Nothing is published unless the whole body arrived and verified.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use warp::http::StatusCode;

use crate::store::checksum::{parse_checksum, Checksum, ChecksumAlgorithm};
use crate::store::multipart::PartUpload;
use crate::store::object::Upload;
use crate::store::StoreError;

use super::chunked::{ChunkedDecoder, Mode, Trailers};
use super::sigv4::Payload;
use super::{BodyStream, Request, S3Code, S3Error};

/// How a request's body is decoded and verified.
pub enum Decoder {
    /// The body is the payload; its SHA-256 is checked when the signature covers it.
    Plain {
        /// Running hash and the expected hex digest.
        sha256: Option<(Sha256, String)>,
    },
    /// `aws-chunked`, with chunk and trailer signatures checked as they arrive.
    Chunked(Box<ChunkedDecoder>),
}

impl Decoder {
    /// The decoder for the object data of a PutObject or UploadPart. S3 needs the length up
    /// front: a body with neither Content-Length nor chunked framing is refused, where HTTP
    /// would read it as empty and store an empty object.
    pub fn for_data(req: &Request) -> Result<(Decoder, Option<u64>), S3Error> {
        let chunked = req
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if req.header("content-length").is_none() && !chunked {
            return Err(S3Error::new(
                StatusCode::LENGTH_REQUIRED,
                S3Code::MissingContentLength,
                "You must provide the Content-Length HTTP header.",
            ));
        }
        Decoder::for_request(req)
    }

    /// The decoder for `req` and the payload length it announces.
    pub fn for_request(req: &Request) -> Result<(Decoder, Option<u64>), S3Error> {
        let content_length = req
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(mode) = Mode::from_verified(&req.auth) {
            let decoded = req
                .header("x-amz-decoded-content-length")
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    S3Error::new(
                        StatusCode::LENGTH_REQUIRED,
                        S3Code::MissingContentLength,
                        "You must provide the x-amz-decoded-content-length HTTP header.",
                    )
                })?;
            return Ok((
                Decoder::Chunked(Box::new(ChunkedDecoder::new(mode, decoded))),
                Some(decoded),
            ));
        }
        let sha256 = match &req.auth.payload {
            Payload::Sha256(hex) => Some((Sha256::new(), hex.clone())),
            _ => None,
        };
        Ok((Decoder::Plain { sha256 }, content_length))
    }

    /// Decodes `raw`; the payload bytes are returned (borrowed from `raw` when no decoding is
    /// needed, else from `scratch`). They are provisional until `finish` succeeds.
    pub fn push<'a>(
        &mut self,
        raw: &'a [u8],
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], S3Error> {
        match self {
            Decoder::Plain { sha256 } => {
                if let Some((h, _)) = sha256 {
                    h.update(raw);
                }
                Ok(raw)
            }
            Decoder::Chunked(d) => {
                scratch.clear();
                d.push(raw, scratch).map_err(chunk_error)?;
                Ok(&scratch[..])
            }
        }
    }

    /// Ends the body: checks the payload hash or the final chunk, and returns the trailers.
    pub fn finish(self) -> Result<Trailers, S3Error> {
        match self {
            Decoder::Plain { sha256 } => {
                if let Some((h, want)) = sha256 {
                    if hex::encode(h.finalize()) != want.to_ascii_lowercase() {
                        return Err(S3Error::bad(
                            S3Code::XAmzContentSHA256Mismatch,
                            "The provided 'x-amz-content-sha256' header does not match what was computed.",
                        ));
                    }
                }
                Ok(Vec::new())
            }
            Decoder::Chunked(d) => d.finish().map_err(chunk_error),
        }
    }
}

fn chunk_error(e: super::chunked::ChunkError) -> S3Error {
    S3Error::new(
        StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
        e.s3_code(),
        e.to_string(),
    )
}

/// Flexible checksums a request asks for: algorithms to compute, values sent in headers,
/// and the algorithm whose value will come as a trailer.
pub struct Checksums {
    /// Algorithms to compute.
    pub requested: Vec<ChecksumAlgorithm>,
    /// Values the body must have, from headers.
    pub expected: Vec<Checksum>,
    /// Algorithm announced in `x-amz-trailer`.
    pub trailer: Option<ChecksumAlgorithm>,
}

/// Reads the checksum headers of a request.
pub fn checksums(req: &Request) -> Result<Checksums, S3Error> {
    let mut c = Checksums {
        requested: Vec::new(),
        expected: Vec::new(),
        trailer: None,
    };
    for alg in ChecksumAlgorithm::ALL {
        if let Some(v) = req.header(alg.header()) {
            let parsed = parse_checksum(alg, v).map_err(|e| {
                S3Error::bad(
                    S3Code::from(&e),
                    format!("Value for {} header is invalid.", alg.header()),
                )
            })?;
            c.expected.push(parsed);
        }
    }
    for h in ["x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"] {
        if let Some(v) = req.header(h) {
            let alg = ChecksumAlgorithm::parse(v).ok_or_else(|| {
                S3Error::bad(
                    S3Code::InvalidRequest,
                    format!("Value for {h} header is invalid."),
                )
            })?;
            c.requested.push(alg);
        }
    }
    if let Some(t) = req.header("x-amz-trailer") {
        let alg = ChecksumAlgorithm::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(t.trim()))
            .ok_or_else(|| {
                S3Error::bad(
                    S3Code::InvalidRequest,
                    "The value specified in the x-amz-trailer header is not supported",
                )
            })?;
        c.requested.push(alg);
        c.trailer = Some(alg);
    }
    Ok(c)
}

/// The checksum a trailer carried for `alg`.
pub fn trailer_checksum(trailers: &Trailers, alg: ChecksumAlgorithm) -> Result<Checksum, S3Error> {
    let value = trailers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(alg.header()))
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| {
            S3Error::bad(
                S3Code::MalformedTrailerError,
                "The request contained trailing data that was not well-formed or did not conform to our published schema.",
            )
        })?;
    parse_checksum(alg, value).map_err(|e| {
        S3Error::bad(
            S3Code::from(&e),
            format!("Value for {} trailing header is invalid.", alg.header()),
        )
    })
}

/// Something a body can be written into on the blocking pool.
pub trait Sink: Send + 'static {
    /// Appends payload bytes.
    fn write(&mut self, buf: &[u8]) -> Result<(), StoreError>;

    /// Appends payload bytes the sink may keep a reference to instead of copying them.
    fn write_bytes(&mut self, buf: Bytes) -> Result<(), StoreError> {
        self.write(&buf)
    }
}

impl Sink for Upload {
    fn write(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        Upload::write(self, buf)
    }

    fn write_bytes(&mut self, buf: Bytes) -> Result<(), StoreError> {
        Upload::write_bytes(self, buf)
    }
}

impl Sink for PartUpload {
    fn write(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        PartUpload::write(self, buf)
    }

    fn write_bytes(&mut self, buf: Bytes) -> Result<(), StoreError> {
        PartUpload::write_bytes(self, buf)
    }
}

impl Sink for Vec<u8> {
    fn write(&mut self, buf: &[u8]) -> Result<(), StoreError> {
        self.extend_from_slice(buf);
        Ok(())
    }
}

enum Piece {
    Data(Bytes),
    End,
}

/// Bodies up to this many bytes are read whole before any blocking work starts, so a small
/// upload is one task on the blocking pool instead of a task woken for every received chunk.
pub const HELD: u64 = 64 * 1024;

/// What the next read of a body gave.
enum Step {
    Data(Bytes),
    End,
    Failed(S3Error),
}

/// Reads the next piece of `body`, turning a stall longer than `idle` and a broken body into
/// the S3 errors they answer.
async fn next(body: &mut BodyStream, idle: Duration) -> Step {
    match tokio::time::timeout(idle, body.next()).await {
        Err(_) => Step::Failed(S3Error::bad(
            S3Code::RequestTimeout,
            "Your socket connection to the server was not read from or written to within the timeout period.",
        )),
        Ok(None) => Step::End,
        Ok(Some(Err(_))) => Step::Failed(S3Error::bad(
            S3Code::IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        )),
        Ok(Some(Ok(bytes))) => Step::Data(bytes),
    }
}

/// Decodes received pieces into a sink, counting the payload against a limit.
struct Feed {
    decoder: Decoder,
    scratch: Vec<u8>,
    total: u64,
    limit: Option<u64>,
}

impl Feed {
    fn push<S: Sink>(&mut self, sink: &mut S, raw: Bytes) -> Result<(), S3Error> {
        let payload = self.decoder.push(&raw, &mut self.scratch)?;
        self.total += payload.len() as u64;
        if self.limit.is_some_and(|l| self.total > l) {
            return Err(S3Error::bad(
                S3Code::MaxMessageLengthExceeded,
                "Your request was too big.",
            ));
        }
        // A plain body is the payload itself: pass the received buffer on whole.
        if payload.as_ptr() == raw.as_ptr() && payload.len() == raw.len() {
            sink.write_bytes(raw).map_err(S3Error::from)
        } else {
            sink.write(payload).map_err(S3Error::from)
        }
    }
}

/// Streams `body` through `decoder` into `sink` on the blocking pool, then calls `done` with
/// the sink and the trailers there. If the client stalls longer than `idle`, disconnects, or
/// sends more than `limit` payload bytes, `done` is never called and the sink is dropped
/// (a staged upload removes itself).
pub async fn receive<S: Sink, T: Send + 'static>(
    body: BodyStream,
    decoder: Decoder,
    sink: S,
    idle: Duration,
    limit: Option<u64>,
    done: impl FnOnce(S, Trailers) -> Result<T, S3Error> + Send + 'static,
) -> Result<T, S3Error> {
    receive_into(body, decoder, move || Ok(sink), idle, limit, done).await
}

/// [`receive`], with the sink made by `start` on the blocking pool: for a body of at most
/// [`HELD`] bytes in the same task that writes and finishes it, after the body has arrived.
pub async fn receive_into<S: Sink, T: Send + 'static>(
    mut body: BodyStream,
    decoder: Decoder,
    start: impl FnOnce() -> Result<S, S3Error> + Send + 'static,
    idle: Duration,
    limit: Option<u64>,
    done: impl FnOnce(S, Trailers) -> Result<T, S3Error> + Send + 'static,
) -> Result<T, S3Error> {
    let mut held = Vec::new();
    let mut held_len = 0u64;
    let mut ended = false;
    while held_len <= HELD {
        match next(&mut body, idle).await {
            Step::Data(bytes) => {
                held_len += bytes.len() as u64;
                held.push(bytes);
            }
            Step::End => {
                ended = true;
                break;
            }
            // Nothing has started: dropping `start` drops a sink made before.
            Step::Failed(e) => return Err(e),
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Piece>(4);
    let consumer = tokio::task::spawn_blocking(move || {
        let _op = crate::ops::health::track();
        let mut sink = start()?;
        let mut feed = Feed {
            decoder,
            scratch: Vec::new(),
            total: 0,
            limit,
        };
        for raw in held {
            feed.push(&mut sink, raw)?;
        }
        while !ended {
            match rx.blocking_recv() {
                Some(Piece::Data(raw)) => feed.push(&mut sink, raw)?,
                Some(Piece::End) => ended = true,
                // The connection failed or stalled: drop everything staged.
                None => {
                    return Err(S3Error::bad(
                        S3Code::IncompleteBody,
                        "The request body ended early.",
                    ))
                }
            }
        }
        let trailers = feed.decoder.finish()?;
        done(sink, trailers)
    });
    let mut failure = None;
    // The body may already have ended while it was held.
    if !ended {
        loop {
            match next(&mut body, idle).await {
                Step::Data(bytes) => {
                    if tx.send(Piece::Data(bytes)).await.is_err() {
                        // The consumer stopped early; its own error tells why.
                        break;
                    }
                }
                Step::End => {
                    let _ = tx.send(Piece::End).await;
                    break;
                }
                Step::Failed(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    drop(tx);
    let outcome = match consumer.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "body consumer failed");
            Err(S3Error::internal())
        }
    };
    match (failure, outcome) {
        (Some(f), Err(_)) => Err(f),
        (_, r) => r,
    }
}

/// Reads a small body (XML requests) whole, verified, at most `limit` bytes.
pub async fn collect(
    req_body: BodyStream,
    decoder: Decoder,
    idle: Duration,
    limit: u64,
) -> Result<Vec<u8>, S3Error> {
    receive(req_body, decoder, Vec::new(), idle, Some(limit), |v, _| {
        Ok(v)
    })
    .await
}
