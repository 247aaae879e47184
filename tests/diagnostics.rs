//! Compile-fail tests: mistakes that must not compile, and whose error must lead to the answer.
//!
//! Each case is a small crate checked with the same lockfile as this one, offline; the test
//! asserts on the words of the diagnostic, not on the compiler's whole output, so it does not
//! break when rustc changes its layout.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Checks `tests/diagnostics/<case>.rs` as a binary depending on tower-sse (feature `axum`)
/// and axum, and returns the compiler's output; panics if it compiles.
fn check_fails(case: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("diagnostics")
        .join(case);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "{case}"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tower-sse = {{ path = {root:?}, default-features = false, features = ["axum"] }}
axum = {{ version = "0.8", default-features = false }}

[workspace]
"#,
            root = root.display().to_string(),
        ),
    )
    .unwrap();
    std::fs::copy(
        root.join("tests/diagnostics").join(format!("{case}.rs")),
        dir.join("src/main.rs"),
    )
    .unwrap();
    // The workspace's lockfile pins the same versions the tests were built with, so the
    // check needs no network.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();

    let output = Command::new(env!("CARGO"))
        .args(["check", "--offline", "--quiet", "--color", "never"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "{case} compiled:\n{stderr}");
    stderr
}

#[test]
fn a_layer_on_an_axum_router_names_sse_response() {
    let stderr = check_fails("layer_on_router");
    assert!(
        stderr.contains("`Body` is not a stream of events, so `SseLayer` cannot serve it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("return `tower_sse::axum::SseResponse::new(stream)` from the handler"),
        "{stderr}"
    );
    // The leaf obligation (`Body: Stream`) is not what the user reads first.
    assert!(
        !stderr.contains("the trait bound `Body: Stream` is not satisfied"),
        "{stderr}"
    );
}
