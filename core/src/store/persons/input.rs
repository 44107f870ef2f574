//! What a registration or an edit of a person sends, and its validation (every bad field
//! at once).
use super::*;

/// Registration input as typed by staff or sent to the API: every field a string, so that
/// every problem can be reported at once with its field name.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["name"]))]
pub struct PersonInput {
    #[schemars(length(max = 100))]
    #[schemars(transform = crate::api_schema::not_blank)]
    pub name: String,
    #[schemars(transform = crate::api_schema::phone_or_blank)]
    pub phone: String,
    #[schemars(transform = crate::api_schema::email_or_blank)]
    pub email: String,
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, &["sms", "email", "voice"]))]
    pub channel: String,
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, &["ja", "en"]))]
    pub language: String,
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, &["patient", "contact"]))]
    pub monitoring_type: String,
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub observation_start: String,
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub observation_end: String,
    /// Local times of the daily check-ins, HH:MM, comma-separated for more than one a day
    /// ("09:00,17:00"; default 09:00).
    #[schemars(transform = crate::api_schema::times_or_blank)]
    pub checkin_time: String,
    /// YYYY-MM-DD; lets the person identify themself on the inbound phone line.
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub date_of_birth: String,
    /// Channel to try when the main one fails or goes unanswered (sms, email, voice).
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, &["sms", "email", "voice"]))]
    pub fallback_channel: String,
    /// Automated calls read slower, with pauses, and wait longer for keys (elderly people).
    pub slow_speech: bool,
    /// Name in kana [フリガナ]; used to find duplicates.
    #[schemars(length(max = 100))]
    pub name_kana: String,
    /// male, female, other, unknown.
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, crate::api_schema::SEXES))]
    pub sex: String,
    #[schemars(length(max = 50))]
    pub nationality: String,
    /// JIS prefecture code, "01"–"47".
    #[schemars(transform = crate::api_schema::prefecture_or_blank)]
    pub prefecture_code: String,
    #[schemars(length(max = 50))]
    pub municipality: String,
    /// The rest of the address.
    #[schemars(length(max = 200))]
    pub address: String,
    #[schemars(length(max = 100))]
    pub occupation: String,
    #[schemars(length(max = 100))]
    pub workplace: String,
    #[schemars(length(max = 200))]
    pub emergency_contact: String,
    /// YYYY-MM-DD [受付日]; default today.
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub reception_date: String,
    /// Day 0 of the period, one of: onset (symptomatic), specimen (asymptomatic), last
    /// exposure (contact). With one of them, `observation_start` and `observation_end` may be
    /// left empty and are computed from `flows/periods.toml`.
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub onset_date: String,
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub specimen_date: String,
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub last_exposure_date: String,
    /// Why `observation_end` differs from the computed end (required then).
    #[schemars(length(max = 500))]
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

pub(crate) fn parse_date(field: &'static str, s: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        Error::invalid(
            field,
            "err-write-the-date-as-yyyy-mm-dd-for-example-2026-11",
        )
    })
}

/// Daily check-in times, "HH:MM" comma-separated, as minutes after midnight (sorted, at
/// most six).
pub(crate) fn parse_slots(c: &mut Collect, times: &str) -> Vec<i32> {
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
    /// sms, email or voice (empty: unchanged).
    #[schemars(extend("enum" = ["", "sms", "email", "voice"]))]
    pub channel: String,
    /// "none" removes the fallback channel.
    #[schemars(extend("enum" = ["", "none", "sms", "email", "voice"]))]
    pub fallback_channel: String,
    /// ja or en (empty: unchanged).
    #[schemars(extend("enum" = ["", "ja", "en"]))]
    pub language: String,
    /// "HH:MM", comma-separated for several check-ins a day.
    #[schemars(transform = crate::api_schema::times_or_blank)]
    pub checkin_time: String,
    /// "yes" / "no": calls read slower with pauses and wait longer for keys.
    #[schemars(extend("enum" = ["", "yes", "no", "true", "false", "1", "0"]))]
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
pub(crate) fn text(c: &mut Collect, field: &'static str, v: &str, max: usize) -> Option<String> {
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

pub(crate) fn opt_date(c: &mut Collect, field: &'static str, v: &str) -> Option<NaiveDate> {
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
        } else if self.observation_start.trim().is_empty() {
            c.push(
                "observation_start",
                "err-enter-the-start-date-or-an-onset-specimen-or",
            );
            None
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

/// A change to a person's basic information: each field given replaces the stored value
/// (an empty string clears it), each field left out stays. Used by the console's edit form
/// (which sends every field) and by `PATCH /api/v1/persons/{id}`.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BasicInput {
    #[schemars(length(max = 100))]
    #[schemars(transform = crate::api_schema::not_blank)]
    pub name: Option<String>,
    #[schemars(length(max = 100))]
    pub name_kana: Option<String>,
    #[schemars(transform = crate::api_schema::phone_or_blank)]
    pub phone: Option<String>,
    #[schemars(transform = crate::api_schema::email_or_blank)]
    pub email: Option<String>,
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub date_of_birth: Option<String>,
    #[schemars(transform = |s: &mut schemars::Schema| crate::api_schema::choice_or_blank(s, crate::api_schema::SEXES))]
    pub sex: Option<String>,
    #[schemars(length(max = 50))]
    pub nationality: Option<String>,
    #[schemars(transform = crate::api_schema::prefecture_or_blank)]
    pub prefecture_code: Option<String>,
    #[schemars(length(max = 50))]
    pub municipality: Option<String>,
    #[schemars(length(max = 200))]
    pub address: Option<String>,
    #[schemars(length(max = 100))]
    pub occupation: Option<String>,
    #[schemars(length(max = 100))]
    pub workplace: Option<String>,
    #[schemars(length(max = 200))]
    pub emergency_contact: Option<String>,
    /// A new end of the observation period; needs `period_override_reason`.
    #[schemars(transform = crate::api_schema::date_or_blank)]
    pub observation_end: Option<String>,
    #[schemars(length(max = 500))]
    pub period_override_reason: Option<String>,
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    /// Every choice the API's schema offers for a schedule change is one the store accepts
    /// (a request valid by the schema is not refused for it).
    #[test]
    fn every_schedule_choice_in_the_schema_is_accepted() {
        let schema = serde_json::to_value(schemars::schema_for!(ScheduleInput)).unwrap();
        for field in ["channel", "fallback_channel", "language", "slow_speech"] {
            let choices = schema["properties"][field]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{field} states its choices: {schema}"));
            assert!(choices.len() > 1);
            for v in choices {
                let mut input = ScheduleInput::default();
                let v = v.as_str().unwrap().to_string();
                match field {
                    "channel" => input.channel = v.clone(),
                    "fallback_channel" => input.fallback_channel = v.clone(),
                    "language" => input.language = v.clone(),
                    _ => input.slow_speech = v.clone(),
                }
                assert!(input.parse().is_ok(), "{field} = {v:?} is refused");
            }
        }
        // And a value outside them is refused, naming the field.
        let input = ScheduleInput {
            language: "fr".into(),
            ..Default::default()
        };
        assert!(input.parse().is_err());
    }
}
