//! The console's static files: embedded in release builds (by `build.rs`), read from the
//! source tree's `console/` folder in debug builds so they can be edited without rebuilding.

use std::borrow::Cow;

#[cfg(not(debug_assertions))]
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));
}

/// One static file, ready to serve.
pub struct Asset {
    /// The bytes.
    pub body: Cow<'static, [u8]>,
    /// Its Content-Type.
    pub content_type: &'static str,
    /// A strong ETag (quoted) of the bytes.
    pub etag: String,
}

/// The file at `path` below `console/` (`""` is `index.html`), or None.
pub fn get(path: &str) -> Option<Asset> {
    let path = if path.is_empty() { "index.html" } else { path };
    // Names are plain relative paths: no `..`, no empty or hidden components.
    if path
        .split('/')
        .any(|c| c.is_empty() || c.starts_with('.') || c.contains('\\'))
    {
        return None;
    }
    let body = load(path)?;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(&body);
    Some(Asset {
        content_type: content_type(path),
        etag: format!("\"{}\"", hex::encode(&digest[..12])),
        body,
    })
}

#[cfg(not(debug_assertions))]
fn load(path: &str) -> Option<Cow<'static, [u8]>> {
    embedded::FILES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, b)| Cow::Borrowed(*b))
}

#[cfg(debug_assertions)]
fn load(path: &str) -> Option<Cow<'static, [u8]>> {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("console")
        .join(path);
    if !file.is_file() {
        return None;
    }
    std::fs::read(file).ok().map(Cow::Owned)
}

/// The Content-Type for a file name, by extension.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, e)| e);
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        "map" => "application/json",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_climb_or_hide_are_refused() {
        for p in [
            "../Cargo.toml",
            "a/../../x",
            ".git/config",
            "a//b",
            "/etc/passwd",
        ] {
            assert!(get(p).is_none(), "{p}");
        }
    }

    #[test]
    fn types_by_extension() {
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("x/icon.SVG"), "image/svg+xml");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
