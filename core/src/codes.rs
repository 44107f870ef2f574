//! **Codes are enums that know their words.** Every code the database stores as text —
//! check-in and person status, escalation reason, priority, review step and action, residence
//! kind, how an answer came and who gave it, severity, test result — is an enum here: it
//! parses the stored string, gives it back (`as_str`, the same strings as ever), and has its
//! words in each language from the message catalogue (`codes.ftl`, key `<kind>-<code>`).
//! Screens call `label`; nothing matches on string literals of its own.
use crate::domain::Lang;

macro_rules! codes {
    ($(#[$m:meta])* $name:ident, $prefix:literal, { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $v),+ }

        impl $name {
            /// Every code, in the order screens list them.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The stored form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
            /// The code of a stored string, if it is one.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }
            /// Its key in the message catalogue.
            pub fn key(self) -> &'static str {
                match self { $($name::$v => concat!($prefix, "-", $s)),+ }
            }
            /// Its words in `lang`.
            pub fn label(self, lang: Lang) -> &'static str {
                crate::i18n::tr(lang, self.key())
            }
            /// The words for stored string `code` (an unknown code reads "?").
            pub fn label_of(code: &str, lang: Lang) -> &'static str {
                Self::parse(code).map_or("?", |c| c.label(lang))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

codes!(
    /// Where a day's check-in stands (`checkins.status`).
    CheckinStatus, "checkin-status", {
        Planned = "planned",
        Sending = "sending",
        Sent = "sent",
        Answered = "answered",
        Missed = "missed",
        Failed = "failed",
        Cancelled = "cancelled",
        OptedOut = "opted_out",
    }
);

/// The open statuses as an SQL list, for `status IN …` (a literal, to build statements with
/// `concat!`).
#[macro_export]
macro_rules! open_checkin_statuses {
    () => {
        "('planned', 'sending', 'sent')"
    };
}

impl CheckinStatus {
    /// Still waiting for an answer: planned, being sent, or sent.
    pub const OPEN: &'static [CheckinStatus] = &[
        CheckinStatus::Planned,
        CheckinStatus::Sending,
        CheckinStatus::Sent,
    ];
    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }
    /// Whether stored status `s` is open.
    pub fn is_open_str(s: &str) -> bool {
        Self::parse(s).is_some_and(Self::is_open)
    }
}

codes!(
    /// Where a person stands (`persons.status`).
    PersonStatus, "person-status", {
        Observing = "observing",
        Ended = "ended",
        OptedOut = "opted_out",
        Admitted = "admitted",
        /// Shown instead of `admitted` to a role that may not read residence.
        Paused = "paused",
    }
);

codes!(
    /// Why a person needs a human (`escalations.reason`).
    Reason, "reason", {
        UrgentSign = "urgent_sign",
        Spo2Low = "spo2_low",
        FeverStreak = "fever_streak",
        NonReporting = "non_reporting",
        Unreachable = "unreachable",
        Callback = "callback",
        Spo2Baseline = "spo2_baseline",
        Spo2Falling = "spo2_falling",
        TempRising = "temp_rising",
        FeverReturned = "fever_returned",
        WorseRepeated = "worse_repeated",
        LateSymptoms = "late_symptoms",
        Score = "score",
    }
);

codes!(
    /// How soon (`escalations.priority`); only rises.
    Priority, "priority", {
        Urgent = "urgent",
        High = "high",
        Normal = "normal",
    }
);

codes!(
    /// A step on an escalation's timeline (`escalation_events.kind`).
    EventKind, "event", {
        Triggered = "triggered",
        Acknowledged = "acknowledged",
        Note = "note",
        Action = "action",
        Resolved = "resolved",
        Undone = "undone",
        Reopened = "reopened",
    }
);

codes!(
    /// What staff did about an escalation (`escalation_events.action`).
    ReviewAction, "review-action", {
        Phoned = "phoned",
        ArrangedAdmission = "arranged_admission",
        Advised = "advised",
        Other = "other",
    }
);

codes!(
    /// Where a person stays (`person_residences.kind`).
    ResidenceKind, "residence", {
        Home = "home",
        Hospital = "hospital",
        Lodging = "lodging",
        Welfare = "welfare",
        Other = "other",
    }
);

codes!(
    /// How an observation came (`observations.source`).
    Source, "source", {
        Sms = "sms",
        Email = "email",
        Web = "web",
        Voice = "voice",
        InboundCall = "inbound_call",
        Staff = "staff",
        Demo = "demo",
    }
);

codes!(
    /// Who gave the answer (`observations.reporter`).
    Reporter, "reporter", {
        Myself = "self",
        Family = "family",
        Staff = "staff",
        Contractor = "contractor",
    }
);

codes!(
    /// How a person is reached (`persons.channel`, `persons.fallback_channel`).
    ChannelCode, "channel", {
        Sms = "sms",
        Email = "email",
        Voice = "voice",
    }
);

codes!(
    /// Severity [重症度] (`person_severities.level`).
    Severity, "severity", {
        Mild = "mild",
        Moderate1 = "moderate1",
        Moderate2 = "moderate2",
        Severe = "severe",
    }
);

codes!(
    /// A test's result (`person_tests.result`).
    TestResult, "test-result", {
        Positive = "positive",
        Negative = "negative",
        Pending = "pending",
        Inconclusive = "inconclusive",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_has_words_in_both_languages() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(
            all: &[T],
            as_str: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
            key: fn(T) -> &'static str,
        ) {
            for c in all {
                assert_eq!(parse(as_str(*c)), Some(*c));
                assert!(crate::i18n::has(key(*c)), "no words for {}", key(*c));
                assert_ne!(crate::i18n::tr(Lang::Ja, key(*c)), key(*c));
            }
        }
        check(
            CheckinStatus::ALL,
            CheckinStatus::as_str,
            CheckinStatus::parse,
            CheckinStatus::key,
        );
        check(
            PersonStatus::ALL,
            PersonStatus::as_str,
            PersonStatus::parse,
            PersonStatus::key,
        );
        check(Reason::ALL, Reason::as_str, Reason::parse, Reason::key);
        check(
            Priority::ALL,
            Priority::as_str,
            Priority::parse,
            Priority::key,
        );
        check(
            EventKind::ALL,
            EventKind::as_str,
            EventKind::parse,
            EventKind::key,
        );
        check(
            ReviewAction::ALL,
            ReviewAction::as_str,
            ReviewAction::parse,
            ReviewAction::key,
        );
        check(
            ResidenceKind::ALL,
            ResidenceKind::as_str,
            ResidenceKind::parse,
            ResidenceKind::key,
        );
        check(Source::ALL, Source::as_str, Source::parse, Source::key);
        check(
            Reporter::ALL,
            Reporter::as_str,
            Reporter::parse,
            Reporter::key,
        );
        check(
            ChannelCode::ALL,
            ChannelCode::as_str,
            ChannelCode::parse,
            ChannelCode::key,
        );
        check(
            Severity::ALL,
            Severity::as_str,
            Severity::parse,
            Severity::key,
        );
        check(
            TestResult::ALL,
            TestResult::as_str,
            TestResult::parse,
            TestResult::key,
        );
    }

    #[test]
    fn open_check_ins_are_the_ones_the_sql_list_names() {
        let sql = crate::open_checkin_statuses!();
        for s in CheckinStatus::ALL {
            assert_eq!(
                s.is_open(),
                sql.contains(&format!("'{}'", s.as_str())),
                "{s:?}"
            );
        }
        assert!(!CheckinStatus::is_open_str("answered"));
        assert_eq!(Reason::label_of("nonsense", Lang::En), "?");
    }
}
