//! Incremental decoder for the `aws-chunked` content encoding.
//!
//! Bodies sent with `x-amz-content-sha256: STREAMING-*` are framed as
//!
//! ```text
//! <hex-size>;chunk-signature=<sig>\r\n<data>\r\n      (signed modes)
//! <hex-size>\r\n<data>\r\n                            (unsigned trailer mode)
//! …
//! 0;chunk-signature=<sig>\r\n\r\n                     (signed, no trailers)
//! 0[;chunk-signature=<sig>]\r\n<name>:<value>\r\n…[x-amz-trailer-signature:<sig>\r\n]\r\n
//! ```
//!
//! Each chunk signature is an HMAC over
//! `AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<previous signature>\n<sha256("")>\n<sha256(chunk)>`,
//! chained from the seed signature of the request headers, and the trailer
//! signature is an HMAC over
//! `AWS4-HMAC-SHA256-TRAILER\n<date>\n<scope>\n<final chunk signature>\n<sha256(trailers)>`
//! where the trailers are canonicalised as `name:value\n` lines.
//!
//! The decoder is fed arbitrary slices of the body and passes payload bytes
//! straight through, hashing them as they go, so memory stays bounded by one
//! header line and a small trailer block whatever the chunk size. A chunk's
//! signature can only be checked once its last byte has arrived, so bytes
//! appended to the output are provisional: the caller must not publish
//! anything until [`ChunkedDecoder::finish`] has succeeded.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::S3Code;
use super::sigv4::{Payload, SigningContext, Verified};

/// Longest chunk header or trailer line accepted, CRLF included.
const MAX_LINE: usize = 1024;
/// Largest trailer block accepted, all lines together.
const MAX_TRAILER_BYTES: usize = 8 * 1024;
/// Trailer line carrying the trailer signature.
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// Which streaming payload variant is being decoded.
#[derive(Debug, Clone)]
pub enum Mode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: signed chunks, no trailers.
    Signed(SigningContext),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks and signed trailers.
    SignedTrailer(SigningContext),
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: unsigned chunks and unsigned trailers.
    UnsignedTrailer,
}

impl Mode {
    /// The decoding mode for a verified request, or `None` if its body is not `aws-chunked`.
    pub fn from_verified(verified: &Verified) -> Option<Mode> {
        match (&verified.payload, &verified.signing) {
            (Payload::StreamingSigned, Some(ctx)) => Some(Mode::Signed(ctx.clone())),
            (Payload::StreamingSignedTrailer, Some(ctx)) => Some(Mode::SignedTrailer(ctx.clone())),
            (Payload::StreamingUnsignedTrailer, _) => Some(Mode::UnsignedTrailer),
            _ => None,
        }
    }

    fn context(&self) -> Option<&SigningContext> {
        match self {
            Mode::Signed(ctx) | Mode::SignedTrailer(ctx) => Some(ctx),
            Mode::UnsignedTrailer => None,
        }
    }

    fn has_trailers(&self) -> bool {
        !matches!(self, Mode::Signed(_))
    }
}

/// Trailer headers as received: lowercase names, trimmed values, without `x-amz-trailer-signature`.
pub type Trailers = Vec<(String, String)>;

/// Why an `aws-chunked` body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The framing is not valid `aws-chunked`.
    #[error("The aws-chunked request body is malformed: {0}")]
    Malformed(&'static str),
    /// The body ended before the final chunk (and trailers) arrived.
    #[error("The request body ended before the aws-chunked encoding was complete.")]
    Truncated,
    /// A chunk or trailer signature does not match.
    #[error("The request signature we calculated does not match the signature you provided. Check your key and signing method.")]
    SignatureMismatch,
    /// The decoded length differs from `x-amz-decoded-content-length`.
    #[error("You did not provide the number of bytes specified by the x-amz-decoded-content-length header ({declared}).")]
    LengthMismatch {
        /// The length the client declared.
        declared: u64,
    },
}

impl ChunkError {
    /// The S3 error code for the XML `<Code>` element.
    pub fn s3_code(&self) -> S3Code {
        match self {
            ChunkError::Malformed(_) => S3Code::InvalidRequest,
            ChunkError::Truncated | ChunkError::LengthMismatch { .. } => S3Code::IncompleteBody,
            ChunkError::SignatureMismatch => S3Code::SignatureDoesNotMatch,
        }
    }

    /// The HTTP status S3 answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            ChunkError::SignatureMismatch => 403,
            _ => 400,
        }
    }
}

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a `<hex-size>[;ext]\r\n` line.
    Header,
    /// Passing through chunk data.
    Data { remaining: u64 },
    /// Expecting the `\r` after chunk data.
    DataCr,
    /// Expecting the `\n` after chunk data.
    DataLf,
    /// Reading trailer lines after the final chunk.
    Trailers,
    /// The body is complete; nothing more may follow.
    Done,
}

/// Incremental `aws-chunked` decoder with chunk and trailer signature verification.
#[derive(Debug)]
pub struct ChunkedDecoder {
    mode: Mode,
    declared: u64,
    decoded: u64,
    state: State,
    line: Vec<u8>,
    trailer_bytes: usize,
    hasher: Sha256,
    /// Signature announced by the current chunk's header.
    claimed: [u8; 32],
    /// Hex signature of the last verified chunk (the seed at first).
    previous: String,
    last_chunk: bool,
    trailers: Trailers,
    trailer_signature: Option<[u8; 32]>,
    leading_blank_seen: bool,
    error: Option<ChunkError>,
}

impl ChunkedDecoder {
    /// Starts decoding a body in `mode` that must decode to `decoded_length` bytes (`x-amz-decoded-content-length`).
    pub fn new(mode: Mode, decoded_length: u64) -> Self {
        let previous = mode
            .context()
            .map(|ctx| ctx.seed_signature.clone())
            .unwrap_or_default();
        ChunkedDecoder {
            mode,
            declared: decoded_length,
            decoded: 0,
            state: State::Header,
            line: Vec::with_capacity(128),
            trailer_bytes: 0,
            hasher: Sha256::new(),
            claimed: [0; 32],
            previous,
            last_chunk: false,
            trailers: Vec::new(),
            trailer_signature: None,
            leading_blank_seen: false,
            error: None,
        }
    }

    /// Decodes the next slice of the body, appending payload bytes to `out` (provisional until `finish`).
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = self.push_inner(input, out);
        if let Err(error) = &result {
            // A decoder that failed once stays failed: its state is meaningless.
            self.error = Some(error.clone());
        }
        result
    }

    /// Whether the whole body, trailers included, has been received and verified.
    pub fn is_complete(&self) -> bool {
        self.error.is_none() && self.state == State::Done
    }

    /// Payload bytes decoded so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// Ends the body: checks it was complete and returns the trailers for the caller to verify.
    pub fn finish(mut self) -> Result<Trailers, ChunkError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        match self.state {
            State::Done => {}
            // Some clients stop right after the last trailer line without the
            // terminating empty line; everything that matters has been read.
            State::Trailers if self.line.is_empty() => self.complete_trailers()?,
            _ => return Err(ChunkError::Truncated),
        }
        Ok(self.trailers)
    }

    fn push_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        while let Some(&first) = input.first() {
            match self.state {
                State::Header | State::Trailers => {
                    let newline = input.iter().position(|&b| b == b'\n');
                    let take = newline.map_or(input.len(), |i| i + 1);
                    if self.line.len() + take > MAX_LINE {
                        return Err(ChunkError::Malformed("line too long"));
                    }
                    if self.state == State::Trailers {
                        self.trailer_bytes += take;
                        if self.trailer_bytes > MAX_TRAILER_BYTES {
                            return Err(ChunkError::Malformed("trailers too large"));
                        }
                    }
                    self.line.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    if newline.is_some() {
                        let mut line = std::mem::take(&mut self.line);
                        let content = line
                            .strip_suffix(b"\r\n")
                            .ok_or(ChunkError::Malformed("line not terminated by CRLF"))?;
                        if self.state == State::Header {
                            self.on_chunk_header(content)?;
                        } else {
                            self.on_trailer_line(content)?;
                        }
                        // Keep the allocation for the next line.
                        line.clear();
                        self.line = line;
                    }
                }
                State::Data { remaining } => {
                    let take =
                        usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
                    let (data, rest) = input.split_at(take);
                    out.extend_from_slice(data);
                    if self.mode.context().is_some() {
                        self.hasher.update(data);
                    }
                    self.decoded += take as u64;
                    input = rest;
                    let remaining = remaining - take as u64;
                    if remaining == 0 {
                        self.verify_chunk()?;
                        self.state = State::DataCr;
                    } else {
                        self.state = State::Data { remaining };
                    }
                }
                State::DataCr => {
                    if first != b'\r' {
                        return Err(ChunkError::Malformed("chunk data not followed by CRLF"));
                    }
                    input = &input[1..];
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    if first != b'\n' {
                        return Err(ChunkError::Malformed("chunk data not followed by CRLF"));
                    }
                    input = &input[1..];
                    self.state = if self.last_chunk {
                        State::Done
                    } else {
                        State::Header
                    };
                }
                State::Done => {
                    return Err(ChunkError::Malformed("data after the end of the body"));
                }
            }
        }
        Ok(())
    }

    fn on_chunk_header(&mut self, content: &[u8]) -> Result<(), ChunkError> {
        let (size_hex, extension) = match content.iter().position(|&b| b == b';') {
            Some(i) => (&content[..i], Some(&content[i + 1..])),
            None => (content, None),
        };
        let size = parse_hex_size(size_hex).ok_or(ChunkError::Malformed("invalid chunk size"))?;
        if self.mode.context().is_some() {
            let signature = extension
                .and_then(|ext| ext.strip_prefix(b"chunk-signature="))
                .ok_or(ChunkError::Malformed("missing chunk-signature"))?;
            if signature.len() != 64 || hex::decode_to_slice(signature, &mut self.claimed).is_err()
            {
                return Err(ChunkError::Malformed("invalid chunk-signature"));
            }
        }
        // Unsigned chunks may carry extensions, but nothing in them is verifiable.

        // Refuse a chunk that overruns the declared length before reading it.
        if size > self.declared - self.decoded {
            return Err(ChunkError::LengthMismatch {
                declared: self.declared,
            });
        }
        self.hasher = Sha256::new();
        if size > 0 {
            self.state = State::Data { remaining: size };
            return Ok(());
        }
        self.last_chunk = true;
        self.verify_chunk()?;
        if self.decoded != self.declared {
            return Err(ChunkError::LengthMismatch {
                declared: self.declared,
            });
        }
        // The final chunk's (empty) data is followed by CRLF; in trailer modes
        // the trailer block takes the place of that CRLF.
        self.state = if self.mode.has_trailers() {
            State::Trailers
        } else {
            State::DataCr
        };
        Ok(())
    }

    fn verify_chunk(&mut self) -> Result<(), ChunkError> {
        let Some(ctx) = self.mode.context() else {
            return Ok(());
        };
        let hash: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        let expected = ctx.chunk_signature(&self.previous, &hash);
        if !bool::from(expected.ct_eq(&self.claimed)) {
            return Err(ChunkError::SignatureMismatch);
        }
        self.previous = hex::encode(expected);
        Ok(())
    }

    fn on_trailer_line(&mut self, content: &[u8]) -> Result<(), ChunkError> {
        if content.is_empty() {
            if self.trailers.is_empty()
                && self.trailer_signature.is_none()
                && !self.leading_blank_seen
            {
                // AWS's own trailer example puts an empty line (the final
                // chunk's data CRLF) before the trailers; standard HTTP
                // chunked framing does not. Accept both.
                self.leading_blank_seen = true;
                return Ok(());
            }
            self.complete_trailers()?;
            self.state = State::Done;
            return Ok(());
        }
        if self.trailer_signature.is_some() {
            return Err(ChunkError::Malformed(
                "trailer after x-amz-trailer-signature",
            ));
        }
        let text = std::str::from_utf8(content)
            .map_err(|_| ChunkError::Malformed("trailer is not UTF-8"))?;
        let (name, value) = text
            .split_once(':')
            .ok_or(ChunkError::Malformed("trailer line without ':'"))?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(ChunkError::Malformed("invalid trailer name"));
        }
        let name = name.to_ascii_lowercase();
        let value = value.trim_matches([' ', '\t']);
        if name == TRAILER_SIGNATURE {
            if let Mode::SignedTrailer(_) = self.mode {
                let mut signature = [0u8; 32];
                if value.len() != 64 || hex::decode_to_slice(value, &mut signature).is_err() {
                    return Err(ChunkError::Malformed("invalid x-amz-trailer-signature"));
                }
                self.trailer_signature = Some(signature);
            }
            // In the unsigned mode a trailer signature proves nothing; drop it.
            return Ok(());
        }
        if self.trailers.iter().any(|(n, _)| *n == name) {
            return Err(ChunkError::Malformed("repeated trailer"));
        }
        self.trailers.push((name, value.to_string()));
        Ok(())
    }

    /// Verifies the trailer signature (signed trailer mode) once all trailer lines are in.
    fn complete_trailers(&self) -> Result<(), ChunkError> {
        let Mode::SignedTrailer(ctx) = &self.mode else {
            return Ok(());
        };
        let claimed = match self.trailer_signature {
            Some(signature) => signature,
            // No trailers at all: the payload itself is fully verified by the
            // chunk chain and there is nothing unsigned to hand back.
            None if self.trailers.is_empty() => return Ok(()),
            None => return Err(ChunkError::Malformed("missing x-amz-trailer-signature")),
        };
        // SDKs canonicalise trailers sorted by name, like headers; clients
        // that hash them in wire order are accepted too (both are signed).
        let mut sorted: Vec<&(String, String)> = self.trailers.iter().collect();
        sorted.sort();
        let matches = |order: &[&(String, String)]| {
            let mut hasher = Sha256::new();
            for (name, value) in order {
                hasher.update(name.as_bytes());
                hasher.update(b":");
                hasher.update(value.as_bytes());
                hasher.update(b"\n");
            }
            let hash: [u8; 32] = hasher.finalize().into();
            bool::from(ctx.trailer_signature(&self.previous, &hash).ct_eq(&claimed))
        };
        let wire: Vec<&(String, String)> = self.trailers.iter().collect();
        if matches(&sorted) || (sorted != wire && matches(&wire)) {
            Ok(())
        } else {
            Err(ChunkError::SignatureMismatch)
        }
    }
}

/// Parses a chunk size: 1 to 16 hex digits, nothing else.
fn parse_hex_size(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char).to_digit(16)?;
        Some(acc << 4 | u64::from(digit))
    })
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::super::sigv4::{signing_key, verify, RequestParts};
    use super::*;
    use proptest::prelude::*;
    use std::time::{Duration, UNIX_EPOCH};

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const SIGS: [&str; 3] = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ];
    const TRAILER_SEED: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    const TRAILER_SIGS: [&str; 3] = [
        "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
        "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
        "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
    ];
    const TRAILER_SIG: &str = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435";
    const DECODED: u64 = 66_560;

    fn context(seed: &str) -> SigningContext {
        SigningContext {
            key: signing_key(SECRET, "20130524", "us-east-1", "s3"),
            date_time: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed_signature: seed.into(),
        }
    }

    /// The body of AWS's chunked upload example (64 KiB + 1 KiB of `a`).
    fn aws_body(sigs: [&str; 3], after_final: &[u8]) -> Vec<u8> {
        let mut body = format!("10000;chunk-signature={}\r\n", sigs[0]).into_bytes();
        body.extend(vec![b'a'; 65_536]);
        body.extend(format!("\r\n400;chunk-signature={}\r\n", sigs[1]).bytes());
        body.extend(vec![b'a'; 1_024]);
        body.extend(format!("\r\n0;chunk-signature={}\r\n", sigs[2]).bytes());
        body.extend_from_slice(after_final);
        body
    }

    fn aws_trailer_block() -> Vec<u8> {
        format!("x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:{TRAILER_SIG}\r\n\r\n")
            .into_bytes()
    }

    /// Feeds `body` in slices of `step` bytes.
    fn decode(
        mode: Mode,
        declared: u64,
        body: &[u8],
        step: usize,
    ) -> Result<(Vec<u8>, Trailers), ChunkError> {
        let mut decoder = ChunkedDecoder::new(mode, declared);
        let mut out = Vec::new();
        for piece in body.chunks(step.max(1)) {
            decoder.push(piece, &mut out)?;
        }
        let trailers = decoder.finish()?;
        Ok((out, trailers))
    }

    /// Feeds `body` split at the given offsets.
    fn decode_at(
        mode: Mode,
        declared: u64,
        body: &[u8],
        cuts: &[usize],
    ) -> Result<(Vec<u8>, Trailers), ChunkError> {
        let mut decoder = ChunkedDecoder::new(mode, declared);
        let mut out = Vec::new();
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain([body.len()]) {
            decoder.push(&body[start..cut], &mut out)?;
            start = cut;
        }
        let trailers = decoder.finish()?;
        Ok((out, trailers))
    }

    /// Encodes chunks (and trailers) the way a signing client would.
    fn encode(
        ctx: Option<&SigningContext>,
        chunks: &[&[u8]],
        trailers: Option<&[(&str, &str)]>,
    ) -> Vec<u8> {
        let mut body = Vec::new();
        let mut previous = ctx.map(|c| c.seed_signature.clone()).unwrap_or_default();
        for chunk in chunks.iter().chain([&&b""[..]]) {
            body.extend(format!("{:x}", chunk.len()).bytes());
            if let Some(ctx) = ctx {
                let hash: [u8; 32] = Sha256::digest(chunk).into();
                previous = hex::encode(ctx.chunk_signature(&previous, &hash));
                body.extend(format!(";chunk-signature={previous}").bytes());
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(chunk);
            if !chunk.is_empty() || trailers.is_none() {
                body.extend_from_slice(b"\r\n");
            }
        }
        if let Some(trailers) = trailers {
            let mut canonical = String::new();
            for (name, value) in trailers {
                body.extend(format!("{name}:{value}\r\n").bytes());
                canonical.push_str(&format!("{name}:{value}\n"));
            }
            if let Some(ctx) = ctx {
                let hash: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();
                let sig = hex::encode(ctx.trailer_signature(&previous, &hash));
                body.extend(format!("x-amz-trailer-signature:{sig}\r\n").bytes());
            }
            body.extend_from_slice(b"\r\n");
        }
        body
    }

    #[test]
    fn aws_signed_example_decodes_at_any_split() {
        let body = aws_body(SIGS, b"\r\n");
        for step in [1, 2, 7, 85, 86, 87, 100, 4096, 65_536, 65_623, body.len()] {
            let (out, trailers) =
                decode(Mode::Signed(context(SEED)), DECODED, &body, step).unwrap();
            assert_eq!(out, vec![b'a'; 66_560], "step {step}");
            assert!(trailers.is_empty());
        }
    }

    #[test]
    fn aws_signed_trailer_example_decodes_at_any_split() {
        let expected = vec![("x-amz-checksum-crc32c".to_string(), "sOO8/Q==".to_string())];
        let variants = [
            // HTTP chunked framing: trailers right after the final chunk header.
            aws_body(TRAILER_SIGS, &aws_trailer_block()),
            // AWS's documentation style: an empty line first.
            aws_body(
                TRAILER_SIGS,
                &[b"\r\n".as_slice(), &aws_trailer_block()].concat(),
            ),
            // Final empty line missing.
            aws_body(
                TRAILER_SIGS,
                &aws_trailer_block()[..aws_trailer_block().len() - 2],
            ),
        ];
        for body in &variants {
            for step in [1, 3, 64, 65_536, body.len()] {
                let (out, trailers) = decode(
                    Mode::SignedTrailer(context(TRAILER_SEED)),
                    DECODED,
                    body,
                    step,
                )
                .unwrap();
                assert_eq!(out.len(), 66_560);
                assert!(out.iter().all(|&b| b == b'a'));
                assert_eq!(trailers, expected);
            }
        }
    }

    #[test]
    fn aws_examples_end_to_end_from_the_verifier() {
        let mut headers: Vec<(String, String)> = [
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        headers.push((
            "authorization".into(),
            format!("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature={SEED}"),
        ));
        let req = RequestParts {
            method: "PUT",
            path: "/examplebucket/chunkObject.txt",
            query: "",
            headers: &headers,
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_369_353_600);
        let verified = verify(&req, now, |_| Some(SECRET.to_string())).unwrap();
        let mode = Mode::from_verified(&verified).unwrap();
        let body = aws_body(SIGS, b"\r\n");
        assert_eq!(body.len(), 66_824, "Content-Length counts the framing");
        let (out, _) = decode(mode, DECODED, &body, 1_000).unwrap();
        assert_eq!(out.len(), 66_560);
    }

    #[test]
    fn from_verified_ignores_plain_payloads() {
        let verified = Verified {
            access_key: "a".into(),
            payload: Payload::Unsigned,
            signing: None,
            signed_headers: vec![],
            presigned: false,
        };
        assert!(Mode::from_verified(&verified).is_none());
        let verified = Verified {
            payload: Payload::StreamingUnsignedTrailer,
            ..verified
        };
        assert!(matches!(
            Mode::from_verified(&verified),
            Some(Mode::UnsignedTrailer)
        ));
    }

    #[test]
    fn unsigned_trailer_mode() {
        let chunks: [&[u8]; 2] = [&[b'a'; 8192], b"hello"];
        let body = encode(None, &chunks, Some(&[("x-amz-checksum-crc32", "AAAAAA==")]));
        for step in [1, 5, 8192, body.len()] {
            let (out, trailers) = decode(Mode::UnsignedTrailer, 8197, &body, step).unwrap();
            assert_eq!(out.len(), 8197);
            assert_eq!(&out[8192..], b"hello");
            assert_eq!(
                trailers,
                vec![("x-amz-checksum-crc32".into(), "AAAAAA==".into())]
            );
        }
        // No trailers at all, and an ignored chunk extension.
        let (out, trailers) =
            decode(Mode::UnsignedTrailer, 3, b"3;ext=1\r\nabc\r\n0\r\n\r\n", 1).unwrap();
        assert_eq!(out, b"abc");
        assert!(trailers.is_empty());
        // Botocore's exact framing.
        let (out, trailers) = decode(
            Mode::UnsignedTrailer,
            3,
            b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n",
            2,
        )
        .unwrap();
        assert_eq!(out, b"abc");
        assert_eq!(
            trailers,
            vec![("x-amz-checksum-crc32".into(), "NSRBwg==".into())]
        );
        // Names are lowercased, values trimmed; an unverifiable signature line is dropped.
        let (_, trailers) = decode(
            Mode::UnsignedTrailer,
            0,
            b"0\r\nX-Amz-Checksum-SHA256:  abc \r\nx-amz-trailer-signature:zz\r\n\r\n",
            4,
        )
        .unwrap();
        assert_eq!(
            trailers,
            vec![("x-amz-checksum-sha256".into(), "abc".into())]
        );
    }

    #[test]
    fn signed_roundtrip_with_several_trailers_in_any_order() {
        let ctx = context(TRAILER_SEED);
        let chunks: [&[u8]; 3] = [b"first chunk", b"second", b"3"];
        for trailers in [
            [("x-amz-checksum-crc32", "AAAAAA=="), ("x-amz-meta-z", "1")],
            [("x-amz-meta-z", "1"), ("x-amz-checksum-crc32", "AAAAAA==")],
        ] {
            let body = encode(Some(&ctx), &chunks, Some(&trailers));
            let (out, got) = decode(Mode::SignedTrailer(ctx.clone()), 18, &body, 3).unwrap();
            assert_eq!(out, b"first chunksecond3");
            assert_eq!(got.len(), 2);
        }
    }

    #[test]
    fn every_single_byte_change_is_rejected() {
        let ctx = context(SEED);
        let chunks: [&[u8]; 2] = [b"hello world", b"!"];
        for (mode, body, declared) in [
            (
                Mode::Signed(ctx.clone()),
                encode(Some(&ctx), &chunks, None),
                12,
            ),
            (
                Mode::SignedTrailer(ctx.clone()),
                encode(
                    Some(&ctx),
                    &chunks,
                    Some(&[("x-amz-checksum-crc32", "AAAAAA==")]),
                ),
                12,
            ),
        ] {
            decode(mode.clone(), declared, &body, 1).unwrap();
            for i in 0..body.len() {
                let mut tampered = body.clone();
                tampered[i] ^= 0x01;
                assert!(
                    decode(mode.clone(), declared, &tampered, 1).is_err(),
                    "byte {i} ({:?}) changed undetected",
                    body[i] as char
                );
            }
        }
    }

    #[test]
    fn payload_tampering_is_a_signature_mismatch() {
        let mut body = aws_body(SIGS, b"\r\n");
        body[500] = b'b';
        assert_eq!(
            decode(Mode::Signed(context(SEED)), DECODED, &body, 4096).unwrap_err(),
            ChunkError::SignatureMismatch
        );
        // Chunks replayed under another seed.
        let body = aws_body(SIGS, b"\r\n");
        assert_eq!(
            decode(Mode::Signed(context(TRAILER_SEED)), DECODED, &body, 4096).unwrap_err(),
            ChunkError::SignatureMismatch
        );
        // Reordered chunks.
        let ctx = context(SEED);
        let a = encode(Some(&ctx), &[b"aaaa", b"bbbb"], None);
        let header_len = a.iter().position(|&b| b == b'\n').unwrap() + 1;
        let first = &a[..header_len + 6];
        let second = &a[header_len + 6..2 * (header_len + 6)];
        let swapped = [second, first, &a[2 * (header_len + 6)..]].concat();
        assert_eq!(
            decode(Mode::Signed(ctx.clone()), 8, &swapped, 1).unwrap_err(),
            ChunkError::SignatureMismatch
        );
        // A trailer value changed after signing.
        let body = aws_body(TRAILER_SIGS, &aws_trailer_block());
        let text = String::from_utf8_lossy(&body[body.len() - 200..]).to_string();
        assert!(text.contains("sOO8/Q=="));
        let tampered = [
            &body[..body.len() - 200],
            text.replace("sOO8/Q==", "sOO8/R==").as_bytes(),
        ]
        .concat();
        assert_eq!(
            decode(
                Mode::SignedTrailer(context(TRAILER_SEED)),
                DECODED,
                &tampered,
                999
            )
            .unwrap_err(),
            ChunkError::SignatureMismatch
        );
    }

    #[test]
    fn truncation_is_detected() {
        let ctx = context(SEED);
        let body = encode(Some(&ctx), &[b"hello", b"world"], None);
        for end in 0..body.len() {
            assert!(
                decode(Mode::Signed(ctx.clone()), 10, &body[..end], 1).is_err(),
                "prefix {end}"
            );
        }
        let body = encode(
            Some(&ctx),
            &[b"hello", b"world"],
            Some(&[("x-amz-checksum-crc32", "AAAAAA==")]),
        );
        let final_header_end = body.windows(2).rposition(|w| w == b"\r\n").unwrap();
        let accepted: Vec<usize> = (0..=body.len())
            .filter(|&end| decode(Mode::SignedTrailer(ctx.clone()), 10, &body[..end], 1).is_ok())
            .collect();
        // The full body, the body without its final empty line, and the body
        // stopping right after the final chunk (no trailers at all).
        let zero_header_end = body
            .windows(3)
            .position(|w| w == b"\n0;")
            .map(|p| p + 1 + body[p + 1..].iter().position(|&b| b == b'\n').unwrap() + 1)
            .unwrap();
        assert_eq!(
            accepted,
            vec![zero_header_end, final_header_end, body.len()]
        );
        let (_, trailers) = decode(
            Mode::SignedTrailer(ctx.clone()),
            10,
            &body[..zero_header_end],
            1,
        )
        .unwrap();
        assert!(trailers.is_empty());
        assert_eq!(
            decode(Mode::Signed(ctx), 10, &body[..3], 1).unwrap_err(),
            ChunkError::Truncated
        );
    }

    #[test]
    fn length_mismatch() {
        let body = aws_body(SIGS, b"\r\n");
        for declared in [0, 1, 65_535, 66_559] {
            assert_eq!(
                decode(Mode::Signed(context(SEED)), declared, &body, 4096).unwrap_err(),
                ChunkError::LengthMismatch { declared }
            );
        }
        let err = decode(Mode::Signed(context(SEED)), 66_561, &body, 4096).unwrap_err();
        assert_eq!(err, ChunkError::LengthMismatch { declared: 66_561 });
        assert_eq!(err.s3_code(), "IncompleteBody");
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn malformed_framing() {
        let ctx = context(SEED);
        let sig = "0".repeat(64);
        // A trailer line after the trailer signature.
        let mut after_signature = encode(Some(&ctx), &[], Some(&[("a", "1")]));
        after_signature.truncate(after_signature.len() - 2);
        after_signature.extend_from_slice(b"x:1\r\n\r\n");
        let cases: Vec<(Mode, u64, Vec<u8>)> = vec![
            (Mode::UnsignedTrailer, 3, b"3\nabc\r\n0\r\n\r\n".to_vec()),
            (Mode::UnsignedTrailer, 3, b"3\r\nabc\n0\r\n\r\n".to_vec()),
            (Mode::UnsignedTrailer, 3, b"3\r\nabcd\r\n0\r\n\r\n".to_vec()),
            (Mode::UnsignedTrailer, 3, b"x3\r\nabc\r\n0\r\n\r\n".to_vec()),
            (Mode::UnsignedTrailer, 3, b" 3\r\nabc\r\n0\r\n\r\n".to_vec()),
            (Mode::UnsignedTrailer, 3, b"\r\nabc\r\n0\r\n\r\n".to_vec()),
            (
                Mode::UnsignedTrailer,
                3,
                b"00000000000000003\r\nabc\r\n0\r\n\r\n".to_vec(),
            ),
            (Mode::UnsignedTrailer, 0, b"0\r\nno-colon\r\n\r\n".to_vec()),
            (Mode::UnsignedTrailer, 0, b"0\r\n:v\r\n\r\n".to_vec()),
            (
                Mode::UnsignedTrailer,
                0,
                b"0\r\nbad name:v\r\n\r\n".to_vec(),
            ),
            (
                Mode::UnsignedTrailer,
                0,
                b"0\r\na:1\r\nA:2\r\n\r\n".to_vec(),
            ),
            (Mode::UnsignedTrailer, 0, b"0\r\n\r\n\r\nextra".to_vec()),
            (Mode::UnsignedTrailer, 0, b"0\r\na:\xff\r\n\r\n".to_vec()),
            (Mode::Signed(ctx.clone()), 3, b"3\r\nabc\r\n".to_vec()),
            (
                Mode::Signed(ctx.clone()),
                3,
                format!("3;chunk-signature={}\r\nabc\r\n", &sig[1..]).into_bytes(),
            ),
            (
                Mode::Signed(ctx.clone()),
                3,
                format!("3;chunk-signatur={sig}\r\nabc\r\n").into_bytes(),
            ),
            (
                Mode::Signed(ctx.clone()),
                3,
                format!("3;chunk-signature={sig};x=1\r\nabc\r\n").into_bytes(),
            ),
            (Mode::SignedTrailer(ctx.clone()), 0, after_signature),
        ];
        for (i, (mode, declared, body)) in cases.into_iter().enumerate() {
            let err = decode(mode, declared, &body, 1).unwrap_err();
            assert!(matches!(err, ChunkError::Malformed(_)), "case {i}: {err:?}");
            assert_eq!(err.s3_code(), "InvalidRequest");
        }
        // A signed trailer block without its signature.
        let mut body = encode(Some(&ctx), &[b"abc"], None);
        body.truncate(body.len() - 2);
        body.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
        assert_eq!(
            decode(Mode::SignedTrailer(ctx.clone()), 3, &body, 1).unwrap_err(),
            ChunkError::Malformed("missing x-amz-trailer-signature")
        );
    }

    #[test]
    fn memory_is_bounded() {
        let mut decoder = ChunkedDecoder::new(Mode::UnsignedTrailer, 10);
        let mut out = Vec::new();
        let mut result = Ok(());
        for _ in 0..2_000 {
            result = decoder.push(b"0", &mut out);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(ChunkError::Malformed("line too long")));
        assert!(decoder.line.len() <= MAX_LINE);

        let mut decoder = ChunkedDecoder::new(Mode::UnsignedTrailer, 0);
        decoder.push(b"0\r\n", &mut out).unwrap();
        let mut result = Ok(());
        for i in 0..1_000 {
            result = decoder.push(
                format!("x-amz-meta-{i}:{}\r\n", "v".repeat(50)).as_bytes(),
                &mut out,
            );
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(ChunkError::Malformed("trailers too large")));
        assert!(decoder.trailer_bytes <= MAX_TRAILER_BYTES + MAX_LINE);
    }

    #[test]
    fn errors_are_sticky() {
        let mut decoder = ChunkedDecoder::new(Mode::UnsignedTrailer, 3);
        let mut out = Vec::new();
        assert!(decoder.push(b"zz\r\n", &mut out).is_err());
        assert!(decoder.push(b"3\r\nabc\r\n0\r\n\r\n", &mut out).is_err());
        assert!(out.is_empty());
        assert!(!decoder.is_complete());
        assert!(matches!(decoder.finish(), Err(ChunkError::Malformed(_))));
    }

    #[test]
    fn completion_is_reported() {
        let mut decoder = ChunkedDecoder::new(Mode::UnsignedTrailer, 3);
        let mut out = Vec::new();
        decoder.push(b"3\r\nabc\r\n0\r\n", &mut out).unwrap();
        assert!(!decoder.is_complete());
        assert_eq!(decoder.decoded_len(), 3);
        decoder.push(b"a:b\r\n\r\n", &mut out).unwrap();
        assert!(decoder.is_complete());
        assert_eq!(
            decoder.push(b"\r\n", &mut out),
            Err(ChunkError::Malformed("data after the end of the body"))
        );
    }

    #[test]
    fn hex_sizes() {
        assert_eq!(parse_hex_size(b"0"), Some(0));
        assert_eq!(parse_hex_size(b"10000"), Some(65_536));
        assert_eq!(parse_hex_size(b"aBc"), Some(0xabc));
        assert_eq!(parse_hex_size(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_hex_size(b"10000000000000000"), None);
        assert_eq!(parse_hex_size(b""), None);
        assert_eq!(parse_hex_size(b"+1"), None);
        assert_eq!(parse_hex_size(b"1 "), None);
    }

    #[test]
    fn huge_declared_chunk_is_refused_before_reading() {
        let mut decoder = ChunkedDecoder::new(Mode::UnsignedTrailer, 10);
        let mut out = Vec::new();
        assert_eq!(
            decoder.push(b"ffffffffffffffff\r\n", &mut out),
            Err(ChunkError::LengthMismatch { declared: 10 })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// AWS's signed examples decode identically whatever the split points.
        #[test]
        fn aws_examples_at_random_splits(cuts in proptest::collection::vec(0usize..70_000, 0..40)) {
            let body = aws_body(SIGS, b"\r\n");
            let (out, _) = decode_at(Mode::Signed(context(SEED)), DECODED, &body, &cuts).unwrap();
            prop_assert_eq!(out.len(), 66_560);
            let body = aws_body(TRAILER_SIGS, &aws_trailer_block());
            let (out, trailers) = decode_at(Mode::SignedTrailer(context(TRAILER_SEED)), DECODED, &body, &cuts).unwrap();
            prop_assert_eq!(out.len(), 66_560);
            prop_assert_eq!(trailers.len(), 1);
        }

        /// Arbitrary chunkings of arbitrary data round-trip in every mode.
        #[test]
        fn roundtrip(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..6),
            cuts in proptest::collection::vec(0usize..3_000, 0..20),
        ) {
            let ctx = context(SEED);
            let refs: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
            let expected: Vec<u8> = chunks.concat();
            let len = expected.len() as u64;
            let trailer: &[(&str, &str)] = &[("x-amz-checksum-crc32", "AAAAAA==")];
            for (mode, body) in [
                (Mode::Signed(ctx.clone()), encode(Some(&ctx), &refs, None)),
                (Mode::SignedTrailer(ctx.clone()), encode(Some(&ctx), &refs, Some(trailer))),
                (Mode::UnsignedTrailer, encode(None, &refs, Some(trailer))),
            ] {
                let (out, _) = decode_at(mode, len, &body, &cuts).unwrap();
                prop_assert_eq!(&out, &expected);
            }
        }

        /// Garbage never panics and never decodes more than declared.
        #[test]
        fn garbage_is_handled(body in proptest::collection::vec(any::<u8>(), 0..400), declared in 0u64..100) {
            for mode in [Mode::Signed(context(SEED)), Mode::UnsignedTrailer] {
                let mut decoder = ChunkedDecoder::new(mode, declared);
                let mut out = Vec::new();
                let _ = decoder.push(&body, &mut out);
                prop_assert!(out.len() as u64 <= declared);
                let _ = decoder.finish();
            }
        }
    }
}
