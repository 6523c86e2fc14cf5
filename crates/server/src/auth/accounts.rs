//! Local accounts, kept in the cluster as Argo CD keeps them.
//!
//! - ConfigMap [`CONFIG_MAP`] declares accounts other than `admin`:
//!   `accounts.<name>: "login, apiKey"` (what the account may use), `accounts.<name>.role:
//!   readonly|sync|admin` (default `readonly`), `accounts.<name>.projects: "a, b"` (default:
//!   every project), `accounts.<name>.enabled: "false"` to switch one off; `admin.enabled:
//!   "false"` switches the built-in admin off.
//! - Secret [`SECRET`] holds the credentials: `admin.password` and `accounts.<name>.password`
//!   (argon2id PHC strings, never clear text), and `admin.tokens` / `accounts.<name>.tokens`:
//!   one API token per line as `<id>:<sha256 hex of the token>`.
//! - Secret [`INITIAL_ADMIN_SECRET`] (key `password`) holds the admin's first password in clear,
//!   created at the first start when no admin password exists, so the operator can read it once
//!   and then change it (`ferry account update-password admin`) and delete that Secret.
//!
//! Accounts are read through [`AccountStore`], which caches what it read for a few seconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, Patch, PatchParams, PostParams};
use sha2::{Digest, Sha256};

use super::Role;

/// The ConfigMap declaring accounts.
pub const CONFIG_MAP: &str = "ferry-cm";
/// The Secret holding password hashes and API token hashes.
pub const SECRET: &str = "ferry-secret";
/// The Secret holding the admin's initial password (key `password`).
pub const INITIAL_ADMIN_SECRET: &str = "ferry-initial-admin-secret";
/// The built-in administrator.
pub const ADMIN: &str = "admin";
/// The prefix of API tokens, so they are recognizable (and findable by secret scanners).
pub const TOKEN_PREFIX: &str = "ferry_";

/// How long what [`AccountStore`] read stays in use.
const CACHE_TTL: Duration = Duration::from_secs(3);

/// Errors reading or changing accounts.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The Kubernetes API refused or failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done.
        action: String,
        /// Why it failed.
        #[source]
        source: kube::Error,
    },
    /// No such account.
    #[error(
        "no account {0}: declare it in ConfigMap {CONFIG_MAP} (`accounts.{0}: login, apiKey`) \
         or with `ferry account create {0}`"
    )]
    NotFound(String),
    /// A name or value that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// Hashing failed (should not happen).
    #[error("hashing a password: {0}")]
    Hash(String),
    /// Too many password checks are waiting: the server is flooded with logins.
    #[error("too many logins at once: try again in a few seconds")]
    Busy,
}

/// How long a login waits for a free password-check slot before it is refused as busy.
const VERIFY_WAIT: Duration = Duration::from_secs(10);

/// How often at most an unknown account name may make the store read the accounts again.
const FORCED_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> AccountError {
    let action = action.into();
    move |source| AccountError::Kube { action, source }
}

/// One account as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The projects the role applies to (empty: every project).
    pub projects: Vec<String>,
    /// May log in with a password.
    pub login: bool,
    /// May use API tokens.
    pub api_key: bool,
    /// Switched on.
    pub enabled: bool,
    /// The argon2 PHC string of its password, when one is set.
    pub password_hash: Option<String>,
    /// Its API tokens: id and SHA-256 (hex) of the token.
    pub tokens: Vec<(String, String)>,
}

/// The key in [`SECRET`] of an account's `field` (`password`, `tokens`).
pub fn secret_key(account: &str, field: &str) -> String {
    if account == ADMIN {
        format!("admin.{field}")
    } else {
        format!("accounts.{account}.{field}")
    }
}

/// Whether `name` can be an account name (DNS-label-like: lowercase letters, digits, `-`).
pub fn valid_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Reads every account from the ConfigMap's and the Secret's data. Pure, for tests.
pub fn parse_accounts(
    config: &BTreeMap<String, String>,
    secret: &BTreeMap<String, String>,
) -> Vec<Account> {
    let mut accounts = Vec::new();
    let admin_enabled = config.get("admin.enabled").map(String::as_str) != Some("false");
    accounts.push(Account {
        name: ADMIN.into(),
        role: Role::Admin,
        projects: Vec::new(),
        login: true,
        api_key: true,
        enabled: admin_enabled,
        password_hash: secret.get(&secret_key(ADMIN, "password")).cloned(),
        tokens: parse_tokens(secret.get(&secret_key(ADMIN, "tokens"))),
    });
    for (key, value) in config {
        let Some(name) = key.strip_prefix("accounts.") else {
            continue;
        };
        if name.contains('.') || name == ADMIN || !valid_account_name(name) {
            continue;
        }
        let caps: Vec<&str> = value.split(',').map(str::trim).collect();
        let field = |f: &str| config.get(&format!("accounts.{name}.{f}"));
        accounts.push(Account {
            name: name.into(),
            role: field("role")
                .and_then(|r| Role::parse(r))
                .unwrap_or(Role::ReadOnly),
            projects: field("projects")
                .map(|p| {
                    p.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            login: caps.contains(&"login"),
            api_key: caps.contains(&"apiKey"),
            enabled: field("enabled").map(String::as_str) != Some("false"),
            password_hash: secret.get(&secret_key(name, "password")).cloned(),
            tokens: parse_tokens(secret.get(&secret_key(name, "tokens"))),
        });
    }
    accounts
}

fn parse_tokens(lines: Option<&String>) -> Vec<(String, String)> {
    lines
        .map(|l| {
            l.lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(id, hash)| (id.trim().to_string(), hash.trim().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// SHA-256 of a token, hex.
pub fn token_digest(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes from the operating system, URL-safe base64 without padding.
pub fn random_token(n: usize) -> String {
    use base64::Engine as _;
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A random password of letters and digits, easy to copy.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// The argon2id PHC string of `password`.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AccountError::Hash(e.to_string()))?;
    argon2::Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Hash(e.to_string()))
}

/// A hash nobody's password matches, verified for unknown users so that a wrong name costs as
/// long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_token(24)).unwrap_or_default())
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Accounts read from the cluster, cached for a few seconds.
#[derive(Debug)]
pub struct AccountStore {
    config_maps: Api<ConfigMap>,
    secrets: Api<Secret>,
    namespace: String,
    cache: tokio::sync::Mutex<Option<(Instant, Arc<Vec<Account>>)>>,
    /// Bounds the password checks (argon2, 19 MiB each) running at once.
    verify_slots: tokio::sync::Semaphore,
    /// When a failed login last made the store read the accounts again.
    last_forced_reload: std::sync::Mutex<Option<Instant>>,
}

/// Password checks that may run at once: the machine's cores, at least 2 and at most 8.
fn verify_concurrency() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(2)
        .clamp(2, 8)
}

impl AccountStore {
    /// A store over the ConfigMap and Secret in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        AccountStore {
            config_maps: Api::namespaced(client.clone(), namespace),
            secrets: Api::namespaced(client, namespace),
            namespace: namespace.into(),
            cache: tokio::sync::Mutex::new(None),
            verify_slots: tokio::sync::Semaphore::new(verify_concurrency()),
            last_forced_reload: std::sync::Mutex::new(None),
        }
    }

    /// Every account (cached for a few seconds).
    pub async fn accounts(&self) -> Result<Arc<Vec<Account>>, AccountError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, accounts)) = cache.as_ref()
            && at.elapsed() < CACHE_TTL
        {
            return Ok(accounts.clone());
        }
        let config = self
            .config_maps
            .get_opt(CONFIG_MAP)
            .await
            .map_err(kube_err(format!(
                "reading ConfigMap {}/{CONFIG_MAP}",
                self.namespace
            )))?
            .and_then(|c| c.data)
            .unwrap_or_default();
        let secret = secret_strings(self.secrets.get_opt(SECRET).await.map_err(kube_err(
            format!("reading Secret {}/{SECRET}", self.namespace),
        ))?);
        let accounts = Arc::new(parse_accounts(&config, &secret));
        *cache = Some((Instant::now(), accounts.clone()));
        Ok(accounts)
    }

    /// Forgets what was read, so the next call reads again.
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    /// The enabled account `name`.
    pub async fn account(&self, name: &str) -> Result<Option<Account>, AccountError> {
        Ok(self
            .accounts()
            .await?
            .iter()
            .find(|a| a.name == name && a.enabled)
            .cloned())
    }

    /// The account `name` when `password` is its password (and it may log in).
    ///
    /// A failure is checked once more against freshly read accounts, so that a password set a
    /// moment ago works: for a known account (whose failures the login limiter bounds), and for
    /// an unknown name at most once per [`FORCED_RELOAD_INTERVAL`] for the whole server, so a
    /// flood of made-up names cannot make every failure read the accounts again.
    pub async fn check_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<Account>, AccountError> {
        if let Some(account) = self.check_password_once(name, password).await? {
            return Ok(Some(account));
        }
        let known = self.account(name).await?.is_some();
        let reload = known || {
            let mut last = self
                .last_forced_reload
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|at| at.elapsed() >= FORCED_RELOAD_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if !reload {
            return Ok(None);
        }
        self.invalidate().await;
        self.check_password_once(name, password).await
    }

    /// Whether `name` is an enabled account (from the cache: no read of the cluster when the
    /// cache is fresh).
    pub async fn is_known(&self, name: &str) -> bool {
        matches!(self.account(name).await, Ok(Some(_)))
    }

    async fn check_password_once(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<Account>, AccountError> {
        let account = self.account(name).await?.filter(|a| a.login);
        let hash = account
            .as_ref()
            .and_then(|a| a.password_hash.clone())
            .unwrap_or_else(|| dummy_hash().to_string());
        let password = password.to_string();
        // At most `verify_concurrency()` checks at once; the rest wait (without a thread), and
        // give up after VERIFY_WAIT.
        let _slot = tokio::time::timeout(VERIFY_WAIT, self.verify_slots.acquire())
            .await
            .map_err(|_| AccountError::Busy)?
            .map_err(|_| AccountError::Busy)?;
        let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        Ok(account.filter(|a| matches && a.password_hash.is_some()))
    }

    /// The account owning API token `token`.
    pub async fn account_for_token(&self, token: &str) -> Result<Option<Account>, AccountError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let digest = token_digest(token);
        Ok(self
            .accounts()
            .await?
            .iter()
            .find(|a| {
                a.enabled
                    && a.api_key
                    && a.tokens.iter().any(|(_, h)| {
                        subtle::ConstantTimeEq::ct_eq(h.as_bytes(), digest.as_bytes()).into()
                    })
            })
            .cloned())
    }

    /// Writes `entries` into the Secret (created when missing); `None` removes a key.
    async fn patch_secret(&self, entries: &[(String, Option<String>)]) -> Result<(), AccountError> {
        use base64::Engine as _;
        let data = entries
            .iter()
            .map(|(k, v)| {
                let encoded = v
                    .as_ref()
                    .map(|v| base64::engine::general_purpose::STANDARD.encode(v));
                (k.clone(), encoded.into())
            })
            .collect();
        upsert_data(&self.secrets, "Secret", &self.namespace, SECRET, data).await?;
        self.invalidate().await;
        Ok(())
    }

    /// Sets the password of account `name`.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        if password.chars().count() < 8 {
            return Err(AccountError::Invalid(
                "a password needs at least 8 characters".into(),
            ));
        }
        self.require_account(name).await?;
        let hash = {
            let password = password.to_string();
            tokio::task::spawn_blocking(move || hash_password(&password))
                .await
                .map_err(|e| AccountError::Hash(e.to_string()))??
        };
        self.patch_secret(&[(secret_key(name, "password"), Some(hash))])
            .await
    }

    async fn require_account(&self, name: &str) -> Result<Account, AccountError> {
        self.invalidate().await;
        self.accounts()
            .await?
            .iter()
            .find(|a| a.name == name)
            .cloned()
            .ok_or_else(|| AccountError::NotFound(name.into()))
    }

    /// Creates an API token for account `name` under `id` (replacing one with the same id) and
    /// returns the token; only its digest is stored.
    pub async fn generate_token(&self, name: &str, id: &str) -> Result<String, AccountError> {
        if id.is_empty() || id.contains([':', '\n']) {
            return Err(AccountError::Invalid(format!(
                "token id {id:?}: use a non-empty id without ':' or newlines"
            )));
        }
        let account = self.require_account(name).await?;
        if !account.api_key {
            return Err(AccountError::Invalid(format!(
                "account {name} may not use API tokens: add apiKey to `accounts.{name}` in \
                 ConfigMap {CONFIG_MAP}"
            )));
        }
        let token = format!("{TOKEN_PREFIX}{}", random_token(32));
        let mut lines: Vec<String> = account
            .tokens
            .iter()
            .filter(|(i, _)| i != id)
            .map(|(i, h)| format!("{i}:{h}"))
            .collect();
        lines.push(format!("{id}:{}", token_digest(&token)));
        self.patch_secret(&[(secret_key(name, "tokens"), Some(lines.join("\n")))])
            .await?;
        Ok(token)
    }

    /// Deletes API token `id` of account `name`; false when it had none by that id.
    pub async fn delete_token(&self, name: &str, id: &str) -> Result<bool, AccountError> {
        let account = self.require_account(name).await?;
        if !account.tokens.iter().any(|(i, _)| i == id) {
            return Ok(false);
        }
        let lines: Vec<String> = account
            .tokens
            .iter()
            .filter(|(i, _)| i != id)
            .map(|(i, h)| format!("{i}:{h}"))
            .collect();
        let value = (!lines.is_empty()).then(|| lines.join("\n"));
        self.patch_secret(&[(secret_key(name, "tokens"), value)])
            .await?;
        Ok(true)
    }

    /// Declares account `name` (or changes its role and projects) in the ConfigMap.
    pub async fn upsert_account(
        &self,
        name: &str,
        role: Role,
        projects: &[String],
    ) -> Result<(), AccountError> {
        if name == ADMIN {
            return Err(AccountError::Invalid(
                "admin is built in; its role cannot change".into(),
            ));
        }
        if !valid_account_name(name) {
            return Err(AccountError::Invalid(format!(
                "account name {name:?}: use lowercase letters, digits and '-' (at most 63)"
            )));
        }
        let data = [
            (format!("accounts.{name}"), "login, apiKey".to_string()),
            (format!("accounts.{name}.role"), role.as_str().to_string()),
            (format!("accounts.{name}.projects"), projects.join(", ")),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.into()))
        .collect();
        upsert_data(
            &self.config_maps,
            "ConfigMap",
            &self.namespace,
            CONFIG_MAP,
            data,
        )
        .await?;
        self.invalidate().await;
        Ok(())
    }

    /// When the admin is enabled and has no password yet: generates one, stores its hash in
    /// [`SECRET`] and the clear text in [`INITIAL_ADMIN_SECRET`], as Argo CD does. Returns
    /// whether it did.
    pub async fn ensure_initial_admin_password(&self) -> Result<bool, AccountError> {
        self.invalidate().await;
        let accounts = self.accounts().await?;
        let Some(admin) = accounts.iter().find(|a| a.name == ADMIN) else {
            return Ok(false);
        };
        if !admin.enabled || admin.password_hash.is_some() {
            return Ok(false);
        }
        let password = random_password();
        let initial: Secret = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": INITIAL_ADMIN_SECRET, "labels": {"app.kubernetes.io/part-of": "ferry"}},
            "type": "Opaque",
            "stringData": {"password": password},
        }))
        .map_err(|e| AccountError::Invalid(e.to_string()))?;
        // The initial Secret first: if two servers race, the one whose create wins writes the
        // hash; the other backs off.
        match self.secrets.create(&PostParams::default(), &initial).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // A Secret from an earlier start whose hash never got written: use its password.
                let existing = secret_strings(
                    self.secrets
                        .get_opt(INITIAL_ADMIN_SECRET)
                        .await
                        .map_err(kube_err("reading the initial admin Secret"))?,
                );
                let Some(old) = existing.get("password") else {
                    return Ok(false);
                };
                let hash = hash_password(old)?;
                self.patch_secret(&[(secret_key(ADMIN, "password"), Some(hash))])
                    .await?;
                return Ok(true);
            }
            Err(source) => {
                return Err(AccountError::Kube {
                    action: format!("creating Secret {}/{INITIAL_ADMIN_SECRET}", self.namespace),
                    source,
                });
            }
        }
        let hash = tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| AccountError::Hash(e.to_string()))??;
        self.patch_secret(&[(secret_key(ADMIN, "password"), Some(hash))])
            .await?;
        Ok(true)
    }
}

/// Sets keys of the `data` of ConfigMap or Secret `name` (values already encoded as the kind
/// wants them; `null` removes a key) by a merge patch, or creates the object when it does not
/// exist yet.
async fn upsert_data<K>(
    api: &Api<K>,
    kind: &str,
    namespace: &str,
    name: &str,
    data: serde_json::Map<String, serde_json::Value>,
) -> Result<(), AccountError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let patch = serde_json::json!({ "data": data });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => return Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(source) => {
            return Err(AccountError::Kube {
                action: format!("updating {kind} {namespace}/{name}"),
                source,
            });
        }
    }
    let present: serde_json::Map<_, _> = data.into_iter().filter(|(_, v)| !v.is_null()).collect();
    let object: K = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": kind,
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "ferry"}},
        "data": present,
    }))
    .map_err(|e| AccountError::Invalid(format!("building {kind} {name}: {e}")))?;
    api.create(&PostParams::default(), &object)
        .await
        .map_err(kube_err(format!("creating {kind} {namespace}/{name}")))?;
    Ok(())
}

/// A Secret's values as strings (`data` decoded, `stringData` as is).
fn secret_strings(secret: Option<Secret>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(secret) = secret {
        for (k, ByteString(v)) in secret.data.unwrap_or_default() {
            if let Ok(v) = String::from_utf8(v) {
                out.insert(k, v);
            }
        }
        for (k, v) in secret.string_data.unwrap_or_default() {
            out.insert(k, v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn accounts_are_read_from_config_and_secret() {
        let config = map(&[
            ("accounts.alice", "login, apiKey"),
            ("accounts.alice.role", "sync"),
            ("accounts.alice.projects", "team-a, team-b"),
            ("accounts.ci", "apiKey"),
            ("accounts.bob", "login"),
            ("accounts.bob.role", "role:nonsense"),
            ("accounts.bob.enabled", "false"),
            ("accounts.Bad_Name", "login"),
            ("unrelated", "x"),
        ]);
        let secret = map(&[
            ("admin.password", "$argon2id$admin"),
            ("accounts.alice.password", "$argon2id$alice"),
            ("accounts.ci.tokens", "build:abc\nnightly: def\n"),
        ]);
        let accounts = parse_accounts(&config, &secret);
        let names: Vec<&str> = accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["admin", "alice", "bob", "ci"]);
        let admin = &accounts[0];
        assert_eq!(admin.role, Role::Admin);
        assert!(admin.enabled && admin.login);
        assert_eq!(admin.password_hash.as_deref(), Some("$argon2id$admin"));
        let alice = &accounts[1];
        assert_eq!(alice.role, Role::Sync);
        assert_eq!(alice.projects, ["team-a", "team-b"]);
        assert!(alice.login && alice.api_key);
        let bob = &accounts[2];
        assert_eq!(
            bob.role,
            Role::ReadOnly,
            "an unknown role falls back to readonly"
        );
        assert!(!bob.enabled && !bob.api_key);
        let ci = &accounts[3];
        assert!(!ci.login && ci.api_key);
        assert_eq!(
            ci.tokens,
            [
                ("build".to_string(), "abc".to_string()),
                ("nightly".to_string(), "def".to_string())
            ]
        );
    }

    #[test]
    fn admin_can_be_switched_off() {
        let accounts = parse_accounts(&map(&[("admin.enabled", "false")]), &map(&[]));
        assert!(!accounts[0].enabled);
    }

    #[test]
    fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
    }

    #[test]
    fn tokens_and_passwords_are_random_and_well_formed() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
        let p = random_password();
        assert_eq!(p.len(), 24);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(token_digest("x").len(), 64);
    }

    #[test]
    fn account_names_are_checked() {
        assert!(valid_account_name("alice"));
        assert!(valid_account_name("ci-bot-2"));
        assert!(!valid_account_name("Alice"));
        assert!(!valid_account_name("-x"));
        assert!(!valid_account_name("a.b"));
        assert!(!valid_account_name(""));
    }
}
