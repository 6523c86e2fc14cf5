//! The real `helm` and `kustomize` for the Helm and Kustomize tests, and fixture checkouts.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part of this module

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_source::render::{Manifest, RenderTools};
use tempfile::TempDir;

/// `target/tools/bin/<name>` of the workspace; panics with what to do when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/tools/bin")
        .join(name);
    assert!(
        path.is_file(),
        "{name} is not installed at {}: run scripts/install-tools.sh (it builds the pinned helm and kustomize into target/tools/bin/)",
        path.display()
    );
    path
}

/// Render tools using the pinned binaries, caching under `cache`.
pub fn tools(cache: &Path) -> RenderTools {
    RenderTools::new(cache)
        .with_helm(tool("helm"))
        .with_kustomize(tool("kustomize"))
}

/// The fixtures directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A "checkout": a copy of `tests/fixtures` with read-only files, as the repo cache makes them.
pub fn checkout() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy(&fixtures(), dir.path());
    make_read_only(dir.path());
    dir
}

fn copy(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn make_read_only(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            make_read_only(&entry.path());
        } else {
            let mut perms = entry.metadata().unwrap().permissions();
            perms.set_readonly(true);
            std::fs::set_permissions(entry.path(), perms).unwrap();
        }
    }
}

/// Every file (and directory) under `dir` with its content, to show a tree did not change.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if entry.file_type().unwrap().is_dir() {
            out.insert(format!("{rel}/"), Vec::new());
            walk(root, &entry.path(), out);
        } else {
            out.insert(rel, std::fs::read(entry.path()).unwrap());
        }
    }
}

/// The object of `kind` named `name`; panics with the names present when there is none.
pub fn find<'a>(manifests: &'a [Manifest], kind: &str, name: &str) -> &'a Manifest {
    manifests
        .iter()
        .find(|m| m.object["kind"] == kind && m.object["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", kinds_and_names(manifests)))
}

/// `Kind/name` of each object.
pub fn kinds_and_names(manifests: &[Manifest]) -> Vec<String> {
    manifests
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m.object["kind"].as_str().unwrap_or("?"),
                m.object["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}
