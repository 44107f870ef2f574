//! This process's caches of person observation pages and staff sessions, kept exact by the
//! database's change feed (`mimamori_core::changes`; PostgreSQL only — on SQLite they never
//! go live and every request reads the database).
//!
//! What a cached page can miss: a write committed in *another* process in the few
//! milliseconds before its announcement arrives here — the same page a request a moment
//! earlier would have read. Writes made through this process are applied before their
//! response leaves ([`local_writes`]), so a nurse always sees what she has just saved; a
//! logout here ends the session here at once.
use std::{sync::Arc, time::Instant};

use axum::{
    extract::{Request, State},
    http::Method,
    middleware::Next,
    response::Response,
};
use mimamori_core::{
    changes::{Cache, Invalidate},
    store::sessions::Session,
};
use rand::Rng;

use super::AppState;
use mimamori_core::domain::Lang;

/// Whose view a cached page is: the role decides which parts it shows and the role, office
/// and organisation decide whether the person is in view at all (`Viewer::row_condition`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub role: &'static str,
    pub health_centre_id: i64,
    pub organisation_id: Option<i64>,
    pub lang: Lang,
}

/// A person's observation tab as rendered, with [`Caches::csrf_slot`] where the viewer's
/// CSRF token goes.
pub struct CachedPage {
    pub title: String,
    pub body: String,
}

pub struct CachedSession {
    pub session: Session,
    pub fetched: Instant,
}

/// A cached session is re-read from the database at least this often (which also keeps its
/// idle timer, kept to the minute, moving).
pub const SESSION_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

pub struct Caches {
    pub pages: Cache<PageKey, CachedPage>,
    /// All sessions are one group (0): any ended session or changed account empties it.
    pub sessions: Cache<String, CachedSession>,
    /// Stands for the CSRF token inside cached pages; random per process, so no stored text
    /// can contain it.
    pub csrf_slot: String,
}

impl Caches {
    pub fn new() -> Self {
        let mut rng = rand::rng();
        let slot: String = (0..24)
            .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
            .collect();
        Caches {
            // About 50 KB a page: at most ~100 MB of pages.
            pages: Cache::new(2_000, 200_000),
            sessions: Cache::new(50_000, 1),
            csrf_slot: format!("csrf-{slot}"),
        }
    }
}

impl Default for Caches {
    fn default() -> Self {
        Self::new()
    }
}

impl Invalidate for Caches {
    fn person(&self, id: i64) {
        self.pages.evict(id);
    }
    fn sessions(&self) {
        self.sessions.clear();
    }
    fn all(&self) {
        self.pages.clear();
        self.sessions.clear();
    }
    fn set_live(&self, live: bool) {
        self.pages.set_live(live);
        self.sessions.set_live(live);
    }
}

/// Starts listening to the change feed for `caches` (PostgreSQL, when enabled).
pub fn start(db: &mimamori_core::Db, enabled: bool) -> Arc<Caches> {
    let caches = Arc::new(Caches::new());
    if enabled {
        let weak: std::sync::Weak<Caches> = Arc::downgrade(&caches);
        mimamori_core::changes::listen(db, weak);
    }
    caches
}

/// Applies a console write made through this process to its caches before the response
/// leaves, so the next page shows it whatever the change feed's delay: a write under
/// `/persons/{id}` forgets that person's page; any other console write forgets every page
/// and, unless it was about a person, every cached session (logout, accounts, roles).
/// Patient answers and provider callbacks are left to the feed: they are not the viewer's
/// own writes.
pub async fn local_writes(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let path = req.uri().path().to_owned();
    let resp = next.run(req).await;
    if write {
        let theirs = ["/c/", "/hooks/", "/login", "/api/v1/session"];
        if !theirs.iter().any(|p| path.starts_with(p)) {
            match person_of(&path) {
                Some(id) => s.caches.pages.evict(id),
                None => {
                    s.caches.pages.clear();
                    s.caches.sessions.clear();
                }
            }
        }
    }
    resp
}

/// `/persons/{id}…` → id.
fn person_of(path: &str) -> Option<i64> {
    let rest = path.strip_prefix("/persons/")?;
    rest.split('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn person_paths() {
        assert_eq!(super::person_of("/persons/12/observations"), Some(12));
        assert_eq!(super::person_of("/persons/12"), Some(12));
        assert_eq!(super::person_of("/persons/new"), None);
        assert_eq!(super::person_of("/escalations/3/ack"), None);
    }
}
