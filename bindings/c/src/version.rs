//! The library's version: `culvert_version()` and the `CULVERT_VERSION_*` macros.
//!
//! The macros are compile-time copies of the crate version (cbindgen can only emit
//! literals); the unit test below fails when they drift from `Cargo.toml`.

use std::ffi::c_char;

/// The major version of the culvert C API this header describes (see
/// `culvert_version()` for the library actually linked).
pub const CULVERT_VERSION_MAJOR: u32 = 0;
/// The minor version of the culvert C API this header describes.
pub const CULVERT_VERSION_MINOR: u32 = 1;
/// The patch version of the culvert C API this header describes.
pub const CULVERT_VERSION_PATCH: u32 = 0;

/// The version of the linked library, `"MAJOR.MINOR.PATCH"` (e.g. `"0.1.0"`): compare
/// it with the `CULVERT_VERSION_*` macros to detect a header/library mismatch. The
/// string is static and NUL-terminated. Thread-safe.
#[no_mangle]
pub extern "C" fn culvert_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn consts_match_cargo_version() {
        assert_eq!(
            CULVERT_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            CULVERT_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            CULVERT_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
    }

    #[test]
    fn version_string_is_the_crate_version() {
        // SAFETY: culvert_version returns a static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(culvert_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        let expected =
            format!("{CULVERT_VERSION_MAJOR}.{CULVERT_VERSION_MINOR}.{CULVERT_VERSION_PATCH}");
        assert!(v.to_str().unwrap().starts_with(&expected));
    }
}
