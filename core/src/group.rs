//! The intake of a group-commit writer (the answer writer, the audit writer): several writer
//! tasks share one queue; a writer that finds work while another writer's batch is in the
//! database keeps gathering until that batch has committed (or its own is full), so the
//! arrivals of one write go into the next transaction together instead of each starting a
//! transaction of its own beside it.
//!
//! Why: with two writers taking whatever had arrived, at 32 answers in flight most
//! transactions carried one answer (5,103 of 7,000 batches in the ingest benchmark): every
//! answer paid a transaction's eight statements and its commit, and PostgreSQL spent the
//! machine's CPU on them. A lone request still goes at once: a writer waits only while
//! another is writing.
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Mutex, Notify, mpsc};

pub struct Intake<T> {
    rx: Mutex<mpsc::Receiver<T>>,
    writing: AtomicUsize,
    written: Notify,
}

/// Held while a batch is being written; its drop wakes the writers gathering meanwhile.
pub struct Writing<'a>(&'a AtomicUsize, &'a Notify);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        self.1.notify_waiters();
    }
}

impl<T> Intake<T> {
    pub fn new(rx: mpsc::Receiver<T>) -> Intake<T> {
        Intake {
            rx: Mutex::new(rx),
            writing: AtomicUsize::new(0),
            written: Notify::new(),
        }
    }

    /// The next batch into `batch` (at most `max`), and the mark that it is being written
    /// (hold it until the batch has committed); `None` once every sender is gone and the
    /// queue is empty.
    pub async fn next(&self, batch: &mut Vec<T>, max: usize) -> Option<Writing<'_>> {
        let mut rx = self.rx.lock().await;
        if rx.recv_many(batch, max).await == 0 {
            return None;
        }
        while batch.len() < max {
            // Armed before the check, so a batch that commits in between still wakes us.
            let written = self.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            if self.writing.load(Ordering::Acquire) == 0 {
                break;
            }
            tokio::select! {
                // `recv_many` is cancel-safe: what it has not returned stays queued.
                n = rx.recv_many(batch, max - batch.len()) => if n == 0 { break },
                _ = &mut written => break,
            }
        }
        self.writing.fetch_add(1, Ordering::AcqRel);
        Some(Writing(&self.writing, &self.written))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_lone_item_goes_at_once() {
        let (tx, rx) = mpsc::channel(8);
        let intake = Intake::new(rx);
        tx.send(1).await.unwrap();
        let mut b = Vec::new();
        let w = tokio::time::timeout(Duration::from_millis(100), intake.next(&mut b, 8))
            .await
            .expect("not held back");
        assert!(w.is_some());
        assert_eq!(b, vec![1]);
    }

    #[tokio::test]
    async fn arrivals_during_a_write_gather_until_it_commits() {
        let (tx, rx) = mpsc::channel(64);
        let intake = Arc::new(Intake::new(rx));
        tx.send(0).await.unwrap();
        let mut first = Vec::new();
        let writing = intake.next(&mut first, 64).await.unwrap();
        // A second writer finds work while the first batch is in the database: it gathers.
        let second = tokio::spawn({
            let intake = intake.clone();
            async move {
                let mut b = Vec::new();
                let _w = intake.next(&mut b, 64).await.unwrap();
                b
            }
        });
        for i in 1..=5 {
            tx.send(i).await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            !second.is_finished(),
            "it waits while the first batch is written"
        );
        drop(writing);
        let b = tokio::time::timeout(Duration::from_secs(1), second)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            b,
            vec![1, 2, 3, 4, 5],
            "one batch of what arrived meanwhile"
        );
    }

    #[tokio::test]
    async fn a_full_batch_goes_without_waiting() {
        let (tx, rx) = mpsc::channel(64);
        let intake = Intake::new(rx);
        tx.send(0).await.unwrap();
        let mut first = Vec::new();
        let _writing = intake.next(&mut first, 4).await.unwrap();
        for i in 1..=4 {
            tx.send(i).await.unwrap();
        }
        let mut b = Vec::new();
        let w = tokio::time::timeout(Duration::from_millis(200), intake.next(&mut b, 4))
            .await
            .expect("a full batch is not held back");
        assert!(w.is_some());
        assert_eq!(b.len(), 4);
    }

    #[tokio::test]
    async fn closed_and_empty_ends() {
        let (tx, rx) = mpsc::channel::<i32>(4);
        drop(tx);
        let intake = Intake::new(rx);
        assert!(intake.next(&mut Vec::new(), 4).await.is_none());
    }
}
