//! `herald user add|del|list`, and the credentials file.
//!
//! Credentials are HA1 hashes ([`auth::credential`]), never passwords. With
//! --redis they are written to Redis, where every edge reads them. The
//! in-memory default cannot be reached from another process, so there the
//! commands write a TOML file (--credentials) that `herald all` (or an
//! edge) loads at start and reloads when it changes.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sip::Aor;
use store::{Credential, RedisStore, Store};

use crate::config::{Config, UserAction};

/// How often a running server looks at the credentials file for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The file form: `[[user]]` tables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    user: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    aor: String,
    realm: String,
    username: String,
    ha1_md5: String,
    ha1_sha256: String,
}

impl FileEntry {
    fn credential(&self) -> Credential {
        Credential {
            realm: self.realm.clone(),
            username: self.username.clone(),
            ha1_md5: self.ha1_md5.clone(),
            ha1_sha256: self.ha1_sha256.clone(),
        }
    }
}

/// Runs one `herald user` command.
pub(crate) async fn run(config: Config, action: UserAction) -> anyhow::Result<()> {
    let target = Target::of(&config).await?;
    match action {
        UserAction::Add {
            aor,
            password_stdin,
            password,
        } => {
            let aor = parse_aor(&aor)?;
            let password = match (password, password_stdin) {
                (Some(p), _) => p,
                (None, true) => read_password()?,
                (None, false) => bail!("give the password with --password-stdin or --password"),
            };
            if password.is_empty() {
                bail!("empty password");
            }
            let Some(username) = aor.user() else {
                bail!("{aor} has no user part");
            };
            let realm = config
                .realm
                .clone()
                .unwrap_or_else(|| aor.domain().to_string());
            let credential = auth::credential(username, &realm, &password);
            target.put(&aor, credential).await?;
            println!("{aor} {realm}");
        }
        UserAction::Del { aor } => {
            let aor = parse_aor(&aor)?;
            if !target.delete(&aor).await? {
                bail!("{aor} has no credentials");
            }
            println!("{aor} deleted");
        }
        UserAction::List => {
            for (aor, realm) in target.list().await? {
                println!("{aor} {realm}");
            }
        }
    }
    Ok(())
}

/// Where `herald user` writes.
enum Target {
    Store(Arc<dyn Store>),
    File(PathBuf),
}

impl Target {
    async fn of(config: &Config) -> anyhow::Result<Target> {
        if let Some(url) = &config.redis {
            let store = RedisStore::connect(url)
                .await
                .with_context(|| format!("cannot reach Redis at {url}"))?;
            return Ok(Target::Store(Arc::new(store)));
        }
        match &config.credentials {
            Some(path) => Ok(Target::File(path.clone())),
            None => bail!(
                "nowhere to keep users: give --redis, or --credentials FILE for the in-memory default"
            ),
        }
    }

    async fn put(&self, aor: &Aor, credential: Credential) -> anyhow::Result<()> {
        match self {
            Target::Store(store) => Ok(store.put_credential(aor, credential).await?),
            Target::File(path) => {
                let mut file = read_file(path)?;
                file.user
                    .retain(|e| !(same_aor(&e.aor, aor) && e.realm == credential.realm));
                file.user.push(FileEntry {
                    aor: aor.to_string(),
                    realm: credential.realm,
                    username: credential.username,
                    ha1_md5: credential.ha1_md5,
                    ha1_sha256: credential.ha1_sha256,
                });
                write_file(path, &file)
            }
        }
    }

    async fn delete(&self, aor: &Aor) -> anyhow::Result<bool> {
        match self {
            Target::Store(store) => Ok(store.delete_credentials(aor).await?),
            Target::File(path) => {
                let mut file = read_file(path)?;
                let before = file.user.len();
                file.user.retain(|e| !same_aor(&e.aor, aor));
                if file.user.len() == before {
                    return Ok(false);
                }
                write_file(path, &file)?;
                Ok(true)
            }
        }
    }

    async fn list(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        match self {
            Target::Store(store) => {
                for aor in store.credential_users().await? {
                    for c in store.credentials(&aor).await? {
                        out.push((aor.to_string(), c.realm));
                    }
                }
            }
            Target::File(path) => {
                for e in read_file(path)?.user {
                    out.push((e.aor, e.realm));
                }
                out.sort();
            }
        }
        Ok(out)
    }
}

fn parse_aor(text: &str) -> anyhow::Result<Aor> {
    let full = if text.starts_with("sip:") || text.starts_with("sips:") {
        text.to_string()
    } else {
        format!("sip:{text}")
    };
    let aor: Aor = full.parse().with_context(|| format!("bad AOR {text}"))?;
    if aor.user().is_none() {
        bail!("{text} has no user part");
    }
    Ok(aor)
}

fn same_aor(text: &str, aor: &Aor) -> bool {
    text.parse::<Aor>().is_ok_and(|a| &a == aor)
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_file(path: &Path) -> anyhow::Result<CredentialsFile> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .with_context(|| format!("bad credentials file {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CredentialsFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes beside the file then renames, so a server reloading it never
/// reads half a file; readable by the owner only (HA1s are as good as
/// passwords for this realm).
fn write_file(path: &Path, file: &CredentialsFile) -> anyhow::Result<()> {
    let text = toml::to_string(file).context("cannot encode credentials")?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

/// Loads the credentials file into `store` now, then again whenever it
/// changes; users removed from the file are removed from the store.
pub(crate) async fn load_and_watch(store: Arc<dyn Store>, path: PathBuf) -> anyhow::Result<()> {
    let mut loaded = BTreeMap::new();
    let stamp = modified(&path);
    sync(&*store, &path, &mut loaded).await?;
    tracing::info!(file = %path.display(), users = loaded.len(), "credentials loaded");
    tokio::spawn(async move {
        let mut stamp = stamp;
        loop {
            tokio::time::sleep(RELOAD_INTERVAL).await;
            let now = modified(&path);
            if now == stamp {
                continue;
            }
            stamp = now;
            match sync(&*store, &path, &mut loaded).await {
                Ok(()) => {
                    tracing::info!(file = %path.display(), users = loaded.len(), "credentials reloaded")
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "credentials not reloaded")
                }
            }
        }
    });
    Ok(())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Makes the store hold what the file says for the AORs it names (or
/// named at the last sync).
async fn sync(
    store: &dyn Store,
    path: &Path,
    loaded: &mut BTreeMap<Aor, Vec<Credential>>,
) -> anyhow::Result<()> {
    let mut now: BTreeMap<Aor, Vec<Credential>> = BTreeMap::new();
    for entry in read_file(path)?.user {
        let aor = parse_aor(&entry.aor)?;
        now.entry(aor).or_default().push(entry.credential());
    }
    for gone in loaded.keys().filter(|a| !now.contains_key(*a)) {
        store.delete_credentials(gone).await?;
    }
    for (aor, credentials) in &now {
        if loaded.get(aor) == Some(credentials) {
            continue;
        }
        store.delete_credentials(aor).await?;
        for c in credentials {
            store.put_credential(aor, c.clone()).await?;
        }
    }
    *loaded = now;
    Ok(())
}
