//! Multipart upload of one large object, parts in parallel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hyper::Method;

use super::list::elements;
use super::{connect, ensure_bucket, report, Opts, Outcome};
use crate::body::{seed, ReqBody, Verifier};
use crate::client::{expect_ok, read_verify, Conn, Target};
use crate::sample::Sampler;
use crate::sign::uri_encode;

/// CreateMultipartUpload, parts in parallel, CompleteMultipartUpload; then (untimed) a GET
/// of the whole object, verified.
pub async fn multipart(target: Arc<Target>, o: &Opts) -> Result<Outcome, String> {
    ensure_bucket(&target).await?;
    let iterations = o.ops.unwrap_or(1);
    let mut conns = connect(&target, o.concurrency).await?;
    let mut out = Outcome::default();
    let sampler = o.server_pid.map(Sampler::start);
    let t0 = Instant::now();
    let mut done = Vec::new();
    for it in 0..iterations {
        let key = format!("{}{it}", o.prefix);
        let (result, back) = upload(conns, &key, o).await;
        conns = back;
        match result {
            Ok(lat) => {
                out.ops += 1;
                out.bytes += o.size;
                out.lat_us.extend(lat);
                done.push(key);
            }
            Err(e) => {
                report(&e);
                out.errors += 1;
            }
        }
    }
    out.seconds = t0.elapsed().as_secs_f64();
    out.usage = sampler.map(Sampler::finish);
    let t1 = Instant::now();
    for key in &done {
        let c = &mut conns[0];
        let path = c.target().path(key);
        let r = match c.send(Method::GET, &path, "", &[], ReqBody::Empty).await {
            Ok(resp) => {
                read_verify(
                    resp,
                    Verifier::new(seed(key, o.size), 0, o.size),
                    &format!("GET {path}"),
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = r {
            report(&e);
            out.errors += 1;
        }
    }
    let verify_s = t1.elapsed().as_secs_f64();
    out.extra
        .push(("parts", o.size.div_ceil(o.part_size).into()));
    let verify = done.len() as f64 * o.size as f64 / 1048576.0 / verify_s;
    out.extra.push((
        "verify_get_mib_per_s",
        ((verify * 10.0).round() / 10.0).into(),
    ));
    Ok(out)
}

async fn upload(
    mut conns: Vec<Conn>,
    key: &str,
    o: &Opts,
) -> (Result<Vec<u32>, String>, Vec<Conn>) {
    let path = conns[0].target().path(key);
    let created = async {
        let resp = conns[0]
            .send(Method::POST, &path, "uploads", &[], ReqBody::Empty)
            .await?;
        let (_, body) = expect_ok(resp, "CreateMultipartUpload").await?;
        elements(&String::from_utf8_lossy(&body), "UploadId")
            .pop()
            .ok_or_else(|| "no UploadId".to_string())
    };
    let id = match created.await {
        Ok(id) => uri_encode(id.as_bytes(), true),
        Err(e) => return (Err(e), conns),
    };
    let nparts = o.size.div_ceil(o.part_size).max(1);
    let etags = Arc::new(Mutex::new(vec![String::new(); nparts as usize]));
    let next = Arc::new(AtomicU64::new(1));
    let s = seed(key, o.size);
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let (next, etags, path, id, (size, part)) = (
                next.clone(),
                etags.clone(),
                path.clone(),
                id.clone(),
                (o.size, o.part_size),
            );
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let r: Result<(), String> = async {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n > nparts {
                            return Ok(());
                        }
                        let t = Instant::now();
                        let body = ReqBody::gen(s, (n - 1) * part, (n * part).min(size));
                        let q = format!("partNumber={n}&uploadId={id}");
                        let (h, _) = expect_ok(
                            c.send(Method::PUT, &path, &q, &[], body).await?,
                            "UploadPart",
                        )
                        .await?;
                        let etag = h
                            .get("etag")
                            .and_then(|v| v.to_str().ok())
                            .ok_or("UploadPart: no ETag")?;
                        etags.lock().unwrap()[n as usize - 1] = etag.to_string();
                        lat.push(t.elapsed().as_micros() as u32);
                    }
                }
                .await;
                (r.map(|_| lat), c)
            })
        })
        .collect();
    let (mut lat, mut conns, mut err) = (Vec::new(), Vec::new(), None);
    for t in tasks {
        let (r, c) = t.await.expect("part task panicked");
        conns.push(c);
        match r {
            Ok(l) => lat.extend(l),
            Err(e) => err = Some(e),
        }
    }
    if let Some(e) = err {
        return (Err(e), conns);
    }
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, e) in etags.lock().unwrap().iter().enumerate() {
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{e}</ETag></Part>",
            i + 1
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let q = format!("uploadId={id}");
    let body = ReqBody::Bytes(Some(xml.into()));
    let r = async {
        let (_, body) = expect_ok(
            conns[0].send(Method::POST, &path, &q, &[], body).await?,
            "CompleteMultipartUpload",
        )
        .await?;
        let text = String::from_utf8_lossy(&body);
        if text.contains("<Error>") || !text.contains("CompleteMultipartUploadResult") {
            return Err(format!("CompleteMultipartUpload: {text}"));
        }
        Ok(lat)
    }
    .await;
    (r, conns)
}
