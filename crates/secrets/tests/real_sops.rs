//! Interoperability with the real `sops` (built by `scripts/install-tools.sh` into
//! target/tools/bin): files sops encrypts, ferry decrypts, and the other way round.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_secrets::{EncryptOptions, Format, KeyRing, Node, Rules, SopsError, formats};

fn sops_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/bin/sops");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/install-tools.sh",
        bin.display()
    );
    bin
}

struct Fixture {
    dir: tempfile::TempDir,
    public: String,
    keys: KeyRing,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = ferry_secrets::generate_identity();
        std::fs::write(dir.path().join("key.txt"), format!("{secret}\n")).unwrap();
        let mut keys = KeyRing::new();
        keys.add_key_file("key.txt", &secret).unwrap();
        Fixture { dir, public, keys }
    }

    fn sops(&self, args: &[&str]) -> String {
        let out = Command::new(sops_bin())
            .args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("SOPS_AGE_KEY_FILE", self.dir.path().join("key.txt"))
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sops {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Encrypts `text` as `name` with the real sops and extra flags.
    fn sops_encrypt(&self, name: &str, text: &str, flags: &[&str]) -> String {
        std::fs::write(self.dir.path().join(name), text).unwrap();
        let mut args = vec!["encrypt", "--age", &self.public];
        args.extend_from_slice(flags);
        args.push(name);
        self.sops(&args)
    }
}

fn clear_branches(name: &str, text: &str) -> Vec<Node> {
    formats::parse(name, Format::for_path(name), text)
        .unwrap()
        .branches
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n# a comment\nstringData:\n  password: hunter2\n  port: 5432\n  ratio: 1.5\n  \"on\": true\n  empty: \"\"\n  nothing: null\n  list:\n    - a\n    - 2\ndata:\n  token: aHVudGVyMg==\n";

#[test]
fn ferry_decrypts_what_sops_encrypts() {
    let f = Fixture::new();
    std::fs::write(
        f.dir.path().join(".sops.yaml"),
        "creation_rules:\n  - path_regex: only\\.yaml$\n    encrypted_regex: ^stringData$\n    mac_only_encrypted: true\n  - path_regex: ^comments\\.yaml$\n    encrypted_comment_regex: sops:enc\n  - path_regex: ^uncomments\\.yaml$\n    unencrypted_comment_regex: keep:clear\n  - path_regex: .*\n",
    )
    .unwrap();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("secret.yaml", SECRET.into(), vec![]),
        (
            "configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  url: https://example.com\n".into(),
            vec!["--encrypted-regex", "^(data|stringData)$"],
        ),
        ("suffix.yaml", "a_unencrypted: plain\nb: secret\n".into(), vec![]),
        (
            "only.yaml",
            "kind: Secret\nstringData:\n  x: y\n".into(),
            // mac_only_encrypted has no flag: it comes from a .sops.yaml creation rule.
            vec![],
        ),
        (
            "unre.yaml",
            "metadata:\n  name: a\nspec:\n  v: 1\n".into(),
            vec!["--unencrypted-regex", "^metadata$"],
        ),
        (
            "suffix2.yaml",
            "user: me\npassword_enc: s3cret\n".into(),
            vec!["--encrypted-suffix", "_enc"],
        ),
        ("multi.yaml", "a: 1\n---\nb: two\n".into(), vec![]),
        (
            "comments.yaml",
            "user: me\n# sops:enc\npassword: hunter2\nport: 5432\n".into(),
            vec![], // encrypted_comment_regex from .sops.yaml
        ),
        (
            "uncomments.yaml",
            "# keep:clear\nuser: me\npassword: hunter2\n".into(),
            vec![], // unencrypted_comment_regex from .sops.yaml
        ),
        ("values.json", "{\"a\": {\"b\": [1, \"x\"]}, \"c\": true}".into(), vec![]),
        ("app.env", "USER=me\n# note\nPASSWORD=hunter2\n".into(), vec![]),
        ("app.ini", "[db]\nuser = me\npassword = hunter2\n".into(), vec![]),
    ];
    for (name, text, flags) in cases {
        let enc = f.sops_encrypt(name, &text, &flags);
        let format = Format::for_path(name);
        assert!(
            ferry_secrets::looks_encrypted(format, &enc),
            "{name}: {enc}"
        );
        if name == "only.yaml" {
            assert!(enc.contains("mac_only_encrypted: true"), "{enc}");
        }
        if name.ends_with("comments.yaml") {
            assert!(
                enc.contains("comment_regex:") && enc.contains("user: me"),
                "{enc}"
            );
        }
        let clear = ferry_secrets::decrypt(name, format, &enc, &f.keys)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{enc}"));
        assert_eq!(clear.branches, clear_branches(name, &text), "{name}");
    }
}

#[test]
fn sops_decrypts_what_ferry_encrypts() {
    let f = Fixture::new();
    let cases: Vec<(&str, String, Rules)> = vec![
        ("secret.yaml", SECRET.into(), Rules::default()),
        (
            "configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  url: x\n".into(),
            Rules {
                encrypted_regex: Some("^(data|stringData)$".into()),
                mac_only_encrypted: true,
                ..Rules::default()
            },
        ),
        ("multi.yaml", "a: 1\n---\nb: two\n".into(), Rules::default()),
        (
            "values.json",
            "{\"a\": {\"b\": [1, \"x\"]}, \"c\": true}".into(),
            Rules::default(),
        ),
        (
            "app.env",
            "USER=me\nPASSWORD=hunter2\n".into(),
            Rules::default(),
        ),
        ("app.ini", "[db]\nuser = me\n".into(), Rules::default()),
    ];
    for (name, text, rules) in cases {
        let format = Format::for_path(name);
        let opts = EncryptOptions {
            recipients: vec![f.public.clone()],
            rules,
        };
        let enc = ferry_secrets::encrypt(name, format, &text, &opts).unwrap();
        assert!(!enc.contains("hunter2"), "{enc}");
        let enc_name = format!("enc-{name}");
        std::fs::write(f.dir.path().join(&enc_name), &enc).unwrap();
        let type_flag = match format {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Dotenv => "dotenv",
            Format::Ini => "ini",
        };
        let clear = f.sops(&[
            "decrypt",
            "--input-type",
            type_flag,
            "--output-type",
            type_flag,
            &enc_name,
        ]);
        assert_eq!(
            clear_branches(name, &clear),
            clear_branches(name, &text),
            "{name}: sops gave\n{clear}"
        );
    }
}

#[test]
fn tampered_files_from_sops_are_refused() {
    let f = Fixture::new();
    let enc = f.sops_encrypt(
        "cm.yaml",
        "kind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  url: x\n",
        &["--encrypted-regex", "^data$"],
    );
    let refused =
        |text: &str| ferry_secrets::decrypt("cm.yaml", Format::Yaml, text, &f.keys).unwrap_err();
    // A clear value changed.
    assert!(matches!(
        refused(&enc.replace("name: cfg", "name: evil")),
        SopsError::MacMismatch { .. }
    ));
    // An encrypted value changed.
    let url_line = enc
        .lines()
        .find(|l| l.trim_start().starts_with("url:"))
        .unwrap();
    let data_start = url_line.find("data:").unwrap() + 5;
    let mut tampered_line = url_line.to_owned();
    tampered_line.replace_range(
        data_start..data_start + 1,
        if &url_line[data_start..=data_start] == "A" {
            "B"
        } else {
            "A"
        },
    );
    let err = refused(&enc.replace(url_line, &tampered_line));
    assert!(matches!(err, SopsError::Value { .. }), "{err}");
    assert!(err.to_string().contains("data:url:"), "{err}");
    // The MAC changed.
    let mac_line = enc
        .lines()
        .find(|l| l.trim_start().starts_with("mac:"))
        .unwrap();
    let mac_start = mac_line.find("data:").unwrap() + 5;
    let mut bad_mac = mac_line.to_owned();
    bad_mac.replace_range(
        mac_start..mac_start + 1,
        if &mac_line[mac_start..=mac_start] == "A" {
            "B"
        } else {
            "A"
        },
    );
    assert!(matches!(
        refused(&enc.replace(mac_line, &bad_mac)),
        SopsError::MacMismatch { .. }
    ));
    // Another key.
    let mut other = KeyRing::new();
    other
        .add_key_file("other", &ferry_secrets::generate_identity().0)
        .unwrap();
    let err = ferry_secrets::decrypt("cm.yaml", Format::Yaml, &enc, &other).unwrap_err();
    assert!(err.to_string().contains(&f.public), "{err}");
}
