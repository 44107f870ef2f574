//! Per-sender-number rate limiting: each number sends at most `rate` messages (or calls) per
//! second; the limiter hands out the number that is free soonest and the instant to send at,
//! so the configured limit is reached but never exceeded, spread over several numbers.
use std::{sync::Mutex, time::Duration};

use tokio::time::Instant;

pub struct RateLimiter {
    numbers: Vec<String>,
    interval: Duration,
    next_free: Mutex<Vec<Instant>>,
}

impl RateLimiter {
    /// `rate` per second per number; `0` means unlimited. Sends are spaced 2 % wider than
    /// `1 / rate`, so that network jitter between us and the provider cannot make the
    /// provider see more than `rate` in any one second.
    pub fn new(numbers: Vec<String>, rate: f64) -> RateLimiter {
        let interval = if rate > 0.0 {
            Duration::from_secs_f64(1.02 / rate)
        } else {
            Duration::ZERO
        };
        let now = Instant::now();
        RateLimiter {
            next_free: Mutex::new(vec![now; numbers.len().max(1)]),
            numbers,
            interval,
        }
    }

    /// Waits for a sending slot and returns the sender number to use.
    pub async fn acquire(&self) -> String {
        let (at, idx) = {
            let mut next = self.next_free.lock().expect("limiter lock");
            let now = Instant::now();
            let (idx, _) = next
                .iter()
                .enumerate()
                .min_by_key(|(_, t)| **t)
                .expect("at least one slot");
            let at = next[idx].max(now);
            next[idx] = at + self.interval;
            (at, idx)
        };
        tokio::time::sleep_until(at).await;
        self.numbers.get(idx).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spreads_over_numbers_and_never_exceeds_the_rate() {
        let l = std::sync::Arc::new(RateLimiter::new(vec!["+1".into(), "+2".into()], 10.0));
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..40 {
            let l = l.clone();
            handles.push(tokio::spawn(async move {
                let n = l.acquire().await;
                (n, Instant::now() - start)
            }));
        }
        let mut sends = Vec::new();
        for h in handles {
            sends.push(h.await.unwrap());
        }
        // 2 numbers × 10/s (spaced 102 ms): 40 sends take 19 intervals, none faster.
        let last = sends.iter().map(|(_, t)| *t).max().unwrap();
        assert_eq!(last, Duration::from_millis(1938));
        for number in ["+1", "+2"] {
            let mut times: Vec<_> = sends
                .iter()
                .filter(|(n, _)| n == number)
                .map(|(_, t)| *t)
                .collect();
            times.sort();
            assert_eq!(times.len(), 20);
            assert!(
                times
                    .windows(2)
                    .all(|w| w[1] - w[0] >= Duration::from_millis(100)),
                "{number}: {times:?}"
            );
        }
    }
}
