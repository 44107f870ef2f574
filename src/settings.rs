//! Configuration loading: built-in defaults → `mimamori.toml` (optional) → environment
//! (`MIMAMORI_SECTION__KEY`, e.g. `MIMAMORI_DATABASE__URL`).
use std::path::Path;

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use mimamori_core::config::Config;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};

pub fn load(file: &Path) -> anyhow::Result<Config> {
    let cfg: Config = Figment::new()
        .merge(Toml::file(file))
        .merge(Env::prefixed("MIMAMORI_").split("__"))
        .extract()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    Ok(cfg)
}

/// The key that signs patient links: configured (`MIMAMORI_LINK_SECRET`), or generated once
/// and kept in `{data_dir}/link-secret.key` for the embedded single-process set-up. Several
/// `web` processes must share a configured key.
pub fn link_key(cfg: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &cfg.link_secret {
        let k = s.expose_secret().as_bytes().to_vec();
        anyhow::ensure!(
            k.len() >= 32,
            "link_secret (MIMAMORI_LINK_SECRET) must be at least 32 characters"
        );
        return Ok(k);
    }
    let path = Path::new(&cfg.data_dir).join("link-secret.key");
    if let Ok(k) = std::fs::read_to_string(&path) {
        return Ok(k.trim().as_bytes().to_vec());
    }
    std::fs::create_dir_all(&cfg.data_dir)?;
    let key: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    std::fs::write(&path, &key)?;
    Ok(key.into_bytes())
}

/// Never printed: the `Debug` of [`SecretString`] is redacted.
pub fn redacted(s: &Option<SecretString>) -> &'static str {
    if s.is_some() { "[set]" } else { "[unset]" }
}
