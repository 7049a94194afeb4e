//! `cargo xtask`: the maintainers' tasks.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Maintainer tasks for the refresh SDK workspace")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate the checked-in client snapshots from `specs/`.
    Codegen {
        /// Write nothing; print a diff and fail if a snapshot is stale.
        #[arg(long)]
        check: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let root = workspace_root();
    let result = match cli.command {
        Command::Codegen { check: false } => codegen_write(&root),
        Command::Codegen { check: true } => codegen_check(&root),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the xtask crate lives one level below the workspace root")
        .to_path_buf()
}

fn codegen_write(root: &Path) -> Result<(), String> {
    for path in sdk_codegen::snapshot::write_all(root)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn codegen_check(root: &Path) -> Result<(), String> {
    let mut stale = 0;
    for comparison in sdk_codegen::snapshot::check_all(root)? {
        match comparison.diff {
            None => println!("{}: up to date", comparison.path.display()),
            Some(diff) => {
                stale += 1;
                println!("{}: STALE", comparison.path.display());
                print!("{diff}");
            }
        }
    }
    if stale > 0 {
        return Err(format!(
            "{stale} generated snapshot(s) differ from the specs; run `cargo xtask codegen` and commit the result"
        ));
    }
    Ok(())
}
