//! Rules over a person's **own history**: a fall from their SpO2 baseline while still above
//! the fixed threshold, SpO2 falling over consecutive readings, temperature rising over days
//! or a fever that returns, "worse than yesterday" on consecutive days, symptoms appearing
//! late in the illness, and a home early-warning score. Fixed thresholds judge one reading;
//! these judge a reading against the person's course, which is where worsening shows first.
//!
//! Evaluation keeps a small running state per person ([`History`]: the first and latest
//! SpO2 readings, a fortnight of daily maxima, the symptoms seen) so the answer writer does not
//! re-read history per answer: [`step`] folds one reading into it and says which rules fired.
//! The same function runs live (inside the answer's transaction, state in `rule_state`), in
//! the rule lab's replay and in the population model, so their figures agree by construction.
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Priority, Thresholds, Trigger};

/// Local days kept in [`History::days`].
pub const KEEP_DAYS: usize = 14;
/// SpO2 readings kept at the start and at the end of a person's course.
pub const KEEP_READINGS: usize = 10;

/// One local day of a person's course.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Day {
    pub day: NaiveDate,
    /// Highest temperature of the day (°C).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_temp: Option<f64>,
    /// "Worse than yesterday" answered that day.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub worse: bool,
}

/// What the trend rules remember about one person (stored as JSON in `rule_state`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Readings folded in.
    pub n: u32,
    /// Time of the latest reading folded in: an older one arriving later (staff entering a
    /// past reading) makes the store rebuild the state from the observations.
    pub last_at: Option<DateTime<Utc>>,
    /// Local date of the first reading (day 0 of illness when no onset date is recorded).
    pub first_day: Option<NaiveDate>,
    /// The first SpO2 readings, up to [`KEEP_READINGS`].
    pub spo2_first: Vec<i32>,
    /// The latest SpO2 readings, oldest first, up to [`KEEP_READINGS`].
    pub spo2_last: Vec<i32>,
    /// The latest local days with a reading, oldest first, up to [`KEEP_DAYS`].
    pub days: Vec<Day>,
    /// Yes/no questions ever answered yes.
    pub seen: Vec<String>,
}

/// One reading as the rules see it, whether it comes from an answer or a stored observation.
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    pub at: DateTime<Utc>,
    pub temperature: Option<f64>,
    pub spo2: Option<i32>,
    pub urgent: bool,
    /// The urgent warning signs answered yes (question ids), when known.
    pub urgent_signs: &'a [String],
    /// Yes/no answers by question id.
    pub symptoms: &'a BTreeMap<String, bool>,
    /// Choice answers by question id.
    pub choices: &'a BTreeMap<String, String>,
}

/// The person's SpO2 baseline: the median of their first `k` readings (the lower middle one
/// for an even `k`); None with fewer readings or `k = 0`.
pub fn baseline(first: &[i32], k: u32) -> Option<i32> {
    let k = k as usize;
    if k == 0 || first.len() < k {
        return None;
    }
    let mut v = first[..k].to_vec();
    v.sort_unstable();
    Some(v[(k - 1) / 2])
}

/// Points of the home early-warning score, adapted from NEWS2 (Royal College of Physicians,
/// *National Early Warning Score (NEWS) 2*, 2017) to what a check-in measures: SpO2 on
/// scale 1 (≤ 91 → 3, 92–93 → 2, 94–95 → 1), temperature (≤ 35.0 → 3, 35.1–36.0 → 1,
/// 38.1–39.0 → 1, ≥ 39.1 → 2), and breathlessness answered yes scored as NEWS2 scores a
/// respiration rate of 21–24 (2), the nearest a person at home can report. Respiration rate,
/// pulse, blood pressure and consciousness are not measured at home and score nothing, so
/// the score can only be lower than a clinician's NEWS2. Returns the total and its parts.
pub fn score(spo2: Option<i32>, temperature: Option<f64>, breathless: bool) -> (u32, Vec<String>) {
    let mut parts = Vec::new();
    let mut total = 0;
    if let Some(s) = spo2 {
        let p = match s {
            ..=91 => 3,
            92..=93 => 2,
            94..=95 => 1,
            _ => 0,
        };
        if p > 0 {
            parts.push(format!("SpO2 {s} % → {p}"));
        }
        total += p;
    }
    if let Some(t) = temperature {
        // Rounded to a tenth, as NEWS2's bands are written.
        let t10 = (t * 10.0).round() as i32;
        let p = match t10 {
            ..=350 => 3,
            351..=360 => 1,
            361..=380 => 0,
            381..=390 => 1,
            _ => 2,
        };
        if p > 0 {
            parts.push(format!("{t:.1} °C → {p}"));
        }
        total += p;
    }
    if breathless {
        parts.push("breathless → 2".into());
        total += 2;
    }
    (total, parts)
}

/// Refuses trend thresholds that cannot work (called from [`Thresholds`]' validation).
pub(super) fn validate(t: &Thresholds) -> Result<(), String> {
    let keep_r = KEEP_READINGS as u32;
    let keep_d = KEEP_DAYS as u32;
    for (key, v, max) in [
        ("spo2_baseline_readings", t.spo2_baseline_readings, keep_r),
        ("spo2_falling_readings", t.spo2_falling_readings, keep_r),
        ("temp_rising_days", t.temp_rising_days, keep_d),
        ("worse_days", t.worse_days, keep_d),
        (
            "fever_return_after_days",
            t.fever_return_after_days,
            keep_d - 2,
        ),
        ("spo2_baseline_drop", t.spo2_baseline_drop, 20),
        ("spo2_falling_points", t.spo2_falling_points, 20),
        ("late_symptom_from_day", t.late_symptom_from_day, 60),
        ("score_high_at_or_above", t.score_high_at_or_above, 8),
    ] {
        if v > max {
            return Err(format!("{key} = {v} is too large; use 0 (off) to {max}"));
        }
    }
    for (key, v) in [
        ("spo2_falling_readings", t.spo2_falling_readings),
        ("temp_rising_days", t.temp_rising_days),
    ] {
        if v == 1 {
            return Err(format!(
                "{key} = 1 compares nothing; use 0 (off) or at least 2"
            ));
        }
    }
    for (key, v) in [
        ("temp_rising_to", t.temp_rising_to),
        ("fever_return_at_or_above", t.fever_return_at_or_above),
    ] {
        if !(35.0..=42.0).contains(&v) {
            return Err(format!(
                "{key} = {v} is not a body temperature; use 35.0–42.0 °C"
            ));
        }
    }
    if !(0.0..=5.0).contains(&t.temp_rising_by) {
        return Err(format!(
            "temp_rising_by = {} is not a rise in °C; use 0.0–5.0",
            t.temp_rising_by
        ));
    }
    Ok(())
}

fn spo2_list(v: &[i32]) -> String {
    v.iter().map(i32::to_string).collect::<Vec<_>>().join(" → ")
}

/// Folds `r` (read on local day `today`; `onset` = the person's day 0 when recorded) into
/// `h` and returns the rules that fire on it: the fixed ones ([`super::on_reading`]) and the
/// trend rules. Readings must come in time order (the store rebuilds from the observations
/// otherwise).
pub fn step(
    t: &Thresholds,
    h: &mut History,
    r: &Reading,
    today: NaiveDate,
    onset: Option<NaiveDate>,
) -> Vec<Trigger> {
    // What the history said before this reading.
    let base = baseline(&h.spo2_first, t.spo2_baseline_readings);
    let earlier_readings = h.n;
    let new_symptoms: Vec<&str> = r
        .symptoms
        .iter()
        .filter(|(k, yes)| **yes && !h.seen.iter().any(|s| s == *k))
        .map(|(k, _)| k.as_str())
        .collect();
    // What the earlier days say, read before today is folded in (no copies: this runs for
    // every answer and every replayed reading).
    let earlier = &h.days[..h.days.partition_point(|d| d.day < today)];
    let fever_before = fever_before_afebrile_days(t, earlier);
    let worse_before = {
        let n = t.worse_days as i64;
        n > 0
            && (1..n).all(|i| {
                let d = today - chrono::Duration::days(i);
                earlier.iter().any(|x| x.day == d && x.worse)
            })
    };

    // Fold the reading in.
    h.n += 1;
    h.last_at = Some(h.last_at.map_or(r.at, |l| l.max(r.at)));
    h.first_day = Some(h.first_day.map_or(today, |f| f.min(today)));
    if let Some(s) = r.spo2 {
        if h.spo2_first.len() < KEEP_READINGS {
            h.spo2_first.push(s);
        }
        h.spo2_last.push(s);
        if h.spo2_last.len() > KEEP_READINGS {
            h.spo2_last.remove(0);
        }
    }
    let worse_now = r.choices.get(&t.worse_question) == Some(&t.worse_choice);
    let pos = match h.days.binary_search_by(|d| d.day.cmp(&today)) {
        Ok(i) => i,
        Err(i) => {
            h.days.insert(
                i,
                Day {
                    day: today,
                    max_temp: None,
                    worse: false,
                },
            );
            i
        }
    };
    {
        let d = &mut h.days[pos];
        if let Some(v) = r.temperature {
            d.max_temp = Some(d.max_temp.map_or(v, |m| m.max(v)));
        }
        d.worse |= worse_now;
    }
    let today_max = h.days[pos].max_temp;
    let today_worse = h.days[pos].worse;
    while h.days.len() > KEEP_DAYS {
        h.days.remove(0);
    }
    for s in &new_symptoms {
        h.seen.push((*s).to_string());
    }

    // The fixed rules, on the same daily maxima.
    let daily: Vec<(NaiveDate, f64)> = h
        .days
        .iter()
        .filter_map(|d| d.max_temp.map(|m| (d.day, m)))
        .collect();
    let mut out = super::on_reading(t, r, today, &daily);
    let above_fixed = |v: i32| v > t.spo2_high_at_or_below;

    // SpO2 below the person's own baseline.
    if let (Some(v), Some(b)) = (r.spo2, base)
        && t.spo2_baseline_drop > 0
        && above_fixed(v)
        && v <= b - t.spo2_baseline_drop as i32
    {
        let k = t.spo2_baseline_readings as usize;
        out.push(Trigger {
            reason: "spo2_baseline",
            priority: Priority::High,
            detail: format!(
                "SpO2 {v} % is {} points below this person's baseline {b} % (median of their first {k} readings: {})",
                b - v,
                spo2_list(&h.spo2_first[..k])
            ),
        });
    }

    // SpO2 falling over consecutive readings.
    let n = t.spo2_falling_readings as usize;
    if let Some(v) = r.spo2
        && n >= 2
        && above_fixed(v)
        && h.spo2_last.len() >= n
    {
        let run = &h.spo2_last[h.spo2_last.len() - n..];
        let falling = run.windows(2).all(|w| w[1] <= w[0]);
        if falling && run[0] - run[n - 1] >= t.spo2_falling_points as i32 {
            out.push(Trigger {
                reason: "spo2_falling",
                priority: Priority::High,
                detail: format!("SpO2 fell over {n} readings in a row: {} %", spo2_list(run)),
            });
        }
    }

    // Temperature rising over consecutive days.
    let n = t.temp_rising_days as usize;
    if n >= 2
        && let Some(m) = today_max
        && r.temperature.is_some()
        && m >= t.temp_rising_to
    {
        let with_temp: Vec<(NaiveDate, f64)> =
            daily.iter().copied().filter(|(d, _)| *d <= today).collect();
        if with_temp.len() >= n {
            let run = &with_temp[with_temp.len() - n..];
            let consecutive = run.windows(2).all(|w| (w[1].0 - w[0].0).num_days() == 1);
            let rising = run.windows(2).all(|w| w[1].1 > w[0].1);
            if consecutive && rising && run[n - 1].1 - run[0].1 >= t.temp_rising_by - 1e-9 {
                out.push(Trigger {
                    reason: "temp_rising",
                    priority: Priority::Normal,
                    detail: format!(
                        "temperature rose on {n} days in a row: {} °C",
                        run.iter()
                            .map(|(_, v)| format!("{v:.1}"))
                            .collect::<Vec<_>>()
                            .join(" → ")
                    ),
                });
            }
        }
    }

    // A fever that returns after days without.
    if let Some(v) = r.temperature
        && v >= t.fever_return_at_or_above
        && let Some((day, m)) = fever_before
    {
        out.push(Trigger {
            reason: "fever_returned",
            priority: Priority::High,
            detail: format!(
                "{v:.1} °C: fever again after {} days without (last fever {m:.1} °C on {})",
                t.fever_return_after_days,
                day.format("%m-%d")
            ),
        });
    }

    // "Worse than yesterday" on consecutive days.
    let n = t.worse_days;
    if n > 0 && worse_now && today_worse && worse_before {
        out.push(Trigger {
            reason: "worse_repeated",
            priority: Priority::Normal,
            detail: format!("answered \"worse than yesterday\" on {n} days in a row"),
        });
    }

    // Symptoms appearing late in the illness (the known day 7–10 deterioration).
    if t.late_symptom_from_day > 0
        && !r.urgent
        && earlier_readings >= 2
        && !new_symptoms.is_empty()
        && let Some(day0) = onset.or(h.first_day)
    {
        let day = (today - day0).num_days();
        if day >= i64::from(t.late_symptom_from_day) {
            out.push(Trigger {
                reason: "late_symptoms",
                priority: Priority::Normal,
                detail: format!("new on day {day} of illness: {}", new_symptoms.join(", ")),
            });
        }
    }

    // The home early-warning score.
    if t.score_high_at_or_above > 0 && (r.spo2.is_some() || r.temperature.is_some()) {
        let breathless = r.symptoms.get(&t.score_breathless_question) == Some(&true);
        let (total, parts) = score(r.spo2, r.temperature, breathless);
        if total >= t.score_high_at_or_above {
            out.push(Trigger {
                reason: "score",
                priority: Priority::High,
                detail: format!("home early-warning score {total}: {}", parts.join(", ")),
            });
        }
    }
    out
}

/// The fever a returning fever returns from: the latest day at or above
/// `fever_return_at_or_above` before the last `fever_return_after_days` days with readings,
/// all of which were below it. None when the rule is off or the course does not show it.
fn fever_before_afebrile_days(t: &Thresholds, earlier: &[Day]) -> Option<(NaiveDate, f64)> {
    let n = t.fever_return_after_days as usize;
    if n == 0 {
        return None;
    }
    let mut with_temp = earlier
        .iter()
        .rev()
        .filter_map(|d| d.max_temp.map(|m| (d.day, m)));
    for _ in 0..n {
        let (_, m) = with_temp.next()?;
        if m >= t.fever_return_at_or_above {
            return None;
        }
    }
    with_temp.find(|(_, m)| *m >= t.fever_return_at_or_above)
}

/// Yes/no answers and choices of a stored observation's `symptoms` JSON (anything else in
/// it is skipped; a malformed one reads as no answers). Parsed straight into the two maps:
/// the rule lab runs this for millions of stored readings.
pub fn split_symptoms(json: &str) -> (BTreeMap<String, bool>, BTreeMap<String, String>) {
    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

    enum Value {
        Yes(bool),
        Choice(String),
        Other,
    }
    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Value;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an answer")
                }
                fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
                    Ok(Value::Yes(b))
                }
                fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
                    Ok(Value::Choice(s.to_string()))
                }
                fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
                    Ok(Value::Choice(s))
                }
                fn visit_i64<E: de::Error>(self, _: i64) -> Result<Value, E> {
                    Ok(Value::Other)
                }
                fn visit_u64<E: de::Error>(self, _: u64) -> Result<Value, E> {
                    Ok(Value::Other)
                }
                fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
                    Ok(Value::Other)
                }
                fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                    Ok(Value::Other)
                }
                fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                    while a.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(Value::Other)
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
                    while a.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    Ok(Value::Other)
                }
            }
            d.deserialize_any(V)
        }
    }
    struct Split(BTreeMap<String, bool>, BTreeMap<String, String>);
    impl<'de> Deserialize<'de> for Split {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Split, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Split;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object of answers")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Split, A::Error> {
                    let mut out = Split(BTreeMap::new(), BTreeMap::new());
                    while let Some(k) = a.next_key::<String>()? {
                        match a.next_value::<Value>()? {
                            Value::Yes(b) => {
                                out.0.insert(k, b);
                            }
                            Value::Choice(c) => {
                                out.1.insert(k, c);
                            }
                            Value::Other => {}
                        }
                    }
                    Ok(out)
                }
            }
            d.deserialize_map(V)
        }
    }
    match serde_json::from_str::<Split>(json) {
        Ok(Split(yes_no, choices)) => (yes_no, choices),
        Err(_) => (BTreeMap::new(), BTreeMap::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_symptoms_split_into_answers_and_choices() {
        let (y, c) = split_symptoms(
            r#"{"cough": true, "feeling": "worse", "n": 3, "x": null, "l": [1], "o": {"a": 1}, "fever": false}"#,
        );
        assert_eq!(y.len(), 2);
        assert_eq!((y["cough"], y["fever"]), (true, false));
        assert_eq!(c["feeling"], "worse");
        assert_eq!(c.len(), 1);
        assert_eq!(
            split_symptoms("not json"),
            (BTreeMap::new(), BTreeMap::new())
        );
        assert_eq!(split_symptoms("{}"), (BTreeMap::new(), BTreeMap::new()));
    }
}
