//! Group commit for answers. Every answer that arrives while the previous batch is being
//! written joins the next one, so at peak a single transaction records dozens of answers
//! with a handful of statements ([`observations::answer_checkins`]), and a lone answer is
//! written at once (no waiting for a batch to fill). One writer task per pool
//! ([`Db::spawn_writer`] says why one).
//!
//! Nothing is acknowledged before its transaction commits: a request's reply comes from the
//! writer after the commit. If a batch fails, each of its answers is retried alone, so one
//! bad answer cannot take the others down with it — a lone answer too, once, on a new
//! connection: the writer keeps its connection between batches ([`crate::db::Kept`]), and
//! the first statement on one that died under it fails.
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};

use crate::{
    Db, Error, Result,
    db::Kept,
    rules::Thresholds,
    store::observations::{self, Answer, AnswerIn, Outcome},
};

/// Most answers per transaction: keeps each transaction short (statements bind 7 values
/// per answer, far under either backend's limit).
pub const MAX_BATCH: usize = 64;

struct Job {
    answer: AnswerIn,
    reply: oneshot::Sender<Result<Outcome>>,
}

/// The handle requests use; cheap to clone. The writer stops when the last handle is
/// dropped, after answering every request it has taken.
#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
}

impl Ingest {
    /// Starts the writer task on the current Tokio runtime.
    pub fn spawn(db: Db, rules: Arc<Thresholds>) -> Ingest {
        Self::start(db, rules, false)
    }

    /// [`Ingest::spawn`] on a thread of its own with its own connections (the server's
    /// writers; see [`Db::spawn_writer`]).
    pub fn spawn_on_own_thread(db: Db, rules: Arc<Thresholds>) -> Ingest {
        Self::start(db, rules, true)
    }

    fn start(db: Db, rules: Arc<Thresholds>, own_thread: bool) -> Ingest {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        db.spawn_writer("mimamori-answers", own_thread, move |db| {
            writer(db, rules, rx)
        });
        Ingest { jobs }
    }

    /// Records one answer (see [`observations::answer_checkin`]); returns after it has
    /// committed.
    pub async fn answer(&self, checkin_id: i64, source: &str, answer: Answer) -> Result<Outcome> {
        self.answer_as(checkin_id, source, answer, None).await
    }

    /// [`Ingest::answer`], entered by staff on the phone simulator when `simulated_by` is
    /// set (stored and audited as a simulated staff entry).
    pub async fn answer_as(
        &self,
        checkin_id: i64,
        source: &str,
        answer: Answer,
        simulated_by: Option<i64>,
    ) -> Result<Outcome> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            answer: AnswerIn {
                checkin_id,
                source: source.to_string(),
                answer,
                simulated_by,
            },
            reply,
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| Error::Internal("the answer writer has stopped".into()))?;
        rx.await
            .map_err(|_| Error::Internal("the answer writer stopped before replying".into()))?
    }
}

async fn writer(db: Db, rules: Arc<Thresholds>, mut rx: mpsc::Receiver<Job>) {
    // The connection is kept between batches (no release ping a batch, see `Kept`).
    let mut kept = Kept::new(db);
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while kept.wait(rx.recv_many(&mut jobs, MAX_BATCH)).await > 0 {
        let (batch, replies): (Vec<AnswerIn>, Vec<_>) =
            jobs.drain(..).map(|j| (j.answer, j.reply)).unzip();
        let n = batch.len();
        // A panic fails that batch's requests (they see an error and the check-ins stay
        // open), never the writer, so later answers still land.
        let results = std::panic::AssertUnwindSafe(record(&mut kept, &rules, batch))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| {
                tracing::error!(answers = n, "answer batch panicked");
                // Its transaction's rollback is queued on the connection: given back, the
                // pool sends it.
                kept.lost();
                (0..n)
                    .map(|_| Err(Error::Internal("recording the answer failed".into())))
                    .collect()
            });
        // An urgent answer's staff alerts are queued and committed: the alert worker sends
        // them now rather than at its next look (SQLite; PostgreSQL announces them itself).
        let urgent = results.iter().any(|r| {
            matches!(r, Ok(Ok(rec)) if rec.triggers.iter().any(|t| t.priority == crate::rules::Priority::Urgent))
        });
        if urgent {
            crate::store::escalations::wake_alerts(kept.db());
        }
        for (reply, r) in replies.into_iter().zip(results) {
            // The requester may have gone (client hung up); the answer is recorded anyway.
            let _ = reply.send(r);
        }
    }
}

/// Records one batch; when the batch fails, each answer alone (on a connection taken
/// afresh after a failure, see [`Kept::lost`]).
async fn record(kept: &mut Kept, rules: &Thresholds, batch: Vec<AnswerIn>) -> Vec<Result<Outcome>> {
    match crate::on_kept!(kept, on => observations::answer_checkins(on, &batch, rules).await) {
        Ok(r) => r,
        // A lone answer too is tried once more: its connection may have died under it.
        Err(e) => {
            tracing::warn!(error = %e, answers = batch.len(), "answer batch failed; recording each alone");
            let mut r = Vec::with_capacity(batch.len());
            for a in &batch {
                r.push(
                    crate::on_kept!(kept, on => observations::answer_checkins(on, std::slice::from_ref(a), rules).await)
                        .and_then(|mut v| v.pop().expect("one answer gives one result")),
                );
            }
            r
        }
    }
}
