//! Gives the shared library a SONAME, `libculvert_ffi.so.<MAJOR>`, so programs linked
//! against it record the major version they need.

fn main() {
    let major =
        std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libculvert_ffi.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
