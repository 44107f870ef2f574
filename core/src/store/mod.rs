//! The store: every read and write of the database goes through here. Queries are plain,
//! runtime-checked SQL written once for both backends (see [`crate::with_db!`]); the few
//! statements that differ live in [`dialect`].
pub mod alarms;
pub mod assignments;
pub mod audit;
pub mod calls;
pub mod capacity;
pub mod checkins;
mod dialect;
pub mod drafts;
pub mod escalations;
pub mod followups;
pub mod guard;
pub mod ids;
pub mod imports;
pub mod jobs;
pub mod merges;
pub mod observations;
pub mod outbox;
pub mod persons;
pub mod registry;
pub mod reports;
pub mod residences;
pub mod rulelab;
pub mod sections;
pub mod sessions;
pub mod staff;
pub mod stats;

pub use audit::{Actor, audit};

/// A list of ids for an `IN (…)` written into SQL: integers from the store's own reads, never
/// input (so no placeholders are needed, and the statement is not prepared per length).
pub(crate) fn id_list(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
