//! The Rust snippets of the workspace's READMEs, as doctests: each is
//! compiled, and run unless it is marked `no_run` (those need a real SDDC
//! Manager or F5 XC tenant); the ones against the sandbox run in full. A
//! snippet that stops compiling or fails its assertions fails `cargo test`
//! and `cargo xtask ci`. The snippets are complete programs, with no hidden
//! `# ` lines, since GitHub shows what rustdoc would hide; their
//! dependencies are this crate's dev-dependencies. `crates/refresh-sdk/README.md`
//! is compiled by refresh-sdk's own doctests. A failure names the README
//! by its struct here, and a line that is the README's line plus that of
//! the struct's `#[doc]` attribute, less one.

/// `README.md`.
#[doc = include_str!("../../README.md")]
pub struct Workspace;

/// `crates/sandbox/README.md`.
#[doc = include_str!("../../crates/sandbox/README.md")]
pub struct Sandbox;

/// `crates/codegen/README.md`.
#[doc = include_str!("../../crates/codegen/README.md")]
pub struct Codegen;
