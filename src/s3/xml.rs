//! XML in and out: a small writer for responses (escaped text, S3's namespace) and serde
//! shapes for the request bodies S3 clients send.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// S3's XML namespace.
pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds an XML document element by element.
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// A document whose root element carries S3's namespace.
    pub fn new(root: &str) -> XmlWriter {
        let mut out = String::with_capacity(512);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(out, "<{root} xmlns=\"{NS}\">");
        XmlWriter { out }
    }

    /// A document whose root element has no namespace (error bodies).
    pub fn plain(root: &str) -> XmlWriter {
        let mut out = String::with_capacity(256);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(out, "<{root}>");
        XmlWriter { out }
    }

    /// Opens a child element.
    pub fn open(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "<{name}>");
        self
    }

    /// Closes a child element.
    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = write!(self.out, "</{name}>");
        self
    }

    /// Opens a child element with attributes written as given (trusted, constant text).
    pub fn open_with(&mut self, name: &str, attributes: &str) -> &mut Self {
        let _ = write!(self.out, "<{name} {attributes}>");
        self
    }

    /// A child element with escaped text.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        let _ = write!(self.out, "<{name}>");
        escape_into(&mut self.out, value);
        let _ = write!(self.out, "</{name}>");
        self
    }

    /// Closes the root and returns the document.
    pub fn finish(mut self, root: &str) -> String {
        let _ = write!(self.out, "</{root}>");
        self.out
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters even escaped; keys with them are
            // only listable with encoding-type=url.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// ISO 8601 with milliseconds, as S3 lists times: `2026-11-22T10:01:02.123Z`.
pub fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// RFC 1123 date for HTTP headers (Last-Modified).
pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Body of CompleteMultipartUpload.
#[derive(Debug, Deserialize)]
pub struct CompleteMultipartUpload {
    /// Listed parts.
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletedPart>,
}

/// One listed part.
#[derive(Debug, Deserialize)]
pub struct CompletedPart {
    /// Part number.
    #[serde(rename = "PartNumber")]
    pub number: u32,
    /// Its ETag as the client saw it.
    #[serde(rename = "ETag")]
    pub etag: String,
}

/// Body of DeleteObjects.
#[derive(Debug, Deserialize)]
pub struct Delete {
    /// Quiet mode: report errors only.
    #[serde(rename = "Quiet", default)]
    pub quiet: bool,
    /// Keys to delete.
    #[serde(rename = "Object", default)]
    pub objects: Vec<DeleteObject>,
}

/// One key to delete.
#[derive(Debug, Deserialize)]
pub struct DeleteObject {
    /// The key.
    #[serde(rename = "Key")]
    pub key: String,
    /// Version (must be absent or "null": nasgate is unversioned).
    #[serde(rename = "VersionId", default)]
    pub version_id: Option<String>,
}

/// Body of PutObjectTagging.
#[derive(Debug, Deserialize)]
pub struct Tagging {
    /// The tags.
    #[serde(rename = "TagSet")]
    pub tag_set: TagSet,
}

/// A set of tags.
#[derive(Debug, Deserialize)]
pub struct TagSet {
    /// The tags.
    #[serde(rename = "Tag", default)]
    pub tags: Vec<Tag>,
}

/// One tag.
#[derive(Debug, Deserialize)]
pub struct Tag {
    /// Tag key.
    #[serde(rename = "Key")]
    pub key: String,
    /// Tag value.
    #[serde(rename = "Value")]
    pub value: String,
}

/// Parses an XML request body into `T`.
pub fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(body).ok()?;
    quick_xml::de::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_format_as_s3_does() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(iso8601(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(http_date(t), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(iso8601(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn text_is_escaped() {
        let mut w = XmlWriter::new("R");
        w.text("Key", "a<&>\"'\u{1}");
        assert!(w
            .finish("R")
            .contains("<Key>a&lt;&amp;&gt;&quot;&apos;&#x1;</Key>"));
    }

    #[test]
    fn request_bodies_parse() {
        let c: CompleteMultipartUpload = parse(
            br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part><Part><ETag>b</ETag><PartNumber>2</PartNumber></Part></CompleteMultipartUpload>"#,
        )
        .unwrap();
        assert_eq!(c.parts.len(), 2);
        assert_eq!(c.parts[1].number, 2);
        let d: Delete = parse(b"<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b</Key><VersionId>null</VersionId></Object></Delete>").unwrap();
        assert!(d.quiet);
        assert_eq!(d.objects[1].key, "b");
        let t: Tagging =
            parse(b"<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>")
                .unwrap();
        assert_eq!(t.tag_set.tags[0].value, "v");
        assert!(parse::<Delete>(b"<Delete><Object>").is_none());
    }
}
