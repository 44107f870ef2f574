//! The call engine of this process: `mimamori_core::call` with the server's flows, prompts
//! and answer writer. Webhooks and the phone simulator render its steps.
use mimamori_core::{call, domain::Lang, voice::LangPrompts};

use super::AppState;

pub use call::Step;

/// The engine over this server's state.
pub fn engine(s: &AppState) -> call::Engine<'_> {
    call::Engine {
        db: &s.db,
        flows: &s.flows,
        prompts: &s.prompts,
        ingest: &s.ingest,
    }
}

/// The voice prompts of `lang`.
pub fn prompts(s: &AppState, lang: Lang) -> &LangPrompts {
    s.prompts.lang(lang)
}
