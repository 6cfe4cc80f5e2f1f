//! What the binary's tests share: running `tuangou` itself.

#![allow(dead_code)] // each test file uses its own part

use std::path::Path;
use std::process::{Command, Output};

/// The binary, run in `dir` with a clean `TUANGOU_*` environment.
pub fn tuangou(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tuangou"));
    command.current_dir(dir);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TUANGOU_") {
            command.env_remove(name);
        }
    }
    command
}

/// An ended run's status and output, for a failing assertion's message.
pub fn shown(output: &Output) -> String {
    format!(
        "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
