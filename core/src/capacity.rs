//! Delivery capacity planning: will every first message, reminder and fallback of a day
//! leave inside its answer window, at the sender numbers' configured rates? Per channel the
//! sends of each check-in time queue behind one another at the channel's rate (rate per
//! number × numbers), in deadline order as the dispatcher sends them; reminders are counted
//! in the worst case (nobody answered), the last one on the person's fallback channel. Pure
//! arithmetic over counts from [`crate::store::capacity`]; no peer has this.
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// People to be reached at one check-in time on one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub due_at: DateTime<Utc>,
    pub channel: String,
    pub fallback_channel: Option<String>,
    pub people: i64,
}

/// What one channel can send.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ChannelCapacity {
    /// Sender numbers (1 for e-mail).
    pub numbers: usize,
    /// Sends per second per number; 0 = no limit configured.
    pub per_number_per_sec: f64,
}

impl ChannelCapacity {
    fn per_sec(&self) -> Option<f64> {
        (self.per_number_per_sec > 0.0)
            .then(|| self.per_number_per_sec * self.numbers.max(1) as f64)
    }
}

/// The day's policy.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub answer_window: Duration,
    pub reminder_after: Duration,
    pub max_reminders: i32,
}

/// One wave of sends on one channel: the first messages of a check-in time, or its k-th
/// reminder.
#[derive(Debug, Clone, Serialize)]
pub struct Wave {
    pub channel: String,
    /// 0 = first message; k = k-th reminder (worst case: nobody answered before it).
    pub reminder: i32,
    pub due_at: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub sends: i64,
    /// When the first of them can leave (after earlier waves on the channel).
    pub starts_at: DateTime<Utc>,
    /// When the last leaves.
    pub last_leaves_at: DateTime<Utc>,
    /// Sends that cannot leave before the answer window closes.
    pub overflow: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub waves: Vec<Wave>,
}

impl Plan {
    pub fn overflow(&self) -> i64 {
        self.waves.iter().map(|w| w.overflow).sum()
    }
}

/// What would make the day fit, in words, per channel that overflows: how many more sender
/// numbers (the fewest with which the channel's overflow is 0, found by re-planning), or
/// else spreading the busiest check-in time.
pub fn advice(
    demand: &[Demand],
    capacity: &dyn Fn(&str) -> ChannelCapacity,
    p: &Policy,
) -> Vec<String> {
    let base = plan(demand, capacity, p);
    let mut out = Vec::new();
    for channel in ["sms", "voice", "email"] {
        let over: i64 = base
            .waves
            .iter()
            .filter(|w| w.channel == channel)
            .map(|w| w.overflow)
            .sum();
        if over == 0 {
            continue;
        }
        let cap = capacity(channel);
        let busiest = demand
            .iter()
            .filter(|d| d.channel == channel)
            .max_by_key(|d| d.people)
            .map(|d| {
                d.due_at
                    .with_timezone(&chrono_tz::Asia::Tokyo)
                    .format("%H:%M")
                    .to_string()
            })
            .unwrap_or_default();
        let fits_with = (cap.numbers + 1..=cap.numbers.max(1) * 100).find(|&n| {
            let more = |c: &str| {
                if c == channel {
                    ChannelCapacity { numbers: n, ..cap }
                } else {
                    capacity(c)
                }
            };
            plan(demand, &more, p)
                .waves
                .iter()
                .filter(|w| w.channel == channel)
                .all(|w| w.overflow == 0)
        });
        out.push(match fits_with {
            Some(n) => format!(
                "{channel}: {over} sends would leave after their window closes; with {} more sender number(s) ({n} in all, each {}/s) everything fits — or move people from the busiest time ({busiest}) to quieter ones",
                n - cap.numbers,
                cap.per_number_per_sec
            ),
            None => format!(
                "{channel}: {over} sends would leave after their window closes; spread the check-in times (busiest {busiest}) or raise the rate"
            ),
        });
    }
    out
}

/// (channel, reminder number, due, deadline, sends) before queueing.
type RawWave = (String, i32, DateTime<Utc>, DateTime<Utc>, i64);

/// Queues the day's sends per channel at the channel's rate, in deadline order, and says
/// when the last of each wave leaves and how many miss their window.
pub fn plan(demand: &[Demand], capacity: &dyn Fn(&str) -> ChannelCapacity, p: &Policy) -> Plan {
    // Waves: first messages, then each reminder (the last on the fallback channel).
    let mut waves: Vec<RawWave> = Vec::new();
    for d in demand {
        let deadline = d.due_at + p.answer_window;
        waves.push((d.channel.clone(), 0, d.due_at, deadline, d.people));
        if p.reminder_after > Duration::zero() {
            for k in 1..=p.max_reminders {
                let channel = match (&d.fallback_channel, k == p.max_reminders) {
                    (Some(f), true) => f.clone(),
                    _ => d.channel.clone(),
                };
                let at = d.due_at + p.reminder_after * k;
                if at < deadline {
                    waves.push((channel, k, at, deadline, d.people));
                }
            }
        }
    }
    // Merge waves of the same channel, kind and time.
    waves.sort_by(|a, b| (&a.0, a.3, a.2, a.1).cmp(&(&b.0, b.3, b.2, b.1)));
    let mut merged: Vec<RawWave> = Vec::new();
    for w in waves {
        match merged.last_mut() {
            Some(m) if m.0 == w.0 && m.1 == w.1 && m.2 == w.2 && m.3 == w.3 => m.4 += w.4,
            _ => merged.push(w),
        }
    }
    let mut out = Vec::new();
    let mut channel = String::new();
    let mut cursor = DateTime::<Utc>::MIN_UTC;
    for (ch, reminder, due, deadline, sends) in merged {
        if ch != channel {
            channel = ch.clone();
            cursor = DateTime::<Utc>::MIN_UTC;
        }
        let start = cursor.max(due);
        let (last, overflow) = match capacity(&ch).per_sec() {
            None => (start, 0),
            Some(rate) => {
                let secs = (sends as f64 / rate).ceil() as i64;
                let last = start + Duration::seconds(secs);
                let room = ((deadline - start).num_milliseconds().max(0) as f64 / 1000.0 * rate)
                    .floor() as i64;
                (last, (sends - room).max(0))
            }
        };
        cursor = last;
        out.push(Wave {
            channel: ch,
            reminder,
            due_at: due,
            deadline_at: deadline,
            sends,
            starts_at: start,
            last_leaves_at: last,
            overflow,
        });
    }
    Plan { waves: out }
}

/// The channels' capacity as configured: Twilio numbers and rates for SMS and voice
/// (unlimited with the dev outbox), e-mail unlimited.
pub fn configured(cfg: &crate::config::Config) -> impl Fn(&str) -> ChannelCapacity + '_ {
    move |channel: &str| {
        let t = &cfg.twilio;
        if t.account_sid.is_empty() || channel == "email" {
            return ChannelCapacity {
                numbers: 1,
                per_number_per_sec: 0.0,
            };
        }
        match channel {
            "voice" => ChannelCapacity {
                numbers: if t.voice_from.is_empty() {
                    t.sms_from.len()
                } else {
                    t.voice_from.len()
                },
                per_number_per_sec: t.calls_per_sec,
            },
            _ => ChannelCapacity {
                numbers: t.sms_from.len(),
                per_number_per_sec: t.messages_per_sec,
            },
        }
    }
}

/// The day's policy as configured, with the patient flow's reminder policy (`after`, `max`).
pub fn policy(cfg: &crate::config::Config, after: Option<i64>, max: Option<i32>) -> Policy {
    Policy {
        answer_window: Duration::minutes(cfg.checkin.answer_window_minutes),
        reminder_after: Duration::minutes(after.unwrap_or(cfg.checkin.reminder_after_minutes)),
        max_reminders: max.unwrap_or(cfg.checkin.max_reminders),
    }
}

/// Sends per channel over a plan (first messages and worst-case reminders).
pub fn totals(p: &Plan) -> [(&'static str, i64); 3] {
    let sum = |c: &str| {
        p.waves
            .iter()
            .filter(|w| w.channel == c)
            .map(|w| w.sends)
            .sum()
    };
    [
        ("sms", sum("sms")),
        ("voice", sum("voice")),
        ("email", sum("email")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, h, m, 0).unwrap()
    }

    #[test]
    fn waves_queue_per_channel_and_overflow_is_counted() {
        let demand = vec![
            Demand {
                due_at: at(0, 0),
                channel: "voice".into(),
                fallback_channel: None,
                people: 3_600,
            },
            Demand {
                due_at: at(0, 30),
                channel: "voice".into(),
                fallback_channel: None,
                people: 1_800,
            },
            Demand {
                due_at: at(0, 0),
                channel: "sms".into(),
                fallback_channel: Some("voice".into()),
                people: 100,
            },
        ];
        let cap = |c: &str| match c {
            "voice" => ChannelCapacity {
                numbers: 1,
                per_number_per_sec: 1.0,
            },
            _ => ChannelCapacity {
                numbers: 2,
                per_number_per_sec: 10.0,
            },
        };
        let policy = Policy {
            answer_window: Duration::hours(1),
            reminder_after: Duration::minutes(20),
            max_reminders: 1,
        };
        let p = plan(&demand, &cap, &policy);
        let voice: Vec<&Wave> = p.waves.iter().filter(|w| w.channel == "voice").collect();
        // 3,600 calls at 1/s take the whole hour; the 00:30 wave starts after them and
        // only half fits before 01:30. The SMS people's fallback reminder (at 00:20) queues
        // on voice too.
        assert_eq!(voice[0].sends, 3_600);
        assert_eq!(voice[0].last_leaves_at, at(1, 0));
        assert_eq!(voice[0].overflow, 0);
        assert!(p.overflow() > 0);
        let sms: Vec<&Wave> = p.waves.iter().filter(|w| w.channel == "sms").collect();
        assert_eq!(
            (sms.len(), sms[0].overflow),
            (1, 0),
            "SMS fits: 100 at 20/s"
        );
        let advice = advice(&demand, &cap, &policy);
        assert!(
            advice[0].starts_with("voice:") && advice[0].contains("more sender number"),
            "{advice:?}"
        );
        // The number it names is the fewest that fits: one fewer still overflows.
        let n: usize = advice[0]
            .split(" in all")
            .next()
            .unwrap()
            .rsplit('(')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let with = |k: usize| {
            move |c: &str| {
                if c == "voice" {
                    ChannelCapacity {
                        numbers: k,
                        per_number_per_sec: 1.0,
                    }
                } else {
                    cap(c)
                }
            }
        };
        assert_eq!(plan(&demand, &with(n), &policy).overflow(), 0);
        assert!(plan(&demand, &with(n - 1), &policy).overflow() > 0);
    }

    #[test]
    fn no_rate_limit_never_overflows() {
        let demand = vec![Demand {
            due_at: at(0, 0),
            channel: "email".into(),
            fallback_channel: None,
            people: 1_000_000,
        }];
        let cap = |_: &str| ChannelCapacity {
            numbers: 1,
            per_number_per_sec: 0.0,
        };
        let p = plan(
            &demand,
            &cap,
            &Policy {
                answer_window: Duration::hours(1),
                reminder_after: Duration::zero(),
                max_reminders: 0,
            },
        );
        assert_eq!(p.overflow(), 0);
    }
}
