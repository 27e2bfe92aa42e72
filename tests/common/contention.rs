//! Contention on hot keys from many clients through several instances, with self-verifying
//! bodies: shared by the single-share and the GlusterFS shared-mode tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use nasgate::debug::store::{body, is_whole, Rng};

use super::{Server, ACCESS_KEY, SECRET_KEY};

/// An S3 client for `endpoint` with the test credentials and no retries.
pub fn client(endpoint: &str) -> Client {
    let creds = aws_sdk_s3::config::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(60))
                .connect_timeout(Duration::from_secs(5))
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// GETs a whole object: its bytes and unquoted ETag.
pub async fn read_all(c: &Client, bucket: &str, key: &str) -> Result<(Vec<u8>, String), String> {
    let r = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let etag = r.e_tag().unwrap_or("").trim_matches('"').to_string();
    let b = r
        .body
        .collect()
        .await
        .map_err(|e| format!("{e:?}"))?
        .into_bytes()
        .to_vec();
    Ok((b, etag))
}

/// Lowercase hex MD5.
pub fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

/// What the contention workers saw.
#[derive(Default)]
pub struct Tally {
    pub ops: AtomicU64,
    pub torn: AtomicU64,
    pub etag_mismatch: AtomicU64,
    pub server_errors: AtomicU64,
    pub slow_down: AtomicU64,
    pub connection_errors: AtomicU64,
    pub other_errors: AtomicU64,
}

/// Counts one failed request by kind.
pub fn classify<E: std::fmt::Debug>(
    t: &Tally,
    e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) {
    match e {
        aws_sdk_s3::error::SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            if status == 503 {
                t.slow_down.fetch_add(1, Ordering::Relaxed);
            } else if status >= 500 {
                eprintln!("server error: {e:?}");
                t.server_errors.fetch_add(1, Ordering::Relaxed);
            } else if status != 404 {
                eprintln!("unexpected error: {e:?}");
                t.other_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        // The instance this client talked to was killed: its clients see the connection fail.
        aws_sdk_s3::error::SdkError::DispatchFailure(_)
        | aws_sdk_s3::error::SdkError::ResponseError(_)
        | aws_sdk_s3::error::SdkError::TimeoutError(_) => {
            t.connection_errors.fetch_add(1, Ordering::Relaxed);
        }
        other => {
            eprintln!("unexpected error: {other:?}");
            t.other_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One client hammering four hot keys of bucket `hot` through random endpoints until `until`.
pub async fn worker(
    endpoints: Arc<std::sync::Mutex<Vec<String>>>,
    seed: u64,
    until: Instant,
    t: Arc<Tally>,
) {
    let mut rng = Rng::new(seed);
    let mut clients: std::collections::HashMap<String, Client> = Default::default();
    while Instant::now() < until {
        let ep = {
            let eps = endpoints.lock().unwrap();
            eps[(rng.next_u64() % eps.len() as u64) as usize].clone()
        };
        let c = clients
            .entry(ep.clone())
            .or_insert_with(|| client(&ep))
            .clone();
        let key = format!("hot/{}", rng.next_u64() % 4);
        t.ops.fetch_add(1, Ordering::Relaxed);
        match rng.next_u64() % 20 {
            0..=6 => {
                let data = body(rng.next_u64(), (rng.next_u64() % 300_000) as usize);
                if let Err(e) = c
                    .put_object()
                    .bucket("hot")
                    .key(&key)
                    .body(ByteStream::from(data))
                    .send()
                    .await
                {
                    classify(&t, &e);
                }
            }
            7..=13 => match c.get_object().bucket("hot").key(&key).send().await {
                Ok(r) => {
                    let etag = r.e_tag().unwrap_or("").trim_matches('"').to_string();
                    match r.body.collect().await {
                        Ok(b) => {
                            let b = b.into_bytes();
                            if !is_whole(&b) {
                                eprintln!("torn read of {key}: {} bytes", b.len());
                                t.torn.fetch_add(1, Ordering::Relaxed);
                            } else if !etag.contains('-') && md5_hex(&b) != etag {
                                eprintln!("etag mismatch on {key}");
                                t.etag_mismatch.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            t.connection_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Err(e) => classify(&t, &e),
            },
            14..=15 => {
                if let Err(e) = c.head_object().bucket("hot").key(&key).send().await {
                    classify(&t, &e);
                }
            }
            16..=17 => {
                if let Err(e) = c.delete_object().bucket("hot").key(&key).send().await {
                    classify(&t, &e);
                }
            }
            _ => {
                // A small multipart upload of the same hot key, parts via this instance.
                let parts: Vec<Vec<u8>> = {
                    let whole = body(rng.next_u64(), 5 * 1024 * 1024 + 1000);
                    vec![
                        whole[..5 * 1024 * 1024].to_vec(),
                        whole[5 * 1024 * 1024..].to_vec(),
                    ]
                };
                let r: Result<(), ()> = async {
                    let id = c
                        .create_multipart_upload()
                        .bucket("hot")
                        .key(&key)
                        .send()
                        .await
                        .map_err(|e| classify(&t, &e))?;
                    let id = id.upload_id().unwrap_or_default().to_string();
                    let mut done = Vec::new();
                    for (i, p) in parts.iter().enumerate() {
                        let r = c
                            .upload_part()
                            .bucket("hot")
                            .key(&key)
                            .upload_id(&id)
                            .part_number(i as i32 + 1)
                            .body(ByteStream::from(p.clone()))
                            .send()
                            .await
                            .map_err(|e| classify(&t, &e))?;
                        done.push(
                            CompletedPart::builder()
                                .part_number(i as i32 + 1)
                                .e_tag(r.e_tag().unwrap_or_default())
                                .build(),
                        );
                    }
                    c.complete_multipart_upload()
                        .bucket("hot")
                        .key(&key)
                        .upload_id(&id)
                        .multipart_upload(
                            CompletedMultipartUpload::builder()
                                .set_parts(Some(done))
                                .build(),
                        )
                        .send()
                        .await
                        .map_err(|e| classify(&t, &e))?;
                    Ok(())
                }
                .await;
                let _ = r;
            }
        }
    }
}

/// Three instances, instance i on `shares[i % len]` (views of one share), under 12 workers on
/// hot keys for `run_for`, instances SIGKILLed and restarted when `kill`; asserts nothing tore,
/// nothing answered 5xx other than SlowDown, and all instances agree afterwards.
pub async fn torture(shares: &[PathBuf], kill: bool, run_for: Duration) {
    let share_of = |i: usize| shares[i % shares.len()].clone();
    let mut servers: Vec<Server> = (0..3)
        .map(|i| Server::start(&share_of(i), &["--lock-timeout", "10"]))
        .collect();
    let endpoints = Arc::new(std::sync::Mutex::new(
        servers.iter().map(|s| s.endpoint()).collect::<Vec<_>>(),
    ));
    client(&servers[0].endpoint())
        .create_bucket()
        .bucket("hot")
        .send()
        .await
        .unwrap();
    let tally = Arc::new(Tally::default());
    let until = Instant::now() + run_for;
    let workers: Vec<_> = (0..12)
        .map(|i| tokio::spawn(worker(endpoints.clone(), 1000 + i, until, tally.clone())))
        .collect();
    let mut kills = 0;
    if kill {
        let mut rng = Rng::new(42);
        // Kill a random instance every ~2 s and start a fresh one in its place; stop a few
        // seconds before the end so the last replacement's startup sweep has run.
        while Instant::now() + Duration::from_secs(3) < until {
            tokio::time::sleep(Duration::from_millis(1500 + rng.next_u64() % 1000)).await;
            let victim = (rng.next_u64() % 3) as usize;
            servers[victim].kill();
            kills += 1;
            let fresh = Server::start(&share_of(victim), &["--lock-timeout", "10"]);
            endpoints.lock().unwrap()[victim] = fresh.endpoint();
            servers[victim] = fresh;
        }
    }
    for w in workers {
        w.await.unwrap();
    }
    let t = &tally;
    let ops = t.ops.load(Ordering::Relaxed);
    let slow = t.slow_down.load(Ordering::Relaxed);
    eprintln!(
        "torture (kill={kill}): {ops} operations, {kills} instances killed, torn {}, etag mismatches {}, 5xx {}, other errors {}, connection errors {}, 503 SlowDown {} ({:.2}%)",
        t.torn.load(Ordering::Relaxed),
        t.etag_mismatch.load(Ordering::Relaxed),
        t.server_errors.load(Ordering::Relaxed),
        t.other_errors.load(Ordering::Relaxed),
        t.connection_errors.load(Ordering::Relaxed),
        slow,
        100.0 * slow as f64 / ops.max(1) as f64
    );
    assert_eq!(t.torn.load(Ordering::Relaxed), 0, "torn reads");
    assert_eq!(
        t.etag_mismatch.load(Ordering::Relaxed),
        0,
        "ETag/body mismatches"
    );
    assert_eq!(
        t.server_errors.load(Ordering::Relaxed),
        0,
        "5xx other than SlowDown"
    );
    assert_eq!(
        t.other_errors.load(Ordering::Relaxed),
        0,
        "unexpected errors"
    );
    assert!(ops > 100, "too little load to mean anything");
    if !kill {
        assert_eq!(t.connection_errors.load(Ordering::Relaxed), 0);
    }
    // Every object reads back whole, and the same, through every instance.
    for k in 0..4 {
        let key = format!("hot/{k}");
        let mut seen = None;
        for s in &servers {
            let got = read_all(&client(&s.endpoint()), "hot", &key)
                .await
                .ok()
                .map(|(b, e)| {
                    assert!(is_whole(&b), "{key} torn after the run");
                    e
                });
            if let Some(prev) = &seen {
                assert_eq!(prev, &got, "instances disagree on {key}");
            }
            seen = Some(got);
        }
    }
    // The graceful stop is SIGTERM's; a Windows run (under Wine) has no way to send a
    // console stop to a child, so there the instances are killed and fsck checks the rest.
    #[cfg(unix)]
    for s in &mut servers {
        assert!(s.stop().success(), "an instance did not stop cleanly");
    }
    #[cfg(windows)]
    {
        for s in &mut servers {
            s.kill();
        }
        // The killed instances' staging directories are what a later instance's startup
        // sweep removes; fsck --repair removes them the same way, and then nothing else
        // may be wrong.
        let repaired = std::process::Command::new(env!("CARGO_BIN_EXE_nasgate"))
            .args(["fsck", "--repair"])
            .arg(&shares[0])
            .output()
            .unwrap();
        assert!(
            repaired.status.success(),
            "{}",
            String::from_utf8_lossy(&repaired.stdout)
        );
    }
    assert_fsck_clean(&shares[0]);
}

/// `nasgate fsck` finds nothing to repair on `share`.
pub fn assert_fsck_clean(share: &Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nasgate"))
        .arg("fsck")
        .arg(share)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    // Uploads cut short by a kill are young, not abandoned; staging dirs of killed instances
    // are swept by the instances started after them.
    assert!(out.status.success(), "fsck found problems:\n{text}");
}
