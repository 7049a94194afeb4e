//! Generates the client from `openapi.yaml` (a link to the workspace's
//! `specs/`) into `OUT_DIR`; the settings live in `sdk-codegen`.

fn main() {
    sdk_codegen::build_script();
}
