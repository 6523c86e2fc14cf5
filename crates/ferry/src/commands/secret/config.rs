//! `.sops.yaml` creation rules: the first rule whose `path_regex` matches the file (relative to
//! the directory of the `.sops.yaml`, found by walking up from the file) gives the recipients
//! and the encryption rules, as sops does.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ferry_secrets::Rules;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    creation_rules: Vec<CreationRule>,
}

#[derive(Debug, Default, Deserialize)]
struct CreationRule {
    path_regex: Option<String>,
    age: Option<AgeList>,
    encrypted_regex: Option<String>,
    unencrypted_regex: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_suffix: Option<String>,
    encrypted_comment_regex: Option<String>,
    unencrypted_comment_regex: Option<String>,
    #[serde(default)]
    mac_only_encrypted: bool,
    #[serde(default)]
    key_groups: Vec<serde_json::Value>,
    #[serde(default)]
    pgp: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum AgeList {
    One(String),
    Many(Vec<String>),
}

/// What a creation rule says for a file.
#[derive(Debug, Default)]
pub(crate) struct Creation {
    pub(crate) recipients: Vec<String>,
    pub(crate) rules: Rules,
}

fn find_config(file: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(file).ok()?;
    let mut dir = abs.parent();
    while let Some(d) = dir {
        let candidate = d.join(".sops.yaml");
        if candidate.is_file() {
            return Some(candidate);
        }
        dir = d.parent();
    }
    None
}

/// The creation rule for `file`, or an empty one when there is no `.sops.yaml`.
pub(crate) fn creation_for(file: &Path) -> anyhow::Result<Creation> {
    let Some(config) = find_config(file) else {
        return Ok(Creation::default());
    };
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    let parsed: ConfigFile = serde_saphyr::from_str(&text)
        .with_context(|| format!("{} is not a valid .sops.yaml", config.display()))?;
    let abs = std::path::absolute(file)?;
    let base = config.parent().unwrap_or(Path::new("/"));
    let rel = abs
        .strip_prefix(base)
        .unwrap_or(&abs)
        .to_string_lossy()
        .into_owned();
    for (i, rule) in parsed.creation_rules.into_iter().enumerate() {
        if let Some(re) = &rule.path_regex {
            let re = regex::Regex::new(re).with_context(|| {
                format!(
                    "{}: creation_rules[{i}].path_regex is not a valid regex",
                    config.display()
                )
            })?;
            if !re.is_match(&rel) {
                continue;
            }
        }
        if !rule.key_groups.is_empty() || rule.pgp.is_some() {
            bail!(
                "{}: creation_rules[{i}] uses key_groups or pgp, which ferry does not support; \
                 list age recipients in `age:` or use sops",
                config.display()
            );
        }
        let recipients = match rule.age {
            Some(AgeList::One(s)) => s.split(',').map(|r| r.trim().to_owned()).collect(),
            Some(AgeList::Many(v)) => v,
            None => Vec::new(),
        };
        return Ok(Creation {
            recipients: recipients.into_iter().filter(|r| !r.is_empty()).collect(),
            rules: Rules {
                unencrypted_suffix: rule.unencrypted_suffix,
                encrypted_suffix: rule.encrypted_suffix,
                unencrypted_regex: rule.unencrypted_regex,
                encrypted_regex: rule.encrypted_regex,
                unencrypted_comment_regex: rule.unencrypted_comment_regex,
                encrypted_comment_regex: rule.encrypted_comment_regex,
                mac_only_encrypted: rule.mac_only_encrypted,
            },
        });
    }
    bail!(
        "{}: no creation rule matches {rel}; add one (or a rule without path_regex)",
        config.display()
    )
}
