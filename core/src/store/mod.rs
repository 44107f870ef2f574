//! The store: every read and write of the database goes through here. Queries are plain,
//! runtime-checked SQL written once for both backends (see [`crate::with_db!`]); the few
//! statements that differ live in [`dialect`].
pub mod alarms;
pub mod audit;
pub mod calls;
pub mod capacity;
pub mod checkins;
mod dialect;
pub mod drafts;
pub mod escalations;
pub mod followups;
pub mod ids;
pub mod jobs;
pub mod merges;
pub mod observations;
pub mod outbox;
pub mod persons;
pub mod registry;
pub mod reports;
pub mod residences;
pub mod sections;
pub mod staff;

pub use audit::{Actor, audit};
