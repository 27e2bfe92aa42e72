//! ListObjectsV2 over a populated bucket, every page checked.

use std::sync::Arc;

use hyper::Method;

use super::{connect, ensure_bucket, populate, timed, Op, Opts, Outcome};
use crate::body::ReqBody;
use crate::client::{expect_ok, Conn, Target};
use crate::sign::uri_encode;

/// Pages of ListObjectsV2 over the whole bucket (or `prefix`), each page checked against
/// the expected keys in order; a finished pass starts over.
struct List {
    conn: Conn,
    expected: Arc<Vec<String>>,
    prefix: String,
    page: usize,
    pos: usize,
    token: Option<String>,
}

impl List {
    async fn page(&mut self) -> Result<(), String> {
        let mut q = format!("list-type=2&max-keys={}", self.page);
        if let Some(t) = &self.token {
            q.push_str(&format!(
                "&continuation-token={}",
                uri_encode(t.as_bytes(), true)
            ));
        }
        if !self.prefix.is_empty() {
            q.push_str(&format!(
                "&prefix={}",
                uri_encode(self.prefix.as_bytes(), true)
            ));
        }
        let path = format!("/{}", self.conn.target().bucket);
        let resp = self
            .conn
            .send(Method::GET, &path, &q, &[], ReqBody::Empty)
            .await?;
        let (_, body) = expect_ok(resp, "ListObjectsV2").await?;
        let xml = String::from_utf8_lossy(&body);
        let keys = elements(&xml, "Key");
        let truncated = elements(&xml, "IsTruncated").first().map(String::as_str) == Some("true");
        let want = &self.expected
            [self.pos.min(self.expected.len())..(self.pos + keys.len()).min(self.expected.len())];
        if keys.as_slice() != want {
            let at = keys
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(want.len());
            return Err(format!(
                "list page at key #{}: got {} keys, {} expected; first difference at #{at}: {:?} vs {:?}",
                self.pos, keys.len(), want.len(), keys.get(at), want.get(at)
            ));
        }
        self.pos += keys.len();
        if truncated {
            if keys.len() != self.page || self.pos >= self.expected.len() {
                return Err(format!(
                    "truncated page of {} keys at #{}",
                    keys.len(),
                    self.pos
                ));
            }
            self.token = elements(&xml, "NextContinuationToken").pop();
            if self.token.is_none() {
                return Err("truncated page without NextContinuationToken".into());
            }
        } else {
            if self.pos != self.expected.len() {
                return Err(format!(
                    "listing ended after {} of {} keys",
                    self.pos,
                    self.expected.len()
                ));
            }
            self.pos = 0;
            self.token = None;
        }
        Ok(())
    }

    async fn pass(&mut self) -> Result<(), String> {
        loop {
            self.page().await?;
            if self.pos == 0 {
                return Ok(());
            }
        }
    }
}

impl Op for List {
    async fn run(&mut self, _: u64) -> Result<u64, String> {
        let r = self.page().await;
        if r.is_err() {
            (self.pos, self.token) = (0, None);
        }
        r.map(|_| 0)
    }
}

/// Texts of all `<name>…</name>` elements, XML entities decoded.
pub(super) fn elements(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(
            rest[..j]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &rest[j + close.len()..];
    }
    out
}

/// Keys `d0000/o0000`…: 1000 objects per directory, in S3 (byte) order.
pub fn list_keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("{prefix}d{:04}/o{:04}", i / 1000, i % 1000))
        .collect()
}

pub async fn list(target: Arc<Target>, o: &Opts) -> Result<Outcome, String> {
    ensure_bucket(&target).await?;
    let mut keys = list_keys(&o.prefix, o.keys);
    keys.sort();
    let keys = Arc::new(keys);
    let mut conns = connect(&target, o.concurrency).await?;
    let mut probe = List {
        conn: conns.pop().unwrap(),
        expected: keys.clone(),
        prefix: o.prefix.clone(),
        page: o.page,
        pos: 0,
        token: None,
    };
    // An untimed pass: populates only if the bucket does not list exactly the keys already.
    if let Err(e) = probe.pass().await {
        if !o.populate {
            return Err(e);
        }
        eprintln!("loadgen: populating {} keys ({e})", keys.len());
        populate(&target, &keys, o.size, 16).await?;
        (probe.pos, probe.token) = (0, None);
        probe.pass().await?;
    }
    let mut workers = vec![List {
        pos: 0,
        token: None,
        ..probe
    }];
    for conn in conns {
        workers.push(List {
            conn,
            expected: keys.clone(),
            prefix: o.prefix.clone(),
            page: o.page,
            pos: 0,
            token: None,
        });
    }
    let mut out = timed(workers, o).await;
    out.extra
        .push(("pages_per_pass", keys.len().div_ceil(o.page).into()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_decode_entities() {
        let xml = "<R><Key>a&amp;b</Key><Key>c</Key><IsTruncated>true</IsTruncated></R>";
        assert_eq!(elements(xml, "Key"), ["a&b", "c"]);
        assert_eq!(elements(xml, "IsTruncated"), ["true"]);
        assert!(elements(xml, "NextContinuationToken").is_empty());
    }

    #[test]
    fn list_keys_are_in_byte_order() {
        let keys = list_keys("", 2500);
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys[1234], "d0001/o0234");
    }
}
