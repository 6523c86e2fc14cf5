//! The `ferry` binary's own surface: `--version`, `--help` and `ferry version`.

use std::process::Command;

fn ferry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .output()
        .expect("running the ferry binary")
}

#[test]
fn version_flag_prints_the_crate_version() {
    let out = ferry(&["--version"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim(),
        format!("ferry {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_the_subcommands() {
    let out = ferry(&["--help"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("Usage: ferry"), "{stdout}");
    assert!(stdout.contains("version"), "{stdout}");
}

#[test]
fn version_subcommand_speaks_json() {
    let out = ferry(&["version", "-o", "json"]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ferry"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn an_unknown_subcommand_fails_with_usage() {
    let out = ferry(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("no-such-command"), "{stderr}");
}
