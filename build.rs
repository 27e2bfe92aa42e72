//! Embeds the web console's static files (`console/`) in release builds: writes a table of
//! `include_bytes!` entries to `$OUT_DIR/console_assets.rs`. Debug builds read the folder at
//! run time instead (see `src/console/assets.rs`), so the console can be edited without
//! rebuilding.

use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let dir = root.join("console");
    println!("cargo:rerun-if-changed=console");
    let mut files = Vec::new();
    if dir.is_dir() {
        collect(&dir, &dir, &mut files);
    }
    files.sort();
    let mut out = String::from("/// The console's files: path below `console/` and bytes.\n");
    out.push_str("pub static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, abs) in &files {
        out.push_str(&format!("    ({rel:?}, include_bytes!({abs:?})),\n"));
    }
    out.push_str("];\n");
    let target =
        PathBuf::from(std::env::var("OUT_DIR").expect("out dir")).join("console_assets.rs");
    std::fs::write(target, out).expect("write console_assets.rs");
}

/// Regular files under `dir`, as (path relative to `base` with `/`, absolute path).
fn collect(base: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        // Editor droppings and hidden files are no part of the console.
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if path.is_dir() {
            collect(base, &path, out);
        } else if path.is_file() {
            let rel = path
                .strip_prefix(base)
                .expect("below base")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path.to_string_lossy().into_owned()));
        }
    }
}
