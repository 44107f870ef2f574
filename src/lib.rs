//! The mimamori application: CLI, configuration loading, HTTP (console, patient pages, JSON
//! API) and the wiring that starts web and workers.
pub mod capacity_report;
pub mod cli;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod web;

pub use startup::{Application, Role};
