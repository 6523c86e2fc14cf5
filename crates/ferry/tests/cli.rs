//! The `ferry` binary's own surface: `--version`, `--help` and `ferry version`, and how it was
//! built (its allocator).

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

#[test]
fn ferry_allocates_with_jemalloc_built_with_the_workspaces_options() {
    // jemalloc prints its statistics, options included, at exit when asked to; the C library's
    // malloc knows no such variable. The options come from `.cargo/config.toml`: without them
    // jemalloc keeps freed pages for 10 s in eight arenas (bench/README.md, "Memory (evening)").
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .expect("running the ferry binary");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let built_in = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("config.malloc_conf: "))
        .unwrap_or_else(|| panic!("no jemalloc statistics on stderr:\n{stderr}"));
    for option in ["narenas:2", "dirty_decay_ms:0", "muzzy_decay_ms:0"] {
        assert!(built_in.contains(option), "{option} is not in {built_in}");
    }
}
