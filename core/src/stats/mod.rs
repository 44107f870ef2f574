//! **Statistics [統計] derived from the entries.** Every figure a page, a press table or an
//! open-data file shows is a sum of what each *source* contributes — a person record, or one
//! row of a medical institution's counts-only daily report [日次報告]. What a source
//! contributes is a pure function of its raw rows ([`derive`]); the store keeps the sums per
//! day, health centre and breakdown (`stats_daily`) and what each source added last time
//! (`stats_sources`), so re-deriving one source after a write is "subtract the old, add the
//! new" and a rebuild from the raw rows gives the same table (see `store::stats`).
//!
//! Definitions (documented in ARCHITECTURE.md, "Statistics"):
//! * **New case** (`case_reported`): a patient record (not a contact, not merged away) on its
//!   report day — the reception date [受理日], else the day its first occurrence report was
//!   filed, else the day it was registered; `case_onset` is the same case on its onset date.
//!   A re-positive case is a new record and counts again. Counts-only daily reports add to
//!   `case_reported` by age band.
//! * **Tests** (`tested`, `positive`): people tested per specimen day, and of them those with
//!   a positive result that day (one person tested twice on a day counts once).
//! * **Under observation**: patients between the first and last day of their observation
//!   period (cut the day before death), split into segments where severity or residence
//!   changes; `obs_start` counts a segment on its first day and `obs_end` on the day after its
//!   last, so the number under observation on a day is Σ starts − Σ ends up to that day, per
//!   breakdown. Contacts likewise (`contact_start`, `contact_end`); `contact_new` counts new
//!   contacts on their registration day.
//! * **Admissions** (`admitted`): each move into hospital (from elsewhere or as the first
//!   recorded residence). **Recoveries** (`recovered`): a patient released the day after
//!   their period ends, alive and not in hospital then. **Deaths** (`death`): the earliest
//!   death date of a deceased report or the admission record.
//! * **Escalations** (`escalation`, `escalation_urgent`): on the day they were opened.
//!
//! Every item carries the person's health centre, residence municipality, age band (age on
//! the report day), sex, and the severity and residence kind on the item's day.
pub mod opendata;
pub mod reporting;
pub mod suppress;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

macro_rules! measures {
    ($($v:ident = $code:literal),* $(,)?) => {
        /// What is counted.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Measure { $(#[serde(rename = $code)] $v),* }
        impl Measure {
            pub const ALL: &'static [Measure] = &[$(Measure::$v),*];
            pub fn as_str(self) -> &'static str { match self { $(Measure::$v => $code),* } }
            pub fn parse(s: &str) -> Option<Measure> { match s { $($code => Some(Measure::$v),)* _ => None } }
        }
    };
}

measures! {
    CaseReported = "case_reported",
    CaseOnset = "case_onset",
    Tested = "tested",
    Positive = "positive",
    ObsStart = "obs_start",
    ObsEnd = "obs_end",
    ContactNew = "contact_new",
    ContactStart = "contact_start",
    ContactEnd = "contact_end",
    Admitted = "admitted",
    Recovered = "recovered",
    Death = "death",
    Escalation = "escalation",
    EscalationUrgent = "escalation_urgent",
}

/// The open-data age bands [患者_年代] and "unknown".
pub const AGE_BANDS: [&str; 11] = [
    "u10", "10s", "20s", "30s", "40s", "50s", "60s", "70s", "80s", "90+", "unknown",
];
pub const SEXES: [&str; 4] = ["male", "female", "other", "unknown"];
pub const SEVERITIES: [&str; 5] = ["asymptomatic", "mild", "moderate", "severe", "unknown"];
pub const RESIDENCES: [&str; 6] = ["home", "hospital", "lodging", "welfare", "other", "unknown"];

/// The breakdowns kept per measure, day and centre (`stats_daily.dim`).
pub const DIMS: [&str; 7] = ["total", "age", "sex", "muni", "sev", "res", "age_sex"];

/// The age band of someone born on `dob`, on `on`.
pub fn age_band(dob: Option<NaiveDate>, on: NaiveDate) -> &'static str {
    let Some(dob) = dob else { return "unknown" };
    if dob > on {
        return "unknown";
    }
    let mut age = on.year() - dob.year();
    if (on.month(), on.day()) < (dob.month(), dob.day()) {
        age -= 1;
    }
    match age {
        a if a < 10 => "u10",
        a if a >= 90 => "90+",
        a => AGE_BANDS[(a / 10) as usize],
    }
}

/// Age in whole years on a day.
pub fn age_on(dob: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - dob.year();
    if (on.month(), on.day()) < (dob.month(), dob.day()) {
        age -= 1;
    }
    age
}

/// One counted item of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    #[serde(rename = "m")]
    pub measure: Measure,
    #[serde(rename = "d")]
    pub day: NaiveDate,
    #[serde(rename = "v")]
    pub severity: String,
    #[serde(rename = "r")]
    pub residence: String,
    pub n: i64,
}

/// What one source contributes (stored as JSON in `stats_sources.facts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    #[serde(rename = "c")]
    pub centre: i64,
    #[serde(rename = "mu")]
    pub municipality: String,
    #[serde(rename = "a")]
    pub age: String,
    #[serde(rename = "s")]
    pub sex: String,
    #[serde(rename = "i")]
    pub items: Vec<Item>,
}

/// A key of `stats_daily`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    pub measure: Measure,
    pub day: NaiveDate,
    pub centre: i64,
    pub dim: &'static str,
    pub value: String,
}

impl Facts {
    /// Adds `sign` × this source's items to `sums`, once per breakdown.
    pub fn add_to(&self, sums: &mut std::collections::HashMap<Cell, i64>, sign: i64) {
        for it in &self.items {
            for dim in DIMS {
                let value = match dim {
                    "total" => String::new(),
                    "age" => self.age.clone(),
                    "sex" => self.sex.clone(),
                    "muni" => self.municipality.clone(),
                    "sev" => it.severity.clone(),
                    "res" => it.residence.clone(),
                    _ => format!("{}|{}", self.age, self.sex),
                };
                let cell = Cell {
                    measure: it.measure,
                    day: it.day,
                    centre: self.centre,
                    dim,
                    value,
                };
                *sums.entry(cell).or_default() += sign * it.n;
            }
        }
    }
}

/// (created_at, report_type, severity, death_date) of an occurrence report.
pub type ReportRow = (DateTime<Utc>, String, Option<String>, Option<NaiveDate>);

/// The raw rows of one person that the figures are derived from.
#[derive(Debug, Clone, Default)]
pub struct PersonRows {
    pub id: i64,
    pub centre: i64,
    pub monitoring_type: String,
    pub municipality: Option<String>,
    pub sex: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub observation_start: NaiveDate,
    pub observation_end: NaiveDate,
    pub merged: bool,
    pub onset_date: Option<NaiveDate>,
    pub reception_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    /// The person's current residence kind (for days before any dated entry).
    pub residence_kind: String,
    /// Each occurrence report.
    pub reports: Vec<ReportRow>,
    /// (specimen_date, result).
    pub tests: Vec<(NaiveDate, String)>,
    /// (from_date, level), any order.
    pub severities: Vec<(NaiveDate, String)>,
    /// (from_date, kind), any order.
    pub residences: Vec<(NaiveDate, String)>,
    /// Death date recorded in the admission section.
    pub died_on: Option<NaiveDate>,
    /// (opened_at, priority) of each escalation.
    pub escalations: Vec<(DateTime<Utc>, String)>,
}

/// Local date in Japan (the figures are by Japanese calendar day).
pub fn local_day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&chrono_tz::Asia::Tokyo).date_naive()
}

fn severity_code(level: &str) -> &'static str {
    match level {
        "mild" => "mild",
        "moderate" | "moderate1" | "moderate2" => "moderate",
        "severe" => "severe",
        "asymptomatic" => "asymptomatic",
        _ => "unknown",
    }
}

/// What a person contributes. Pure: the same rows give the same facts.
pub fn derive(p: &PersonRows) -> Facts {
    let mut reports = p.reports.clone();
    reports.sort_by_key(|r| r.0);
    let report_day = p
        .reception_date
        .or_else(|| reports.first().map(|r| local_day(r.0)))
        .unwrap_or_else(|| local_day(p.created_at));
    let mut f = Facts {
        centre: p.centre,
        municipality: p
            .municipality
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .to_string(),
        age: age_band(p.date_of_birth, report_day).to_string(),
        sex: p
            .sex
            .as_deref()
            .filter(|s| SEXES.contains(s))
            .unwrap_or("unknown")
            .to_string(),
        items: Vec::new(),
    };
    if p.merged {
        return f;
    }
    let mut sev = p.severities.clone();
    sev.sort();
    let mut res = p.residences.clone();
    res.sort();
    let patient = p.monitoring_type == "patient";
    let first_report_severity = reports.iter().find_map(|r| r.2.clone());
    let asymptomatic = !reports.is_empty() && reports.iter().all(|r| r.1 == "asymptomatic");
    let severity_on = |d: NaiveDate| -> String {
        if !patient {
            return "unknown".into();
        }
        if let Some((_, l)) = sev.iter().rev().find(|(from, _)| *from <= d) {
            return severity_code(l).into();
        }
        if let Some(l) = &first_report_severity {
            return severity_code(l).into();
        }
        if asymptomatic {
            return "asymptomatic".into();
        }
        "unknown".into()
    };
    let residence_on = |d: NaiveDate| -> String {
        match res.iter().rev().find(|(from, _)| *from <= d) {
            Some((_, k)) => k.clone(),
            None if res.is_empty() => p.residence_kind.clone(),
            None => "home".into(),
        }
    };
    let mut push = |measure: Measure, day: NaiveDate, n: i64| {
        f.items.push(Item {
            measure,
            day,
            severity: severity_on(day),
            residence: residence_on(day),
            n,
        });
    };

    // Tests: per specimen day.
    let mut days: Vec<NaiveDate> = p.tests.iter().map(|t| t.0).collect();
    days.sort();
    days.dedup();
    for d in days {
        push(Measure::Tested, d, 1);
        if p.tests.iter().any(|t| t.0 == d && t.1 == "positive") {
            push(Measure::Positive, d, 1);
        }
    }

    let death = reports
        .iter()
        .filter(|r| r.1 == "deceased")
        .filter_map(|r| r.3)
        .chain(p.died_on)
        .min();
    // The observation period, cut the day before death.
    let start = p.observation_start;
    let mut end = p.observation_end;
    if let Some(d) = death {
        end = end.min(d - Duration::days(1));
    }
    let (seg_start, seg_end, new) = if patient {
        (Measure::ObsStart, Measure::ObsEnd, Measure::CaseReported)
    } else {
        (
            Measure::ContactStart,
            Measure::ContactEnd,
            Measure::ContactNew,
        )
    };
    push(new, report_day, 1);
    if patient && let Some(onset) = p.onset_date {
        push(Measure::CaseOnset, onset, 1);
    }
    if end >= start {
        // Segment boundaries: every day severity or residence may change inside the period.
        let mut cuts: Vec<NaiveDate> = sev
            .iter()
            .map(|s| s.0)
            .chain(res.iter().map(|r| r.0))
            .filter(|d| *d > start && *d <= end)
            .collect();
        cuts.sort();
        cuts.dedup();
        let mut a = start;
        for c in cuts
            .into_iter()
            .chain(std::iter::once(end + Duration::days(1)))
        {
            // Same breakdown as the previous segment: extend it instead of cutting.
            if c > a {
                let last = c - Duration::days(1);
                let (v, r) = (severity_on(a), residence_on(a));
                let same_as_next = c <= end && severity_on(c) == v && residence_on(c) == r;
                if !same_as_next {
                    f.items.push(Item {
                        measure: seg_start,
                        day: a,
                        severity: v.clone(),
                        residence: r.clone(),
                        n: 1,
                    });
                    f.items.push(Item {
                        measure: seg_end,
                        day: last + Duration::days(1),
                        severity: v,
                        residence: r,
                        n: 1,
                    });
                    a = c;
                }
            }
        }
    }
    if patient {
        // Admissions: each move into hospital.
        let mut before = "";
        for (d, k) in &res {
            if k == "hospital" && before != "hospital" {
                f.items.push(Item {
                    measure: Measure::Admitted,
                    day: *d,
                    severity: severity_on(*d),
                    residence: "hospital".into(),
                    n: 1,
                });
            }
            before = k;
        }
        if let Some(d) = death {
            f.items.push(Item {
                measure: Measure::Death,
                day: d,
                severity: severity_on(d),
                residence: residence_on(d),
                n: 1,
            });
        } else if residence_on(p.observation_end) != "hospital" {
            let d = p.observation_end + Duration::days(1);
            f.items.push(Item {
                measure: Measure::Recovered,
                day: d,
                severity: severity_on(p.observation_end),
                residence: residence_on(p.observation_end),
                n: 1,
            });
        }
    }
    for (at, priority) in &p.escalations {
        let d = local_day(*at);
        let (v, r) = (severity_on(d), residence_on(d));
        f.items.push(Item {
            measure: Measure::Escalation,
            day: d,
            severity: v.clone(),
            residence: r.clone(),
            n: 1,
        });
        if priority == "urgent" {
            f.items.push(Item {
                measure: Measure::EscalationUrgent,
                day: d,
                severity: v,
                residence: r,
                n: 1,
            });
        }
    }
    f
}

/// What one counts-only daily report row contributes: new cases of an age band.
pub fn derive_count(centre: i64, day: NaiveDate, age_band: &str, n: i64) -> Facts {
    Facts {
        centre,
        municipality: String::new(),
        age: age_band.to_string(),
        sex: "unknown".into(),
        items: if n > 0 {
            vec![Item {
                measure: Measure::CaseReported,
                day,
                severity: "unknown".into(),
                residence: "unknown".into(),
                n,
            }]
        } else {
            Vec::new()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn count(f: &Facts, m: Measure) -> Vec<(NaiveDate, String, String)> {
        f.items
            .iter()
            .filter(|i| i.measure == m)
            .map(|i| (i.day, i.severity.clone(), i.residence.clone()))
            .collect()
    }

    #[test]
    fn age_bands_follow_the_open_data_bands() {
        let on = d("2022-08-01");
        assert_eq!(age_band(Some(d("2012-08-02")), on), "u10");
        assert_eq!(age_band(Some(d("2012-08-01")), on), "10s");
        assert_eq!(age_band(Some(d("1957-08-01")), on), "60s");
        assert_eq!(age_band(Some(d("1932-08-01")), on), "90+");
        assert_eq!(age_band(Some(d("1932-08-02")), on), "80s");
        assert_eq!(age_band(None, on), "unknown");
        assert_eq!(age_band(Some(d("2023-01-01")), on), "unknown");
    }

    #[test]
    fn a_patient_admitted_then_dead() {
        let p = PersonRows {
            id: 1,
            centre: 7,
            monitoring_type: "patient".into(),
            municipality: Some(" 新宿区 ".into()),
            sex: Some("female".into()),
            date_of_birth: Some(d("1950-01-01")),
            observation_start: d("2022-08-01"),
            observation_end: d("2022-08-10"),
            onset_date: Some(d("2022-07-31")),
            reception_date: None,
            created_at: "2022-08-01T20:00:00Z".parse().unwrap(),
            residence_kind: "hospital".into(),
            reports: vec![(
                "2022-08-01T16:00:00Z".parse().unwrap(),
                "patient".into(),
                Some("mild".into()),
                None,
            )],
            tests: vec![
                (d("2022-07-31"), "positive".into()),
                (d("2022-07-31"), "negative".into()),
            ],
            severities: vec![(d("2022-08-04"), "moderate2".into())],
            residences: vec![(d("2022-08-04"), "hospital".into())],
            died_on: Some(d("2022-08-06")),
            ..Default::default()
        };
        let f = derive(&p);
        assert_eq!(f.municipality, "新宿区");
        assert_eq!(f.age, "70s");
        // Filed at 01:00 on 2 August in Japan.
        assert_eq!(
            count(&f, Measure::CaseReported),
            vec![(d("2022-08-02"), "mild".into(), "home".into())]
        );
        assert_eq!(count(&f, Measure::Tested).len(), 1);
        assert_eq!(count(&f, Measure::Positive).len(), 1);
        // Home and mild 1–3 Aug; hospital and moderate 4–5 Aug (died on the 6th).
        assert_eq!(
            count(&f, Measure::ObsStart),
            vec![
                (d("2022-08-01"), "mild".into(), "home".into()),
                (d("2022-08-04"), "moderate".into(), "hospital".into())
            ]
        );
        assert_eq!(
            count(&f, Measure::ObsEnd),
            vec![
                (d("2022-08-04"), "mild".into(), "home".into()),
                (d("2022-08-06"), "moderate".into(), "hospital".into())
            ]
        );
        assert_eq!(count(&f, Measure::Admitted).len(), 1);
        assert_eq!(count(&f, Measure::Death)[0].0, d("2022-08-06"));
        assert!(count(&f, Measure::Recovered).is_empty());
    }

    #[test]
    fn a_merged_record_counts_nothing_and_a_contact_is_no_case() {
        let mut p = PersonRows {
            monitoring_type: "contact".into(),
            observation_start: d("2022-08-01"),
            observation_end: d("2022-08-05"),
            created_at: "2022-08-01T01:00:00Z".parse().unwrap(),
            residence_kind: "home".into(),
            ..Default::default()
        };
        let f = derive(&p);
        assert!(count(&f, Measure::CaseReported).is_empty());
        assert_eq!(count(&f, Measure::ContactNew).len(), 1);
        assert_eq!(count(&f, Measure::ContactEnd)[0].0, d("2022-08-06"));
        p.merged = true;
        assert!(derive(&p).items.is_empty());
    }
}
