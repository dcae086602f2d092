//! The one way the integration tests reach the shared reference material (`<repo>/../shared`:
//! interop vectors, Wycheproof, the SPQR trace), included with `mod shared_data;`.
//!
//! * Where: `$TEXTSECURE_SHARED_DIR` when set and non-empty, else `<repo root>/../shared`.
//! * Missing: the test prints `SKIP: …` and returns (it passes), unless `TEXTSECURE_STRICT=1`
//!   (set by `.ci/run`), where it panics: in CI the shared folder is laid beside the clone, so a
//!   skip would hide a test that proved nothing.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// The shared folder: `$TEXTSECURE_SHARED_DIR`, else `<repo root>/../shared`.
pub fn dir() -> PathBuf {
    match std::env::var_os("TEXTSECURE_SHARED_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// `<shared>/<rel>` (no check that it exists).
pub fn path(rel: &str) -> PathBuf {
    dir().join(rel)
}

/// Whether `TEXTSECURE_STRICT=1`: a missing shared file fails the test instead of skipping it.
pub fn strict() -> bool {
    std::env::var("TEXTSECURE_STRICT").as_deref() == Ok("1")
}

/// Reports that `path` is missing: panics under `TEXTSECURE_STRICT=1`, else prints `SKIP`.
/// The caller then returns early (the test passes without checking anything).
pub fn missing(path: &Path, why: &str) {
    let msg = format!(
        "{} is not available ({why}); the shared reference material is looked for in \
         $TEXTSECURE_SHARED_DIR or <repo root>/../shared",
        path.display()
    );
    if strict() {
        panic!("TEXTSECURE_STRICT=1 and {msg}: this test must run in CI, not skip");
    }
    eprintln!("SKIP: {msg}");
}

/// Reads `<shared>/<rel>`, or `None` after [`missing`] (which panics under STRICT).
pub fn read(rel: &str) -> Option<Vec<u8>> {
    let p = path(rel);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(e) => {
            missing(&p, &e.to_string());
            None
        }
    }
}

/// Reads and parses `<shared>/<rel>` as JSON, or `None` as [`read`]. A file that exists but
/// does not parse always fails.
pub fn json(rel: &str) -> Option<serde_json::Value> {
    let b = read(rel)?;
    Some(
        serde_json::from_slice(&b)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path(rel).display())),
    )
}

/// `Some(<shared>/<rel>)` when that directory exists, else `None` after [`missing`].
pub fn require_dir(rel: &str) -> Option<PathBuf> {
    let p = path(rel);
    if p.is_dir() {
        Some(p)
    } else {
        missing(&p, "no such directory");
        None
    }
}
