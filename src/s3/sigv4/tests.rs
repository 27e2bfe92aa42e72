//! Verification against AWS's published examples and hand-made requests, with a small
//! signer (test-only: integration tests sign with the independent `aws-sigv4` crate).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::percent_encode;

use super::canonical::*;
use super::date::*;
use super::parse::*;
use super::*;

const ACCESS: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const HOST: &str = "examplebucket.s3.amazonaws.com";
const AMZ_DATE: &str = "20130524T000000Z";

/// 2013-05-24T00:00:00Z, the timestamp of every AWS example.
fn example_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_369_353_600)
}

fn lookup(key: &str) -> Option<String> {
    (key == ACCESS).then(|| SECRET.to_string())
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn auth(signed: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS}/20130524/us-east-1/s3/aws4_request,SignedHeaders={signed},Signature={signature}"
    )
}

fn parts<'a>(
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a [(String, String)],
) -> RequestParts<'a> {
    RequestParts {
        method,
        path,
        query,
        headers,
    }
}

#[test]
fn date_parsing() {
    assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
    assert_eq!(parse_amz_date(AMZ_DATE), Some(1_369_353_600));
    assert_eq!(parse_amz_date("20000229T235959Z"), Some(951_868_799));
    assert_eq!(parse_amz_date("20010229T000000Z"), None);
    assert_eq!(parse_amz_date("20130524T240000Z"), None);
    assert_eq!(parse_amz_date("20130524 000000Z"), None);
    assert_eq!(parse_amz_date("2013-05-24T00:00"), None);
    assert_eq!(parse_amz_date("20130524T000000"), None);
    assert_eq!(parse_amz_date("2013052４T00000Z"), None);
}

/// The signing key example from the AWS SigV4 documentation (service iam, 2015-08-30).
#[test]
fn aws_signing_key_example() {
    let key = signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20150830",
        "us-east-1",
        "iam",
    );
    assert_eq!(
        hex::encode(key),
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    );
}

/// AWS "GET Object" example: Range header, empty payload.
#[test]
fn aws_example_get_object_with_range() {
    let sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
    let h = headers(&[
        ("host", HOST),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-date", AMZ_DATE),
        (
            "authorization",
            &auth("host;range;x-amz-content-sha256;x-amz-date", sig),
        ),
    ]);
    let v = verify(&parts("GET", "/test.txt", "", &h), example_time(), lookup).unwrap();
    assert_eq!(v.access_key, ACCESS);
    assert_eq!(v.payload, Payload::Sha256(EMPTY_SHA256.into()));
    assert!(v.signing.is_none());
    assert!(!v.presigned);
    assert_eq!(
        v.signed_headers,
        ["host", "range", "x-amz-content-sha256", "x-amz-date"]
    );
}

fn put_object_headers(path_sig: &str) -> Vec<(String, String)> {
    headers(&[
        ("host", HOST),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        (
            "x-amz-content-sha256",
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        ),
        (
            "authorization",
            &auth(
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                path_sig,
            ),
        ),
    ])
}

/// AWS "PUT Object" example: `$` in the key, signed payload hash.
#[test]
fn aws_example_put_object() {
    let sig = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
    let h = put_object_headers(sig);
    // The key may arrive with `$` raw or encoded; both canonicalise to %24.
    for path in ["/test$file.text", "/test%24file.text"] {
        let v = verify(&parts("PUT", path, "", &h), example_time(), lookup).unwrap();
        assert_eq!(
            v.payload,
            Payload::Sha256(
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072".into()
            )
        );
    }
    // A double-encoded path is a different key and must not verify.
    assert_eq!(
        verify(
            &parts("PUT", "/test%2524file.text", "", &h),
            example_time(),
            lookup
        )
        .unwrap_err(),
        AuthError::SignatureMismatch
    );
}

/// AWS "GET Bucket Lifecycle" example: valueless query parameter.
#[test]
fn aws_example_get_bucket_lifecycle() {
    let sig = "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543";
    let h = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-content-sha256", EMPTY_SHA256),
        (
            "authorization",
            &auth("host;x-amz-content-sha256;x-amz-date", sig),
        ),
    ]);
    for query in ["lifecycle", "lifecycle="] {
        verify(&parts("GET", "/", query, &h), example_time(), lookup).unwrap();
    }
}

/// AWS "GET Bucket (List Objects)" example: query sorting.
#[test]
fn aws_example_list_objects() {
    let sig = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7";
    let h = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-content-sha256", EMPTY_SHA256),
        (
            "authorization",
            &auth("host;x-amz-content-sha256;x-amz-date", sig),
        ),
    ]);
    for query in [
        "max-keys=2&prefix=J",
        "prefix=J&max-keys=2",
        "prefix=%4A&max-keys=2",
    ] {
        verify(&parts("GET", "/", query, &h), example_time(), lookup).unwrap();
    }
    assert_eq!(
        verify(
            &parts("GET", "/", "max-keys=2&prefix=K", &h),
            example_time(),
            lookup
        )
        .unwrap_err(),
        AuthError::SignatureMismatch
    );
}

const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

/// AWS presigned URL example (GET /test.txt, 86400 s).
#[test]
fn aws_example_presigned_url() {
    let h = headers(&[("host", HOST)]);
    let req = parts("GET", "/test.txt", PRESIGNED_QUERY, &h);
    let v = verify(&req, example_time() + Duration::from_secs(86_400), lookup).unwrap();
    assert_eq!(v.payload, Payload::Unsigned);
    assert!(v.presigned);
    assert_eq!(
        verify(&req, example_time() + Duration::from_secs(86_401), lookup).unwrap_err(),
        AuthError::Expired
    );
    assert_eq!(
        verify(&req, example_time() - Duration::from_secs(3_600), lookup).unwrap_err(),
        AuthError::NotYetValid
    );
    // Within the tolerated skew, a URL dated slightly ahead still works.
    verify(&req, example_time() - Duration::from_secs(600), lookup).unwrap();
    let other = parts("GET", "/test2.txt", PRESIGNED_QUERY, &h);
    assert_eq!(
        verify(&other, example_time(), lookup).unwrap_err(),
        AuthError::SignatureMismatch
    );
}

#[test]
fn presigned_helper_reproduces_the_aws_example() {
    let h = headers(&[("host", HOST)]);
    let q = presigned_query(
        &parts("GET", "/test.txt", "", &h),
        ACCESS,
        SECRET,
        "us-east-1",
        AMZ_DATE,
        86_400,
    )
    .unwrap();
    assert_eq!(q, PRESIGNED_QUERY);
}

fn streaming_headers(
    content_sha: &str,
    extra: &[(&str, &str)],
    sig: &str,
) -> Vec<(String, String)> {
    let mut h = headers(&[
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", content_sha),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
    ]);
    h.extend(headers(extra));
    let mut names: Vec<&str> = h.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    let signed = names.join(";");
    h.push(("authorization".into(), auth(&signed, sig)));
    h
}

/// AWS chunked upload example: seed signature of the headers.
#[test]
fn aws_example_streaming_seed_signature() {
    let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    let h = streaming_headers(STREAMING_SIGNED, &[("content-length", "66824")], seed);
    let v = verify(
        &parts("PUT", "/examplebucket/chunkObject.txt", "", &h),
        example_time(),
        lookup,
    )
    .unwrap();
    assert_eq!(v.payload, Payload::StreamingSigned);
    let ctx = v.signing.unwrap();
    assert_eq!(ctx.seed_signature, seed);
    assert_eq!(ctx.date_time, AMZ_DATE);
    assert_eq!(ctx.scope, "20130524/us-east-1/s3/aws4_request");
    assert!(!format!("{ctx:?}").contains(&hex::encode(ctx.key)));
    // The published chunk signatures chain from the seed.
    let mut prev = seed.to_string();
    for (len, expected) in [
        (
            65_536,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        ),
        (
            1_024,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        ),
        (
            0,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ),
    ] {
        let hash: [u8; 32] = Sha256::digest(vec![b'a'; len]).into();
        prev = hex::encode(ctx.chunk_signature(&prev, &hash));
        assert_eq!(prev, expected);
    }
}

/// AWS chunked upload with trailers example: seed, chunk and trailer signatures.
#[test]
fn aws_example_streaming_trailer_signatures() {
    let seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
    let h = streaming_headers(
        STREAMING_SIGNED_TRAILER,
        &[("x-amz-trailer", "x-amz-checksum-crc32c")],
        seed,
    );
    let v = verify(
        &parts("PUT", "/examplebucket/chunkObject.txt", "", &h),
        example_time(),
        lookup,
    )
    .unwrap();
    assert_eq!(v.payload, Payload::StreamingSignedTrailer);
    let ctx = v.signing.unwrap();
    let mut prev = ctx.seed_signature.clone();
    for (len, expected) in [
        (
            65_536,
            "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
        ),
        (
            1_024,
            "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
        ),
        (
            0,
            "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
        ),
    ] {
        let hash: [u8; 32] = Sha256::digest(vec![b'a'; len]).into();
        prev = hex::encode(ctx.chunk_signature(&prev, &hash));
        assert_eq!(prev, expected);
    }
    let trailer: [u8; 32] = Sha256::digest(b"x-amz-checksum-crc32c:sOO8/Q==\n").into();
    assert_eq!(
        hex::encode(ctx.trailer_signature(&prev, &trailer)),
        "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
    );
}

#[test]
fn unsigned_trailer_mode_has_no_signing_context() {
    let h = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-content-sha256", STREAMING_UNSIGNED_TRAILER),
    ]);
    let mut signed = h.clone();
    let value =
        authorization_header(&parts("PUT", "/k", "", &h), ACCESS, SECRET, "us-east-1").unwrap();
    signed.push(("authorization".into(), value));
    let v = verify(&parts("PUT", "/k", "", &signed), example_time(), lookup).unwrap();
    assert_eq!(v.payload, Payload::StreamingUnsignedTrailer);
    assert!(v.signing.is_none());
}

/// Signs `base` with the helper, then verifies; returns the verifier's answer.
fn roundtrip(
    method: &str,
    path: &str,
    query: &str,
    base: &[(&str, &str)],
    region: &str,
    now: SystemTime,
) -> Result<Verified, AuthError> {
    let h = headers(base);
    let value = authorization_header(&parts(method, path, query, &h), ACCESS, SECRET, region)?;
    let mut signed = h.clone();
    signed.push(("authorization".into(), value));
    verify(&parts(method, path, query, &signed), now, lookup)
}

#[test]
fn any_region_is_accepted() {
    for region in ["us-east-1", "eu-central-1", "nas", "garage"] {
        roundtrip(
            "GET",
            "/b/k",
            "",
            &[("host", "nas.local:9000"), ("x-amz-date", AMZ_DATE)],
            region,
            example_time(),
        )
        .unwrap();
    }
}

#[test]
fn service_must_be_s3() {
    let h = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        (
            "authorization",
            &format!("AWS4-HMAC-SHA256 Credential={ACCESS}/20130524/us-east-1/iam/aws4_request,SignedHeaders=host;x-amz-date,Signature={}", "0".repeat(64)),
        ),
    ]);
    let err = verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err();
    assert!(matches!(err, AuthError::MalformedHeader(_)), "{err:?}");
    assert_eq!(err.s3_code(), "AuthorizationHeaderMalformed");
    assert_eq!(err.http_status(), 400);
}

#[test]
fn clock_skew_is_enforced() {
    let base = [("host", HOST), ("x-amz-date", AMZ_DATE)];
    for offset in [0i64, 899, -899, 900, -900] {
        let now = if offset >= 0 {
            example_time() + Duration::from_secs(offset.unsigned_abs())
        } else {
            example_time() - Duration::from_secs(offset.unsigned_abs())
        };
        roundtrip("GET", "/", "", &base, "us-east-1", now).unwrap();
    }
    for offset in [901u64, 3_600] {
        for now in [
            example_time() + Duration::from_secs(offset),
            example_time() - Duration::from_secs(offset),
        ] {
            let err = roundtrip("GET", "/", "", &base, "us-east-1", now).unwrap_err();
            assert_eq!(err, AuthError::RequestTimeTooSkewed);
            assert_eq!(err.s3_code(), "RequestTimeTooSkewed");
        }
    }
}

#[test]
fn date_header_is_used_without_x_amz_date() {
    // Sign with x-amz-date, then move the timestamp to the Date header: the
    // string to sign is identical, but the signed header list differs, so
    // build the request by hand.
    let h = headers(&[("host", HOST), ("date", AMZ_DATE)]);
    let names = vec!["date".to_string(), "host".to_string()];
    let canonical = canonical_request(
        &parts("GET", "/", "", &h),
        &[],
        false,
        &names,
        "date;host",
        EMPTY_SHA256,
    )
    .unwrap();
    let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
    let sig = hmac_sha256(
        &key,
        string_to_sign(AMZ_DATE, "20130524/us-east-1/s3/aws4_request", &canonical).as_bytes(),
    );
    let mut signed = h.clone();
    signed.push(("authorization".into(), auth("date;host", &hex::encode(sig))));
    verify(&parts("GET", "/", "", &signed), example_time(), lookup).unwrap();
    // An RFC 1123 Date alone cannot be used in a SigV4 string to sign.
    let h = headers(&[
        ("host", HOST),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("authorization", &auth("date;host", &hex::encode(sig))),
    ]);
    assert_eq!(
        verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err(),
        AuthError::MissingDate
    );
}

#[test]
fn missing_date_is_access_denied() {
    let h = headers(&[
        ("host", HOST),
        ("authorization", &auth("host", &"0".repeat(64))),
    ]);
    let err = verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err();
    assert_eq!(err, AuthError::MissingDate);
    assert_eq!(err.s3_code(), "AccessDenied");
}

#[test]
fn credential_date_must_match_request_date() {
    let h = headers(&[
        ("host", HOST),
        ("x-amz-date", "20130525T000000Z"),
        ("authorization", &auth("host;x-amz-date", &"0".repeat(64))),
    ]);
    let now = example_time() + Duration::from_secs(86_400);
    assert!(matches!(
        verify(&parts("GET", "/", "", &h), now, lookup).unwrap_err(),
        AuthError::MalformedHeader(_)
    ));
}

#[test]
fn content_sha256_values() {
    let hash = "A".repeat(64);
    for (value, expected) in [
        (UNSIGNED_PAYLOAD, Ok(Payload::Unsigned)),
        (STREAMING_SIGNED, Ok(Payload::StreamingSigned)),
        (
            STREAMING_SIGNED_TRAILER,
            Ok(Payload::StreamingSignedTrailer),
        ),
        (
            STREAMING_UNSIGNED_TRAILER,
            Ok(Payload::StreamingUnsignedTrailer),
        ),
        (hash.as_str(), Ok(Payload::Sha256("a".repeat(64)))),
        ("abc", Err(AuthError::InvalidContentSha256)),
        ("unsigned-payload", Err(AuthError::InvalidContentSha256)),
        (&"g".repeat(64), Err(AuthError::InvalidContentSha256)),
    ] {
        let got = roundtrip(
            "PUT",
            "/b/k",
            "",
            &[
                ("host", HOST),
                ("x-amz-date", AMZ_DATE),
                ("x-amz-content-sha256", value),
            ],
            "us-east-1",
            example_time(),
        )
        .map(|v| v.payload);
        assert_eq!(got, expected, "{value}");
    }
    let err = roundtrip(
        "PUT",
        "/b/k",
        "",
        &[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            (
                "x-amz-content-sha256",
                "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
            ),
        ],
        "us-east-1",
        example_time(),
    )
    .unwrap_err();
    assert!(matches!(err, AuthError::UnsupportedMechanism(_)));
    // Without the header the body must be empty.
    let v = roundtrip(
        "GET",
        "/",
        "",
        &[("host", HOST), ("x-amz-date", AMZ_DATE)],
        "us-east-1",
        example_time(),
    )
    .unwrap();
    assert_eq!(v.payload, Payload::Sha256(EMPTY_SHA256.into()));
}

#[test]
fn header_values_are_trimmed_and_collapsed() {
    let h = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-meta-a", "  one   two\t\tthree  "),
        ("x-amz-meta-b", "x"),
        ("x-amz-meta-b", "  y  z "),
    ]);
    let names: Vec<String> = ["host", "x-amz-date", "x-amz-meta-a", "x-amz-meta-b"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let canonical = canonical_request(
        &parts("GET", "/", "", &h),
        &[],
        false,
        &names,
        "host;x-amz-date;x-amz-meta-a;x-amz-meta-b",
        EMPTY_SHA256,
    )
    .unwrap();
    assert!(canonical.contains("\nx-amz-meta-a:one two three\nx-amz-meta-b:x,y z\n\n"));
    // A differently spaced copy of the same value verifies against the same signature.
    let value =
        authorization_header(&parts("GET", "/", "", &h), ACCESS, SECRET, "us-east-1").unwrap();
    let mut respaced = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-meta-a", "one two three"),
        ("x-amz-meta-b", "x"),
        ("x-amz-meta-b", "y    z"),
    ]);
    respaced.push(("authorization".into(), value.clone()));
    verify(&parts("GET", "/", "", &respaced), example_time(), lookup).unwrap();
    // Changing a signed value (or the order of repeated values) breaks it.
    let mut tampered = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-meta-a", "one two three"),
        ("x-amz-meta-b", "y z"),
        ("x-amz-meta-b", "x"),
    ]);
    tampered.push(("authorization".into(), value));
    assert_eq!(
        verify(&parts("GET", "/", "", &tampered), example_time(), lookup).unwrap_err(),
        AuthError::SignatureMismatch
    );
}

#[test]
fn canonical_query_encoding() {
    let q = parse_query("b=2&a=z&a=y&empty&sp=a+b&pct=%2B%2f&u=%C3%A9&t=~-._&&");
    assert_eq!(
        canonical_query(&q, false),
        "a=y&a=z&b=2&empty=&pct=%2B%2F&sp=a%20b&t=~-._&u=%C3%A9"
    );
    let q = parse_query("X-Amz-Signature=abc&x=1");
    assert_eq!(canonical_query(&q, true), "x=1");
    assert_eq!(canonical_query(&q, false), "X-Amz-Signature=abc&x=1");
}

#[test]
fn canonical_uri_encoding() {
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("/"), "/");
    assert_eq!(canonical_uri("/b/a b+c"), "/b/a%20b%2Bc");
    assert_eq!(canonical_uri("/b/a%20b%2Bc"), "/b/a%20b%2Bc");
    assert_eq!(canonical_uri("/b//./../k~"), "/b//./../k~");
    assert_eq!(canonical_uri("/b/%7Ek%7e"), "/b/~k~");
    assert_eq!(canonical_uri("/b/é"), "/b/%C3%A9");
    assert_eq!(canonical_uri("/b/100%"), "/b/100%25");
    assert_eq!(canonical_uri("/b/%zz"), "/b/%25zz");
}

#[test]
fn tampering_is_detected() {
    let base = [
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-meta-k", "v"),
    ];
    let h = headers(&base);
    let value = authorization_header(
        &parts("PUT", "/b/k", "a=1", &h),
        ACCESS,
        SECRET,
        "us-east-1",
    )
    .unwrap();
    let check = |method: &str, path: &str, query: &str, hs: &[(&str, &str)], authz: &str| {
        let mut hs = headers(hs);
        hs.push(("authorization".into(), authz.to_string()));
        verify(&parts(method, path, query, &hs), example_time(), lookup)
    };
    check("PUT", "/b/k", "a=1", &base, &value).unwrap();
    let mismatch = Err(AuthError::SignatureMismatch);
    assert_eq!(
        check("GET", "/b/k", "a=1", &base, &value).map(|_| ()),
        mismatch
    );
    assert_eq!(
        check("PUT", "/b/K", "a=1", &base, &value).map(|_| ()),
        mismatch
    );
    assert_eq!(
        check("PUT", "/b/k", "a=2", &base, &value).map(|_| ()),
        mismatch
    );
    assert_eq!(
        check("PUT", "/b/k", "a=1&b", &base, &value).map(|_| ()),
        mismatch
    );
    let mut other_meta = base;
    other_meta[3] = ("x-amz-meta-k", "w");
    assert_eq!(
        check("PUT", "/b/k", "a=1", &other_meta, &value).map(|_| ()),
        mismatch
    );
    let mut other_host = base;
    other_host[0] = ("host", "evil.example");
    assert_eq!(
        check("PUT", "/b/k", "a=1", &other_host, &value).map(|_| ()),
        mismatch
    );
    let mut other_payload = base;
    other_payload[2] = ("x-amz-content-sha256", UNSIGNED_PAYLOAD);
    assert_eq!(
        check("PUT", "/b/k", "a=1", &other_payload, &value).map(|_| ()),
        mismatch
    );
    // A signed header that disappeared.
    assert_eq!(
        check("PUT", "/b/k", "a=1", &base[..3], &value).map(|_| ()),
        mismatch
    );
    // Every single-character change of the signature.
    let pos = value.find("Signature=").unwrap() + "Signature=".len();
    for i in pos..value.len() {
        let mut bytes = value.clone().into_bytes();
        bytes[i] = if bytes[i] == b'0' { b'1' } else { b'0' };
        let bad = String::from_utf8(bytes).unwrap();
        assert_eq!(
            check("PUT", "/b/k", "a=1", &base, &bad).map(|_| ()),
            mismatch
        );
    }
    // The wrong secret.
    let wrong = authorization_header(
        &parts("PUT", "/b/k", "a=1", &h),
        ACCESS,
        "nope",
        "us-east-1",
    )
    .unwrap();
    assert_eq!(
        check("PUT", "/b/k", "a=1", &base, &wrong).map(|_| ()),
        mismatch
    );
}

#[test]
fn unknown_access_key() {
    let h = headers(&[("host", HOST), ("x-amz-date", AMZ_DATE)]);
    let value =
        authorization_header(&parts("GET", "/", "", &h), "NOSUCHKEY", SECRET, "us-east-1").unwrap();
    let mut signed = h.clone();
    signed.push(("authorization".into(), value));
    let err = verify(&parts("GET", "/", "", &signed), example_time(), lookup).unwrap_err();
    assert_eq!(err, AuthError::UnknownAccessKey);
    assert_eq!(err.s3_code(), "InvalidAccessKeyId");
    assert_eq!(err.http_status(), 403);
}

#[test]
fn host_must_be_signed() {
    let h = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("authorization", &auth("x-amz-date", &"0".repeat(64))),
    ]);
    let err = verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err();
    assert!(matches!(err, AuthError::MalformedHeader(ref m) if m.contains("host")));
    let q = PRESIGNED_QUERY.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range");
    let h = headers(&[("host", HOST), ("range", "bytes=0-1")]);
    let err = verify(&parts("GET", "/test.txt", &q, &h), example_time(), lookup).unwrap_err();
    assert!(matches!(err, AuthError::MalformedQuery(_)));
    assert_eq!(err.s3_code(), "AuthorizationQueryParametersError");
}

#[test]
fn expect_header_may_have_been_consumed() {
    let h = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("expect", "100-continue"),
    ]);
    let value =
        authorization_header(&parts("PUT", "/b/k", "", &h), ACCESS, SECRET, "us-east-1").unwrap();
    let signed = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("authorization", &value),
    ]);
    verify(&parts("PUT", "/b/k", "", &signed), example_time(), lookup).unwrap();
}

#[test]
fn malformed_authorization_headers() {
    let cases = [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 ",
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=zz",
        "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=abc",
        "AWS4-HMAC-SHA256 Credential=20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=abc",
        "AWS4-HMAC-SHA256 Credential=a/2013052/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=abc",
        "AWS4-HMAC-SHA256 Credential=a/20130524//s3/aws4_request,SignedHeaders=host,Signature=abc",
        "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws5_request,SignedHeaders=host,Signature=abc",
        "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;;x,Signature=abc",
        "AWS4-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=abc",
        "AWS4-HMAC-SHA256 Credential=a/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature=abc,Foo=bar",
        "AWS4-HMAC-SHA256 garbage",
    ];
    for value in cases {
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", AMZ_DATE),
            ("authorization", value),
        ]);
        let err = verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err();
        assert!(
            matches!(err, AuthError::MalformedHeader(_)),
            "{value}: {err:?}"
        );
    }
    for value in [
        "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
        "AWS4-ECDSA-P256-SHA256 Credential=x",
        "Bearer x",
    ] {
        let h = headers(&[("host", HOST), ("authorization", value)]);
        let err = verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err();
        assert!(
            matches!(err, AuthError::UnsupportedMechanism(_)),
            "{value}: {err:?}"
        );
    }
    // Spaces after commas are optional; both forms parse.
    let spaced = auth("host;x-amz-date", &"0".repeat(64)).replace(',', ", ");
    let h = headers(&[
        ("host", HOST),
        ("x-amz-date", AMZ_DATE),
        ("authorization", &spaced),
    ]);
    assert_eq!(
        verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err(),
        AuthError::SignatureMismatch
    );
}

#[test]
fn mechanism_selection() {
    let h = headers(&[("host", HOST)]);
    assert_eq!(
        verify(&parts("GET", "/", "", &h), example_time(), lookup).unwrap_err(),
        AuthError::Missing
    );
    assert!(matches!(
        verify(
            &parts("GET", "/k", "AWSAccessKeyId=x&Expires=1&Signature=y", &h),
            example_time(),
            lookup
        )
        .unwrap_err(),
        AuthError::UnsupportedMechanism(_)
    ));
    let both = headers(&[
        ("host", HOST),
        ("authorization", &auth("host", &"0".repeat(64))),
    ]);
    assert_eq!(
        verify(
            &parts("GET", "/test.txt", PRESIGNED_QUERY, &both),
            example_time(),
            lookup
        )
        .unwrap_err(),
        AuthError::MultipleMechanisms
    );
    let twice = headers(&[
        ("host", HOST),
        ("authorization", "x"),
        ("authorization", "y"),
    ]);
    assert!(matches!(
        verify(&parts("GET", "/", "", &twice), example_time(), lookup).unwrap_err(),
        AuthError::MalformedHeader(_)
    ));
}

#[test]
fn presigned_parameter_errors() {
    let h = headers(&[("host", HOST)]);
    let run = |q: String| verify(&parts("GET", "/test.txt", &q, &h), example_time(), lookup);
    for (from, to) in [
        ("X-Amz-Expires=86400", "X-Amz-Expires=604801"),
        ("X-Amz-Expires=86400", "X-Amz-Expires=-5"),
        ("X-Amz-Expires=86400", "X-Amz-Expires=1e3"),
        ("X-Amz-Expires=86400&", ""),
        (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Algorithm=AWS4-HMAC-SHA1",
        ),
        ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=2013-05-24"),
        ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130525T000000Z"),
        ("%2Fs3%2F", "%2Fsts%2F"),
        ("X-Amz-Signature=aeeed9", "X-Amz-Signature=zzzzz9"),
        (
            "X-Amz-SignedHeaders=host",
            "X-Amz-SignedHeaders=host&X-Amz-SignedHeaders=host",
        ),
    ] {
        let q = PRESIGNED_QUERY.replace(from, to);
        assert_ne!(q, PRESIGNED_QUERY);
        let err = run(q).unwrap_err();
        assert!(matches!(err, AuthError::MalformedQuery(_)), "{to}: {err:?}");
    }
    // A zero lifetime is an URL expired from the start, as S3 treats it.
    let q = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=0");
    assert_eq!(run(q).unwrap_err(), AuthError::Expired);
    // Maximum expiry is accepted (the signature then fails, which is fine).
    let q = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=604800");
    assert_eq!(run(q).unwrap_err(), AuthError::SignatureMismatch);
    // Extra parameters are part of the signature.
    assert_eq!(
        run(format!("{PRESIGNED_QUERY}&x-id=GetObject")).unwrap_err(),
        AuthError::SignatureMismatch
    );
    // Streaming payloads cannot be presigned.
    assert!(matches!(
        run(format!(
            "{PRESIGNED_QUERY}&X-Amz-Content-Sha256={STREAMING_SIGNED}"
        ))
        .unwrap_err(),
        AuthError::MalformedQuery(_)
    ));
}

#[test]
fn presigned_roundtrip_with_extra_query_and_payload_hash() {
    let h = headers(&[("host", "nas.local:9000")]);
    let req = parts("PUT", "/bucket/a%20key", "x-id=PutObject&partNumber=2", &h);
    let q = presigned_query(&req, ACCESS, SECRET, "home", AMZ_DATE, 60).unwrap();
    let v = verify(
        &parts("PUT", "/bucket/a%20key", &q, &h),
        example_time(),
        lookup,
    )
    .unwrap();
    assert_eq!(v.payload, Payload::Unsigned);
    assert_eq!(
        verify(
            &parts("PUT", "/bucket/a%20key", &q, &h),
            example_time() + Duration::from_secs(61),
            lookup
        )
        .unwrap_err(),
        AuthError::Expired
    );
    let other_host = headers(&[("host", "other:9000")]);
    assert_eq!(
        verify(
            &parts("PUT", "/bucket/a%20key", &q, &other_host),
            example_time(),
            lookup
        )
        .unwrap_err(),
        AuthError::SignatureMismatch
    );
}

#[test]
fn error_codes() {
    assert_eq!(AuthError::Missing.s3_code(), "AccessDenied");
    assert_eq!(AuthError::Expired.s3_code(), "AccessDenied");
    assert_eq!(AuthError::Expired.to_string(), "Request has expired");
    assert_eq!(
        AuthError::SignatureMismatch.s3_code(),
        "SignatureDoesNotMatch"
    );
    assert_eq!(AuthError::SignatureMismatch.http_status(), 403);
    assert_eq!(AuthError::MultipleMechanisms.http_status(), 400);
    assert_eq!(AuthError::InvalidContentSha256.s3_code(), "InvalidArgument");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the path, query and metadata, a request signed by the helper verifies.
        #[test]
        fn signed_requests_verify(
            path in "/[a-zA-Z0-9 ~!$&'()*+,;=:@%/._-]{0,40}",
            query in proptest::collection::vec(("[a-zA-Z0-9._~-]{1,8}", "[ -~]{0,12}"), 0..4),
            meta in "[ -~]{0,30}",
            region in "[a-z0-9-]{1,12}",
        ) {
            let query: Vec<String> = query
                .iter()
                .map(|(k, v)| format!("{k}={}", percent_encode(v.as_bytes(), UNRESERVED)))
                .collect();
            let query = query.join("&");
            let v = roundtrip(
                "PUT",
                &path,
                &query,
                &[("host", HOST), ("x-amz-date", AMZ_DATE), ("x-amz-meta-m", &meta)],
                &region,
                example_time(),
            );
            prop_assert!(v.is_ok(), "{:?}", v);
        }

        /// The verifier never panics on arbitrary Authorization headers and query strings.
        #[test]
        fn arbitrary_input_does_not_panic(authz in "\\PC{0,200}", query in "\\PC{0,200}", path in "\\PC{0,50}") {
            let h = headers(&[("host", HOST), ("x-amz-date", AMZ_DATE), ("authorization", &authz)]);
            let _ = verify(&parts("GET", &path, &query, &h), example_time(), lookup);
            let h = headers(&[("host", HOST)]);
            let _ = verify(&parts("GET", &path, &format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&{query}"), &h), example_time(), lookup);
        }
    }
}

/// Builds an `Authorization` header value signing every header in `req`.
///
/// `req.headers` must contain `host` and `x-amz-date`; the payload hash is
/// taken from `x-amz-content-sha256` (the empty-body hash if absent).
fn authorization_header(
    req: &RequestParts<'_>,
    access_key: &str,
    secret: &str,
    region: &str,
) -> Result<String, AuthError> {
    let date_time = single_header(req.headers, "x-amz-date")
        .ok()
        .flatten()
        .filter(|d| parse_amz_date(d).is_some())
        .ok_or(AuthError::MissingDate)?;
    let payload_hash = single_header(req.headers, "x-amz-content-sha256")
        .map_err(|()| AuthError::InvalidContentSha256)?
        .map_or(EMPTY_SHA256, str::trim);
    let mut names: Vec<String> = req
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    if !names.iter().any(|n| n == "host") {
        return Err(AuthError::MalformedHeader(
            "the host header must be signed".into(),
        ));
    }
    let signed_line = names.join(";");
    let scope = format!("{}/{}/s3/aws4_request", &date_time[..8], region);
    let canonical = canonical_request(
        req,
        &parse_query(req.query),
        false,
        &names,
        &signed_line,
        payload_hash,
    )?;
    let key = signing_key(secret, &date_time[..8], region, "s3");
    let signature = hmac_sha256(
        &key,
        string_to_sign(date_time, &scope, &canonical).as_bytes(),
    );
    Ok(format!(
        "{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_line}, Signature={}",
        hex::encode(signature)
    ))
}

/// Builds the query string of a presigned URL signing only `host`.
///
/// Returns `req.query` extended with the `X-Amz-*` parameters and the signature.
fn presigned_query(
    req: &RequestParts<'_>,
    access_key: &str,
    secret: &str,
    region: &str,
    date_time: &str,
    expires_secs: u64,
) -> Result<String, AuthError> {
    if parse_amz_date(date_time).is_none() {
        return Err(AuthError::MissingDate);
    }
    let scope = format!("{}/{}/s3/aws4_request", &date_time[..8], region);
    let credential = format!("{access_key}/{scope}");
    let mut query = req.query.to_string();
    for (name, value) in [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", date_time),
        ("X-Amz-Expires", &expires_secs.to_string()),
        ("X-Amz-SignedHeaders", "host"),
    ] {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.extend(percent_encode(value.as_bytes(), UNRESERVED));
    }
    let names = ["host".to_string()];
    let canonical = canonical_request(
        req,
        &parse_query(&query),
        false,
        &names,
        "host",
        UNSIGNED_PAYLOAD,
    )?;
    let key = signing_key(secret, &date_time[..8], region, "s3");
    let signature = hmac_sha256(
        &key,
        string_to_sign(date_time, &scope, &canonical).as_bytes(),
    );
    query.push_str("&X-Amz-Signature=");
    query.push_str(&hex::encode(signature));
    Ok(query)
}
