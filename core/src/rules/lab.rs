//! The rule lab's replay: readings, person by person in time order, through several rule
//! sets at once (the live rules and a draft), with the same [`trend::step`] the answer writer
//! runs — so replaying the live rules gives what was raised live. Used by the console's lab
//! over a centre's observations and by the population model's benchmark over a cohort.
//!
//! An **alert** is what opens an escalation: the first firing of a reason for a person (an
//! escalation stays open until staff review it; the replay does not simulate reviews, so a
//! reason fires at most once per person in a replay).
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Thresholds,
    trend::{self, History, Reading},
};

/// When a person was first flagged by a rule set, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub at: DateTime<Utc>,
    pub day: NaiveDate,
    /// Reasons that fired on that reading, with what fired.
    pub reasons: Vec<(&'static str, String)>,
}

/// What one rule set raised over the replay.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// New alerts per local day.
    pub alerts_by_day: BTreeMap<NaiveDate, u64>,
    /// New alerts per reason.
    pub by_reason: BTreeMap<&'static str, u64>,
    /// First flag of each flagged person.
    pub first: HashMap<i64, Flag>,
    /// Every alert: (person, reason, local day, time).
    pub alerts: Vec<(i64, &'static str, NaiveDate, DateTime<Utc>)>,
}

impl Tally {
    pub fn total(&self) -> u64 {
        self.alerts_by_day.values().sum()
    }

    /// Adds what another replayer raised over *other people* (replays split by person).
    pub fn merge(&mut self, other: Tally) {
        for (d, n) in other.alerts_by_day {
            *self.alerts_by_day.entry(d).or_default() += n;
        }
        for (r, n) in other.by_reason {
            *self.by_reason.entry(r).or_default() += n;
        }
        self.first.extend(other.first);
        self.alerts.extend(other.alerts);
    }
}

/// Replays readings through rule sets. Feed each person's readings in time order, one person
/// after another ([`Replayer::feed`]); read [`Replayer::tallies`] at the end.
pub struct Replayer<'t> {
    sets: Vec<&'t Thresholds>,
    person: Option<i64>,
    histories: Vec<History>,
    /// Reason → local day it last opened an escalation, per set.
    fired: Vec<HashMap<&'static str, NaiveDate>>,
    /// Days after which an escalation counts as reviewed and closed (None: never).
    review_after_days: Option<i64>,
    pub tallies: Vec<Tally>,
    /// Readings fed, and people seen.
    pub readings: u64,
    pub people: u64,
}

impl<'t> Replayer<'t> {
    pub fn new(sets: &[&'t Thresholds]) -> Replayer<'t> {
        Replayer {
            sets: sets.to_vec(),
            person: None,
            histories: vec![History::default(); sets.len()],
            fired: vec![HashMap::new(); sets.len()],
            review_after_days: None,
            tallies: vec![Tally::default(); sets.len()],
            readings: 0,
            people: 0,
        }
    }

    /// Adds another replayer's results over other people (see [`Tally::merge`]).
    pub fn merge(&mut self, other: Replayer<'_>) {
        for (a, b) in self.tallies.iter_mut().zip(other.tallies) {
            a.merge(b);
        }
        self.readings += other.readings;
        self.people += other.people;
    }

    /// Escalations count as reviewed and closed `days` after they opened, so a reason can
    /// alert again (the population model; the lab replays without reviews).
    pub fn reviewed_after(mut self, days: i64) -> Self {
        self.review_after_days = Some(days);
        self
    }

    /// One reading of `person` on local day `today`. `counted = false` for readings before
    /// the window (they build the person's baseline and open escalations, but their alerts
    /// are not counted).
    pub fn feed(
        &mut self,
        person: i64,
        r: &Reading,
        today: NaiveDate,
        onset: Option<NaiveDate>,
        counted: bool,
    ) {
        if self.person != Some(person) {
            self.person = Some(person);
            self.people += 1;
            for h in &mut self.histories {
                *h = History::default();
            }
            for f in &mut self.fired {
                f.clear();
            }
        }
        self.readings += 1;
        for (i, t) in self.sets.iter().enumerate() {
            let triggers = trend::step(t, &mut self.histories[i], r, today, onset);
            let mut new = Vec::new();
            for tr in triggers {
                let open = self.fired[i].get(tr.reason).is_some_and(|d| {
                    self.review_after_days
                        .is_none_or(|n| (today - *d).num_days() < n)
                });
                if open {
                    continue;
                }
                self.fired[i].insert(tr.reason, today);
                if counted {
                    new.push((tr.reason, tr.detail));
                }
            }
            if new.is_empty() {
                continue;
            }
            let tally = &mut self.tallies[i];
            for (reason, _) in &new {
                *tally.alerts_by_day.entry(today).or_default() += 1;
                *tally.by_reason.entry(reason).or_default() += 1;
                tally.alerts.push((person, reason, today, r.at));
            }
            tally.first.entry(person).or_insert(Flag {
                at: r.at,
                day: today,
                reasons: new,
            });
        }
    }
}

/// How much earlier (positive) or later a person is flagged by `b` than by `a`, in hours:
/// for every person flagged by both.
pub fn lead_hours(a: &Tally, b: &Tally) -> Vec<(i64, f64)> {
    let mut v: Vec<(i64, f64)> = a
        .first
        .iter()
        .filter_map(|(p, fa)| {
            b.first
                .get(p)
                .map(|fb| (*p, (fa.at - fb.at).num_minutes() as f64 / 60.0))
        })
        .collect();
    v.sort_by_key(|(p, _)| *p);
    v
}

/// The median of `v` (None when empty).
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}
