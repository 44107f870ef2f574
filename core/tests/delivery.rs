//! The contact state machine under real provider timing, on SQLite and PostgreSQL: reports
//! that arrive before the batch has recorded the provider's id, the same report delivered
//! twice at the same moment, reports for unknown attempts, final outcomes that must not be
//! overwritten, and the fallback channel after a failure.
use chrono::{Duration, Utc};
use mimamori_core::{
    Db,
    db::now,
    delivery::{self, Handled, Policy, Report},
    store::{
        Actor, checkins,
        checkins::{Failed, NewAttempt},
        escalations, persons, staff,
    },
    testing::TestDb,
    with_db,
};

const WINDOW: Duration = Duration::hours(12);
const POLICY: Policy = Policy {
    max_attempts: 2,
    backoff: Duration::zero(),
};

/// A person due now on `channel` (with `fallback`); returns (person, claimed check-in).
async fn due_person(db: &Db, channel: &str, fallback: Option<&str>) -> (i64, checkins::DueCheckin) {
    let c = staff::create_health_centre(db, "テスト保健所", "03-1111-2222", "Asia/Tokyo")
        .await
        .unwrap();
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive();
    let input = persons::PersonInput {
        name: "山田 花子".into(),
        phone: "090-1234-5678".into(),
        channel: channel.into(),
        fallback_channel: fallback.unwrap_or_default().into(),
        observation_start: today.to_string(),
        observation_end: today.to_string(),
        checkin_time: "00:00".into(),
        ..Default::default()
    }
    .parse()
    .unwrap();
    let p = persons::create(db, Actor::System, c, &input, WINDOW, None)
        .await
        .unwrap();
    let mut due = claim(db).await;
    assert_eq!(due.len(), 1);
    (p, due.remove(0))
}

async fn claim(db: &Db) -> Vec<checkins::DueCheckin> {
    checkins::claim_due(db, now(), Duration::minutes(5), 10)
        .await
        .unwrap()
}

/// Records the attempt before the send, as the dispatcher does; returns its key.
async fn begin(db: &Db, c: &checkins::DueCheckin, channel: &str) -> String {
    let key = checkins::attempt_key(c.id, c.reminders, channel, c.attempts);
    checkins::begin_attempts(
        db,
        &[NewAttempt {
            checkin_id: c.id,
            key: &key,
            channel,
            provider: "twilio",
            kind: "initial",
            claim: Some(&c.claim),
        }],
    )
    .await
    .unwrap();
    key
}

/// What the batch records once the provider accepted the attempt.
fn sent(c: &checkins::DueCheckin, key: &str, provider_id: &str) -> checkins::Sent {
    checkins::Sent {
        checkin_id: c.id,
        claim: c.claim.clone(),
        key: key.into(),
        provider_id: provider_id.into(),
    }
}

async fn status(db: &Db, checkin: i64) -> (String, i32, bool) {
    with_db!(db, p => sqlx::query_as("SELECT status, attempts, on_fallback FROM checkins WHERE id = $1")
        .bind(checkin).fetch_one(p).await.unwrap())
}

async fn attempt(db: &Db, key: &str) -> (String, Option<String>) {
    with_db!(db, p => sqlx::query_as("SELECT status, provider_id FROM contact_attempts WHERE idempotency_key = $1")
        .bind(key).fetch_one(p).await.unwrap())
}

/// The person's open escalations, as the system sees them.
async fn open_escalations(db: &Db, person: i64) -> Vec<escalations::Escalation> {
    escalations::open_for_person(
        db,
        mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
        person,
    )
    .await
    .unwrap()
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    with_db!(db, p => sqlx::query_scalar(sql).fetch_one(p).await.unwrap())
}

fn undelivered<'a>(sid: &'a str) -> Report<'a> {
    Report::Message {
        sid,
        status: "undelivered",
        error_code: Some("30003"),
    }
}

#[tokio::test]
async fn a_report_before_the_batch_recorded_the_id_is_applied_and_kept() {
    let t = TestDb::new().await;
    let (person, c) = due_person(&t.db, "sms", None).await;
    let key = begin(&t.db, &c, "sms").await;
    // The handset's network answers before the batch has recorded the provider's id.
    let h = delivery::report(&t.db, POLICY, Some(&key), undelivered("SM1"))
        .await
        .unwrap();
    assert_eq!(h, Handled::Applied(Some(Failed::Ended)));
    // Then the batch records its result: it neither re-opens the check-in nor hides the
    // reported status.
    checkins::mark_sent_many(&t.db, &[sent(&c, &key, "SM1")])
        .await
        .unwrap();
    assert_eq!(status(&t.db, c.id).await.0, "failed");
    assert_eq!(
        attempt(&t.db, &key).await,
        ("undelivered".into(), Some("SM1".into()))
    );
    let open = open_escalations(&t.db, person).await;
    assert_eq!(
        open.iter().map(|e| e.reason.as_str()).collect::<Vec<_>>(),
        ["unreachable"]
    );
    // A delivered report that arrives before the batch: the attempt keeps `delivered`.
    t.drop_db().await;
}

#[tokio::test]
async fn the_same_report_twice_at_the_same_moment_takes_effect_once() {
    let t = TestDb::new().await;
    let (person, c) = due_person(&t.db, "voice", None).await;
    let key = begin(&t.db, &c, "voice").await;
    checkins::mark_sent_many(&t.db, &[sent(&c, &key, "CA1")])
        .await
        .unwrap();
    let busy = Report::Call {
        sid: "CA1",
        status: "busy",
    };
    let runs = (0..4).map(|_| delivery::report(&t.db, POLICY, Some(&key), busy));
    let mut results: Vec<Handled> = futures::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    results.sort_by_key(|h| format!("{h:?}"));
    assert_eq!(
        results,
        [
            Handled::Applied(Some(Failed::Retry)),
            Handled::Duplicate,
            Handled::Duplicate,
            Handled::Duplicate
        ]
    );
    assert_eq!(
        status(&t.db, c.id).await,
        ("planned".into(), 1, false),
        "one attempt counted"
    );
    assert!(open_escalations(&t.db, person).await.is_empty());
    t.drop_db().await;
}

#[tokio::test]
async fn a_report_for_an_unknown_attempt_is_not_remembered() {
    let t = TestDb::new().await;
    let h = delivery::report(
        &t.db,
        POLICY,
        Some("checkin-9-r0-sms-try-0"),
        undelivered("SMx"),
    )
    .await
    .unwrap();
    assert_eq!(h, Handled::Unknown);
    let h = delivery::report(&t.db, POLICY, None, undelivered("SMx"))
        .await
        .unwrap();
    assert_eq!(h, Handled::Unknown, "a retried delivery is looked at again");
    assert_eq!(count(&t.db, "SELECT COUNT(*) FROM webhook_events").await, 0);
    t.drop_db().await;
}

#[tokio::test]
async fn a_final_outcome_is_never_overwritten() {
    let t = TestDb::new().await;
    let (person, c) = due_person(&t.db, "sms", None).await;
    let key = begin(&t.db, &c, "sms").await;
    checkins::mark_sent_many(&t.db, &[sent(&c, &key, "SM2")])
        .await
        .unwrap();
    // The person answers through the link …
    with_db!(&t.db, p => sqlx::query("UPDATE checkins SET status = 'answered', closed_at = $1 WHERE id = $2")
        .bind(now()).bind(c.id).execute(p).await.unwrap().rows_affected());
    // … then a reminder's send fails, and a late report says undelivered.
    let failed = checkins::mark_failed(
        &t.db,
        checkins::Failure {
            key: &key,
            channel: "sms",
            status: "failed",
            error: "HTTP 500",
            permanent: false,
            max_attempts: 3,
            backoff: Duration::zero(),
        },
    )
    .await
    .unwrap();
    assert_eq!(failed, Failed::Stale);
    let h = delivery::report(&t.db, POLICY, Some(&key), undelivered("SM2"))
        .await
        .unwrap();
    assert_eq!(h, Handled::Applied(Some(Failed::Stale)));
    assert_eq!(status(&t.db, c.id).await.0, "answered");
    assert!(open_escalations(&t.db, person).await.is_empty());
    // A late `sent` after `delivered` does not set the attempt back.
    let (_, c2) = due_person(&t.db, "sms", None).await;
    let k2 = begin(&t.db, &c2, "sms").await;
    for s in ["delivered", "sent"] {
        let r = Report::Message {
            sid: "SM3",
            status: s,
            error_code: None,
        };
        delivery::report(&t.db, POLICY, Some(&k2), r).await.unwrap();
    }
    assert_eq!(attempt(&t.db, &k2).await.0, "delivered");
    t.drop_db().await;
}

#[tokio::test]
async fn a_failed_primary_channel_moves_to_the_fallback_then_ends_with_an_escalation() {
    let t = TestDb::new().await;
    let (person, c) = due_person(&t.db, "voice", Some("sms")).await;
    // No answer twice on the call (max_attempts = 2) …
    let mut c = c;
    for expected in [Failed::Retry, Failed::Fallback] {
        assert!(!c.on_fallback);
        let key = begin(&t.db, &c, "voice").await;
        let sid = format!("CA-{}", c.attempts);
        let r = Report::Call {
            sid: &sid,
            status: "no-answer",
        };
        let h = delivery::report(&t.db, POLICY, Some(&key), r)
            .await
            .unwrap();
        assert_eq!(h, Handled::Applied(Some(expected)));
        c = claim(&t.db).await.remove(0);
    }
    // … then the check-in goes out again at once, on the fallback channel.
    assert!(c.on_fallback);
    assert_eq!(
        (c.attempts, c.fallback_channel.as_deref()),
        (0, Some("sms"))
    );
    assert!(
        open_escalations(&t.db, person).await.is_empty(),
        "no escalation while a channel is left"
    );
    // An invalid number on the fallback too: nothing left, the check-in ends and escalates.
    let key = begin(&t.db, &c, "sms").await;
    let h = delivery::report(&t.db, POLICY, Some(&key), undelivered("SM9"))
        .await
        .unwrap();
    assert_eq!(h, Handled::Applied(Some(Failed::Ended)));
    assert_eq!(status(&t.db, c.id).await.0, "failed");
    let open = open_escalations(&t.db, person).await;
    assert_eq!(open.len(), 1);
    assert_eq!(
        (open[0].reason.as_str(), open[0].priority.as_str()),
        ("unreachable", "high")
    );
    t.drop_db().await;
}

/// The race that lost a fallback SMS under load: the second busy call's report comes back
/// within milliseconds and hands the check-in to its fallback channel; the next batch claims
/// it for the SMS; only then does the first batch record its call as accepted. That late
/// record must not mark the check-in `sent` — the next batch holds it now, and (with the
/// claim taken from it) never sent the SMS.
#[tokio::test]
async fn a_late_batch_record_does_not_take_the_check_in_from_the_next_batch() {
    let t = TestDb::new().await;
    let (_, c) = due_person(&t.db, "voice", Some("sms")).await;
    let key = begin(&t.db, &c, "voice").await;
    let busy = Report::Call {
        sid: "CA-1",
        status: "busy",
    };
    let two_attempts = Policy {
        max_attempts: 1,
        ..POLICY
    };
    assert_eq!(
        delivery::report(&t.db, two_attempts, Some(&key), busy)
            .await
            .unwrap(),
        Handled::Applied(Some(Failed::Fallback))
    );
    // The next batch claims it for the SMS …
    let next = claim(&t.db).await.remove(0);
    assert!(next.on_fallback);
    assert_ne!(next.claim, c.claim);
    // … and the first batch's record of its call arrives late.
    checkins::mark_sent_many(&t.db, &[sent(&c, &key, "CA-1")])
        .await
        .unwrap();
    assert_eq!(
        status(&t.db, c.id).await.0,
        "sending",
        "still the next batch's"
    );
    // Its lease renewal does not touch it either; the next batch's does.
    let later = now() + Duration::minutes(1);
    assert_eq!(
        checkins::renew_claims(&t.db, &[c.id], &[&c.claim], later)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        checkins::renew_claims(&t.db, &[next.id], &[&next.claim], later)
            .await
            .unwrap(),
        1
    );
    // The next batch sends the SMS and records it: now the check-in is sent, and the call
    // keeps what its report said.
    let sms = begin(&t.db, &next, "sms").await;
    checkins::mark_sent_many(&t.db, &[sent(&next, &sms, "SM-1")])
        .await
        .unwrap();
    assert_eq!(status(&t.db, c.id).await.0, "sent");
    assert_eq!(
        attempt(&t.db, &key).await,
        ("busy".into(), Some("CA-1".into()))
    );
    assert_eq!(
        attempt(&t.db, &sms).await,
        ("sent".into(), Some("SM-1".into()))
    );
    t.drop_db().await;
}

/// A send that timed out (counted as a failed attempt and retried) may still have reached
/// the provider, whose own failure report then comes late — after the next batch has claimed
/// the retry but before it recorded its attempt: the same attempt must not count twice. With
/// two attempts allowed, that ended the check-in as unreachable after one real try.
#[tokio::test]
async fn one_attempt_failing_twice_counts_once() {
    let t = TestDb::new().await;
    let (person, c) = due_person(&t.db, "sms", None).await;
    let key = begin(&t.db, &c, "sms").await;
    let timed_out = checkins::mark_failed(
        &t.db,
        checkins::Failure {
            key: &key,
            channel: "sms",
            status: "failed",
            error: "timeout",
            permanent: false,
            max_attempts: POLICY.max_attempts,
            backoff: Duration::zero(),
        },
    )
    .await
    .unwrap();
    assert_eq!(timed_out, Failed::Retry);
    // The next batch claims it for the retry; its attempt is not recorded yet.
    let next = claim(&t.db).await.remove(0);
    assert_eq!((next.id, next.attempts), (c.id, 1));
    let late = Report::Message {
        sid: "SM7",
        status: "undelivered",
        error_code: Some("30008"),
    };
    assert_eq!(
        delivery::report(&t.db, POLICY, Some(&key), late)
            .await
            .unwrap(),
        Handled::Applied(Some(Failed::Stale))
    );
    // Still one attempt counted, the retry still the next batch's to send; the report's
    // word is kept on the attempt.
    assert_eq!(status(&t.db, c.id).await, ("sending".into(), 1, false));
    assert_eq!(
        attempt(&t.db, &key).await,
        ("undelivered".into(), Some("SM7".into()))
    );
    assert!(open_escalations(&t.db, person).await.is_empty());
    t.drop_db().await;
}

/// The first message's failure report can come after the reminder batch has claimed the
/// check-in: it is recorded on its attempt, but the check-in is the reminder batch's now —
/// it is not ended (or planned again) under it. Before the attempt carried its claim, an
/// invalid-number report here ended the check-in while the reminder was going out.
#[tokio::test]
async fn a_late_failure_of_the_first_message_leaves_the_reminder_batch_alone() {
    let t = TestDb::new().await;
    let (person, c) = due_person(&t.db, "sms", None).await;
    let key = begin(&t.db, &c, "sms").await;
    checkins::mark_sent_many(&t.db, &[sent(&c, &key, "SM1")])
        .await
        .unwrap();
    let reminder = checkins::claim_reminders(&t.db, "patient", now(), Duration::zero(), 2, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((reminder.id, reminder.reminders), (c.id, 1));
    let h = delivery::report(&t.db, POLICY, Some(&key), undelivered("SM1"))
        .await
        .unwrap();
    assert_eq!(h, Handled::Applied(Some(Failed::Stale)));
    assert_eq!(status(&t.db, c.id).await, ("sending".into(), 0, false));
    assert_eq!(attempt(&t.db, &key).await.0, "undelivered");
    assert!(open_escalations(&t.db, person).await.is_empty());
    // The reminder goes out and is recorded under its own claim.
    let second = begin(&t.db, &reminder, "sms").await;
    checkins::mark_sent_many(&t.db, &[sent(&reminder, &second, "SM2")])
        .await
        .unwrap();
    assert_eq!(status(&t.db, c.id).await.0, "sent");
    // Its own failure counts as usual: nothing left, the person is escalated.
    let h = delivery::report(&t.db, POLICY, Some(&second), undelivered("SM2"))
        .await
        .unwrap();
    assert_eq!(h, Handled::Applied(Some(Failed::Ended)));
    assert_eq!(
        open_escalations(&t.db, person)
            .await
            .iter()
            .map(|e| e.reason.as_str())
            .collect::<Vec<_>>(),
        ["unreachable"]
    );
    t.drop_db().await;
}

/// A send held for an operator fault (our credential refused) is put back without counting;
/// when the fault is mended the same attempt is made again — and its real failure report then
/// counts, as any attempt's first failure.
#[tokio::test]
async fn an_attempt_made_again_after_an_operator_hold_counts_its_failure() {
    let t = TestDb::new().await;
    let (_, c) = due_person(&t.db, "sms", None).await;
    let key = begin(&t.db, &c, "sms").await;
    checkins::put_back(&t.db, &key, &c.claim, "HTTP 401 code 20003", now())
        .await
        .unwrap();
    assert_eq!(status(&t.db, c.id).await, ("planned".into(), 0, false));
    let again = claim(&t.db).await.remove(0);
    assert_eq!(begin(&t.db, &again, "sms").await, key, "the same attempt");
    assert_eq!(attempt(&t.db, &key).await, ("queued".into(), None));
    checkins::mark_sent_many(&t.db, &[sent(&again, &key, "SM1")])
        .await
        .unwrap();
    let busy_network = Report::Message {
        sid: "SM1",
        status: "undelivered",
        error_code: Some("30008"),
    };
    assert_eq!(
        delivery::report(&t.db, POLICY, Some(&key), busy_network)
            .await
            .unwrap(),
        Handled::Applied(Some(Failed::Retry))
    );
    assert_eq!(status(&t.db, c.id).await, ("planned".into(), 1, false));
    t.drop_db().await;
}
