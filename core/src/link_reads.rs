//! The patient lane's reads, gathered. Every answer through a link reads its check-in's
//! context twice — when the form is posted, and for the page after it — each a round trip of
//! its own, plus the ping sqlx sends as the connection goes back to the pool (the reader
//! keeps its connection between batches, [`crate::db::Kept`], and pays none). At peak those
//! round trips cost PostgreSQL more than running the statements (BENCHMARKS "Where
//! PostgreSQL's time per answer goes"). As the answer writer gathers answers
//! ([`crate::ingest`]), this reader gathers the reads that arrive while one is running into
//! the next, one statement for all of them (`c.id = ANY($1)`); a lone read goes at once.
//!
//! A read that fails fails every request of its batch (each is told so); an unknown check-in
//! is "not found" for its own request only.
use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};

use crate::{
    Db, Error, Result,
    db::Kept,
    store::checkins::{self, DoneContext, LinkContext},
};

/// Most reads per statement.
pub const MAX_BATCH: usize = 64;

enum Job {
    Link(i64, oneshot::Sender<Result<LinkContext>>),
    Done(i64, oneshot::Sender<Result<DoneContext>>),
}

/// The handle requests use; cheap to clone. The reader stops when the last handle is
/// dropped, after answering every request it has taken.
#[derive(Clone)]
pub struct LinkReads {
    jobs: mpsc::Sender<Job>,
}

impl LinkReads {
    /// Starts the reader on the current Tokio runtime.
    pub fn spawn(db: Db) -> LinkReads {
        Self::start(db, false)
    }

    /// [`LinkReads::spawn`] on a thread of its own with its own connection (see
    /// [`Db::spawn_writer`]: on the request threads each round trip waits behind every task
    /// ready to run).
    pub fn spawn_on_own_thread(db: Db) -> LinkReads {
        Self::start(db, true)
    }

    fn start(db: Db, own_thread: bool) -> LinkReads {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        db.spawn_writer("mimamori-reads", own_thread, move |db| reader(db, rx));
        LinkReads { jobs }
    }

    /// [`checkins::link_context`], gathered with the reads arriving meanwhile.
    pub async fn link(&self, checkin_id: i64) -> Result<LinkContext> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Link(checkin_id, reply)).await?;
        rx.await.map_err(|_| stopped())?
    }

    /// [`checkins::done_contexts`] of one check-in, gathered with the reads arriving meanwhile.
    pub async fn done(&self, checkin_id: i64) -> Result<DoneContext> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Done(checkin_id, reply)).await?;
        rx.await.map_err(|_| stopped())?
    }

    async fn send(&self, job: Job) -> Result<()> {
        self.jobs.send(job).await.map_err(|_| stopped())
    }
}

fn stopped() -> Error {
    Error::Internal("the link reader has stopped".into())
}

async fn reader(db: Db, mut rx: mpsc::Receiver<Job>) {
    // The connection is kept between batches (no release ping a batch, see `Kept`).
    let mut kept = Kept::new(db);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while kept.wait(rx.recv_many(&mut batch, MAX_BATCH)).await > 0 {
        let mut links = Vec::new();
        let mut dones = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Link(id, reply) => links.push((id, reply)),
                Job::Done(id, reply) => dones.push((id, reply)),
            }
        }
        if !links.is_empty() {
            let ids: Vec<i64> = links.iter().map(|(id, _)| *id).collect();
            let found =
                crate::on_kept!(&mut kept, retry, on => checkins::link_contexts(on, &ids).await);
            answer(found, links, |c| c.checkin_id);
        }
        if !dones.is_empty() {
            let ids: Vec<i64> = dones.iter().map(|(id, _)| *id).collect();
            let found =
                crate::on_kept!(&mut kept, retry, on => checkins::done_contexts(on, &ids).await);
            answer(found, dones, |c| c.link.checkin_id);
        }
    }
}

/// Hands each request its row (a check-in asked for twice gets it twice), "not found" when
/// there is none, or the batch's failure.
fn answer<T: Clone>(
    found: Result<Vec<T>>,
    asked: Vec<(i64, oneshot::Sender<Result<T>>)>,
    id_of: impl Fn(&T) -> i64,
) {
    match found {
        Ok(rows) => {
            let by_id: HashMap<i64, T> = rows.into_iter().map(|r| (id_of(&r), r)).collect();
            for (id, reply) in asked {
                let _ = reply.send(by_id.get(&id).cloned().ok_or(Error::NotFound("check-in")));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, reads = asked.len(), "link reads failed");
            for (_, reply) in asked {
                let _ = reply.send(Err(Error::Internal(
                    "the check-in could not be read".into(),
                )));
            }
        }
    }
}
