//! People under observation.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::db::BeginWrite;
use crate::{
    Db, Error, Result,
    access::{Access, Action, FieldGroup, Opened, Viewer},
    db::now,
    domain::{Channel, Email, Lang, Phone, parse_slot},
    error::Collect,
    store::{Actor, audit, checkins},
    with_db,
};

/// Registration input as typed by staff or sent to the API: every field a string, so that
/// every problem can be reported at once with its field name.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PersonInput {
    pub name: String,
    pub phone: String,
    pub email: String,
    pub channel: String,
    pub language: String,
    pub monitoring_type: String,
    pub observation_start: String,
    pub observation_end: String,
    /// Local times of the daily check-ins, HH:MM, comma-separated for more than one a day
    /// ("09:00,17:00"; default 09:00).
    pub checkin_time: String,
    /// YYYY-MM-DD; lets the person identify themself on the inbound phone line.
    pub date_of_birth: String,
    /// Channel to try when the main one fails or goes unanswered (sms, email, voice).
    pub fallback_channel: String,
    /// Automated calls read slower, with pauses, and wait longer for keys (elderly people).
    pub slow_speech: bool,
    /// Name in kana [フリガナ]; used to find duplicates.
    pub name_kana: String,
    /// male, female, other, unknown.
    pub sex: String,
    pub nationality: String,
    /// JIS prefecture code, "01"–"47".
    pub prefecture_code: String,
    pub municipality: String,
    /// The rest of the address.
    pub address: String,
    pub occupation: String,
    pub workplace: String,
    pub emergency_contact: String,
    /// YYYY-MM-DD [受付日]; default today.
    pub reception_date: String,
    /// Day 0 of the period, one of: onset (symptomatic), specimen (asymptomatic), last
    /// exposure (contact). With one of them, `observation_start` and `observation_end` may be
    /// left empty and are computed from `flows/periods.toml`.
    pub onset_date: String,
    pub specimen_date: String,
    pub last_exposure_date: String,
    /// Why `observation_end` differs from the computed end (required then).
    pub period_override_reason: String,
    /// For a close contact: the id of the case that made them one.
    #[serde(deserialize_with = "crate::domain::lenient::opt_i64")]
    #[schemars(with = "Option<i64>")]
    pub source_person_id: Option<i64>,
    /// A contact met at this behaviour-history entry of the source case; its date is the
    /// default last exposure.
    #[serde(deserialize_with = "crate::domain::lenient::opt_i64")]
    #[schemars(with = "Option<i64>")]
    pub behaviour_id: Option<i64>,
    /// Register even though possible duplicates were shown (after checking them).
    #[serde(deserialize_with = "crate::domain::lenient::flag")]
    #[schemars(with = "bool")]
    pub not_duplicate: bool,
}

/// A validated registration.
#[derive(Debug, Clone)]
pub struct NewPerson {
    pub name: String,
    pub phone: Option<Phone>,
    pub email: Option<Email>,
    pub channel: Channel,
    pub language: Lang,
    pub monitoring_type: &'static str,
    pub observation_start: NaiveDate,
    pub observation_end: NaiveDate,
    /// Minutes after local midnight, one per daily slot.
    pub slots: Vec<i32>,
    pub date_of_birth: Option<NaiveDate>,
    pub fallback_channel: Option<Channel>,
    pub slow_speech: bool,
    pub details: Details,
}

/// The registry's optional basic information.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Details {
    pub name_kana: Option<String>,
    pub name_key: Option<String>,
    pub sex: Option<&'static str>,
    pub nationality: Option<String>,
    pub prefecture_code: Option<String>,
    pub municipality: Option<String>,
    pub address: Option<String>,
    pub occupation: Option<String>,
    pub workplace: Option<String>,
    pub emergency_contact: Option<String>,
    pub reception_date: Option<NaiveDate>,
    pub onset_date: Option<NaiveDate>,
    pub specimen_date: Option<NaiveDate>,
    pub last_exposure_date: Option<NaiveDate>,
    /// The period rule applied (None when the dates were typed).
    pub period_rule: Option<String>,
    pub period_override_reason: Option<String>,
    pub source_person_id: Option<i64>,
    /// A re-positive case: the earlier, ended case of the same person.
    pub previous_case_id: Option<i64>,
}

fn parse_date(field: &'static str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            field,
            "err-write-the-date-as-yyyy-mm-dd-for-example-2026-11",
        )
    })
}

/// Daily check-in times, "HH:MM" comma-separated, as minutes after midnight (sorted, at
/// most six).
fn parse_slots(c: &mut Collect, times: &str) -> Vec<i32> {
    let mut slots: Vec<i32> = Vec::new();
    for t in times.split(',') {
        if let Some(m) = c.take(parse_slot("checkin_time", t)) {
            slots.push(m);
        }
    }
    slots.sort_unstable();
    slots.dedup();
    if slots.len() > 6 {
        c.push("checkin_time", "err-at-most-6-check-ins-a-day");
    }
    slots
}

/// A change to how a person is reached: every field optional (empty = keep as it is).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ScheduleInput {
    pub channel: String,
    /// "none" removes the fallback channel.
    pub fallback_channel: String,
    pub language: String,
    /// "HH:MM", comma-separated for several check-ins a day.
    pub checkin_time: String,
    /// "yes" / "no": calls read slower with pauses and wait longer for keys.
    pub slow_speech: String,
}

/// A validated schedule change (None = unchanged).
#[derive(Debug, Clone, Default)]
pub struct ScheduleChange {
    pub channel: Option<Channel>,
    pub fallback_channel: Option<Option<Channel>>,
    pub language: Option<Lang>,
    pub slots: Option<Vec<i32>>,
    pub slow_speech: Option<bool>,
}

impl ScheduleInput {
    pub fn parse(&self) -> Result<ScheduleChange> {
        let mut c = Collect::default();
        fn some(s: &str) -> Option<&str> {
            Some(s.trim()).filter(|s| !s.is_empty())
        }
        let out = ScheduleChange {
            channel: some(&self.channel).and_then(|v| c.take(Channel::parse("channel", v))),
            fallback_channel: some(&self.fallback_channel).and_then(|v| match v {
                "none" => Some(None),
                v => c.take(Channel::parse("fallback_channel", v)).map(Some),
            }),
            language: some(&self.language).and_then(|v| c.take(Lang::parse("language", v))),
            slots: some(&self.checkin_time).map(|v| parse_slots(&mut c, v)),
            slow_speech: some(&self.slow_speech).and_then(|v| match v {
                "yes" | "true" | "1" => Some(true),
                "no" | "false" | "0" => Some(false),
                _ => {
                    c.push("slow_speech", "err-answer-yes-or-no");
                    None
                }
            }),
        };
        c.finish()?;
        Ok(out)
    }
}

/// Optional free text: trimmed, empty → None, at most `max` characters.
fn text(c: &mut Collect, field: &'static str, v: &str, max: usize) -> Option<String> {
    let v = v.trim();
    if v.chars().count() > max {
        c.push_with(
            field,
            "err-use-at-most-characters",
            vec![("max", max.to_string())],
        );
        return None;
    }
    Some(v.to_string()).filter(|v| !v.is_empty())
}

fn opt_date(c: &mut Collect, field: &'static str, v: &str) -> Option<NaiveDate> {
    if v.trim().is_empty() {
        None
    } else {
        c.take(parse_date(field, v))
    }
}

impl PersonInput {
    /// Validates with the built-in observation-period rules.
    pub fn parse(&self) -> Result<NewPerson> {
        self.parse_with(&crate::periods::Periods::default(), now().date_naive())
    }

    /// Validates; a missing period is computed from day 0 under `periods`; `today` is the
    /// default reception date.
    pub fn parse_with(
        &self,
        periods: &crate::periods::Periods,
        today: NaiveDate,
    ) -> Result<NewPerson> {
        let mut c = Collect::default();
        let name = self.name.trim().to_string();
        if name.is_empty() {
            c.push("name", "err-enter-the-person-s-name");
        } else if name.chars().count() > 100 {
            c.push("name", "err-use-at-most-100-characters");
        }
        let phone = if self.phone.trim().is_empty() {
            None
        } else {
            c.take(Phone::parse("phone", &self.phone))
        };
        let email = if self.email.trim().is_empty() {
            None
        } else {
            c.take(Email::parse("email", &self.email))
        };
        let channel = c.take(Channel::parse(
            "channel",
            if self.channel.trim().is_empty() {
                "sms"
            } else {
                &self.channel
            },
        ));
        let language = c.take(Lang::parse("language", &self.language));
        let monitoring_type = match self.monitoring_type.trim() {
            "" | "patient" => Some("patient"),
            "contact" => Some("contact"),
            _ => {
                c.push("monitoring_type", "err-choose-patient-or-contact");
                None
            }
        };
        let d = self.details(&mut c, today);
        // Day 0 and the computed period, when a day-0 date is given.
        use crate::periods::Basis;
        let basis = match monitoring_type {
            Some("contact") => d
                .last_exposure_date
                .map(|d0| (Basis::Contact, d0, "last_exposure_date")),
            _ => d
                .onset_date
                .map(|d0| (Basis::Symptomatic, d0, "onset_date"))
                .or(d
                    .specimen_date
                    .map(|d0| (Basis::Asymptomatic, d0, "specimen_date"))),
        };
        let computed = basis.map(|(b, d0, _)| periods.compute(b, d0));
        let start = if self.observation_start.trim().is_empty() && computed.is_some() {
            computed.as_ref().map(|p| p.start)
        } else {
            c.take(parse_date("observation_start", &self.observation_start))
        };
        let end = if self.observation_end.trim().is_empty() && computed.is_some() {
            computed.as_ref().map(|p| p.end)
        } else if self.observation_end.trim().is_empty() {
            c.push(
                "observation_end",
                "err-enter-the-end-date-or-an-onset-specimen-or-last",
            );
            None
        } else {
            c.take(parse_date("observation_end", &self.observation_end))
        };
        let mut details = d;
        if let (Some(p), Some(e)) = (&computed, end) {
            if e != p.end && details.period_override_reason.is_none() {
                c.push_with(
                    "period_override_reason",
                    "err-period-override-needs-reason",
                    vec![
                        ("rule", p.rule.clone()),
                        ("end", p.end.to_string()),
                        ("wanted", e.to_string()),
                    ],
                );
            }
            if e == p.end {
                details.period_rule = Some(p.rule.clone());
            }
        }
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            c.push(
                "observation_end",
                "err-the-end-date-must-be-on-or-after-the-start-date",
            );
        }
        let times = if self.checkin_time.trim().is_empty() {
            "09:00"
        } else {
            self.checkin_time.as_str()
        };
        let slots = parse_slots(&mut c, times);
        let date_of_birth = if self.date_of_birth.trim().is_empty() {
            None
        } else {
            c.take(parse_date("date_of_birth", &self.date_of_birth))
        };
        let fallback_channel = if self.fallback_channel.trim().is_empty() {
            None
        } else {
            c.take(Channel::parse("fallback_channel", &self.fallback_channel))
        };
        match channel {
            Some(Channel::Sms | Channel::Voice) if self.phone.trim().is_empty() => c.push(
                "phone",
                "err-a-phone-number-is-needed-for-the-sms-and-voice",
            ),
            Some(Channel::Email) if self.email.trim().is_empty() => {
                c.push("email", "err-an-e-mail-address-is-needed-for-the-email")
            }
            _ => {}
        }
        c.finish()?;
        Ok(NewPerson {
            name,
            phone,
            email,
            channel: channel.expect("checked"),
            language: language.expect("checked"),
            monitoring_type: monitoring_type.expect("checked"),
            observation_start: start.expect("checked"),
            observation_end: end.expect("checked"),
            slots,
            date_of_birth,
            fallback_channel,
            slow_speech: self.slow_speech,
            details,
        })
    }

    fn details(&self, c: &mut Collect, today: NaiveDate) -> Details {
        let name_kana = text(c, "name_kana", &self.name_kana, 100);
        let sex = match self.sex.trim() {
            "" => None,
            s @ ("male" | "female" | "other" | "unknown") => ["male", "female", "other", "unknown"]
                .into_iter()
                .find(|x| *x == s),
            _ => {
                c.push("sex", "err-choose-male-female-other-or-unknown");
                None
            }
        };
        let prefecture_code = text(c, "prefecture_code", &self.prefecture_code, 2);
        if let Some(p) = &prefecture_code
            && !p
                .parse::<u8>()
                .is_ok_and(|n| (1..=47).contains(&n) && p.len() == 2)
        {
            c.push(
                "prefecture_code",
                "err-use-the-two-digit-jis-code-01-hokkaido-to-47",
            );
        }
        let source_person_id = self.source_person_id;
        Details {
            name_key: name_kana
                .as_deref()
                .map(crate::domain::kana_key)
                .or_else(|| Some(crate::domain::kana_key(&self.name)))
                .filter(|k| !k.is_empty()),
            name_kana,
            sex,
            nationality: text(c, "nationality", &self.nationality, 50),
            prefecture_code,
            municipality: text(c, "municipality", &self.municipality, 50),
            address: text(c, "address", &self.address, 200),
            occupation: text(c, "occupation", &self.occupation, 100),
            workplace: text(c, "workplace", &self.workplace, 100),
            emergency_contact: text(c, "emergency_contact", &self.emergency_contact, 200),
            reception_date: opt_date(c, "reception_date", &self.reception_date).or(Some(today)),
            onset_date: opt_date(c, "onset_date", &self.onset_date),
            specimen_date: opt_date(c, "specimen_date", &self.specimen_date),
            last_exposure_date: opt_date(c, "last_exposure_date", &self.last_exposure_date),
            period_rule: None,
            period_override_reason: text(
                c,
                "period_override_reason",
                &self.period_override_reason,
                500,
            ),
            source_person_id,
            previous_case_id: None,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct Person {
    pub id: i64,
    pub health_centre_id: i64,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub channel: String,
    pub language: String,
    pub monitoring_type: String,
    pub observation_start: NaiveDate,
    pub observation_end: NaiveDate,
    pub date_of_birth: Option<NaiveDate>,
    pub fallback_channel: Option<String>,
    /// Calls read slower, with pauses, and wait longer for keys.
    #[sqlx(default)]
    pub slow_speech: bool,
    /// `observing`, `ended`, `opted_out`, `admitted` — or `paused` for a role that may not
    /// read residence (admission says where the person is).
    pub status: String,
    /// Current residence kind (home, hospital, lodging, welfare, other); absent for a role
    /// that may not read residence.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub residence_kind: String,
    pub name_kana: Option<String>,
    pub sex: Option<String>,
    pub nationality: Option<String>,
    pub prefecture_code: Option<String>,
    pub municipality: Option<String>,
    pub address: Option<String>,
    pub occupation: Option<String>,
    pub workplace: Option<String>,
    pub emergency_contact: Option<String>,
    pub reception_date: Option<NaiveDate>,
    pub onset_date: Option<NaiveDate>,
    pub specimen_date: Option<NaiveDate>,
    pub last_exposure_date: Option<NaiveDate>,
    /// The observation-period rule applied, when the end was computed.
    pub period_rule: Option<String>,
    pub period_override_reason: Option<String>,
    pub source_person_id: Option<i64>,
    pub previous_case_id: Option<i64>,
    /// Merged into this record (a duplicate).
    pub merged_into: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// The health centre's time zone (IANA name), for local times on pages; not part of the
    /// record.
    #[serde(skip)]
    pub time_zone: String,
    /// The centre's choice of basic information for contractors and lodging facilities
    /// (`narrow` or `full`, migration 0019); not part of the record.
    #[serde(skip)]
    #[sqlx(default)]
    pub outside_basic: String,
}

const PERSON_COLUMNS: &str = "p.id, p.health_centre_id, p.name, p.phone, p.email, p.channel, p.language,
    p.monitoring_type, p.observation_start, p.observation_end, p.date_of_birth, p.fallback_channel, p.slow_speech, p.status, p.residence_kind,
    p.name_kana, p.sex, p.nationality, p.prefecture_code, p.municipality, p.address, p.occupation,
    p.workplace, p.emergency_contact, p.reception_date, p.onset_date, p.specimen_date,
    p.last_exposure_date, p.period_rule, p.period_override_reason, p.source_person_id, p.previous_case_id,
    p.merged_into, p.created_at,
    (SELECT h.time_zone FROM health_centres h WHERE h.id = p.health_centre_id) AS time_zone,
    (SELECT h.outside_basic FROM health_centres h WHERE h.id = p.health_centre_id) AS outside_basic";

/// Inserts a registered person inside the caller's write transaction `$tx` and plans
/// today's check-ins (`$plans` from [`plans_today`]); evaluates to `Result<i64>`. The source
/// case of a contact must belong to the same health centre.
macro_rules! insert_person {
    ($tx:expr, $centre:expr, $p:expr, $plans:expr, $t:expr) => {{
        let p: &$crate::store::persons::NewPerson = $p;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO persons (health_centre_id, name, phone, email, channel, language, monitoring_type,
               observation_start, observation_end, date_of_birth, fallback_channel, status, created_at, updated_at, slow_speech)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'observing', $12, $12, $13) RETURNING id")
            .bind($centre).bind(&p.name).bind(p.phone.as_ref().map(|x| x.as_str()))
            .bind(p.email.as_ref().map(|x| x.as_str())).bind(p.channel.as_str()).bind(p.language.as_str())
            .bind(p.monitoring_type).bind(p.observation_start).bind(p.observation_end)
            .bind(p.date_of_birth).bind(p.fallback_channel.map($crate::domain::Channel::as_str)).bind($t)
            .bind(p.slow_speech)
            .fetch_one(&mut *$tx).await?;
        let d = &p.details;
        let mut bad_source = false;
        if let Some(src) = d.source_person_id {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE id = $1 AND health_centre_id = $2")
                .bind(src).bind($centre).fetch_one(&mut *$tx).await?;
            bad_source = n == 0;
        }
        if bad_source {
            Err($crate::Error::invalid("source_person_id", "err-no-case-with-this-id-at-your-health-centre"))
        } else {
            sqlx::query(
                "UPDATE persons SET name_kana = $1, name_key = $2, sex = $3, nationality = $4, prefecture_code = $5,
                   municipality = $6, address = $7, occupation = $8, workplace = $9, emergency_contact = $10,
                   reception_date = $11, onset_date = $12, specimen_date = $13, last_exposure_date = $14,
                   period_rule = $15, period_override_reason = $16, source_person_id = $17, previous_case_id = $18,
                   name_norm = $20
                 WHERE id = $19")
                .bind(&d.name_kana).bind(&d.name_key).bind(d.sex).bind(&d.nationality).bind(&d.prefecture_code)
                .bind(&d.municipality).bind(&d.address).bind(&d.occupation).bind(&d.workplace).bind(&d.emergency_contact)
                .bind(d.reception_date).bind(d.onset_date).bind(d.specimen_date).bind(d.last_exposure_date)
                .bind(&d.period_rule).bind(&d.period_override_reason).bind(d.source_person_id)
                .bind(d.previous_case_id).bind(id).bind($crate::domain::kana_key(&p.name))
                .execute(&mut *$tx).await?;
            for (slot, (minutes, plan)) in p.slots.iter().zip($plans.iter()).enumerate() {
                sqlx::query("INSERT INTO person_slots (person_id, slot, minutes) VALUES ($1, $2, $3)")
                    .bind(id).bind(slot as i32).bind(*minutes).execute(&mut *$tx).await?;
                sqlx::query($crate::store::checkins::PLAN_PERSON_SQL)
                    .bind(plan.local_date).bind(plan.due_at).bind(plan.deadline_at).bind(id).bind(slot as i32)
                    .execute(&mut *$tx).await?;
            }
            Ok::<i64, $crate::Error>(id)
        }
    }};
}
pub(crate) use insert_person;

/// Today's check-ins of a new person of `health_centre_id` (see [`insert_person!`]).
pub(crate) async fn plans_today(
    db: &Db,
    health_centre_id: i64,
    p: &NewPerson,
    window: chrono::Duration,
    at: DateTime<Utc>,
) -> Result<Vec<checkins::PersonPlan>> {
    let centre = crate::store::staff::health_centre(db, health_centre_id).await?;
    p.slots
        .iter()
        .map(|m| checkins::PersonPlan::today(&centre.time_zone, *m, at, window))
        .collect()
}

/// Registers a person and, in the same transaction, plans today's check-in (when today is
/// inside the observation period), so nobody waits for the nightly run. `window` is the
/// answer window of check-ins.
pub async fn create(
    db: &Db,
    actor: Actor,
    health_centre_id: i64,
    p: &NewPerson,
    window: chrono::Duration,
    ip: Option<&str>,
) -> Result<i64> {
    let t = now();
    let plans = plans_today(db, health_centre_id, p, window, t).await?;
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let id = insert_person!(tx, health_centre_id, p, plans, t)?;
        audit(&mut *tx, actor, "person.create", "person", Some(id), ip).await?;
        tx.commit().await?;
        Ok(id)
    })
}

/// Changes how a person is reached and, in the same transaction, re-plans today: check-ins
/// not yet sent move to the new times, those of removed times are cancelled, new times are
/// planned (a time already past is due at once). Sent check-ins stay open for an answer;
/// later days follow the nightly planning. A new channel applies from the next send.
/// Needs write access to health observation. Audited.
pub async fn update_schedule(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    change: &ScheduleChange,
    window: chrono::Duration,
    ip: Option<&str>,
) -> Result<()> {
    check(
        db,
        Access::Staff(viewer),
        id,
        FieldGroup::HealthObservation,
        Action::Write,
    )
    .await?;
    let person = load(db, id).await?;
    let centre = crate::store::staff::health_centre(db, person.health_centre_id).await?;
    let channel = change
        .channel
        .map(|c| c.as_str().to_string())
        .unwrap_or(person.channel.clone());
    let fallback = match change.fallback_channel {
        Some(f) => f.map(|c| c.as_str().to_string()),
        None => person.fallback_channel.clone(),
    };
    let mut c = Collect::default();
    for (field, ch) in [
        ("channel", Some(&channel)),
        ("fallback_channel", fallback.as_ref()),
    ] {
        match ch.map(String::as_str) {
            Some("sms" | "voice") if person.phone.is_none() => c.push(
                field,
                "err-this-person-has-no-phone-number-add-one-first-or",
            ),
            Some("email") if person.email.is_none() => {
                c.push(field, "err-this-person-has-no-e-mail-address-add-one-first")
            }
            _ => {}
        }
    }
    c.finish()?;
    let t = now();
    let plans = match &change.slots {
        Some(slots) => Some(
            slots
                .iter()
                .map(|m| checkins::PersonPlan::today(&centre.time_zone, *m, t, window))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let language = change
        .language
        .map(|l| l.as_str().to_string())
        .unwrap_or(person.language.clone());
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("UPDATE persons SET channel = $1, fallback_channel = $2, language = $3, updated_at = $4,
                     slow_speech = COALESCE($6, slow_speech) WHERE id = $5")
            .bind(&channel).bind(fallback.as_deref()).bind(&language).bind(t).bind(id).bind(change.slow_speech)
            .execute(&mut *tx).await?;
        if let (Some(slots), Some(plans)) = (&change.slots, &plans) {
            sqlx::query("DELETE FROM person_slots WHERE person_id = $1").bind(id).execute(&mut *tx).await?;
            let today = plans.first().map(|p| p.local_date);
            // Today's unsent check-ins of times that are gone end as cancelled.
            sqlx::query("UPDATE checkins SET status = 'cancelled', closed_at = $1, claim_token = NULL
                         WHERE person_id = $2 AND local_date = $3 AND status = 'planned' AND slot >= $4")
                .bind(t).bind(id).bind(today).bind(slots.len() as i32).execute(&mut *tx).await?;
            for (slot, (minutes, plan)) in slots.iter().zip(plans).enumerate() {
                sqlx::query("INSERT INTO person_slots (person_id, slot, minutes) VALUES ($1, $2, $3)")
                    .bind(id).bind(slot as i32).bind(*minutes).execute(&mut *tx).await?;
                // Unsent (or cancelled by an earlier change): planned at the new time. Sent
                // or answered: left alone.
                sqlx::query("UPDATE checkins SET due_at = $1, deadline_at = $2, status = 'planned', closed_at = NULL
                             WHERE person_id = $3 AND local_date = $4 AND slot = $5
                               AND ((status = 'planned' AND attempts = 0) OR status = 'cancelled')
                               AND EXISTS (SELECT 1 FROM persons p WHERE p.id = $3 AND p.status = 'observing')")
                    .bind(plan.due_at).bind(plan.deadline_at).bind(id).bind(plan.local_date).bind(slot as i32)
                    .execute(&mut *tx).await?;
                sqlx::query(checkins::PLAN_PERSON_SQL)
                    .bind(plan.local_date).bind(plan.due_at).bind(plan.deadline_at).bind(id).bind(slot as i32)
                    .execute(&mut *tx).await?;
            }
        }
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.schedule", "person", Some(id), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}

/// Reads one person through `access`: for a staff member their row scope and the basic
/// field group are enforced (a person outside the scope is "not found", so existence is not
/// disclosed) and the fields they may not read are blanked. Audited in the same transaction.
pub async fn get(db: &Db, access: Access<'_>, id: i64, ip: Option<&str>) -> Result<Person> {
    let scope = match access {
        Access::Staff(v) => v.row_condition(),
        Access::Opened(o) if o.person_id() == id => "1 = 1".into(),
        Access::Opened(_) => return Err(Error::NotFound("person")),
        Access::System(_) => "1 = 1".into(),
    };
    let sql = format!("SELECT {PERSON_COLUMNS} FROM persons p WHERE p.id = $1 AND {scope}");
    let p: Person = with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let p: Option<Person> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(&mut *tx).await?;
        // Outside the scope is "not found" (existence is not disclosed) before "forbidden".
        let Some(p) = p else { return Err(Error::NotFound("person")) };
        if let Some(v) = access.viewer()
            && !v.may(FieldGroup::Basic, Action::Read)
        {
            return Err(Error::Forbidden(
                "your role may not read this person's basic information",
            ));
        }
        audit(&mut *tx, access.actor(), "person.read", "person", Some(id), ip).await?;
        tx.commit().await?;
        p
    });
    Ok(match access.viewer() {
        Some(v) => p.visible_to(v),
        None => p,
    })
}

/// One person as stored, for a store function that has already checked its caller and
/// audits its own write (the read is part of that write).
pub(crate) async fn load(db: &Db, id: i64) -> Result<Person> {
    let sql = format!("SELECT {PERSON_COLUMNS} FROM persons p WHERE p.id = $1");
    let p: Option<Person> = with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_optional(pool).await?);
    p.ok_or(Error::NotFound("person"))
}

/// Opens a person's page for `viewer`: [`get`] (scope, basic group, audited once) and the
/// [`Opened`] proof that the page's further reads of the same person pass with.
pub async fn open(db: &Db, viewer: &Viewer, id: i64, ip: Option<&str>) -> Result<(Person, Opened)> {
    let p = get(db, Access::Staff(viewer), id, ip).await?;
    Ok((p, Opened::new(*viewer, id)))
}

/// Refuses (not found / forbidden) unless `access` may do `action` on `group` of person
/// `id`. Store functions for a field group call this first.
pub async fn check(
    db: &Db,
    access: Access<'_>,
    id: i64,
    group: FieldGroup,
    action: Action,
) -> Result<()> {
    let v = match access {
        Access::System(_) => return Ok(()),
        Access::Opened(o) if o.person_id() != id => return Err(Error::NotFound("person")),
        Access::Opened(o) => o.viewer(),
        Access::Staff(v) => {
            let sql = format!(
                "SELECT COUNT(*) FROM persons p WHERE p.id = $1 AND {}",
                v.row_condition()
            );
            let n: i64 = with_db!(db, pool => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_one(pool).await?);
            if n == 0 {
                return Err(Error::NotFound("person"));
            }
            v
        }
    };
    if !v.may(group, action) {
        return Err(Error::Forbidden(
            "your role may not see or change this part of the record",
        ));
    }
    Ok(())
}

/// A person's daily check-in times (minutes after local midnight), by slot, read through
/// `access` (health-observation group).
pub async fn slots(db: &Db, access: Access<'_>, person_id: i64) -> Result<Vec<i32>> {
    let rows: Vec<(i32,)> = read_records(
        db,
        access,
        person_id,
        FieldGroup::HealthObservation,
        "person.slots.read",
        "SELECT minutes FROM person_slots WHERE person_id = $1 ORDER BY slot",
        None,
    )
    .await?;
    Ok(rows.into_iter().map(|(m,)| m).collect())
}

/// The line lists of the console [健康観察の状況別一覧].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    All,
    /// An open urgent escalation.
    Urgent,
    /// A temperature ≥ 37.5 °C or any symptom in the last 24 hours.
    Symptomatic,
    NonReporting,
    /// A failed channel or an opt-out.
    Unreachable,
    /// Under observation with no open escalation.
    OnTrack,
    EndingToday,
    Ended,
}

impl List {
    pub const ALL: [List; 8] = [
        List::All,
        List::Urgent,
        List::Symptomatic,
        List::NonReporting,
        List::Unreachable,
        List::OnTrack,
        List::EndingToday,
        List::Ended,
    ];

    pub fn parse(s: &str) -> List {
        List::ALL
            .into_iter()
            .find(|l| l.key() == s)
            .unwrap_or(List::All)
    }

    pub fn key(self) -> &'static str {
        match self {
            List::All => "all",
            List::Urgent => "urgent",
            List::Symptomatic => "symptomatic",
            List::NonReporting => "non_reporting",
            List::Unreachable => "unreachable",
            List::OnTrack => "on_track",
            List::EndingToday => "ending_today",
            List::Ended => "ended",
        }
    }

    /// SQL condition on `p`; `$1` = today's local date, `$2` = 24 hours ago.
    fn condition(self) -> &'static str {
        match self {
            List::All => "1 = 1",
            List::Urgent => "EXISTS (SELECT 1 FROM escalations e WHERE e.person_id = p.id AND e.status <> 'resolved' AND e.priority = 'urgent')",
            List::Symptomatic => "p.status = 'observing' AND EXISTS (SELECT 1 FROM observations o WHERE o.person_id = p.id AND o.observed_at >= $2
                                  AND (o.temperature_c >= 37.5 OR o.symptoms LIKE '%true%' OR o.urgent = TRUE))",
            List::NonReporting => "EXISTS (SELECT 1 FROM escalations e WHERE e.person_id = p.id AND e.status <> 'resolved' AND e.reason = 'non_reporting')",
            List::Unreachable => "(p.status = 'opted_out' OR EXISTS (SELECT 1 FROM escalations e WHERE e.person_id = p.id AND e.status <> 'resolved' AND e.reason = 'unreachable'))",
            List::OnTrack => "p.status = 'observing' AND p.observation_end >= $1 AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.person_id = p.id AND e.status <> 'resolved')",
            List::EndingToday => "p.status = 'observing' AND p.observation_end = $1",
            List::Ended => "(p.status = 'ended' OR p.observation_end < $1)",
        }
    }
}

/// The rows of one of a person's records (`sql` takes the person id as `$1`): scope and
/// field group checked for `access` and the read audited as `action` in the same
/// transaction (a page opened with [`open`] was audited once when it was opened).
pub async fn read_records<T>(
    db: &Db,
    access: Access<'_>,
    person_id: i64,
    group: FieldGroup,
    action: &str,
    sql: &str,
    ip: Option<&str>,
) -> Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin,
{
    check(db, access, person_id, group, Action::Read).await?;
    if matches!(access, Access::Opened(_)) {
        return Ok(
            with_db!(db, p => sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql)).bind(person_id).fetch_all(p).await?),
        );
    }
    Ok(with_db!(db, p => {
        let mut tx = p.begin_write().await?;
        let rows = sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql)).bind(person_id).fetch_all(&mut *tx).await?;
        audit(&mut *tx, access.actor(), action, "person", Some(person_id), ip).await?;
        tx.commit().await?;
        rows
    }))
}

/// A registered person who may be the same as a new registration.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, schemars::JsonSchema)]
pub struct DuplicateCandidate {
    pub id: i64,
    pub name: String,
    pub name_kana: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub phone: Option<String>,
    pub monitoring_type: String,
    pub status: String,
    /// What matched: kana name (width and kana variants folded), date of birth, phone, sex,
    /// address.
    #[sqlx(skip)]
    pub matched: Vec<&'static str>,
}

/// People `viewer` may see who may be `p`: the same folded kana name with the same date of
/// birth or phone, or the same phone and date of birth. Each comes with what matched.
/// Audited as a list read when anything is found.
pub async fn possible_duplicates(
    db: &Db,
    viewer: &Viewer,
    p: &NewPerson,
) -> Result<Vec<DuplicateCandidate>> {
    let key = p.details.name_key.clone().unwrap_or_default();
    let phone = p
        .phone
        .as_ref()
        .map(|x| x.as_str().to_string())
        .unwrap_or_default();
    let sql = format!(
        "SELECT p.id, p.name, p.name_kana, p.date_of_birth, p.phone, p.monitoring_type, p.status, p.name_key,
                p.sex, p.address
         FROM persons p
         WHERE {} AND p.merged_into IS NULL AND ((p.name_key = $1 AND $1 <> '' AND (p.date_of_birth = $2 OR p.phone = $3))
                       OR (p.phone = $3 AND $3 <> '' AND p.date_of_birth = $2))
         ORDER BY p.id DESC LIMIT 20",
        viewer.row_condition()
    );
    type Row = (
        i64,
        String,
        Option<String>,
        Option<NaiveDate>,
        Option<String>,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(&key).bind(p.date_of_birth).bind(&phone).fetch_all(pool).await?);
    let out: Vec<DuplicateCandidate> = rows
        .into_iter()
        .map(
            |(id, name, name_kana, dob, ph, monitoring_type, status, nk, sex, address)| {
                let mut matched = Vec::new();
                if nk.as_deref() == Some(key.as_str()) {
                    matched.push("name_kana");
                }
                if dob.is_some() && dob == p.date_of_birth {
                    matched.push("date_of_birth");
                }
                if !phone.is_empty() && ph.as_deref() == Some(phone.as_str()) {
                    matched.push("phone");
                }
                if sex.is_some() && sex.as_deref() == p.details.sex {
                    matched.push("sex");
                }
                if address.is_some() && address == p.details.address {
                    matched.push("address");
                }
                DuplicateCandidate {
                    id,
                    name,
                    name_kana,
                    date_of_birth: dob,
                    phone: ph,
                    monitoring_type,
                    status,
                    matched,
                }
            },
        )
        .collect();
    if !out.is_empty() {
        with_db!(db, pool => audit(pool, Actor::Staff(viewer.staff_id), "person.duplicates", "health_centre", Some(viewer.health_centre_id), None).await)?;
    }
    Ok(out)
}

/// The close contacts registered from case `id`, as `viewer` may see them.
pub async fn contacts_of(db: &Db, viewer: &Viewer, id: i64) -> Result<Vec<Person>> {
    check(
        db,
        Access::Staff(viewer),
        id,
        FieldGroup::Contacts,
        Action::Read,
    )
    .await?;
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM persons p WHERE p.source_person_id = $1 AND {} ORDER BY p.id",
        viewer.row_condition()
    );
    let rows = with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(id).fetch_all(pool).await?);
    with_db!(db, pool => audit(pool, Actor::Staff(viewer.staff_id), "person.contacts.read", "person", Some(id), None).await)?;
    Ok(visible(rows, viewer))
}

fn visible(rows: Vec<Person>, viewer: &Viewer) -> Vec<Person> {
    rows.into_iter().map(|p| p.visible_to(viewer)).collect()
}

/// What was typed in the person list's search box, and its filters.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// A name or kana prefix (width and kana variants folded), a phone number, or an id.
    pub q: String,
    /// patient or contact (empty: both).
    pub monitoring_type: String,
}

impl Search {
    /// The extra condition and its values (after the list's `$1`, `$2`): a name-key range,
    /// a phone, an id — only those the text can be.
    fn condition(&self) -> (String, Vec<SearchValue>) {
        let mut parts = Vec::new();
        let mut values = Vec::new();
        let mut n = 3;
        let q = self.q.trim();
        if !q.is_empty() {
            let mut any = Vec::new();
            let key = crate::domain::kana_key(q);
            if !key.is_empty() {
                any.push(format!(
                    "(p.name_key >= ${a} AND p.name_key < ${b}) OR (p.name_norm >= ${a} AND p.name_norm < ${b})",
                    a = n,
                    b = n + 1
                ));
                values.push(SearchValue::Text(key.clone()));
                values.push(SearchValue::Text(format!("{key}\u{10FFFF}")));
                n += 2;
            }
            if let Ok(ph) = Phone::parse("q", q) {
                any.push(format!("p.phone = ${n}"));
                values.push(SearchValue::Text(ph.as_str().to_string()));
                n += 1;
            }
            if q.len() <= 12
                && let Ok(id) = q.parse::<i64>()
            {
                any.push(format!("p.id = ${n}"));
                values.push(SearchValue::Int(id));
                n += 1;
            }
            if any.is_empty() {
                any.push("1 = 0".into());
            }
            parts.push(format!("({})", any.join(" OR ")));
        }
        if matches!(self.monitoring_type.as_str(), "patient" | "contact") {
            parts.push(format!("p.monitoring_type = ${n}"));
            values.push(SearchValue::Text(self.monitoring_type.clone()));
        }
        if parts.is_empty() {
            ("1 = 1".into(), values)
        } else {
            (parts.join(" AND "), values)
        }
    }
}

#[derive(Debug, Clone)]
enum SearchValue {
    Text(String),
    Int(i64),
}

/// Binds the search values after the list's two.
macro_rules! bind_search {
    ($q:expr, $values:expr) => {{
        let mut q = $q;
        for v in $values {
            q = match v {
                SearchValue::Text(t) => q.bind(t.clone()),
                SearchValue::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

/// Search results are counted up to this many; a total above it means "more than this".
pub const COUNT_CAP: i64 = 1000;

/// People on one line list matching `search` that `viewer` may see, newest first, and how
/// many there are (at most [`COUNT_CAP`] + 1). Audited as one list read.
pub async fn search(
    db: &Db,
    viewer: &Viewer,
    which: List,
    today: NaiveDate,
    search: &Search,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Person>, i64)> {
    let (cond, values) = search.condition();
    let n = values.len() + 3;
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM persons p WHERE {} AND {} AND {cond} ORDER BY p.id DESC LIMIT ${n} OFFSET ${}",
        viewer.row_condition(),
        which.condition(),
        n + 1
    );
    // Counting stops past the cap: "more than 1,000" is all a list needs, and counting every
    // match of a broad search (a common surname in a million) costs more than the page.
    let count_sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM persons p WHERE {} AND {} AND {cond} LIMIT {}) c",
        viewer.row_condition(),
        which.condition(),
        COUNT_CAP + 1
    );
    let since = now() - chrono::Duration::hours(24);
    let rows = with_db!(db, pool => {
        let q = sqlx::query_as::<_, Person>(sqlx::AssertSqlSafe(sql.as_str())).bind(today).bind(since);
        bind_search!(q, &values).bind(limit).bind(offset).persistent(false).fetch_all(pool).await?
    });
    let total: i64 = with_db!(db, pool => {
        let q = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.as_str())).bind(today).bind(since);
        bind_search!(q, &values).persistent(false).fetch_one(pool).await?
    });
    with_db!(db, pool => audit(pool, Actor::Staff(viewer.staff_id), "person.search", "health_centre", Some(viewer.health_centre_id), None).await)?;
    Ok((visible(rows, viewer), total))
}

/// People on one line list that `viewer` may see (their row scope), newest first.
/// Audited as one list read.
pub async fn list_by(
    db: &Db,
    viewer: &Viewer,
    which: List,
    today: NaiveDate,
    limit: i64,
    offset: i64,
) -> Result<Vec<Person>> {
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM persons p WHERE {} AND {} ORDER BY p.id DESC LIMIT $3 OFFSET $4",
        viewer.row_condition(),
        which.condition()
    );
    let since = now() - chrono::Duration::hours(24);
    let rows = with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(today).bind(since).bind(limit).bind(offset).persistent(false).fetch_all(pool).await?);
    with_db!(db, pool => audit(pool, Actor::Staff(viewer.staff_id), "person.list", "health_centre", Some(viewer.health_centre_id), None).await)?;
    Ok(visible(rows, viewer))
}

/// The people under observation `viewer` may see, most worrying first: an open urgent
/// escalation, then high (not reporting, unreachable, fever), then the rest — over the whole
/// list, not one page. The landing page of a follow-up contractor.
pub async fn most_worrying(
    db: &Db,
    viewer: &Viewer,
    today: NaiveDate,
    limit: i64,
    offset: i64,
) -> Result<Vec<Person>> {
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM persons p
         WHERE {} AND p.status = 'observing' AND p.observation_end >= $1
         ORDER BY COALESCE((SELECT MIN(CASE e.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 ELSE 2 END)
                            FROM escalations e WHERE e.person_id = p.id AND e.status <> 'resolved'), 3), p.id
         LIMIT $2 OFFSET $3",
        viewer.row_condition()
    );
    let rows = with_db!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(today).bind(limit).bind(offset).persistent(false).fetch_all(pool).await?);
    with_db!(db, pool => audit(pool, Actor::Staff(viewer.staff_id), "person.list", "health_centre", Some(viewer.health_centre_id), None).await)?;
    Ok(visible(rows, viewer))
}

/// How many people on a line list `viewer` may see.
pub async fn count_by(db: &Db, viewer: &Viewer, which: List, today: NaiveDate) -> Result<i64> {
    let sql = format!(
        "SELECT COUNT(*) FROM persons p WHERE {} AND {}",
        viewer.row_condition(),
        which.condition()
    );
    let since = now() - chrono::Duration::hours(24);
    Ok(
        with_db!(db, pool => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(today).bind(since).persistent(false).fetch_one(pool).await?),
    )
}

/// Today's check-ins that are due so far, and how many of them were answered.
pub async fn answer_rate(db: &Db, health_centre_id: i64, today: NaiveDate) -> Result<(i64, i64)> {
    Ok(with_db!(db, pool => sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN c.status = 'answered' THEN 1 ELSE 0 END), 0)
         FROM checkins c JOIN persons p ON p.id = c.person_id
         WHERE p.health_centre_id = $1 AND c.local_date = $2 AND c.due_at <= $3")
        .bind(health_centre_id).bind(today).bind(now()).fetch_one(pool).await?))
}

impl Person {
    /// This record as `viewer` may see it, field by field — the one place every person
    /// object passes before it leaves the store (API, search items, lists, pages, caches):
    /// residence (and so "admitted") only for roles that may read residence; the contact
    /// and case links only with those groups; for outside bodies that only phone the person
    /// (contractors, lodging facilities) the narrow reading of basic information — who they
    /// are and how to reach them, not address, workplace, occupation, nationality or the
    /// case's dates — unless the person's centre chose to show them all basic information
    /// (`health_centres.outside_basic = 'full'`).
    pub fn visible_to(mut self, viewer: &Viewer) -> Person {
        use crate::access::Role;
        if !viewer.may(FieldGroup::Residence, Action::Read) {
            self.residence_kind = String::new();
            if self.status == "admitted" {
                self.status = "paused".into();
            }
        }
        if !viewer.may(FieldGroup::Contacts, Action::Read) {
            self.source_person_id = None;
        }
        if !viewer.may(FieldGroup::InfectionLink, Action::Read) {
            self.previous_case_id = None;
        }
        if matches!(viewer.role, Role::Contractor | Role::LodgingFacility)
            && self.outside_basic != "full"
        {
            self.address = None;
            self.occupation = None;
            self.workplace = None;
            self.nationality = None;
            self.reception_date = None;
            self.onset_date = None;
            self.specimen_date = None;
            self.last_exposure_date = None;
            self.period_rule = None;
            self.period_override_reason = None;
            self.merged_into = None;
        }
        self
    }

    /// The age band of the national open-data format [患者_年代] on `today`: 10歳未満,
    /// 10代 … 80代, 90歳以上 (None without a date of birth).
    pub fn age_band(&self, today: NaiveDate) -> Option<&'static str> {
        use chrono::Datelike;
        let dob = self.date_of_birth?;
        let mut age = today.year() - dob.year();
        if (today.month(), today.day()) < (dob.month(), dob.day()) {
            age -= 1;
        }
        Some(match age {
            a if a < 10 => "10歳未満",
            a if a < 20 => "10代",
            a if a < 30 => "20代",
            a if a < 40 => "30代",
            a if a < 50 => "40代",
            a if a < 60 => "50代",
            a if a < 70 => "60代",
            a if a < 80 => "70代",
            a if a < 90 => "80代",
            _ => "90歳以上",
        })
    }
}

/// A change to a person's basic information: each field given replaces the stored value
/// (an empty string clears it), each field left out stays. Used by the console's edit form
/// (which sends every field) and by `PATCH /api/v1/persons/{id}`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BasicInput {
    pub name: Option<String>,
    pub name_kana: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub date_of_birth: Option<String>,
    pub sex: Option<String>,
    pub nationality: Option<String>,
    pub prefecture_code: Option<String>,
    pub municipality: Option<String>,
    pub address: Option<String>,
    pub occupation: Option<String>,
    pub workplace: Option<String>,
    pub emergency_contact: Option<String>,
    /// A new end of the observation period; needs `period_override_reason`.
    pub observation_end: Option<String>,
    pub period_override_reason: Option<String>,
}

/// Applies a [`BasicInput`] in one transaction after checking every given field (each
/// problem named, nothing written when any is wrong). The person must stay reachable on
/// their channel. Needs write access to basic information. Audited.
pub async fn update_basic(
    db: &Db,
    viewer: &Viewer,
    id: i64,
    b: &BasicInput,
    ip: Option<&str>,
) -> Result<()> {
    check(
        db,
        Access::Staff(viewer),
        id,
        FieldGroup::Basic,
        Action::Write,
    )
    .await?;
    let cur = load(db, id).await?;
    let mut c = Collect::default();
    let pick = |v: &Option<String>, cur: &Option<String>| match v {
        Some(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        None => cur.clone(),
    };
    let name = match &b.name {
        Some(n) if n.trim().is_empty() => {
            c.push("name", "err-enter-the-person-s-name");
            cur.name.clone()
        }
        Some(n) if n.chars().count() > 100 => {
            c.push("name", "err-use-at-most-100-characters");
            cur.name.clone()
        }
        Some(n) => n.trim().to_string(),
        None => cur.name.clone(),
    };
    let phone = match pick(&b.phone, &cur.phone) {
        Some(p) if b.phone.is_some() => c
            .take(Phone::parse("phone", &p))
            .map(|p| p.as_str().to_string()),
        other => other,
    };
    let email = match pick(&b.email, &cur.email) {
        Some(e) if b.email.is_some() => c
            .take(Email::parse("email", &e))
            .map(|e| e.as_str().to_string()),
        other => other,
    };
    for ch in std::iter::once(cur.channel.as_str()).chain(cur.fallback_channel.as_deref()) {
        match ch {
            "sms" | "voice" if phone.is_none() => c.push(
                "phone",
                "err-the-person-is-reached-by-phone-keep-a-number-or",
            ),
            "email" if email.is_none() => c.push(
                "email",
                "err-the-person-is-reached-by-e-mail-keep-an-address",
            ),
            _ => {}
        }
    }
    let date_of_birth = match &b.date_of_birth {
        Some(d) if d.trim().is_empty() => None,
        Some(d) => c.take(parse_date("date_of_birth", d)),
        None => cur.date_of_birth,
    };
    let sex = match &b.sex {
        Some(s) if s.trim().is_empty() => None,
        Some(s) => match ["male", "female", "other", "unknown"]
            .into_iter()
            .find(|x| *x == s.trim())
        {
            Some(x) => Some(x.to_string()),
            None => {
                c.push("sex", "err-choose-male-female-other-or-unknown");
                None
            }
        },
        None => cur.sex.clone(),
    };
    let prefecture_code = pick(&b.prefecture_code, &cur.prefecture_code);
    if b.prefecture_code.is_some()
        && let Some(p) = &prefecture_code
        && !(p.len() == 2 && p.parse::<u8>().is_ok_and(|n| (1..=47).contains(&n)))
    {
        c.push(
            "prefecture_code",
            "err-use-the-two-digit-jis-code-01-hokkaido-to-47",
        );
    }
    let texts = [
        ("name_kana", &b.name_kana, &cur.name_kana, 100),
        ("nationality", &b.nationality, &cur.nationality, 50),
        ("municipality", &b.municipality, &cur.municipality, 50),
        ("address", &b.address, &cur.address, 200),
        ("occupation", &b.occupation, &cur.occupation, 100),
        ("workplace", &b.workplace, &cur.workplace, 100),
        (
            "emergency_contact",
            &b.emergency_contact,
            &cur.emergency_contact,
            200,
        ),
    ];
    let mut values: Vec<Option<String>> = Vec::new();
    for (field, given, current, max) in texts {
        let v = pick(given, current);
        if given.is_some() && v.as_ref().is_some_and(|v| v.chars().count() > max) {
            c.push_with(
                field,
                "err-use-at-most-characters",
                vec![("max", max.to_string())],
            );
        }
        values.push(v);
    }
    let (end, reason) = match &b.observation_end {
        Some(e) if !e.trim().is_empty() => {
            let end = c.take(parse_date("observation_end", e));
            if end.is_some_and(|d| d < cur.observation_start) {
                c.push(
                    "observation_end",
                    "err-the-end-date-must-be-on-or-after-the-start-date",
                );
            }
            let reason = b
                .period_override_reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty());
            if end.is_some_and(|d| d != cur.observation_end) && reason.is_none() {
                c.push(
                    "period_override_reason",
                    "err-say-why-the-observation-period-changes-e-g",
                );
            }
            (
                end.unwrap_or(cur.observation_end),
                reason
                    .map(str::to_string)
                    .or(cur.period_override_reason.clone()),
            )
        }
        _ => (cur.observation_end, cur.period_override_reason.clone()),
    };
    c.finish()?;
    let period_rule = if end == cur.observation_end {
        cur.period_rule.clone()
    } else {
        None
    };
    let key = crate::domain::kana_key(values[0].as_deref().unwrap_or(&name));
    let t = now();
    with_db!(db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query(
            "UPDATE persons SET name = $1, phone = $2, email = $3, date_of_birth = $4, sex = $5, prefecture_code = $6,
               name_kana = $7, nationality = $8, municipality = $9, address = $10, occupation = $11, workplace = $12,
               emergency_contact = $13, observation_end = $14, period_override_reason = $15, period_rule = $16,
               name_key = $17, name_norm = $18, updated_at = $19 WHERE id = $20")
            .bind(&name).bind(&phone).bind(&email).bind(date_of_birth).bind(&sex).bind(&prefecture_code)
            .bind(&values[0]).bind(&values[1]).bind(&values[2]).bind(&values[3]).bind(&values[4]).bind(&values[5])
            .bind(&values[6]).bind(end).bind(&reason).bind(&period_rule)
            .bind(&key).bind(crate::domain::kana_key(&name)).bind(t).bind(id)
            .execute(&mut *tx).await?;
        audit(&mut *tx, Actor::Staff(viewer.staff_id), "person.update", "person", Some(id), ip).await?;
        tx.commit().await?;
        Ok(())
    })
}
