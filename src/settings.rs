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

/// Sender lists taken from the environment as written: figment would read a lone
/// `+815000000001` as a number (dropping the `+`), so these are split on commas here.
const NUMBER_LISTS: [(&str, &str); 2] = [
    ("twilio.sms_from", "TWILIO__SMS_FROM"),
    ("twilio.voice_from", "TWILIO__VOICE_FROM"),
];

pub fn load(file: &Path) -> anyhow::Result<Config> {
    let mut figment = Figment::new().merge(Toml::file(file)).merge(
        Env::prefixed("MIMAMORI_")
            .filter(|k| {
                !NUMBER_LISTS
                    .iter()
                    .any(|(_, v)| k.as_str().eq_ignore_ascii_case(v))
            })
            .split("__"),
    );
    for (key, var) in NUMBER_LISTS {
        if let Ok(v) = std::env::var(format!("MIMAMORI_{var}")) {
            let list: Vec<String> = v
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect();
            figment = figment.merge(figment::providers::Serialized::default(key, list));
        }
    }
    let cfg: Config = figment
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
