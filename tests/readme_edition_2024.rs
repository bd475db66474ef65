//! The README's example compiles unchanged as the `main.rs` of a fresh crate of the
//! newest edition (2024, where e.g. `std::env::set_var` is `unsafe`), depending on
//! culvert by path — as a new user would paste it. `cargo check --offline`, so it
//! needs only the packages this workspace already fetched.

use std::path::Path;
use std::process::Command;

/// The first ```rust block of the README.
fn readme_example(readme: &str) -> String {
    let start = readme
        .find("```rust\n")
        .expect("a ```rust block in the README")
        + 8;
    let len = readme[start..].find("```").expect("the block's end");
    readme[start..start + len].to_string()
}

#[test]
fn readme_example_compiles_in_a_fresh_edition_2024_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path();
    std::fs::create_dir_all(krate.join("src")).unwrap();
    std::fs::write(
        krate.join("Cargo.toml"),
        format!(
            "[package]\nname = \"readme-user\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nculvert = {{ path = {:?} }}\n\n[workspace]\n",
            root.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(krate.join("src/main.rs"), readme_example(&readme)).unwrap();
    // The workspace's lock file: the same versions, already downloaded.
    std::fs::copy(root.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["check", "--offline", "--quiet"])
        .current_dir(krate)
        .env("CARGO_TARGET_DIR", root.join("target").join("readme-2024"))
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README example does not compile in an edition-2024 crate:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
