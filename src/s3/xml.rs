//! XML in and out: a small writer for responses (escaped text, S3's namespace) and serde
//! shapes for the request bodies S3 clients send.

use std::fmt::Write;

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

    /// Makes room for `bytes` more of output (a listing knows roughly how much it writes).
    pub fn reserve(&mut self, bytes: usize) -> &mut Self {
        self.out.reserve(bytes);
        self
    }

    /// Opens a child element.
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Closes a child element.
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Opens a child element with attributes written as given (trusted, constant text).
    pub fn open_with(&mut self, name: &str, attributes: &str) -> &mut Self {
        let _ = write!(self.out, "<{name} {attributes}>");
        self
    }

    /// A child element with escaped text.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.open(name);
        escape_into(&mut self.out, value);
        self.close(name)
    }

    /// A child element holding an ETag in quotes, as S3 lists them.
    pub fn etag(&mut self, name: &str, etag: &str) -> &mut Self {
        self.open(name);
        self.out.push_str("&quot;");
        escape_into(&mut self.out, etag);
        self.out.push_str("&quot;");
        self.close(name)
    }

    /// A child element holding a number.
    pub fn number(&mut self, name: &str, n: u64) -> &mut Self {
        self.open(name);
        let _ = write!(self.out, "{n}");
        self.close(name)
    }

    /// A child element holding a time as S3 lists times (ISO 8601 with milliseconds).
    pub fn time(&mut self, name: &str, t: std::time::SystemTime) -> &mut Self {
        self.open(name);
        crate::time::push_iso8601(&mut self.out, t);
        self.close(name)
    }

    /// Closes the root and returns the document.
    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out
    }
}

/// Whether `b` (a byte of UTF-8) needs more than itself in XML text: the five markup
/// characters, CR, and the control characters XML 1.0 cannot carry.
fn needs_escape(b: u8) -> bool {
    matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | b'\r') || (b < 0x20 && b != b'\t' && b != b'\n')
}

fn escape_into(out: &mut String, s: &str) {
    // Most keys have nothing to escape: copy them whole.
    if !s.bytes().any(needs_escape) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // A parser turns a raw CR into LF; the reference keeps it.
            '\r' => out.push_str("&#xD;"),
            // XML 1.0 cannot carry most control characters even escaped; keys with them are
            // only listable with encoding-type=url.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n') => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
}

pub use crate::time::{http_date, iso8601};

/// One element of a request body: its local name (namespace prefix dropped), its child
/// elements, and its text exactly as sent (entities and CDATA resolved, nothing trimmed).
///
/// Request bodies are read into this small tree instead of through a serde deserializer because
/// keys and tag values are byte strings: a deserializer that trims text turned the key `" a "`
/// into `a` and deleted the wrong object.
#[derive(Debug, Default)]
pub struct Element {
    name: String,
    children: Vec<Element>,
    text: String,
}

impl Element {
    /// Parses a whole document and returns its root element; None when it is not well formed.
    pub fn parse(body: &[u8]) -> Option<Element> {
        use quick_xml::events::Event;
        let text = std::str::from_utf8(body).ok()?;
        let mut reader = quick_xml::Reader::from_str(text);
        reader.config_mut().trim_text(false);
        reader.config_mut().check_end_names = true;
        let mut stack: Vec<Element> = Vec::new();
        let mut root = None;
        loop {
            let event = reader.read_event().ok()?;
            match event {
                // A second root element.
                Event::Start(_) | Event::Empty(_) if root.is_some() => return None,
                Event::Start(e) => stack.push(Element::named(e.local_name().as_ref())?),
                Event::Empty(e) => {
                    let element = Element::named(e.local_name().as_ref())?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => root = Some(element),
                    }
                }
                Event::End(_) => {
                    let element = stack.pop()?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => root = Some(element),
                    }
                }
                Event::Text(t) => {
                    let t = t.unescape().ok()?;
                    match stack.last_mut() {
                        Some(open) => open.text.push_str(&t),
                        // Only whitespace may stand outside the root element.
                        None if t.chars().all(char::is_whitespace) => {}
                        None => return None,
                    }
                }
                Event::CData(c) => {
                    let c = std::str::from_utf8(&c.into_inner()).ok()?.to_owned();
                    stack.last_mut()?.text.push_str(&c);
                }
                Event::Eof => break,
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
        }
        if !stack.is_empty() {
            return None;
        }
        root
    }

    fn named(name: &[u8]) -> Option<Element> {
        Some(Element {
            name: std::str::from_utf8(name).ok()?.to_owned(),
            ..Element::default()
        })
    }

    /// The element's local name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first child of this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child of this name, in document order.
    pub fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text exactly as sent (for keys, tag keys and values).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of a child holding a number or a word, where surrounding whitespace is only
    /// formatting.
    fn child_word(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }
}

/// A request body nasgate parses: built from the document's root element.
pub trait FromXml: Sized {
    /// The root element's name.
    const ROOT: &'static str;
    /// Reads the document from its root; None when required parts are missing or malformed.
    fn from_root(root: &Element) -> Option<Self>;
}

/// Parses an XML request body into `T`; None when it is not well formed or not a `T`.
pub fn parse<T: FromXml>(body: &[u8]) -> Option<T> {
    let root = Element::parse(body)?;
    if root.name != T::ROOT {
        return None;
    }
    T::from_root(&root)
}

fn parse_bool(word: Option<&str>) -> Option<bool> {
    match word {
        None => Some(false),
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => None,
    }
}

/// Body of CompleteMultipartUpload.
#[derive(Debug)]
pub struct CompleteMultipartUpload {
    /// Listed parts.
    pub parts: Vec<CompletedPart>,
}

/// One listed part.
#[derive(Debug)]
pub struct CompletedPart {
    /// Part number.
    pub number: u32,
    /// Its ETag as the client saw it.
    pub etag: String,
}

impl FromXml for CompleteMultipartUpload {
    const ROOT: &'static str = "CompleteMultipartUpload";
    fn from_root(root: &Element) -> Option<Self> {
        let parts = root
            .children("Part")
            .map(|p| {
                Some(CompletedPart {
                    number: p.child_word("PartNumber")?.parse().ok()?,
                    etag: p.child_word("ETag")?.to_owned(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(CompleteMultipartUpload { parts })
    }
}

/// Body of DeleteObjects.
#[derive(Debug)]
pub struct Delete {
    /// Quiet mode: report errors only.
    pub quiet: bool,
    /// Keys to delete.
    pub objects: Vec<DeleteObject>,
}

/// One key to delete.
#[derive(Debug)]
pub struct DeleteObject {
    /// The key, exactly as sent.
    pub key: String,
    /// Version (must be absent or "null": nasgate is unversioned).
    pub version_id: Option<String>,
}

impl FromXml for Delete {
    const ROOT: &'static str = "Delete";
    fn from_root(root: &Element) -> Option<Self> {
        let objects = root
            .children("Object")
            .map(|o| {
                Some(DeleteObject {
                    key: o.child("Key")?.text().to_owned(),
                    version_id: o.child_word("VersionId").map(str::to_owned),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Delete {
            quiet: parse_bool(root.child_word("Quiet"))?,
            objects,
        })
    }
}

/// Body of PutObjectTagging.
#[derive(Debug)]
pub struct Tagging {
    /// The tags, keys and values exactly as sent.
    pub tags: Vec<Tag>,
}

/// One tag.
#[derive(Debug)]
pub struct Tag {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
}

impl FromXml for Tagging {
    const ROOT: &'static str = "Tagging";
    fn from_root(root: &Element) -> Option<Self> {
        let tags = root
            .child("TagSet")?
            .children("Tag")
            .map(|t| {
                Some(Tag {
                    key: t.child("Key")?.text().to_owned(),
                    value: t.child("Value")?.text().to_owned(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Tagging { tags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        let mut w = XmlWriter::new("R");
        w.text("Key", "a<&>\"'\u{1}");
        assert!(w
            .finish("R")
            .contains("<Key>a&lt;&amp;&gt;&quot;&apos;&#x1;</Key>"));
    }

    #[test]
    fn text_without_markup_is_copied_and_with_it_escaped_char_by_char() {
        let cases = [
            ("plain/key-1.txt", "plain/key-1.txt"),
            ("tab\tand\nnewline stay", "tab\tand\nnewline stay"),
            ("\u{e9}t\u{e9} \u{1f600}", "\u{e9}t\u{e9} \u{1f600}"),
            ("cr\rhere", "cr&#xD;here"),
            ("\u{e9}<\u{1f}", "\u{e9}&lt;&#x1F;"),
            ("", ""),
        ];
        for (raw, want) in cases {
            let mut out = String::new();
            escape_into(&mut out, raw);
            assert_eq!(out, want, "{raw:?}");
        }
    }

    #[test]
    fn listing_fields_are_written_as_s3_lists_them() {
        let mut w = XmlWriter::new("R");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        w.etag("ETag", "0123abcd-2")
            .number("Size", 18_446_744_073_709_551_615)
            .time("LastModified", t);
        let doc = w.finish("R");
        assert!(doc.ends_with(
            "<ETag>&quot;0123abcd-2&quot;</ETag><Size>18446744073709551615</Size>\
             <LastModified>2023-11-14T22:13:20.123Z</LastModified></R>"
        ));
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
        assert_eq!(t.tags[0].value, "v");
        assert!(parse::<Delete>(b"<Delete><Object>").is_none());
    }

    #[test]
    fn key_text_is_kept_exactly() {
        let d: Delete = parse(
            b"<Delete>\n  <Object><Key> </Key></Object>\n  <Object><Key>  a  </Key></Object>\n  <Object><Key>\ttab&#xD;\n</Key></Object><Object><Key><![CDATA[<&>]]> &amp;%</Key></Object><Object><Key></Key></Object></Delete>",
        )
        .unwrap();
        let keys: Vec<&str> = d.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, [" ", "  a  ", "\ttab\r\n", "<&> &%", ""]);
        assert!(!d.quiet);
        let t: Tagging = parse(
            b"<Tagging><TagSet><Tag><Key> k </Key><Value>\tv </Value></Tag></TagSet></Tagging>",
        )
        .unwrap();
        assert_eq!(
            (t.tags[0].key.as_str(), t.tags[0].value.as_str()),
            (" k ", "\tv ")
        );
        // Numbers and words may be padded; they are not keys.
        let c: CompleteMultipartUpload = parse(
            b"<CompleteMultipartUpload><Part><PartNumber> 7 </PartNumber><ETag>\n\"e\"\n</ETag></Part></CompleteMultipartUpload>",
        )
        .unwrap();
        assert_eq!((c.parts[0].number, c.parts[0].etag.as_str()), (7, "\"e\""));
        let q: Delete = parse(b"<Delete><Quiet> true </Quiet></Delete>").unwrap();
        assert!(q.quiet);
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [
            &b"<Delete><Object><Key>a</Key></Object>"[..],
            b"<Delete></Object></Delete>",
            b"<Delete/><Delete/>",
            b"text<Delete/>",
            b"<Delete><Quiet>maybe</Quiet></Delete>",
            b"<Delete><Object><VersionId>null</VersionId></Object></Delete>",
            b"<Other/>",
            b"<Delete>\xff</Delete>",
            b"<Delete><Object><Key>&bogus;</Key></Object></Delete>",
        ] {
            assert!(
                parse::<Delete>(bad).is_none(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(
            Element::parse(b"<?xml version=\"1.0\"?>\n<!-- c --><a:Delete xmlns:a=\"x\"/>\n")
                .is_some()
        );
    }

    #[test]
    fn written_text_survives_a_parser() {
        let key = " \ta\r\nb <&>\"' ";
        let mut w = XmlWriter::plain("Delete");
        w.open("Object").text("Key", key).close("Object");
        let d: Delete = parse(w.finish("Delete").as_bytes()).unwrap();
        assert_eq!(d.objects[0].key, key);
    }
}
