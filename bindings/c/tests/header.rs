//! `include/culvert.h` is generated from this crate by cbindgen and committed. This
//! test regenerates it into a string and fails when the committed file differs.
//!
//! Regenerate with: `CULVERT_BLESS=1 cargo test -p culvert-ffi --test header`.

use std::path::Path;

fn generate() -> String {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("bindings/c/cbindgen.toml is readable");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn header_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/culvert.h");
    let fresh = generate();
    if std::env::var_os("CULVERT_BLESS").is_some_and(|v| v != "0") {
        std::fs::write(&path, &fresh).expect("write include/culvert.h");
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let first_diff = committed
            .lines()
            .zip(fresh.lines())
            .position(|(a, b)| a != b)
            .map(|i| i + 1)
            .unwrap_or(committed.lines().count().min(fresh.lines().count()) + 1);
        panic!(
            "{} is stale (first difference at line {first_diff}).\n\
             Regenerate it with:\n    CULVERT_BLESS=1 cargo test -p culvert-ffi --test header\n\
             and commit the result.",
            path.display()
        );
    }
}

#[test]
fn header_declares_every_exported_function() {
    // Every `extern "C"` function of the crate appears in the generated header.
    let header = generate();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 5, "the crate's sources were not found");
    let mut missing = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines() {
            let line = line.trim_start();
            let rest = line
                .strip_prefix("pub unsafe extern \"C\" fn ")
                .or_else(|| line.strip_prefix("pub extern \"C\" fn "));
            if let Some(rest) = rest {
                let name = rest.split('(').next().unwrap();
                if !header.contains(&format!("{name}(")) {
                    missing.push(name.to_string());
                }
            }
        }
    }
    assert!(missing.is_empty(), "not in the header: {missing:?}");
}
