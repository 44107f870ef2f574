//! One way to open an escalation, taken by every path: each trigger — an answer, a staff
//! entry, missed check-ins, a call-back request on a call, an SMS opt-out — leaves one open
//! escalation with its timeline event and audit row, and pages the on-duty staff exactly when
//! it is urgent.
use std::{path::Path, sync::Arc};

use chrono::{Duration, NaiveDate, Utc};
use mimamori_core::{
    Db,
    access::{Access, Role, Viewer},
    call, delivery,
    domain::Spo2,
    flows::Flows,
    ingest::Ingest,
    rules::Thresholds,
    store::{Actor, checkins, escalations, observations, persons, staff},
    testing::TestDb,
    voice::Prompts,
    with_db,
};

const WINDOW: Duration = Duration::hours(10);
const SYSTEM: Access<'static> = Access::System(Actor::System);

fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
}

async fn person(db: &Db, centre: i64, phone: &str, dob: &str) -> i64 {
    let p = persons::PersonInput {
        name: "山田 花子".into(),
        phone: phone.into(),
        channel: "sms".into(),
        date_of_birth: dob.into(),
        observation_start: today().to_string(),
        observation_end: (today() + Duration::days(5)).to_string(),
        ..Default::default()
    }
    .parse()
    .unwrap();
    persons::create(db, Actor::System, centre, &p, WINDOW, None)
        .await
        .unwrap()
}

async fn count(db: &Db, sql: &str, id: i64) -> i64 {
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    with_db!(db, p => sqlx::query_scalar(sql).bind(id).fetch_one(p).await.unwrap())
}

/// (reason, priority) of the person's open escalation, its events and audit rows, and the
/// notifications queued for it.
async fn raised(db: &Db, person: i64) -> (String, String, i64, i64, i64) {
    let open = escalations::open_for_person(db, SYSTEM, person)
        .await
        .unwrap();
    assert_eq!(open.len(), 1, "one open escalation for person {person}");
    let e = &open[0];
    (
        e.reason.clone(),
        e.priority.clone(),
        count(db, "SELECT COUNT(*) FROM escalation_events WHERE escalation_id = $1 AND kind = 'triggered'", e.id).await,
        count(db, "SELECT COUNT(*) FROM audit_log WHERE target_id = $1 AND action = 'escalation.open'", person).await,
        count(db, "SELECT COUNT(*) FROM notifications WHERE escalation_id = $1", e.id).await,
    )
}

#[tokio::test]
async fn every_trigger_opens_one_escalation_and_pages_only_when_urgent() {
    let t = TestDb::new().await;
    let db = &t.db;
    let c = staff::create_health_centre(db, "テスト保健所", "03-1111-2222", "Asia/Tokyo")
        .await
        .unwrap();
    let nurse = staff::create_staff(db, c, "duty1", "h", "当番")
        .await
        .unwrap();
    with_db!(db, p => sqlx::query("UPDATE staff SET on_duty = TRUE, phone = '+819000000001' WHERE id = $1")
        .bind(nurse).execute(p).await.unwrap().rows_affected());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rules = Thresholds::load(&dir.join("flows")).unwrap();
    let flows = Flows::load(&dir.join("flows")).unwrap();
    let prompts = Prompts::load(&dir.join("voice-prompts")).unwrap();
    let ingest = Ingest::spawn(db.clone(), Arc::new(rules.clone()));
    let checkin =
        |p: i64| async move { checkins::list_for_person(db, SYSTEM, p).await.unwrap()[0].id };

    // 1. An answer with SpO2 at 91 %: urgent, the on-duty nurse is paged.
    let answered = person(db, c, "090-1000-0001", "").await;
    let a = observations::Answer {
        spo2: Some(Spo2::new("spo2", 91).unwrap()),
        ..Default::default()
    };
    ingest
        .answer(checkin(answered).await, "sms", a)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        raised(db, answered).await,
        ("spo2_low".into(), "urgent".into(), 1, 1, 1)
    );

    // 2. A nurse enters an urgent warning sign taken by phone: urgent, paged.
    let entered = person(db, c, "090-1000-0002", "").await;
    let v = Viewer {
        staff_id: nurse,
        role: Role::HealthCentreStaff,
        health_centre_id: c,
        organisation_id: None,
    };
    let mut a = observations::Answer::default();
    a.yes_no("urgent_purple_lips", true, true);
    observations::record_by_staff(
        db,
        Access::Staff(&v),
        entered,
        "staff",
        "staff",
        Utc::now(),
        &a,
        None,
        &rules,
    )
    .await
    .unwrap();
    assert_eq!(
        raised(db, entered).await,
        ("urgent_sign".into(), "urgent".into(), 1, 1, 1)
    );

    // 3. Pressing 0 on an automated call: a call-back, high — a nurse calls back, nobody is
    //    paged at night for it.
    let caller = person(db, c, "090-1000-0003", "").await;
    let engine = call::Engine {
        db,
        flows: &flows,
        prompts: &prompts,
        ingest: &ingest,
    };
    engine
        .start("CA-trigger", checkin(caller).await, true, None)
        .await
        .unwrap();
    let step = engine.step("CA-trigger", Some("0"), None).await.unwrap();
    assert!(step.turn.callback);
    assert_eq!(
        raised(db, caller).await,
        ("callback".into(), "high".into(), 1, 1, 0)
    );

    // 4. SMS STOP: opted out and, in the same transaction, unreachable (high).
    let stopped = person(db, c, "090-1000-0004", "").await;
    let got = delivery::inbound_sms(db, "+819010000004", "stop")
        .await
        .unwrap();
    assert_eq!(got, delivery::Inbound::OptedOut);
    assert_eq!(
        raised(db, stopped).await,
        ("unreachable".into(), "high".into(), 1, 1, 0)
    );

    // 5. A missed day for someone at high risk (aged 65 or over): non-reporting, high.
    let old = person(db, c, "090-1000-0005", "1950-04-01").await;
    let (_, escalated) = checkins::close_overdue(db, Utc::now() + Duration::days(1), &rules)
        .await
        .unwrap();
    assert!(escalated.contains(&old));
    assert_eq!(
        raised(db, old).await,
        ("non_reporting".into(), "high".into(), 1, 1, 0)
    );

    // Only the two urgent ones were paged, once each.
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) FROM notifications WHERE staff_id = $1",
            nurse
        )
        .await,
        2
    );
    t.drop_db().await;
}
