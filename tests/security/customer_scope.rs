//! Issue #13 (see tests/security.rs).
