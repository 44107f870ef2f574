//! Caches that are exact because the database says what changed.
//!
//! On PostgreSQL, triggers (migration 0016) announce at commit every write that changes a
//! person's observation page (`p<id>`), ends a session (`s`) or changes what every page
//! shows (`*`), on the channel [`CHANNEL`]. [`listen`] keeps one connection per process
//! listening and applies each announcement to the process's caches ([`Invalidate`]).
//!
//! A cache serves only while its process is listening: until the first `LISTEN` succeeds,
//! after the connection is lost, and on SQLite (which cannot tell other processes) every
//! lookup misses and nothing is stored, so reads go to the database as if there were no
//! cache. Each (re)connection starts from empty caches, because announcements made while
//! nobody listened are gone.
//!
//! [`Cache`] closes the race between a reader and a writer: a reader takes a [`Ticket`]
//! before it reads the database and may store what it built only if no announcement for
//! that group arrived in between, so a value built from rows older than the last
//! announcement is never stored.
use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use crate::Db;

/// The notification channel the triggers announce on.
pub const CHANNEL: &str = "mimamori_changes";

/// A process's caches, as the change feed sees them.
pub trait Invalidate: Send + Sync + 'static {
    /// Rows of person `id`'s page changed.
    fn person(&self, id: i64);
    /// A session ended or an account changed.
    fn sessions(&self);
    /// Anything may have changed.
    fn all(&self);
    /// Whether announcements are being received; false empties the caches and keeps them
    /// empty, true starts them empty.
    fn set_live(&self, live: bool);
}

/// Proof that nothing for a group was announced since it was taken; see [`Cache::put`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    group: i64,
    generation: u64,
}

struct Group<K, V> {
    generation: u64,
    entries: HashMap<K, Arc<V>>,
}

struct State<K, V> {
    live: bool,
    epoch: u64,
    entries: usize,
    groups: HashMap<i64, Group<K, V>>,
}

/// Values grouped by what invalidates them (a person's id; one group for all sessions),
/// each group with a generation that every announcement for it advances.
pub struct Cache<K, V> {
    state: Mutex<State<K, V>>,
    max_entries: usize,
    max_groups: usize,
}

impl<K: Eq + Hash, V> Cache<K, V> {
    /// A cache holding at most `max_entries` values; it also forgets everything once it has
    /// seen announcements for `max_groups` groups (generations must not be dropped one by
    /// one, or a stale ticket could match a fresh group).
    pub fn new(max_entries: usize, max_groups: usize) -> Self {
        Cache {
            state: Mutex::new(State {
                live: false,
                epoch: 0,
                entries: 0,
                groups: HashMap::new(),
            }),
            max_entries,
            max_groups,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<K, V>> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than emptying them.
        self.state.lock().unwrap_or_else(|e| {
            let mut s = e.into_inner();
            Self::clear_locked(&mut s);
            s
        })
    }

    fn clear_locked(s: &mut State<K, V>) {
        s.epoch += 1;
        s.groups.clear();
        s.entries = 0;
    }

    /// The stored value, if the cache is live and holds one.
    pub fn get(&self, group: i64, key: &K) -> Option<Arc<V>> {
        let s = self.lock();
        if !s.live {
            return None;
        }
        s.groups.get(&group)?.entries.get(key).cloned()
    }

    /// Take before reading what the value is built from; `None` when not live (build the
    /// value, but do not store it).
    pub fn ticket(&self, group: i64) -> Option<Ticket> {
        let s = self.lock();
        s.live.then(|| Ticket {
            epoch: s.epoch,
            group,
            generation: s.groups.get(&group).map_or(0, |g| g.generation),
        })
    }

    /// Stores `value` unless something for its group was announced since `ticket` was taken
    /// (or the cache was emptied). Returns whether it was stored.
    pub fn put(&self, ticket: Ticket, key: K, value: V) -> bool {
        let mut s = self.lock();
        if !s.live || s.epoch != ticket.epoch {
            return false;
        }
        let max_entries = self.max_entries;
        let g = s.groups.entry(ticket.group).or_insert_with(|| Group {
            generation: 0,
            entries: HashMap::new(),
        });
        if g.generation != ticket.generation {
            return false;
        }
        let added = usize::from(g.entries.insert(key, Arc::new(value)).is_none());
        s.entries += added;
        if s.entries > max_entries {
            // Drop other groups' values (keeping their generations) down to three quarters
            // of the limit, so the walk over the groups happens once per many stores.
            let mut over = s.entries - max_entries * 3 / 4;
            for (id, g) in s.groups.iter_mut() {
                if over == 0 {
                    break;
                }
                if *id != ticket.group && !g.entries.is_empty() {
                    over = over.saturating_sub(g.entries.len());
                    g.entries.clear();
                }
            }
            s.entries = s.groups.values().map(|g| g.entries.len()).sum();
        }
        if s.groups.len() > self.max_groups {
            Self::clear_locked(&mut s);
        }
        true
    }

    /// Forgets a group's values and invalidates tickets taken for it.
    pub fn evict(&self, group: i64) {
        let mut s = self.lock();
        if !s.live {
            return;
        }
        let g = s.groups.entry(group).or_insert_with(|| Group {
            generation: 0,
            entries: HashMap::new(),
        });
        g.generation += 1;
        let n = g.entries.len();
        g.entries.clear();
        s.entries -= n;
        if s.groups.len() > self.max_groups {
            Self::clear_locked(&mut s);
        }
    }

    /// Forgets everything and invalidates every ticket.
    pub fn clear(&self) {
        Self::clear_locked(&mut self.lock());
    }

    /// Starts or stops serving; either way the cache starts empty.
    pub fn set_live(&self, live: bool) {
        let mut s = self.lock();
        Self::clear_locked(&mut s);
        s.live = live;
    }

    /// Values held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().entries
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one announcement means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Person(i64),
    Sessions,
    All,
}

impl Change {
    /// Reads a payload; an unknown one means "anything" (the safe reading).
    pub fn parse(payload: &str) -> Change {
        match payload {
            "s" => Change::Sessions,
            p => p
                .strip_prefix('p')
                .and_then(|id| id.parse().ok())
                .map_or(Change::All, Change::Person),
        }
    }

    pub fn apply(self, to: &dyn Invalidate) {
        match self {
            Change::Person(id) => to.person(id),
            Change::Sessions => to.sessions(),
            Change::All => to.all(),
        }
    }
}

/// Keeps `target` informed of the database's announcements for as long as it exists. On
/// SQLite it does nothing: the caches never go live.
pub fn listen(db: &Db, target: Weak<dyn Invalidate>) {
    let Db::Postgres(pool) = db else { return };
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(100);
        loop {
            if target.strong_count() == 0 || pool.is_closed() {
                return;
            }
            match run(&pool, &target).await {
                Ok(()) => return,
                Err(e) => {
                    if let Some(t) = target.upgrade() {
                        t.set_live(false);
                    }
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "change feed lost; caches off until it is back");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    });
}

/// One connection's life: listen, go live, apply announcements. `Ok` when the target is
/// gone (the app stopped), `Err` when the connection failed.
async fn run(pool: &sqlx::PgPool, target: &Weak<dyn Invalidate>) -> crate::Result<()> {
    let mut l = sqlx::postgres::PgListener::connect_with(pool).await?;
    l.listen(CHANNEL).await?;
    // Listening from here on: anything committed from now is announced to us.
    match target.upgrade() {
        Some(t) => t.set_live(true),
        None => return Ok(()),
    }
    tracing::info!("change feed listening; person pages and sessions are cached");
    loop {
        // Wake now and then to notice that the app has stopped.
        let next = tokio::time::timeout(Duration::from_secs(1), l.try_recv()).await;
        let Some(t) = target.upgrade() else {
            return Ok(());
        };
        match next {
            Err(_elapsed) => continue,
            Ok(Ok(Some(n))) => Change::parse(n.payload()).apply(&*t),
            Ok(Ok(None)) => {
                return Err(crate::Error::Internal(
                    "the change feed's connection was lost".into(),
                ));
            }
            Ok(Err(e)) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Cache<&'static str, u32> {
        let c = Cache::new(10, 100);
        c.set_live(true);
        c
    }

    #[test]
    fn a_cache_that_is_not_live_neither_serves_nor_stores() {
        let c: Cache<&str, u32> = Cache::new(10, 100);
        assert!(c.ticket(1).is_none());
        c.set_live(true);
        let t = c.ticket(1).unwrap();
        c.set_live(false);
        assert!(!c.put(t, "a", 1));
        assert!(c.get(1, &"a").is_none());
    }

    #[test]
    fn an_announcement_after_the_ticket_refuses_the_stale_value() {
        let c = live();
        let t = c.ticket(7).unwrap();
        c.evict(7); // a write committed while the value was being built
        assert!(!c.put(t, "page", 1));
        assert!(c.get(7, &"page").is_none());
        // A ticket taken after the announcement stores.
        let t = c.ticket(7).unwrap();
        assert!(c.put(t, "page", 2));
        assert_eq!(c.get(7, &"page").as_deref(), Some(&2));
        // Another group's announcement does not touch it.
        c.evict(8);
        assert_eq!(c.get(7, &"page").as_deref(), Some(&2));
        c.evict(7);
        assert!(c.get(7, &"page").is_none());
    }

    #[test]
    fn clearing_and_reconnecting_invalidate_every_ticket() {
        let c = live();
        let t = c.ticket(1).unwrap();
        c.clear();
        assert!(!c.put(t, "a", 1));
        let t = c.ticket(1).unwrap();
        c.set_live(true); // a reconnection
        assert!(!c.put(t, "a", 1));
    }

    #[test]
    fn the_limits_hold_without_forgetting_a_generation() {
        let c = Cache::new(3, 5);
        c.set_live(true);
        for g in 0..3 {
            let t = c.ticket(g).unwrap();
            assert!(c.put(t, "v", g as u32));
        }
        let stale = c.ticket(0).unwrap();
        c.evict(0);
        let t = c.ticket(3).unwrap();
        assert!(c.put(t, "v", 3));
        let t = c.ticket(4).unwrap();
        assert!(c.put(t, "v", 4));
        assert!(c.len() <= 3);
        // Group 0 lost its value to the limit but kept its generation.
        assert!(!c.put(stale, "v", 0));
        // Past max_groups everything is forgotten and old tickets die with it.
        let t = c.ticket(4).unwrap();
        c.evict(5);
        assert!(!c.put(t, "v", 9));
        assert!(c.is_empty());
    }

    #[test]
    fn payloads() {
        assert_eq!(Change::parse("p42"), Change::Person(42));
        assert_eq!(Change::parse("s"), Change::Sessions);
        assert_eq!(Change::parse("*"), Change::All);
        assert_eq!(Change::parse("p"), Change::All);
        assert_eq!(Change::parse("weird"), Change::All);
    }
}
