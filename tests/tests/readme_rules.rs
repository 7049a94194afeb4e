//! What the READMEs' doctests (`src/readme.rs`, and refresh-sdk's own)
//! cannot see: a snippet rustdoc skips (`ignore`), lines rustdoc hides but
//! GitHub shows (`# `), a fence without a language that rustdoc would take
//! for Rust, and a dependency line written as if the crates were on
//! crates.io.

use std::path::Path;

const READMES: [&str; 4] = [
    "README.md",
    "crates/refresh-sdk/README.md",
    "crates/sandbox/README.md",
    "crates/codegen/README.md",
];

/// One fenced code block: the README, the line of its opening fence, its
/// info string and its lines.
struct Block {
    readme: &'static str,
    line: usize,
    info: String,
    body: Vec<String>,
}

fn blocks() -> Vec<Block> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut blocks = Vec::new();
    for readme in READMES {
        let text = std::fs::read_to_string(root.join(readme))
            .unwrap_or_else(|e| panic!("cannot read {readme}: {e}"));
        let mut open: Option<Block> = None;
        for (index, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            match (open.take(), trimmed.strip_prefix("```")) {
                (None, Some(info)) => {
                    open = Some(Block {
                        readme,
                        line: index + 1,
                        info: info.trim().to_owned(),
                        body: Vec::new(),
                    })
                }
                (Some(block), Some(_)) => blocks.push(block),
                (Some(mut block), None) => {
                    block.body.push(line.to_owned());
                    open = Some(block);
                }
                (None, None) => {}
            }
        }
        assert!(open.is_none(), "{readme}: a code block is never closed");
    }
    blocks
}

fn is_rust(info: &str) -> bool {
    info.split(',').any(|word| word.trim() == "rust")
}

#[test]
fn every_rust_snippet_is_compiled_and_shows_all_it_compiles() {
    let blocks = blocks();
    assert!(
        blocks.iter().filter(|b| is_rust(&b.info)).count() >= 10,
        "the READMEs' Rust snippets were not found"
    );
    let mut problems = Vec::new();
    for block in &blocks {
        let at = format!("{}:{}", block.readme, block.line);
        if block.info.is_empty() {
            problems.push(format!(
                "{at}: a fence without a language is Rust to rustdoc; name it (text, sh, ...)"
            ));
        }
        if !is_rust(&block.info) {
            continue;
        }
        for word in block.info.split(',').map(str::trim) {
            if matches!(word, "ignore" | "compile_fail" | "should_panic") {
                problems.push(format!(
                    "{at}: `{word}`: the snippet must compile and run as shown"
                ));
            }
        }
        for (offset, line) in block.body.iter().enumerate() {
            let code = line.trim_start();
            if code == "#" || code.starts_with("# ") || code.starts_with("##") {
                problems.push(format!(
                    "{}:{}: a line rustdoc hides and GitHub shows: {line:?}",
                    block.readme,
                    block.line + 1 + offset
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_dependency_line_pretends_the_crates_are_on_crates_io() {
    let crates = [
        "refresh-sdk",
        "refresh-sandbox",
        "refresh-cli",
        "vcf-tokens",
        "f5xc-bfdp",
        "sdk-codegen",
    ];
    let mut problems = Vec::new();
    for block in blocks().iter().filter(|b| b.info == "toml") {
        for (offset, line) in block.body.iter().enumerate() {
            let entry = line.trim_start().trim_start_matches('#').trim_start();
            let Some((name, value)) = entry.split_once('=') else {
                continue;
            };
            let name = name.trim().trim_end_matches(".workspace");
            if !crates.contains(&name) {
                continue;
            }
            let value = value.trim();
            let by_path_or_git =
                value.contains("path =") || value.contains("git =") || entry.contains(".workspace");
            if !by_path_or_git || value.contains("version") {
                problems.push(format!(
                    "{}:{}: {name} is not on crates.io: a path or git dependency, not {value}",
                    block.readme,
                    block.line + 1 + offset
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
