//! `ferry secret` against the real `sops` (target/tools/bin/sops): files ferry encrypts, sops
//! decrypts, and the other way round; `.sops.yaml` creation rules; `edit` with $EDITOR;
//! `rotate` to a new recipient.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sops_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/bin/sops");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/install-tools.sh",
        bin.display()
    );
    bin
}

fn run(program: &Path, dir: &Path, key: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("SOPS_AGE_KEY_FILE", key)
        .env("SOPS_DISABLE_VERSION_CHECK", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn ferry(&self, key: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        run(
            Path::new(env!("CARGO_BIN_EXE_ferry")),
            self.dir.path(),
            &self.dir.path().join(key),
            args,
            env,
        )
    }
    fn sops(&self, key: &str, args: &[&str]) -> Output {
        run(
            &sops_bin(),
            self.dir.path(),
            &self.dir.path().join(key),
            args,
            &[],
        )
    }
    fn keygen(&self, file: &str) -> String {
        let out = self.ferry("none", &["secret", "keygen", "-o", file], &[]);
        ok(out.clone(), "keygen");
        let text = std::fs::read_to_string(self.dir.path().join(file)).unwrap();
        let public = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .unwrap()
            .to_owned();
        assert!(String::from_utf8_lossy(&out.stderr).contains(&public));
        public
    }
    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }
    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap()
    }
}

const SECRET: &str =
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n";

#[test]
fn ferry_and_sops_read_each_others_files() {
    let s = Setup {
        dir: tempfile::tempdir().unwrap(),
    };
    let public = s.keygen("key.txt");

    // ferry → sops.
    s.write("a.yaml", SECRET);
    let enc = ok(
        s.ferry(
            "key.txt",
            &["secret", "encrypt", "a.yaml", "--age", &public],
            &[],
        ),
        "encrypt",
    );
    assert!(!enc.contains("hunter2") && enc.contains("sops:"), "{enc}");
    s.write("a.enc.yaml", &enc);
    let clear = ok(
        s.sops("key.txt", &["decrypt", "a.enc.yaml"]),
        "sops decrypt",
    );
    assert!(clear.contains("password: hunter2"), "{clear}");

    // sops → ferry, a dotenv.
    s.write("b.env", "USER=me\nPASSWORD=hunter2\n");
    let enc = ok(
        s.sops("key.txt", &["encrypt", "--age", &public, "b.env"]),
        "sops encrypt",
    );
    s.write("b.enc.env", &enc);
    let clear = ok(
        s.ferry("key.txt", &["secret", "decrypt", "b.enc.env"], &[]),
        "decrypt",
    );
    assert_eq!(clear, "USER=me\nPASSWORD=hunter2\n");
    // With an explicit key file and the wrong key: refused, naming the recipient.
    let other = s.keygen("other.txt");
    assert_ne!(other, public);
    let out = s.ferry(
        "key.txt",
        &[
            "secret",
            "decrypt",
            "b.enc.env",
            "--age-key-file",
            "other.txt",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&public));
}

#[test]
fn creation_rules_edit_and_rotate() {
    let s = Setup {
        dir: tempfile::tempdir().unwrap(),
    };
    let public = s.keygen("key.txt");
    let second = s.keygen("second.txt");
    s.write(
        ".sops.yaml",
        &format!("creation_rules:\n  - path_regex: secrets/.*\\.yaml$\n    encrypted_regex: ^(data|stringData)$\n    age: {public}\n"),
    );
    std::fs::create_dir(s.dir.path().join("secrets")).unwrap();
    s.write("secrets/db.yaml", SECRET);
    ok(
        s.ferry(
            "key.txt",
            &["secret", "encrypt", "-i", "secrets/db.yaml"],
            &[],
        ),
        "encrypt by rule",
    );
    let enc = s.read("secrets/db.yaml");
    assert!(
        enc.contains("name: db") && enc.contains("encrypted_regex:") && !enc.contains("hunter2"),
        "{enc}"
    );
    // A file no rule matches is refused with the reason.
    s.write("other.yaml", "a: 1\n");
    let out = s.ferry("key.txt", &["secret", "encrypt", "other.yaml"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no creation rule matches"));

    // edit: $EDITOR changes the value; sops reads the result.
    s.write(
        "editor.sh",
        "#!/bin/sh\nsed -i 's/hunter2/changed-value/' \"$1\"\n",
    );
    let editor = s.dir.path().join("editor.sh");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    ok(
        s.ferry(
            "key.txt",
            &["secret", "edit", "secrets/db.yaml"],
            &[("EDITOR", editor.to_str().unwrap())],
        ),
        "edit",
    );
    let clear = ok(
        s.sops("key.txt", &["decrypt", "secrets/db.yaml"]),
        "sops decrypt after edit",
    );
    assert!(clear.contains("password: changed-value"), "{clear}");

    // rotate to the second key: sops opens it with that key only.
    ok(
        s.ferry(
            "key.txt",
            &["secret", "rotate", "secrets/db.yaml", "--age", &second],
            &[],
        ),
        "rotate",
    );
    let clear = ok(
        s.sops("second.txt", &["decrypt", "secrets/db.yaml"]),
        "sops decrypt after rotate",
    );
    assert!(clear.contains("password: changed-value"), "{clear}");
    assert!(
        !s.sops("key.txt", &["decrypt", "secrets/db.yaml"])
            .status
            .success()
    );
}
