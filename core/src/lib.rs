//! mimamori-core: domain types, configuration, the store (SQLite + PostgreSQL),
//! signed links and channel providers. No HTTP server and no queue runtime here.
pub mod access;
pub mod answer;
pub mod api_schema;
pub mod call;
pub mod capacity;
pub mod changes;
pub mod codes;
pub mod config;
pub mod db;
pub mod delivery;
pub mod demo;
pub mod domain;
pub mod error;
pub mod flows;
pub mod i18n;
pub mod import;
pub mod ingest;
pub mod link_reads;
pub mod password;
pub mod periods;
pub mod provider;
pub mod registration;
pub mod rules;
pub mod signature;
pub mod stats;
pub mod store;
pub mod testing;
pub mod token;
pub mod voice;

pub use db::Db;
pub use error::{Error, FieldError, Result};
