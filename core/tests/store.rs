//! Every store function against a real database: SQLite by default, PostgreSQL when
//! `MIMAMORI_TEST_DATABASE_URL` is set (see `mimamori_core::testing`). Each test gets a fresh
//! database.
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use mimamori_core::access::Access;
use mimamori_core::{
    Db, Error,
    access::{Role, Viewer},
    db::now,
    provider::Audience,
    rules::Priority,
    store::{
        Actor, audit, checkins, escalations, ids, jobs, observations, outbox, persons, sessions,
        staff,
    },
    testing::{TestDb, requested_backend},
    with_db,
};

/// Reads as the product itself (tests look at what was stored).
const SYSTEM: Access<'static> = Access::System(mimamori_core::store::Actor::System);

const WINDOW: Duration = Duration::hours(10);

async fn centre(db: &Db) -> i64 {
    staff::create_health_centre(db, "テスト保健所", "03-1111-2222", "Asia/Tokyo")
        .await
        .unwrap()
}

fn input(start: &str, end: &str) -> persons::PersonInput {
    persons::PersonInput {
        name: "山田 花子".into(),
        phone: "090-1234-5678".into(),
        channel: "sms".into(),
        observation_start: start.into(),
        observation_end: end.into(),
        checkin_time: "09:00".into(),
        ..Default::default()
    }
}

fn jst_today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
}

async fn person(db: &Db, c: i64, start: NaiveDate, end: NaiveDate) -> i64 {
    let p = input(&start.to_string(), &end.to_string()).parse().unwrap();
    persons::create(db, Actor::System, c, &p, WINDOW, None)
        .await
        .unwrap()
}

fn hc_viewer(centre: i64) -> Viewer {
    Viewer {
        staff_id: 9,
        role: Role::HealthCentreStaff,
        health_centre_id: centre,
        organisation_id: None,
    }
}

/// Begins one attempt; the provider id if it already went out.
async fn begin(db: &Db, checkin_id: i64, key: &str) -> Result<Option<String>, Error> {
    let a = checkins::NewAttempt {
        checkin_id,
        key,
        channel: "sms",
        provider: "outbox",
        kind: "initial",
        claim: None,
    };
    Ok(checkins::begin_attempts(db, &[a]).await?.remove(key))
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    with_db!(db, p => sqlx::query_scalar(sql).fetch_one(p).await.unwrap())
}

#[tokio::test]
async fn backend_is_the_one_requested() {
    let t = TestDb::new().await;
    assert_eq!(t.db.backend(), requested_backend());
    t.db.ping().await.unwrap();
    // Acknowledged writes are durable: SQLite syncs every commit (FULL = 2), in WAL mode;
    // PostgreSQL keeps its synchronous commit.
    match &t.db {
        Db::Sqlite(p) => {
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(p)
                .await
                .unwrap();
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(p)
                .await
                .unwrap();
            assert_eq!((sync, mode.as_str()), (2, "wal"));
        }
        Db::Postgres(p) => {
            let sc: String = sqlx::query_scalar("SHOW synchronous_commit")
                .fetch_one(p)
                .await
                .unwrap();
            assert_eq!(sc, "on");
        }
    }
    t.drop_db().await;
}

/// PostgreSQL pools do not ping a connection before every query (a round trip each), but one
/// that sat idle for a second or more is checked: a connection the server closed meanwhile
/// (a restart, an idle timeout, a terminated backend) is replaced before the query, not
/// handed to it. (SQLite has no far end to lose.)
#[tokio::test]
async fn a_connection_that_died_while_idle_is_replaced_before_use() {
    let t = TestDb::new().await;
    if t.db.backend() != "postgres" {
        t.drop_db().await;
        return;
    }
    let one = Db::connect(&t.url, 1).await.unwrap();
    let pid = |db: Db| async move {
        with_db!(&db, p => sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()").fetch_one(p).await)
    };
    let first = pid(one.clone()).await.unwrap();
    let killed: bool = with_db!(&t.db, p => sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(first).fetch_one(p).await.unwrap());
    assert!(killed);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let second = pid(one.clone())
        .await
        .expect("the dead connection is found out and replaced before the query");
    assert_ne!(first, second, "a new connection");
    one.close().await;
    t.drop_db().await;
}

/// The backend serving `on` (PostgreSQL).
async fn backend_pid(on: mimamori_core::db::On<'_>) -> mimamori_core::Result<i32> {
    let q = sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()");
    Ok(match on {
        mimamori_core::db::On::Pg(c) => q.fetch_one(c).await?,
        mimamori_core::db::On::Pool(Db::Postgres(p)) => q.fetch_one(p).await?,
        mimamori_core::db::On::Pool(Db::Sqlite(_)) => unreachable!("PostgreSQL only"),
    })
}

/// Terminates backend `pid` and waits until it is gone.
async fn terminate(db: &Db, pid: i32) {
    with_db!(db, p => sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(p).await.unwrap().rows_affected());
    for _ in 0..200 {
        let alive: i64 = with_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1")
            .bind(pid).fetch_one(p).await.unwrap());
        if alive == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("backend {pid} still alive");
}

/// A writer's kept connection (`db::Kept`): the same connection from one statement to the
/// next while busy, out of its pool meanwhile (so no release, no ping); one a statement
/// failed on is given back and the next statement gets a new one; one idle for a second
/// goes back to its pool first, so a connection that died while idle is replaced before
/// use, and a task waiting for work a second holds none. On SQLite nothing is kept:
/// statements run on the pool.
#[tokio::test]
async fn a_kept_connection_is_kept_while_busy_and_replaced_when_lost_or_idle() {
    let t = TestDb::new().await;
    let one = Db::connect(&t.url, 1).await.unwrap();
    let mut kept = mimamori_core::db::Kept::new(one.clone());
    if t.db.backend() != "postgres" {
        let on = kept.on().await.unwrap();
        assert!(matches!(on, mimamori_core::db::On::Pool(Db::Sqlite(_))));
        assert!(!kept.keeps());
        t.drop_db().await;
        return;
    }
    let Db::Postgres(pool) = &one else {
        unreachable!()
    };
    let first = mimamori_core::on_kept!(&mut kept, on => backend_pid(on).await).unwrap();
    let again = mimamori_core::on_kept!(&mut kept, on => backend_pid(on).await).unwrap();
    assert_eq!(first, again, "the same connection while busy");
    assert!(kept.keeps());
    assert_eq!(
        (pool.size(), pool.num_idle()),
        (1, 0),
        "kept out of its pool"
    );

    // Died while kept, used at once: the statement fails, the connection is given back,
    // the next statement runs on a new one.
    terminate(&t.db, first).await;
    let failed = mimamori_core::on_kept!(&mut kept, on => backend_pid(on).await);
    assert!(failed.is_err(), "a statement on the dead connection fails");
    assert!(!kept.keeps(), "and the connection is given back");
    let second = mimamori_core::on_kept!(&mut kept, on => backend_pid(on).await)
        .expect("a new connection after the failure");
    assert_ne!(first, second);

    // Died while idle for a second: given back before use, replaced without a failure.
    terminate(&t.db, second).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let third = mimamori_core::on_kept!(&mut kept, on => backend_pid(on).await)
        .expect("an idle connection is checked before use");
    assert_ne!(second, third);

    // A task waiting for work holds no connection once idle for a second.
    kept.wait(tokio::time::sleep(std::time::Duration::from_millis(1200)))
        .await;
    assert!(!kept.keeps());
    assert_eq!((pool.size(), pool.num_idle()), (1, 1), "back in its pool");
    drop(kept);
    one.close().await;
    t.drop_db().await;
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let t = TestDb::new().await;
    t.db.migrate().await.expect("second run is a no-op");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(t.db.backend());
    let files = std::fs::read_dir(dir).unwrap().count() as i64;
    assert_eq!(
        count(&t.db, "SELECT COUNT(*) FROM _app_migrations").await,
        files
    );
    t.drop_db().await;
}

#[tokio::test]
async fn registration_plans_today_and_is_audited() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let id = person(&t.db, c, today, today + Duration::days(5)).await;
    let cks = checkins::list_for_person(&t.db, SYSTEM, id).await.unwrap();
    assert_eq!(cks.len(), 1);
    assert_eq!(cks[0].local_date, today);
    assert_eq!(cks[0].status, "planned");
    assert!(cks[0].due_at <= now() + Duration::days(1));
    assert_eq!(cks[0].deadline_at - cks[0].due_at, WINDOW);
    let p = persons::get(&t.db, Access::Staff(&hc_viewer(c)), id, Some("127.0.0.1"))
        .await
        .unwrap();
    assert_eq!(p.phone.as_deref(), Some("+819012345678"));
    let log = audit::for_target(&t.db, "person", id).await.unwrap();
    let actions: Vec<_> = log.iter().map(|e| e.action.as_str()).collect();
    // The system's read is audited too (as the system), newest first.
    assert_eq!(actions, ["person.read", "checkin.list", "person.create"]);
    assert_eq!(log[1].actor_kind, "system");
    // Out of scope reads as missing, and is not audited as a read.
    assert!(matches!(
        persons::get(&t.db, Access::Staff(&hc_viewer(c + 1)), id, None).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        audit::for_target(&t.db, "person", id).await.unwrap().len(),
        3
    );
    assert_eq!(
        persons::count_by(&t.db, &hc_viewer(c), persons::List::All, today)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        persons::list_by(&t.db, &hc_viewer(c), persons::List::All, today, 10, 0)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        persons::count_by(&t.db, &hc_viewer(c + 1), persons::List::All, today)
            .await
            .unwrap(),
        0
    );
    t.drop_db().await;
}

#[tokio::test]
async fn future_period_is_not_planned_today() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let id = person(
        &t.db,
        c,
        today + Duration::days(2),
        today + Duration::days(5),
    )
    .await;
    assert!(
        checkins::list_for_person(&t.db, SYSTEM, id)
            .await
            .unwrap()
            .is_empty()
    );
    t.drop_db().await;
}

#[tokio::test]
async fn invalid_person_reports_every_field() {
    let bad = persons::PersonInput {
        name: " ".into(),
        phone: "12".into(),
        email: "nope".into(),
        channel: "fax".into(),
        observation_start: "2026-11-30".into(),
        observation_end: "2026-11-01".into(),
        checkin_time: "25:00".into(),
        ..Default::default()
    };
    let Err(Error::Invalid(fields)) = bad.parse() else {
        panic!("must fail")
    };
    let names: Vec<_> = fields.iter().map(|f| f.field.as_ref()).collect();
    for f in [
        "name",
        "phone",
        "email",
        "channel",
        "observation_end",
        "checkin_time",
    ] {
        assert!(names.contains(&f), "{f} missing from {names:?}");
    }
}

#[tokio::test]
async fn plan_day_is_idempotent_and_skips_ended_opted_out_admitted() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let day = NaiveDate::from_ymd_opt(2030, 1, 10).unwrap();
    // Inserted directly so registration's own planning (for the real today) is not involved.
    for (status, start, end) in [
        ("observing", "2030-01-05", "2030-01-15"),
        ("observing", "2030-01-10", "2030-01-10"),
        ("observing", "2030-01-01", "2030-01-09"), // ended the day before
        ("opted_out", "2030-01-05", "2030-01-15"),
        ("admitted", "2030-01-05", "2030-01-15"),
    ] {
        let s = NaiveDate::parse_from_str(start, "%Y-%m-%d").unwrap();
        let e = NaiveDate::parse_from_str(end, "%Y-%m-%d").unwrap();
        with_db!(&t.db, p => {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO persons (health_centre_id, name, phone, channel, observation_start, observation_end, status, created_at, updated_at)
                 VALUES ($1, 'x', '+819000000000', 'sms', $2, $3, $4, $5, $5) RETURNING id")
                .bind(c).bind(s).bind(e).bind(status).bind(now()).fetch_one(p).await.unwrap();
            sqlx::query("INSERT INTO person_slots (person_id, slot, minutes) VALUES ($1, 0, 540)")
                .bind(id).execute(p).await.unwrap();
        });
    }
    // 23:30 UTC on the 9th is 08:30 on the 10th in Tokyo.
    let at = Utc.with_ymd_and_hms(2030, 1, 9, 23, 30, 0).unwrap();
    assert_eq!(checkins::plan_day(&t.db, at, WINDOW).await.unwrap(), 2);
    assert_eq!(
        checkins::plan_day(&t.db, at, WINDOW).await.unwrap(),
        0,
        "second run creates nothing"
    );
    let due: Vec<(NaiveDate, chrono::DateTime<Utc>)> = with_db!(&t.db, p => sqlx::query_as(
        "SELECT local_date, due_at FROM checkins").fetch_all(p).await.unwrap());
    assert_eq!(due.len(), 2);
    // 09:00 in Tokyo is 00:00 UTC.
    assert!(
        due.iter().all(
            |(d, due)| *d == day && *due == Utc.with_ymd_and_hms(2030, 1, 10, 0, 0, 0).unwrap()
        )
    );
    t.drop_db().await;
}

#[tokio::test]
async fn claim_send_retry_fail_and_miss() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let a = person(&t.db, c, today, today).await;
    let b = person(&t.db, c, today, today).await;
    with_db!(&t.db, p => sqlx::query("UPDATE checkins SET due_at = $1").bind(now() - Duration::minutes(1)).execute(p).await.unwrap().rows_affected());
    let lease = Duration::minutes(5);
    let claimed = checkins::claim_due(&t.db, now(), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].phone.as_deref(), Some("+819012345678"));
    assert!(
        checkins::claim_due(&t.db, now(), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed rows are not claimed twice"
    );

    let ca = claimed.iter().find(|x| x.person_id == a).unwrap();
    let key = checkins::attempt_key(ca.id, 0, "sms", ca.attempts);
    assert_eq!(begin(&t.db, ca.id, &key).await.unwrap(), None);
    checkins::mark_sent_many(
        &t.db,
        &[checkins::Sent {
            checkin_id: ca.id,
            claim: ca.claim.clone(),
            key: key.clone(),
            provider_id: "OB1".into(),
        }],
    )
    .await
    .unwrap();
    // Beginning the same attempt again reveals that it already went out.
    assert_eq!(begin(&t.db, ca.id, &key).await.unwrap(), Some("OB1".into()));
    assert_eq!(checkins::get(&t.db, ca.id).await.unwrap().status, "sent");

    let cb = claimed.iter().find(|x| x.person_id == b).unwrap();
    let k1 = checkins::attempt_key(cb.id, 0, "sms", 0);
    begin(&t.db, cb.id, &k1).await.unwrap();
    assert_eq!(
        checkins::mark_failed(&t.db, fail(&k1, "429"))
            .await
            .unwrap(),
        checkins::Failed::Retry
    );
    let after = checkins::get(&t.db, cb.id).await.unwrap();
    assert_eq!((after.status.as_str(), after.attempts), ("planned", 1));
    assert!(after.due_at > now(), "retry is pushed back");
    // The dispatcher claims it again when the back-off has passed.
    with_db!(&t.db, p => sqlx::query("UPDATE checkins SET due_at = $1 WHERE id = $2").bind(now() - Duration::minutes(1)).bind(cb.id).execute(p).await.unwrap().rows_affected());
    assert_eq!(
        checkins::claim_due(&t.db, now(), lease, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let k2 = checkins::attempt_key(cb.id, 0, "sms", 1);
    assert_ne!(k1, k2);
    begin(&t.db, cb.id, &k2).await.unwrap();
    assert_eq!(
        checkins::mark_failed(&t.db, fail(&k2, "500"))
            .await
            .unwrap(),
        checkins::Failed::Ended
    );
    assert_eq!(checkins::get(&t.db, cb.id).await.unwrap().status, "failed");
    let esc = escalations::open_for_person(
        &t.db,
        mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
        b,
    )
    .await
    .unwrap();
    assert_eq!(
        esc.iter()
            .map(|e| (e.reason.as_str(), e.detail.as_str()))
            .collect::<Vec<_>>(),
        [("unreachable", "sms failed: 500")],
        "the failed check-in opened its escalation in the same transaction"
    );
    let attempts = checkins::attempts_for_person(&t.db, SYSTEM, b)
        .await
        .unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|x| x.status.as_str())
            .collect::<Vec<_>>(),
        ["failed", "failed"]
    );

    // The sent one passes its deadline unanswered: missed. The failed one stays failed.
    assert_eq!(
        checkins::close_overdue(&t.db, now() + Duration::days(1), &Default::default())
            .await
            .unwrap(),
        (vec![a], vec![]),
        "one miss is not yet a streak"
    );
    assert_eq!(
        checkins::recent_outcomes(&t.db, a, 5).await.unwrap(),
        ["missed"]
    );
    assert_eq!(
        checkins::recent_outcomes(&t.db, b, 5).await.unwrap(),
        ["failed"]
    );
    assert_eq!(checkins::get(&t.db, ca.id).await.unwrap().status, "missed");
    assert_eq!(
        count(
            &t.db,
            "SELECT COUNT(*) FROM checkins WHERE status IN ('planned', 'sending', 'sent')"
        )
        .await,
        0
    );
    t.drop_db().await;
}

#[tokio::test]
async fn abandoned_claims_are_taken_again_after_the_lease() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    person(&t.db, c, today, today).await;
    with_db!(&t.db, p => sqlx::query("UPDATE checkins SET due_at = $1").bind(now() - Duration::minutes(1)).execute(p).await.unwrap().rows_affected());
    assert_eq!(
        checkins::claim_due(&t.db, now(), Duration::minutes(5), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        checkins::claim_due(
            &t.db,
            now() + Duration::minutes(4),
            Duration::minutes(5),
            10
        )
        .await
        .unwrap()
        .is_empty()
    );
    // The worker holding it crashed; after the lease it is claimable again.
    let later = now() + Duration::minutes(6);
    assert_eq!(
        checkins::claim_due(&t.db, later, Duration::minutes(5), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    t.drop_db().await;
}

#[tokio::test]
async fn calls_and_texts_are_claimed_in_their_own_lanes() {
    use checkins::Lane;
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let texted = person(&t.db, c, today, today).await;
    let called = person(&t.db, c, today, today).await;
    let moved = person(&t.db, c, today, today).await;
    // `called` and `moved` are called; `moved`'s calls failed, so it goes out on its SMS
    // fallback and belongs to the text lane.
    with_db!(&t.db, p => sqlx::query("UPDATE persons SET channel = 'voice', fallback_channel = 'sms' WHERE id IN ($1, $2)")
        .bind(called).bind(moved).execute(p).await.unwrap().rows_affected());
    with_db!(&t.db, p => sqlx::query("UPDATE checkins SET on_fallback = (person_id = $1), due_at = $2")
        .bind(moved).bind(now() - Duration::minutes(1)).execute(p).await.unwrap().rows_affected());
    let lease = Duration::minutes(5);
    let voice = checkins::claim_due_in(&t.db, Some(Lane::Voice), now(), lease, 10)
        .await
        .unwrap();
    assert_eq!(
        voice.iter().map(|d| d.person_id).collect::<Vec<_>>(),
        vec![called]
    );
    let mut text: Vec<i64> = checkins::claim_due_in(&t.db, Some(Lane::Text), now(), lease, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.person_id)
        .collect();
    text.sort();
    assert_eq!(text, vec![texted, moved]);
    // Sent and unanswered: the reminders are claimed per lane too.
    with_db!(&t.db, p => sqlx::query("UPDATE checkins SET status = 'sent', sent_at = $1")
        .bind(now() - Duration::hours(5)).execute(p).await.unwrap().rows_affected());
    let r = checkins::claim_reminders_in(
        &t.db,
        Some(Lane::Voice),
        "patient",
        now(),
        Duration::hours(4),
        2,
        10,
    )
    .await
    .unwrap();
    assert_eq!(
        r.iter().map(|d| d.person_id).collect::<Vec<_>>(),
        vec![called]
    );
    let r = checkins::claim_reminders_in(&t.db, None, "patient", now(), Duration::hours(4), 2, 10)
        .await
        .unwrap();
    assert_eq!(r.len(), 2, "the rest, in no particular lane");
    t.drop_db().await;
}

#[tokio::test]
async fn answer_drafts_are_kept_audited_and_purged() {
    use mimamori_core::store::drafts;
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let a = person(&t.db, c, today, today).await;
    let checkin = todays_checkin(&t.db, a).await;
    assert!(drafts::open(&t.db, checkin, a).await.unwrap().is_empty());
    let mut typed = drafts::Answers::new();
    typed.insert("temperature".into(), "36.6".into());
    drafts::save(&t.db, checkin, a, &typed).await.unwrap();
    typed.insert("cough".into(), "yes".into());
    drafts::save(&t.db, checkin, a, &typed).await.unwrap();
    assert_eq!(drafts::open(&t.db, checkin, a).await.unwrap(), typed);
    assert_eq!(
        count(&t.db, "SELECT COUNT(*) FROM audit_log WHERE action IN ('checkin.open', 'checkin.draft') AND actor_kind = 'person'").await,
        4
    );
    // Nothing is purged while the check-in is open and the draft fresh.
    assert_eq!(
        drafts::purge(&t.db, now() - Duration::days(2))
            .await
            .unwrap(),
        0
    );
    with_db!(&t.db, p => sqlx::query("UPDATE checkins SET status = 'missed'").execute(p).await.unwrap().rows_affected());
    assert_eq!(
        drafts::purge(&t.db, now() - Duration::days(2))
            .await
            .unwrap(),
        1
    );
    assert!(drafts::open(&t.db, checkin, a).await.unwrap().is_empty());
    t.drop_db().await;
}

/// The page after an answer reads everything in one statement: context, urgency (a low
/// SpO2 with no urgent sign is urgent too), whether the phone is shared; and the answer's
/// batch deletes the draft.
#[tokio::test]
async fn the_page_after_an_answer_reads_once() {
    use mimamori_core::store::drafts;
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let a = person(&t.db, c, today, today).await;
    let ca = todays_checkin(&t.db, a).await;
    let d = done_page(&t.db, ca).await;
    assert_eq!(
        (d.urgent, d.shared_phone),
        (None, false),
        "not answered, alone on the phone"
    );
    let mut typed = drafts::Answers::new();
    typed.insert("temperature".into(), "38.9".into());
    drafts::save(&t.db, ca, a, &typed).await.unwrap();
    observations::answer_checkin(
        &t.db,
        ca,
        "web",
        &answer(Some(38.9), Some(88)),
        &Default::default(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(count(&t.db, "SELECT COUNT(*) FROM answer_drafts").await, 0);
    let d = done_page(&t.db, ca).await;
    assert_eq!(d.urgent, Some(true), "SpO2 88 is urgent without any sign");
    assert_eq!(
        (d.link.status.as_str(), d.link.person_name.as_str()),
        ("answered", "山田 花子")
    );
    let b = person(&t.db, c, today, today).await;
    let cb = todays_checkin(&t.db, b).await;
    observations::answer_checkin(
        &t.db,
        cb,
        "web",
        &answer(Some(36.5), Some(98)),
        &Default::default(),
    )
    .await
    .unwrap()
    .unwrap();
    let d = done_page(&t.db, cb).await;
    assert_eq!(
        (d.urgent, d.shared_phone),
        (Some(false), true),
        "same phone as the first"
    );
    t.drop_db().await;
}

/// The link pages' reads gathered: one statement for many check-ins gives each the same
/// context its own read gives (an unknown id left out); through the reader, many reads at
/// once each get their own check-in's context, and an unknown one "not found" alone.
#[tokio::test]
async fn link_reads_gathered_give_each_its_own_context() {
    use mimamori_core::link_reads::LinkReads;
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let ids: Vec<i64> = due_today(&t.db, c, 5)
        .await
        .into_iter()
        .map(|d| d.1)
        .collect();
    observations::answer_checkin(
        &t.db,
        ids[0],
        "web",
        &answer(Some(38.9), Some(88)),
        &Default::default(),
    )
    .await
    .unwrap()
    .unwrap();
    let mut asked = ids.clone();
    asked.push(i64::MAX);
    let links = checkins::link_contexts(&t.db, &asked).await.unwrap();
    assert_eq!(links.len(), ids.len(), "the unknown id left out");
    for l in &links {
        let one = checkins::link_context(&t.db, l.checkin_id).await.unwrap();
        assert_eq!(
            (
                &l.status,
                l.person_id,
                &l.language,
                &l.link_channel,
                &l.person_name,
                l.local_date
            ),
            (
                &one.status,
                one.person_id,
                &one.language,
                &one.link_channel,
                &one.person_name,
                one.local_date
            )
        );
    }
    let shown = "SELECT COUNT(*) FROM audit_log WHERE action = 'checkin.done'";
    assert_eq!(count(&t.db, shown).await, 0);
    let dones = checkins::done_contexts(&t.db, &asked).await.unwrap();
    assert_eq!(dones.len(), ids.len());
    // The page after the answer is audited with its read — only the answered check-in's
    // (the others lead back to their form), as its person's own read.
    let audited: Vec<(String, Option<i64>, String, Option<i64>)> = with_db!(&t.db, p => sqlx::query_as(
        "SELECT actor_kind, actor_id, target_kind, target_id FROM audit_log WHERE action = 'checkin.done'")
        .fetch_all(p).await.unwrap());
    let answered = dones.iter().find(|d| d.link.checkin_id == ids[0]).unwrap();
    let me = Some(answered.link.person_id);
    assert_eq!(
        audited,
        vec![("person".to_string(), me, "person".to_string(), me)]
    );
    for d in &dones {
        let one = done_page(&t.db, d.link.checkin_id).await;
        assert_eq!(
            (d.urgent, d.shared_phone, &d.link.status),
            (one.urgent, one.shared_phone, &one.link.status)
        );
    }
    assert!(
        checkins::link_contexts(&t.db, &[])
            .await
            .unwrap()
            .is_empty()
    );

    let reads = LinkReads::spawn(t.db.clone());
    let mut tasks = Vec::new();
    for round in 0..20 {
        for (i, id) in asked.iter().enumerate() {
            let (r, id) = (reads.clone(), *id);
            tasks.push(tokio::spawn(async move {
                if (round + i) % 2 == 0 {
                    r.link(id).await.map(|c| (id, c.checkin_id, c.status))
                } else {
                    r.done(id)
                        .await
                        .map(|d| (id, d.link.checkin_id, d.link.status))
                }
            }));
        }
    }
    let mut unknown = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok((asked, got, status)) => {
                assert_eq!(asked, got, "each its own check-in");
                let want = if asked == ids[0] {
                    "answered"
                } else {
                    "planned"
                };
                assert_eq!(status, want);
            }
            Err(mimamori_core::Error::NotFound(_)) => unknown += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(unknown, 20, "only the unknown id's reads are not found");
    // Of the 120 reads, the answered check-in's 10 done pages (rounds of one parity) were
    // audited, once each.
    let reads_of_answered = (0..20).filter(|round| round % 2 == 1).count() as i64;
    // (and once more by the check of each row above, read alone).
    assert_eq!(count(&t.db, shown).await, 2 + reads_of_answered);
    assert!(matches!(
        reads.link(i64::MAX).await,
        Err(mimamori_core::Error::NotFound(_))
    ));
    drop(reads);
    t.drop_db().await;
}

#[tokio::test]
async fn a_contractor_sees_its_people_most_worrying_first_and_records_calls() {
    use mimamori_core::store::followups;
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let calm = person(&t.db, c, today, today).await;
    let silent = person(&t.db, c, today, today).await;
    let urgent = person(&t.db, c, today, today).await;
    let elsewhere = person(&t.db, c, today, today).await;
    let org = staff::create_organisation(&t.db, "contractor", "コール", c)
        .await
        .unwrap();
    let worker = staff::create_staff(&t.db, c, "caller1", "h", "w")
        .await
        .unwrap();
    staff::set_role(&t.db, worker, Role::Contractor, Some(org))
        .await
        .unwrap();
    for p in [calm, silent, urgent] {
        mimamori_core::store::assignments::assign(
            &t.db,
            mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
            p,
            org,
            None,
        )
        .await
        .unwrap();
    }
    for (p, reason, priority) in [
        (silent, "non_reporting", Priority::High),
        (urgent, "spo2_low", Priority::Urgent),
    ] {
        escalations::open(
            &t.db,
            escalations::Raise {
                person_id: p,
                reason,
                priority,
                detail: "test",
                actor: Actor::System,
            },
        )
        .await
        .unwrap();
    }
    let v = Viewer {
        staff_id: worker,
        role: Role::Contractor,
        health_centre_id: c,
        organisation_id: Some(org),
    };
    let order: Vec<i64> = persons::most_worrying(&t.db, &v, today, 50, 0)
        .await
        .unwrap()
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(
        order,
        vec![urgent, silent, calm],
        "urgent, then not reporting; only its own"
    );
    // The page's observations and escalations in one query each, by person, in scope only.
    observations::record_by_staff(
        &t.db,
        SYSTEM,
        calm,
        "self",
        "web",
        now(),
        &answer(Some(36.6), None),
        None,
        &Default::default(),
    )
    .await
    .unwrap();
    observations::record_by_staff(
        &t.db,
        SYSTEM,
        elsewhere,
        "self",
        "web",
        now(),
        &answer(Some(39.0), None),
        None,
        &Default::default(),
    )
    .await
    .unwrap();
    let obs = observations::for_people(&t.db, &v, &[calm, silent, elsewhere])
        .await
        .unwrap();
    assert_eq!(obs.get(&calm).map(Vec::len), Some(1));
    assert!(
        !obs.contains_key(&elsewhere),
        "a person not assigned to the contractor is not read"
    );
    let open = escalations::open_for_people(&t.db, &v, &[urgent, silent, calm, elsewhere])
        .await
        .unwrap();
    assert!(
        !open.contains_key(&elsewhere),
        "outside the contractor's scope"
    );
    assert_eq!(
        (
            open[&urgent][0].reason.as_str(),
            open[&silent][0].reason.as_str(),
            open.contains_key(&calm)
        ),
        ("spo2_low", "non_reporting", false)
    );
    // A call: recorded, listed, audited; an unknown outcome or someone else's person is not.
    followups::record(&t.db, &v, silent, "no_answer", "留守電に伝言")
        .await
        .unwrap();
    assert!(matches!(
        followups::record(&t.db, &v, silent, "maybe", "").await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        followups::record(&t.db, &v, elsewhere, "reached", "").await,
        Err(Error::NotFound(_))
    ));
    let calls = followups::list(&t.db, Access::Staff(&v), silent)
        .await
        .unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (
            calls[0].outcome.as_str(),
            calls[0].note.as_deref(),
            calls[0].staff_name.as_str()
        ),
        ("no_answer", Some("留守電に伝言"), "w")
    );
    assert_eq!(
        count(
            &t.db,
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('followup.create', 'followup.list')"
        )
        .await,
        2
    );
    // A medical institution may not write observations, so may not record calls.
    let hospital = Viewer {
        role: Role::MedicalInstitution,
        ..hc_viewer(c)
    };
    assert!(
        followups::record(&t.db, &hospital, calm, "reached", "")
            .await
            .is_err()
    );
    t.drop_db().await;
}

#[tokio::test]
async fn answering_closes_the_checkin_once() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let id = person(&t.db, c, today, today).await;
    let ck = checkins::list_for_person(&t.db, SYSTEM, id).await.unwrap()[0].id;
    let ctx = checkins::link_context(&t.db, ck).await.unwrap();
    assert_eq!((ctx.person_id, ctx.status.as_str()), (id, "planned"));
    let mut a = observations::Answer {
        temperature: Some(mimamori_core::domain::Temperature::new("t", 38.2).unwrap()),
        ..Default::default()
    };
    a.symptoms.insert("cough".into(), true);
    assert!(
        observations::answer_checkin(&t.db, ck, "web", &a, &Default::default())
            .await
            .unwrap()
            .is_ok()
    );
    assert_eq!(
        observations::answer_checkin(&t.db, ck, "web", &a, &Default::default())
            .await
            .unwrap(),
        Err(observations::Closed::AlreadyAnswered)
    );
    let list = observations::list_for_person(&t.db, SYSTEM, id)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].temperature_c, Some(38.2));
    assert_eq!(list[0].symptom_map().get("cough"), Some(&true));
    assert_eq!(checkins::get(&t.db, ck).await.unwrap().status, "answered");
    observations::record_by_staff(
        &t.db,
        SYSTEM,
        id,
        "staff",
        "staff",
        now(),
        &a,
        Some("phoned"),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        observations::list_for_person(&t.db, SYSTEM, id)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(matches!(
        observations::answer_checkin(&t.db, 999_999, "web", &a, &Default::default()).await,
        Err(Error::NotFound(_))
    ));
    t.drop_db().await;
}

fn answer(temp: Option<f64>, spo2: Option<i32>) -> observations::Answer {
    observations::Answer {
        temperature: temp.map(|v| mimamori_core::domain::Temperature::new("t", v).unwrap()),
        spo2: spo2.map(|v| mimamori_core::domain::Spo2::new("s", v).unwrap()),
        ..Default::default()
    }
}

fn answer_in(checkin_id: i64, a: observations::Answer) -> observations::AnswerIn {
    observations::AnswerIn {
        checkin_id,
        source: "web".into(),
        answer: a,
        simulated_by: None,
    }
}

async fn todays_checkin(db: &Db, person: i64) -> i64 {
    checkins::list_for_person(db, SYSTEM, person).await.unwrap()[0].id
}

/// What the page after an answer reads for `checkin` alone (`checkins::done_contexts`).
async fn done_page(db: &Db, checkin: i64) -> checkins::DoneContext {
    let mut d = checkins::done_contexts(db, &[checkin]).await.unwrap();
    assert_eq!(d.len(), 1, "check-in {checkin}");
    d.pop().unwrap()
}

/// `n` people of centre `c` observed today, each with today's check-in: (person, check-in).
async fn due_today(db: &Db, c: i64, n: usize) -> Vec<(i64, i64)> {
    let today = jst_today();
    let mut due = Vec::with_capacity(n);
    for _ in 0..n {
        let p = person(db, c, today, today).await;
        due.push((p, todays_checkin(db, p).await));
    }
    due
}

/// A group commit: every answer in the batch gets its own outcome in order — recorded with
/// its own rules (a low SpO2, a fever streak built from earlier days), a second answer to the
/// same check-in refused, an unknown check-in reported without failing the others, an
/// already answered one refused — and each recorded answer is audited once.
#[tokio::test]
async fn a_batch_records_each_answer_with_its_own_outcome() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let start = today - Duration::days(2);
    let (a, b, d, e) = (
        person(&t.db, c, today, today).await,
        person(&t.db, c, today, today).await,
        person(&t.db, c, start, today).await,
        person(&t.db, c, today, today).await,
    );
    let rules = Default::default();
    // d had a fever on each of the two days before.
    for days in [1, 2] {
        let at = now() - Duration::days(days);
        observations::record_by_staff(
            &t.db,
            SYSTEM,
            d,
            "staff",
            "staff",
            at,
            &answer(Some(38.3), None),
            None,
            &rules,
        )
        .await
        .unwrap();
    }
    let (ca, cb, cd, ce) = (
        todays_checkin(&t.db, a).await,
        todays_checkin(&t.db, b).await,
        todays_checkin(&t.db, d).await,
        todays_checkin(&t.db, e).await,
    );
    observations::answer_checkin(&t.db, ce, "web", &answer(Some(36.5), None), &rules)
        .await
        .unwrap()
        .unwrap();
    let batch = [
        answer_in(ca, answer(Some(36.8), Some(98))),
        answer_in(cb, answer(Some(36.9), Some(92))),
        answer_in(ca, answer(Some(39.9), None)),
        answer_in(999_999, answer(None, None)),
        answer_in(ce, answer(None, None)),
        answer_in(cd, answer(Some(38.1), Some(97))),
    ];
    let out = observations::answer_checkins(&t.db, &batch, &rules)
        .await
        .unwrap();
    assert_eq!(out.len(), 6);
    let ra = out[0].as_ref().unwrap().as_ref().unwrap();
    assert_eq!((ra.person_id, ra.triggers.len()), (a, 0));
    let rb = out[1].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(rb.person_id, b);
    assert_eq!(
        rb.triggers.iter().map(|t| t.reason).collect::<Vec<_>>(),
        ["spo2_low"]
    );
    assert_eq!(
        *out[2].as_ref().unwrap(),
        Err(observations::Closed::AlreadyAnswered)
    );
    assert!(matches!(out[3], Err(Error::NotFound(_))));
    assert_eq!(
        *out[4].as_ref().unwrap(),
        Err(observations::Closed::AlreadyAnswered)
    );
    let rd = out[5].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(
        rd.triggers.iter().map(|t| t.reason).collect::<Vec<_>>(),
        ["fever_streak"]
    );
    // a's observation is the first answer's, not the duplicate's.
    let obs = observations::list_for_person(&t.db, SYSTEM, a)
        .await
        .unwrap();
    assert_eq!(obs.len(), 1);
    assert_eq!((obs[0].temperature_c, obs[0].spo2), (Some(36.8), Some(98)));
    assert_eq!(obs[0].id, ra.observation_id);
    assert_eq!(obs[0].checkin_id, Some(ca));
    for ck in [ca, cb, cd] {
        assert_eq!(checkins::get(&t.db, ck).await.unwrap().status, "answered");
    }
    assert_eq!(
        count(
            &t.db,
            "SELECT COUNT(*) FROM escalations WHERE status = 'open' AND reason IN ('spo2_low', 'fever_streak')"
        )
        .await,
        2
    );
    // e's earlier answer, then a, b and d.
    assert_eq!(
        count(
            &t.db,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'observation.create' AND actor_kind = 'person'"
        )
        .await,
        4
    );
    t.drop_db().await;
}

/// The answer writer under concurrency: 40 answers sent at once (they share transactions)
/// each get their own reply after commit, each recorded exactly once; a second answer to
/// one of them is refused.
#[tokio::test]
async fn the_answer_writer_records_concurrent_answers_once_each() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let cks = due_today(&t.db, c, 40).await;
    let ingest =
        mimamori_core::ingest::Ingest::spawn(t.db.clone(), std::sync::Arc::new(Default::default()));
    let replies = futures::future::join_all(
        cks.iter()
            .map(|(_, ck)| ingest.answer(*ck, "web", answer(Some(36.6), Some(97)))),
    )
    .await;
    for ((p, _), r) in cks.iter().zip(replies) {
        assert_eq!(r.unwrap().unwrap().person_id, *p);
    }
    assert_eq!(count(&t.db, "SELECT COUNT(*) FROM observations").await, 40);
    assert_eq!(
        ingest
            .answer(cks[7].1, "voice", answer(None, None))
            .await
            .unwrap(),
        Err(observations::Closed::AlreadyAnswered)
    );
    t.drop_db().await;
}

/// The answer writer and the link reader keep their connections between batches
/// (`db::Kept`); when those connections die, a read and an answer arriving at once fail on
/// them and are done again on new connections: the person sees their page, and is told the
/// answer was received, and it was. Each backend (on SQLite nothing is kept; reads and
/// answers go as usual). Idle, neither holds a connection.
#[tokio::test]
async fn reads_and_answers_on_connections_that_just_died_go_through() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let cks = due_today(&t.db, c, 2).await;
    // Each task's own pool, named so its connection can be found on PostgreSQL.
    let pg = t.db.backend() == "postgres";
    let own = |name: &str| {
        let url = if pg {
            let sep = if t.url.contains('?') { '&' } else { '?' };
            format!("{}{sep}application_name={name}", t.url)
        } else {
            t.url.clone()
        };
        async move { Db::connect(&url, 1).await.unwrap() }
    };
    let (writer_db, reader_db) = (own("answer-writer").await, own("link-reader").await);
    let ingest = mimamori_core::ingest::Ingest::spawn(
        writer_db.clone(),
        std::sync::Arc::new(Default::default()),
    );
    let reads = mimamori_core::link_reads::LinkReads::spawn(reader_db.clone());
    assert_eq!(reads.link(cks[0].1).await.unwrap().person_id, cks[0].0);
    let r = ingest
        .answer(cks[0].1, "web", answer(Some(36.6), Some(97)))
        .await;
    assert_eq!(r.unwrap().unwrap().person_id, cks[0].0);
    for (db, name) in [(&writer_db, "answer-writer"), (&reader_db, "link-reader")] {
        let Db::Postgres(pool) = db else { break };
        assert_eq!(
            (pool.size(), pool.num_idle()),
            (1, 0),
            "{name} keeps its connection"
        );
        let pid: i32 = with_db!(&t.db, p => sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
             AND application_name = $1")
            .bind(name).fetch_one(p).await.unwrap());
        terminate(&t.db, pid).await;
    }
    assert_eq!(
        reads
            .link(cks[1].1)
            .await
            .expect("read again on a new connection")
            .person_id,
        cks[1].0
    );
    let r = ingest
        .answer(cks[1].1, "web", answer(Some(36.9), Some(96)))
        .await;
    assert_eq!(
        r.expect("recorded on a new connection").unwrap().person_id,
        cks[1].0
    );
    // Idle, each gives its connection back to its pool (which could not close else).
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    for db in [&writer_db, &reader_db] {
        if let Db::Postgres(pool) = db {
            assert_eq!(
                (pool.size(), pool.num_idle()),
                (1, 1),
                "an idle task keeps none"
            );
        }
    }
    drop((ingest, reads));
    assert_eq!(count(&t.db, "SELECT COUNT(*) FROM observations").await, 2);
    writer_db.close().await;
    reader_db.close().await;
    t.drop_db().await;
}

/// Two batches answering the same check-ins at the same moment (two writer tasks, or two
/// processes): each check-in is recorded once, by one of them, and the other batch's answer
/// is told it was already answered — not that the check-in ended, not an error. Each
/// recorded answer is audited once, as its own person.
#[tokio::test]
async fn concurrent_batches_record_each_checkin_once() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let rules: mimamori_core::rules::Thresholds = Default::default();
    let people = due_today(&t.db, c, 12).await;
    let batch: Vec<_> = people
        .iter()
        .map(|(_, ck)| answer_in(*ck, answer(Some(36.7), Some(97))))
        .collect();
    let mut reversed = batch.clone();
    reversed.reverse();
    let (one, two) = tokio::join!(
        observations::answer_checkins(&t.db, &batch, &rules),
        observations::answer_checkins(&t.db, &reversed, &rules),
    );
    // A batch that met the other's rule state fails as a whole (the writer then retries
    // its answers one by one): do that here.
    let mut outcomes = Vec::new();
    for (b, out) in [(&batch, one), (&reversed, two)] {
        match out {
            Ok(out) => outcomes.extend(out),
            Err(_) => {
                for a in b.iter() {
                    outcomes.extend(
                        observations::answer_checkins(&t.db, std::slice::from_ref(a), &rules)
                            .await
                            .unwrap(),
                    );
                }
            }
        }
    }
    let recorded: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.as_ref().unwrap().as_ref().ok())
        .collect();
    assert_eq!(recorded.len(), people.len());
    let refused = outcomes
        .iter()
        .filter(|o| *o.as_ref().unwrap() == Err(observations::Closed::AlreadyAnswered))
        .count();
    assert_eq!(refused, people.len());
    assert_eq!(count(&t.db, "SELECT COUNT(*) FROM observations").await, 12);
    for (p, _) in &people {
        let n: i64 = with_db!(&t.db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'observation.create'
             AND actor_kind = 'person' AND actor_id = $1 AND target_id = $1")
            .bind(*p).fetch_one(pool).await.unwrap());
        assert_eq!(n, 1, "person {p} audited once as themselves");
    }
    t.drop_db().await;
}

/// An answer whose check-in another transaction is closing at that moment waits for it and
/// is then told "already answered" — on PostgreSQL the batch's statement found the check-in
/// open in its snapshot, could not update it once the other committed, and reads its status
/// again.
#[tokio::test]
async fn an_answer_racing_another_close_is_told_already_answered() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let p = person(&t.db, c, today, today).await;
    let ck = todays_checkin(&t.db, p).await;
    let rules: mimamori_core::rules::Thresholds = Default::default();
    let out = with_db!(&t.db, pool => {
        let mut other = pool.begin().await.unwrap();
        sqlx::query("UPDATE checkins SET status = 'answered' WHERE id = $1")
            .bind(ck)
            .execute(&mut *other)
            .await
            .unwrap();
        let batch = [answer_in(ck, answer(Some(36.5), None))];
        let answering = observations::answer_checkins(&t.db, &batch, &rules);
        let closing = async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            other.commit().await.unwrap();
        };
        let (out, ()) = tokio::join!(answering, closing);
        out
    })
    .unwrap();
    assert_eq!(
        *out[0].as_ref().unwrap(),
        Err(observations::Closed::AlreadyAnswered)
    );
    assert_eq!(count(&t.db, "SELECT COUNT(*) FROM observations").await, 0);
    t.drop_db().await;
}

/// A batch no rule fires on (on PostgreSQL written by one autocommit statement after one
/// read, not in a transaction): each answer gets the outcome the transaction gives — the
/// first of two answers to a check-in recorded, the second refused, an unknown check-in
/// reported, an answered one refused — the check-ins are closed and their drafts deleted,
/// each recorded answer is audited once as its person (a staff member's simulated entry as
/// that staff member), and each person's rule state moves one step with the reading.
#[tokio::test]
async fn a_batch_no_rule_fires_on_is_recorded_whole() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let rules: mimamori_core::rules::Thresholds = Default::default();
    let people = due_today(&t.db, c, 4).await;
    let [(a, ca), (b, cb), (e, ce), (f, cf)] = people[..] else {
        unreachable!()
    };
    observations::answer_checkin(&t.db, ce, "web", &answer(Some(36.5), None), &rules)
        .await
        .unwrap()
        .unwrap();
    with_db!(&t.db, pool => sqlx::query(
        "INSERT INTO answer_drafts (checkin_id, answers, updated_at) VALUES ($1, '{}', $2)")
        .bind(ca).bind(now()).execute(pool).await.map(|_| ()).unwrap());
    let mut simulated = answer_in(cf, answer(Some(36.6), Some(98)));
    simulated.simulated_by = Some(77);
    let batch = [
        answer_in(ca, answer(Some(36.8), Some(98))),
        answer_in(cb, answer(Some(36.9), Some(97))),
        answer_in(ca, answer(Some(37.0), None)),
        answer_in(999_999, answer(None, None)),
        answer_in(ce, answer(None, None)),
        simulated,
    ];
    let out = observations::answer_checkins(&t.db, &batch, &rules)
        .await
        .unwrap();
    assert_eq!(out.len(), 6);
    let mut observation_ids = Vec::new();
    for (k, person) in [(0, a), (1, b), (5, f)] {
        let r = out[k].as_ref().unwrap().as_ref().unwrap();
        assert_eq!((r.person_id, r.triggers.len()), (person, 0), "answer {k}");
        let obs = observations::list_for_person(&t.db, SYSTEM, person)
            .await
            .unwrap();
        assert_eq!(obs.len(), 1, "answer {k}");
        assert_eq!(obs[0].id, r.observation_id);
        observation_ids.push(r.observation_id);
    }
    observation_ids.dedup();
    assert_eq!(observation_ids.len(), 3, "each answer its own observation");
    let obs_a = &observations::list_for_person(&t.db, SYSTEM, a)
        .await
        .unwrap()[0];
    assert_eq!((obs_a.temperature_c, obs_a.spo2), (Some(36.8), Some(98)));
    assert_eq!(
        (obs_a.source.as_str(), obs_a.reporter.as_str()),
        ("web", "self")
    );
    let obs_f = &observations::list_for_person(&t.db, SYSTEM, f)
        .await
        .unwrap()[0];
    assert_eq!(
        (obs_f.source.as_str(), obs_f.reporter.as_str()),
        ("simulator", "staff")
    );
    for k in [2, 4] {
        assert_eq!(
            *out[k].as_ref().unwrap(),
            Err(observations::Closed::AlreadyAnswered),
            "answer {k}"
        );
    }
    assert!(matches!(out[3], Err(Error::NotFound(_))));
    for ck in [ca, cb, cf] {
        assert_eq!(checkins::get(&t.db, ck).await.unwrap().status, "answered");
    }
    assert_eq!(count(&t.db, "SELECT COUNT(*) FROM answer_drafts").await, 0);
    for (person, kind, actor, action) in [
        (a, "person", a, "observation.create"),
        (b, "person", b, "observation.create"),
        (e, "person", e, "observation.create"),
        (f, "staff", 77, "observation.create_simulated"),
    ] {
        let n: i64 = with_db!(&t.db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND actor_kind = $2
             AND actor_id = $3 AND target_id = $4")
            .bind(action).bind(kind).bind(actor).bind(person).fetch_one(pool).await.unwrap());
        assert_eq!(n, 1, "person {person} audited once");
    }
    assert_eq!(
        count(
            &t.db,
            "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'observation.create%'"
        )
        .await,
        4
    );
    for (person, seq, n) in [(a, 1, 1), (b, 1, 1), (e, 1, 1), (f, 1, 1)] {
        assert_eq!(rule_state(&t.db, person).await, (seq, n), "person {person}");
    }
    t.drop_db().await;
}

/// A person's rule state as (sequence number, readings folded in).
async fn rule_state(db: &Db, person: i64) -> (i64, u32) {
    let (seq, state): (i64, String) = with_db!(db, pool => sqlx::query_as(
        "SELECT seq, state FROM rule_state WHERE person_id = $1")
        .bind(person).fetch_one(pool).await.unwrap());
    let h: mimamori_core::rules::trend::History = serde_json::from_str(&state).unwrap();
    (seq, h.n)
}

/// A batch whose person's rule state another transaction moves at that moment: on
/// PostgreSQL the batch read the state, ran the rules on it, and its write finds the state
/// no longer the one read — nothing of it is written then, and the answer is recorded again
/// in a transaction, its reading folded onto the other's state (a state written over the
/// other's, or an answer recorded without its reading in the state, would be wrong).
#[tokio::test]
async fn an_answer_racing_a_rule_state_change_folds_onto_it() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let p = person(&t.db, c, today - Duration::days(1), today).await;
    let rules: mimamori_core::rules::Thresholds = Default::default();
    observations::record_by_staff(
        &t.db,
        SYSTEM,
        p,
        "staff",
        "staff",
        now() - Duration::days(1),
        &answer(Some(36.5), None),
        None,
        &rules,
    )
    .await
    .unwrap();
    assert_eq!(rule_state(&t.db, p).await, (1, 1));
    let ck = todays_checkin(&t.db, p).await;
    let out = with_db!(&t.db, pool => {
        let mut other = pool.begin().await.unwrap();
        // Another batch's state: 40 readings folded in, one step on.
        let (state,): (String,) = sqlx::query_as("SELECT state FROM rule_state WHERE person_id = $1")
            .bind(p).fetch_one(&mut *other).await.unwrap();
        let mut h: mimamori_core::rules::trend::History = serde_json::from_str(&state).unwrap();
        h.n = 40;
        sqlx::query("UPDATE rule_state SET state = $1, seq = seq + 1 WHERE person_id = $2")
            .bind(serde_json::to_string(&h).unwrap())
            .bind(p)
            .execute(&mut *other)
            .await
            .unwrap();
        let batch = [answer_in(ck, answer(Some(36.6), Some(97)))];
        let answering = observations::answer_checkins(&t.db, &batch, &rules);
        let moving = async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            other.commit().await.unwrap();
        };
        let (out, ()) = tokio::join!(answering, moving);
        out
    })
    .unwrap();
    let r = out[0].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(r.person_id, p);
    assert_eq!(checkins::get(&t.db, ck).await.unwrap().status, "answered");
    assert_eq!(
        observations::list_for_person(&t.db, SYSTEM, p)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(rule_state(&t.db, p).await, (3, 41));
    assert_eq!(
        count(&t.db, "SELECT COUNT(*) FROM audit_log WHERE action = 'observation.create' AND actor_kind = 'person'").await,
        1
    );
    t.drop_db().await;
}

#[tokio::test]
async fn audit_log_is_append_only() {
    let t = TestDb::new().await;
    with_db!(&t.db, p => audit(p, Actor::System, "test", "person", Some(1), None).await).unwrap();
    let upd = with_db!(&t.db, p => sqlx::query("UPDATE audit_log SET action = 'x'").execute(p).await.map(|_| ()));
    assert!(upd.is_err(), "update must be refused");
    let del =
        with_db!(&t.db, p => sqlx::query("DELETE FROM audit_log").execute(p).await.map(|_| ()));
    assert!(del.is_err(), "delete must be refused");
    assert_eq!(count(&t.db, "SELECT COUNT(*) FROM audit_log").await, 1);
    t.drop_db().await;
}

#[tokio::test]
async fn staff_and_sessions() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    assert_eq!(
        staff::health_centre(&t.db, c).await.unwrap().time_zone,
        "Asia/Tokyo"
    );
    assert_eq!(staff::health_centres(&t.db).await.unwrap().len(), 1);
    assert_eq!(staff::count_health_centres(&t.db).await.unwrap(), 1);
    assert!(
        staff::create_health_centre(&t.db, "x", "1", "Mars/Base")
            .await
            .is_err()
    );
    let s = staff::create_staff(&t.db, c, "nurse1", "hash", "看護師")
        .await
        .unwrap();
    assert!(matches!(
        staff::create_staff(&t.db, c, "nurse1", "h", "x").await,
        Err(Error::Conflict { field: "username" })
    ));
    assert!(matches!(
        staff::create_staff(&t.db, c, "a b", "h", "x").await,
        Err(Error::Invalid(_))
    ));
    assert_eq!(
        staff::staff_by_username(&t.db, "nurse1")
            .await
            .unwrap()
            .unwrap()
            .id,
        s
    );
    assert_eq!(
        staff::staff_by_id(&t.db, s).await.unwrap().username,
        "nurse1"
    );
    sessions::create_session(&t.db, "tok", s, "csrf", Duration::hours(1))
        .await
        .unwrap();
    let sess = sessions::session(&t.db, "tok", Duration::minutes(30))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((sess.staff_id, sess.csrf_token.as_str()), (s, "csrf"));
    assert!(
        sessions::session(&t.db, "other", Duration::minutes(30))
            .await
            .unwrap()
            .is_none()
    );
    // An idle timeout of zero ends it, and it stays ended.
    assert!(
        sessions::session(&t.db, "tok", Duration::zero())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        sessions::session(&t.db, "tok", Duration::minutes(30))
            .await
            .unwrap()
            .is_none()
    );
    sessions::create_session(&t.db, "tok2", s, "c", Duration::hours(1))
        .await
        .unwrap();
    sessions::delete_session(&t.db, "tok2").await.unwrap();
    assert!(
        sessions::session(&t.db, "tok2", Duration::minutes(30))
            .await
            .unwrap()
            .is_none()
    );
    t.drop_db().await;
}

#[tokio::test]
async fn outbox_is_idempotent_and_job_runs_once() {
    let t = TestDb::new().await;
    let msg = |key| outbox::NewMessage {
        channel: "sms",
        to: "+81900",
        subject: None,
        body: "body",
        key,
        audience: Audience::Nobody,
    };
    let a = outbox::put(&t.db, msg("k1")).await.unwrap();
    let b = outbox::put(&t.db, msg("k1")).await.unwrap();
    assert_eq!(a, b);
    assert_eq!(outbox::all(&t.db, 10).await.unwrap().len(), 1);
    let at = Utc.with_ymd_and_hms(2030, 1, 1, 15, 5, 0).unwrap();
    assert!(jobs::try_start(&t.db, "plan-day", at).await.unwrap());
    assert!(!jobs::try_start(&t.db, "plan-day", at).await.unwrap());
    jobs::finish(&t.db, "plan-day", at, "planned 0")
        .await
        .unwrap();
    t.drop_db().await;
}

#[tokio::test]
async fn two_slots_a_day_plan_two_checkins() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let mut i = input(&today.to_string(), &(today + Duration::days(3)).to_string());
    i.checkin_time = "17:00, 09:00".into();
    let id = persons::create(&t.db, Actor::System, c, &i.parse().unwrap(), WINDOW, None)
        .await
        .unwrap();
    assert_eq!(
        persons::slots(&t.db, SYSTEM, id).await.unwrap(),
        [540, 1020]
    );
    let cks = checkins::list_for_person(&t.db, SYSTEM, id).await.unwrap();
    assert_eq!(cks.iter().map(|c| c.slot).collect::<Vec<_>>(), [0, 1]);
    // Tomorrow's run plans both slots, at 09:00 and 17:00 Tokyo time.
    let tomorrow = today + Duration::days(1);
    let at = checkins::slot_instant(chrono_tz::Asia::Tokyo, tomorrow, 5);
    assert_eq!(checkins::plan_day(&t.db, at, WINDOW).await.unwrap(), 2);
    let cks = checkins::list_for_person(&t.db, SYSTEM, id).await.unwrap();
    let due: Vec<_> = cks
        .iter()
        .filter(|c| c.local_date == tomorrow)
        .map(|c| c.due_at)
        .collect();
    assert_eq!(
        due,
        [
            checkins::slot_instant(chrono_tz::Asia::Tokyo, tomorrow, 540),
            checkins::slot_instant(chrono_tz::Asia::Tokyo, tomorrow, 1020)
        ]
    );
    t.drop_db().await;
}

#[tokio::test]
async fn batch_attempts_and_batch_sent() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let a = person(&t.db, c, today, today).await;
    let b = person(&t.db, c, today, today).await;
    with_db!(&t.db, p => sqlx::query("UPDATE checkins SET due_at = $1").bind(now() - Duration::minutes(1)).execute(p).await.unwrap().rows_affected());
    let claimed = checkins::claim_due(&t.db, now(), Duration::minutes(5), 10)
        .await
        .unwrap();
    let keys: Vec<String> = claimed
        .iter()
        .map(|c| checkins::attempt_key(c.id, 0, "sms", 0))
        .collect();
    let items: Vec<checkins::NewAttempt> = claimed
        .iter()
        .zip(&keys)
        .map(|(c, k)| checkins::NewAttempt {
            checkin_id: c.id,
            key: k,
            channel: "sms",
            provider: "outbox",
            kind: "initial",
            claim: Some(&c.claim),
        })
        .collect();
    assert!(
        checkins::begin_attempts(&t.db, &items)
            .await
            .unwrap()
            .is_empty()
    );
    let sent: Vec<checkins::Sent> = claimed
        .iter()
        .zip(&keys)
        .map(|(c, k)| checkins::Sent {
            checkin_id: c.id,
            claim: c.claim.clone(),
            key: k.clone(),
            provider_id: format!("P{}", c.id),
        })
        .collect();
    checkins::mark_sent_many(&t.db, &sent).await.unwrap();
    // Beginning the same batch again (a crashed worker's claim) reports both as sent.
    let again = checkins::begin_attempts(&t.db, &items).await.unwrap();
    assert_eq!(again.len(), 2);
    assert_eq!(again[&keys[0]], format!("P{}", claimed[0].id));
    for p in [a, b] {
        assert_eq!(
            checkins::list_for_person(&t.db, SYSTEM, p).await.unwrap()[0].status,
            "sent"
        );
        assert_eq!(
            checkins::attempts_for_person(&t.db, SYSTEM, p)
                .await
                .unwrap()
                .len(),
            1,
            "no duplicate attempt rows"
        );
    }
    t.drop_db().await;
}

#[tokio::test]
async fn reminders_are_claimed_per_monitoring_type() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let patient = person(&t.db, c, today, today).await;
    let mut i = input(&today.to_string(), &today.to_string());
    i.monitoring_type = "contact".into();
    let contact = persons::create(&t.db, Actor::System, c, &i.parse().unwrap(), WINDOW, None)
        .await
        .unwrap();
    let long_ago = now() - Duration::hours(5);
    with_db!(&t.db, p => sqlx::query("UPDATE checkins SET status = 'sent', sent_at = $1, due_at = $1, deadline_at = $2")
        .bind(long_ago).bind(now() + Duration::hours(5)).execute(p).await.unwrap().rows_affected());
    let got = checkins::claim_reminders(&t.db, "contact", now(), Duration::hours(4), 1, 10)
        .await
        .unwrap();
    assert_eq!(
        got.iter()
            .map(|d| (d.person_id, d.reminders, d.monitoring_type.as_str()))
            .collect::<Vec<_>>(),
        [(contact, 1, "contact")]
    );
    assert!(
        checkins::claim_reminders(&t.db, "contact", now(), Duration::hours(4), 1, 10)
            .await
            .unwrap()
            .is_empty(),
        "max reached / claimed"
    );
    let got = checkins::claim_reminders(&t.db, "patient", now(), Duration::hours(6), 2, 10)
        .await
        .unwrap();
    assert!(got.is_empty(), "not yet 6 hours");
    let got = checkins::claim_reminders(&t.db, "patient", now(), Duration::hours(3), 2, 10)
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|d| d.person_id).collect::<Vec<_>>(),
        [patient]
    );
    t.drop_db().await;
}

#[tokio::test]
async fn organisations_ids_and_reference_data() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let prefs = staff::prefectures(&t.db).await.unwrap();
    assert_eq!(prefs.len(), 47);
    assert_eq!(prefs[12], ("13".to_string(), "東京都".to_string()));
    staff::set_prefecture(&t.db, c, "13").await.unwrap();
    staff::set_municipality(&t.db, c, "港区").await.unwrap();
    let m: String = with_db!(&t.db, p => sqlx::query_scalar("SELECT municipality FROM health_centres WHERE id = $1").bind(c).fetch_one(p).await.unwrap());
    assert_eq!(m, "港区");
    assert!(matches!(
        staff::create_organisation(&t.db, "bakery", "x", c).await,
        Err(Error::Invalid(_))
    ));
    let org = staff::create_organisation(&t.db, "contractor", "コール", c)
        .await
        .unwrap();
    assert_eq!(
        staff::organisations_of(&t.db, c).await.unwrap(),
        [(org, "contractor".to_string(), "コール".to_string())]
    );
    let officer = staff::create_staff(&t.db, c, "officer1", "h", "o")
        .await
        .unwrap();
    staff::set_role(&t.db, officer, Role::AuthOfficer, None)
        .await
        .unwrap();
    let worker = staff::create_staff(&t.db, c, "worker1", "h", "w")
        .await
        .unwrap();
    staff::set_role(&t.db, worker, Role::Contractor, Some(org))
        .await
        .unwrap();
    let m = |staff_id, role, health_centre_id| ids::Manager {
        staff_id,
        role,
        health_centre_id,
    };
    let by_officer = m(officer, Role::AuthOfficer, c);
    let listed = |v: Vec<staff::StaffId>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        listed(ids::list(&t.db, &by_officer).await.unwrap()),
        [worker]
    );
    let ministry = staff::create_staff(&t.db, c, "ministry1", "h", "m")
        .await
        .unwrap();
    staff::set_role(&t.db, ministry, Role::MinistryAdmin, None)
        .await
        .unwrap();
    let by_ministry = m(ministry, Role::MinistryAdmin, c);
    assert_eq!(
        listed(ids::list(&t.db, &by_ministry).await.unwrap()),
        [officer]
    );
    ids::change(&t.db, &by_officer, worker, ids::Change::Suspend, None)
        .await
        .unwrap();
    assert!(
        sessions::login_state(&t.db, worker)
            .await
            .unwrap()
            .suspended
    );
    let audited: i64 = with_db!(&t.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'id.suspend' AND target_id = $1").bind(worker).fetch_one(p).await.unwrap());
    assert_eq!(audited, 1, "audited with the change");
    t.drop_db().await;
}

/// The ID chain runs one way, ministry → officer → staff, and an officer manages only their
/// own body's IDs: the ministry, prefecture, analyst, another officer and another centre's
/// IDs are out of reach ("not found", nothing changed, nothing audited).
#[tokio::test]
async fn the_id_chain_is_enforced_in_the_store() {
    let t = TestDb::new().await;
    let (c, other) = (centre(&t.db).await, centre(&t.db).await);
    let mut made = std::collections::HashMap::new();
    for (name, role, at) in [
        ("officer", Role::AuthOfficer, c),
        ("officer2", Role::AuthOfficer, c),
        ("ministry", Role::MinistryAdmin, c),
        ("pref", Role::PrefectureStaff, c),
        ("analyst", Role::Analyst, c),
        ("nurse", Role::HealthCentreStaff, c),
        ("far_nurse", Role::HealthCentreStaff, other),
    ] {
        let id = staff::create_staff(&t.db, at, name, "h", name)
            .await
            .unwrap();
        staff::set_role(&t.db, id, role, None).await.unwrap();
        made.insert(name, id);
    }
    let officer = ids::Manager {
        staff_id: made["officer"],
        role: Role::AuthOfficer,
        health_centre_id: c,
    };
    for out_of_reach in [
        "officer2",
        "ministry",
        "pref",
        "analyst",
        "far_nurse",
        "officer",
    ] {
        for change in [
            ids::Change::Suspend,
            ids::Change::Reset {
                password_hash: "new",
            },
        ] {
            assert!(
                matches!(
                    ids::change(&t.db, &officer, made[out_of_reach], change, None).await,
                    Err(Error::NotFound(_))
                ),
                "{out_of_reach}"
            );
        }
        let st = sessions::login_state(&t.db, made[out_of_reach])
            .await
            .unwrap();
        assert!(!st.suspended, "{out_of_reach} untouched");
    }
    ids::change(
        &t.db,
        &officer,
        made["nurse"],
        ids::Change::Reset {
            password_hash: "new",
        },
        None,
    )
    .await
    .unwrap();
    let hashes: Vec<String> = with_db!(&t.db, p => sqlx::query_scalar(
        "SELECT password_hash FROM staff WHERE password_hash = 'new'").fetch_all(p).await.unwrap());
    assert_eq!(hashes.len(), 1, "only the nurse's password changed");
    let audits: i64 = with_db!(&t.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'id.%'").fetch_one(p).await.unwrap());
    assert_eq!(audits, 1);

    // Issuing: an officer cannot make an officer or a ministry ID, nor one for another
    // centre (the centre field is ignored for them); a contractor needs its body's name.
    let new = |role, centre, organisation| ids::NewId {
        health_centre_id: centre,
        username: "newid",
        password_hash: "h",
        display_name: "新規",
        role,
        organisation,
        phone: Some("+819000000000"),
        email: None,
    };
    for role in [
        Role::AuthOfficer,
        Role::MinistryAdmin,
        Role::PrefectureStaff,
    ] {
        assert!(matches!(
            ids::issue(&t.db, &officer, new(role, c, None), None).await,
            Err(Error::Invalid(_))
        ));
    }
    assert!(matches!(
        ids::issue(&t.db, &officer, new(Role::Contractor, c, None), None).await,
        Err(Error::Invalid(_))
    ));
    let id = ids::issue(
        &t.db,
        &officer,
        new(Role::Contractor, other, Some("コールセンター")),
        None,
    )
    .await
    .unwrap();
    let s = staff::staff_by_id(&t.db, id).await.unwrap();
    assert_eq!((s.health_centre_id, s.role.as_str()), (c, "contractor"));
    assert!(s.organisation_id.is_some());
    let nurse = ids::Manager {
        staff_id: made["nurse"],
        role: Role::HealthCentreStaff,
        health_centre_id: c,
    };
    assert!(matches!(
        ids::list(&t.db, &nurse).await,
        Err(Error::Forbidden(_))
    ));
    // The centre's English name for English calls: the officer's, in English letters.
    assert!(matches!(
        ids::set_centre_name_en(&t.db, &officer, "みなと", None).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        ids::set_centre_name_en(&t.db, &nurse, "Minato", None).await,
        Err(Error::Forbidden(_))
    ));
    ids::set_centre_name_en(&t.db, &officer, " Minato Health Centre ", None)
        .await
        .unwrap();
    assert_eq!(
        ids::centre_name_en(&t.db, c).await.unwrap(),
        "Minato Health Centre"
    );
    assert_eq!(ids::centre_name_en(&t.db, other).await.unwrap(), "");
    t.drop_db().await;
}

fn fail<'a>(key: &'a str, error: &'a str) -> checkins::Failure<'a> {
    checkins::Failure {
        key,
        channel: "sms",
        status: "failed",
        error,
        permanent: false,
        max_attempts: 2,
        backoff: Duration::seconds(60),
    }
}

/// Changing a person's times re-plans today at once: an unsent check-in moves, one of a
/// removed time is cancelled, a new time is planned, a sent one is left for its answer; a
/// channel the person cannot be reached on is refused with the field named and nothing
/// changed; another centre's staff cannot see the person at all.
#[tokio::test]
async fn a_schedule_change_replans_today() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let tz = chrono_tz::Asia::Tokyo;
    let mut i = input(&today.to_string(), &(today + Duration::days(3)).to_string());
    i.checkin_time = "23:57,23:58".into();
    let id = persons::create(&t.db, Actor::System, c, &i.parse().unwrap(), WINDOW, None)
        .await
        .unwrap();
    let v = hc_viewer(c);
    let change = |times: &str, channel: &str| {
        persons::ScheduleInput {
            checkin_time: times.into(),
            channel: channel.into(),
            ..Default::default()
        }
        .parse()
        .unwrap()
    };
    let due_between = |due: chrono::DateTime<Utc>, minutes: i32| {
        let at = checkins::slot_instant(tz, today, minutes);
        assert!(due >= at && due <= at.max(Utc::now()), "{due} vs {at}");
    };

    persons::update_schedule(&t.db, &v, id, &change("23:59", "voice"), WINDOW, None)
        .await
        .unwrap();
    let p = persons::get(&t.db, SYSTEM, id, None).await.unwrap();
    assert_eq!(p.channel, "voice");
    assert_eq!(persons::slots(&t.db, SYSTEM, id).await.unwrap(), [1439]);
    let cks = checkins::list_for_person(&t.db, SYSTEM, id).await.unwrap();
    let st: Vec<_> = cks.iter().map(|c| (c.slot, c.status.as_str())).collect();
    assert_eq!(st, [(0, "planned"), (1, "cancelled")]);
    due_between(cks[0].due_at, 1439);

    // The first check-in goes out; a new second time is then added.
    with_db!(&t.db, p => sqlx::query("UPDATE checkins SET status = 'sent' WHERE person_id = $1 AND slot = 0")
        .bind(id).execute(p).await.unwrap().rows_affected());
    persons::update_schedule(&t.db, &v, id, &change("23:50,23:59", ""), WINDOW, None)
        .await
        .unwrap();
    let cks = checkins::list_for_person(&t.db, SYSTEM, id).await.unwrap();
    let st: Vec<_> = cks.iter().map(|c| (c.slot, c.status.as_str())).collect();
    assert_eq!(st, [(0, "sent"), (1, "planned")]);
    due_between(cks[0].due_at, 1439);
    due_between(cks[1].due_at, 1439);
    assert_eq!(
        persons::get(&t.db, SYSTEM, id, None).await.unwrap().channel,
        "voice",
        "an empty field keeps what was there"
    );

    // No e-mail address: refused, naming the field; nothing changes.
    let err = persons::update_schedule(&t.db, &v, id, &change("08:00", "email"), WINDOW, None)
        .await
        .unwrap_err();
    match err {
        Error::Invalid(f) => assert_eq!(f[0].field, "channel"),
        e => panic!("{e:?}"),
    }
    assert_eq!(
        persons::slots(&t.db, SYSTEM, id).await.unwrap(),
        [1430, 1439]
    );
    let other = staff::create_health_centre(&t.db, "別保健所", "03-9", "Asia/Tokyo")
        .await
        .unwrap();
    assert!(matches!(
        persons::update_schedule(
            &t.db,
            &hc_viewer(other),
            id,
            &change("08:00", ""),
            WINDOW,
            None
        )
        .await,
        Err(Error::NotFound(_))
    ));
    let bad = persons::ScheduleInput {
        checkin_time: "25:00".into(),
        fallback_channel: "fax".into(),
        ..Default::default()
    }
    .parse()
    .unwrap_err();
    match bad {
        Error::Invalid(f) => assert_eq!(
            f.iter().map(|f| f.field.as_ref()).collect::<Vec<&str>>(),
            ["fallback_channel", "checkin_time"]
        ),
        e => panic!("{e:?}"),
    }
    t.drop_db().await;
}

/// A hospital stay stops the check-ins (today's open one is cancelled, planning skips the
/// person) and leaving hospital restarts them the same day; moves cannot be dated in the
/// future; a contractor may not see residence; the review queue filters by current
/// residence and by assigned outside body.
#[tokio::test]
async fn residence_moves_stop_and_restart_checkins_and_filter_the_queue() {
    use mimamori_core::store::residences::{self, ResidenceInput};
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let mut i = input(&today.to_string(), &(today + Duration::days(5)).to_string());
    i.checkin_time = "23:59".into();
    let id = persons::create(&t.db, Actor::System, c, &i.parse().unwrap(), WINDOW, None)
        .await
        .unwrap();
    let other = person(&t.db, c, today, today + Duration::days(5)).await;
    let v = Viewer {
        staff_id: staff::create_staff(&t.db, c, "nurse-r", "x", "看護師")
            .await
            .unwrap(),
        ..hc_viewer(c)
    };
    let mv = |kind: &str, from: &str| {
        ResidenceInput {
            kind: kind.into(),
            place: "みなと病院".into(),
            from_date: from.into(),
        }
        .parse(today)
    };
    match mv("boat", &(today + Duration::days(1)).to_string()).unwrap_err() {
        Error::Invalid(f) => assert_eq!(
            f.iter().map(|f| f.field.as_ref()).collect::<Vec<&str>>(),
            ["kind", "from_date"]
        ),
        e => panic!("{e:?}"),
    }

    residences::add(&t.db, &v, id, &mv("hospital", "").unwrap(), WINDOW, None)
        .await
        .unwrap();
    let p = persons::get(&t.db, SYSTEM, id, None).await.unwrap();
    assert_eq!(
        (p.status.as_str(), p.residence_kind.as_str()),
        ("admitted", "hospital")
    );
    let st = |id| {
        let db = t.db.clone();
        async move {
            checkins::list_for_person(&db, SYSTEM, id)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.local_date, c.status))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(st(id).await, [(today, "cancelled".to_string())]);
    let tomorrow = checkins::slot_instant(chrono_tz::Asia::Tokyo, today + Duration::days(1), 5);
    assert_eq!(
        checkins::plan_day(&t.db, tomorrow, WINDOW).await.unwrap(),
        1,
        "only the person at home is planned"
    );

    // The queue: both have an open escalation; filters pick by residence and by contractor.
    for p in [id, other] {
        escalations::open(
            &t.db,
            escalations::Raise {
                person_id: p,
                reason: "callback",
                priority: mimamori_core::rules::Priority::High,
                detail: "test",
                actor: mimamori_core::store::Actor::System,
            },
        )
        .await
        .unwrap();
    }
    let org = staff::create_organisation(&t.db, "contractor", "みまもり委託", c)
        .await
        .unwrap();
    mimamori_core::store::assignments::assign(
        &t.db,
        mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
        other,
        org,
        None,
    )
    .await
    .unwrap();
    let q = |f: escalations::QueueFilter<'static>| {
        let db = t.db.clone();
        async move {
            escalations::queue(&db, Actor::System, c, &f, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.person_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        q(escalations::QueueFilter {
            residence: Some("hospital"),
            ..Default::default()
        })
        .await,
        [id]
    );
    assert_eq!(
        q(escalations::QueueFilter {
            organisation_id: Some(org),
            ..Default::default()
        })
        .await,
        [other]
    );
    assert_eq!(q(Default::default()).await.len(), 2);

    let contractor = Viewer {
        staff_id: 9,
        role: Role::Contractor,
        health_centre_id: c,
        organisation_id: Some(org),
    };
    assert!(matches!(
        residences::list(&t.db, Access::Staff(&contractor), other, None).await,
        Err(Error::Forbidden(_))
    ));

    // Back home: under observation again, today's check-in planned again.
    residences::add(
        &t.db,
        &v,
        id,
        &mv("home", &today.to_string()).unwrap(),
        WINDOW,
        None,
    )
    .await
    .unwrap();
    let p = persons::get(&t.db, SYSTEM, id, None).await.unwrap();
    assert_eq!(
        (p.status.as_str(), p.residence_kind.as_str()),
        ("observing", "home")
    );
    assert_eq!(st(id).await[0], (today, "planned".to_string()));
    let hist = residences::list(&t.db, Access::Staff(&v), id, None)
        .await
        .unwrap();
    assert_eq!(
        hist.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
        ["home", "hospital"]
    );
    t.drop_db().await;
}

/// The dev outbox shows a centre only its own people's messages and a staff member only
/// their own login codes; every view is audited (issue 13, leak 3).
#[tokio::test]
async fn outbox_is_scoped_to_the_viewer_and_audited() {
    let t = TestDb::new().await;
    let (a, b) = (centre(&t.db).await, centre(&t.db).await);
    let today = jst_today();
    let pa = person(&t.db, a, today, today).await;
    let pb = person(&t.db, b, today, today).await;
    let nurse_a = staff::create_staff(&t.db, a, "nurse_a", "h", "A")
        .await
        .unwrap();
    let nurse_b = staff::create_staff(&t.db, a, "nurse_b", "h", "B")
        .await
        .unwrap();
    for (key, audience) in [
        ("to-pa", Audience::Person(pa)),
        ("to-pb", Audience::Person(pb)),
        ("code-a", Audience::Staff(nurse_a)),
        ("code-b", Audience::Staff(nurse_b)),
        ("bench", Audience::Nobody),
    ] {
        let m = outbox::NewMessage {
            channel: "sms",
            to: "+81900",
            subject: None,
            body: key,
            key,
            audience,
        };
        outbox::put(&t.db, m).await.unwrap();
    }
    let viewer = Viewer {
        staff_id: nurse_a,
        ..hc_viewer(a)
    };
    let seen: Vec<String> = outbox::list_for(&t.db, &viewer, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(seen, ["code-a", "to-pa"]);
    let other = Viewer {
        staff_id: nurse_b,
        ..hc_viewer(b)
    };
    let seen: Vec<String> = outbox::list_for(&t.db, &other, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(seen, ["code-b", "to-pb"]);
    let views: i64 = with_db!(&t.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'outbox.view'").fetch_one(p).await.unwrap());
    assert_eq!(views, 2);
    assert_eq!(
        outbox::latest_for_staff(&t.db, nurse_a)
            .await
            .unwrap()
            .as_deref(),
        Some("code-a")
    );
    t.drop_db().await;
}

/// Risk-aware silence (issue 12): after one missed day a person aged 65 or more, one with an
/// underlying condition, or one with a recent urgent escalation is escalated at once, with
/// the reason in words; a young healthy person waits for the second miss.
#[tokio::test]
async fn one_missed_day_escalates_a_person_at_high_risk() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let make = |dob: &str| {
        let mut i = input(&today.to_string(), &today.to_string());
        i.date_of_birth = dob.into();
        i.parse().unwrap()
    };
    let mut ids = Vec::new();
    for dob in ["1950-04-01", "1996-04-01", "1996-04-01", "1996-04-01", ""] {
        ids.push(
            persons::create(&t.db, Actor::System, c, &make(dob), WINDOW, None)
                .await
                .unwrap(),
        );
    }
    let (old, ill, recently_urgent, healthy, unknown_age) =
        (ids[0], ids[1], ids[2], ids[3], ids[4]);
    with_db!(&t.db, p => sqlx::query(
        "INSERT INTO person_sections (person_id, section, data, updated_at) VALUES ($1, 'underlying_conditions', $2, $3)")
        .bind(ill).bind(r#"{"diabetes": true}"#).bind(now()).execute(p).await.unwrap().rows_affected());
    let raised = escalations::open(
        &t.db,
        escalations::Raise {
            person_id: recently_urgent,
            reason: "spo2_low",
            priority: mimamori_core::rules::Priority::Urgent,
            detail: "SpO2 91 %",
            actor: Actor::System,
        },
    )
    .await
    .unwrap();
    // Resolved since: it still counts for the next days.
    with_db!(&t.db, p => sqlx::query("UPDATE escalations SET status = 'resolved', resolved_at = $1 WHERE id = $2")
        .bind(now()).bind(raised.escalation_id).execute(p).await.unwrap().rows_affected());
    let (closed, mut escalated) =
        checkins::close_overdue(&t.db, now() + Duration::days(1), &Default::default())
            .await
            .unwrap();
    assert_eq!(closed.len(), 5);
    escalated.sort_unstable();
    assert_eq!(
        escalated,
        [old, ill, recently_urgent],
        "healthy {healthy} and {unknown_age} wait"
    );
    let detail = |id| {
        let t = &t;
        async move {
            escalations::open_for_person(
                &t.db,
                mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
                id,
            )
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.reason == "non_reporting")
            .unwrap()
            .detail
        }
    };
    assert!(detail(old).await.contains("high risk: age"), "says why");
    assert!(detail(ill).await.contains("underlying conditions"));
    assert!(
        detail(recently_urgent)
            .await
            .contains("recent high or urgent escalation")
    );
    t.drop_db().await;
}

/// A staff alert is claimed before it is sent: two workers asking at the same moment never
/// get the same one (the nurse is texted once); a failed send is claimable again at once; an
/// abandoned claim runs out.
#[tokio::test]
async fn staff_alerts_are_claimed_once() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let nurse = staff::create_staff(&t.db, c, "duty1", "h", "当番")
        .await
        .unwrap();
    with_db!(&t.db, p => sqlx::query("UPDATE staff SET on_duty = TRUE, phone = '+819000000001' WHERE id = $1")
        .bind(nurse).execute(p).await.unwrap().rows_affected());
    let person = person(&t.db, c, today, today).await;
    let raised = escalations::open(
        &t.db,
        escalations::Raise {
            person_id: person,
            reason: "urgent_sign",
            priority: mimamori_core::rules::Priority::Urgent,
            detail: "urgent sign",
            actor: Actor::System,
        },
    )
    .await
    .unwrap();
    assert!(raised.notified, "the on-duty nurse is to be told");
    let (a, b) = tokio::join!(
        escalations::pending_notifications(&t.db, 10),
        escalations::pending_notifications(&t.db, 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.len() + b.len(),
        1,
        "one worker gets it, the other nothing"
    );
    let n = a.into_iter().chain(b).next().unwrap();
    assert_eq!(n.staff_id, nurse);
    assert!(
        escalations::pending_notifications(&t.db, 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed"
    );
    escalations::notification_result(&t.db, n.id, Some("503"))
        .await
        .unwrap();
    assert_eq!(
        escalations::pending_notifications(&t.db, 10)
            .await
            .unwrap()
            .len(),
        1,
        "a failed send is tried again"
    );
    // The worker holding it dies: after the claim runs out, another takes it.
    with_db!(&t.db, p => sqlx::query("UPDATE notifications SET claimed_until = $1").bind(now() - Duration::seconds(1))
        .execute(p).await.unwrap().rows_affected());
    assert_eq!(
        escalations::pending_notifications(&t.db, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    t.drop_db().await;
}

/// A worker whose paced batch outlasts the lease renews its claim; another worker then finds
/// nothing to take. Without the renewal the claim would run out and be taken again.
#[tokio::test]
async fn a_renewed_claim_is_not_taken_by_another_worker() {
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    person(&t.db, c, today, today).await;
    person(&t.db, c, today, today).await;
    let lease = Duration::minutes(5);
    let t0 = now() + Duration::days(1);
    let batch = checkins::claim_due(&t.db, t0, lease, 10).await.unwrap();
    assert_eq!(batch.len(), 2);
    let first = batch[0].id;
    // Four minutes on, still sending: the first worker renews only the first (the second
    // was sent meanwhile and left 'sending' for this test, unrenewed).
    assert_eq!(
        checkins::renew_claims(
            &t.db,
            &[first],
            &[&batch[0].claim],
            t0 + Duration::minutes(4)
        )
        .await
        .unwrap(),
        1
    );
    let taken = checkins::claim_due(&t.db, t0 + Duration::minutes(6), lease, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "only the unrenewed claim ran out");
    assert_ne!(taken[0].id, first);
    // The first worker's claim on the check-in now held by another renews nothing.
    assert_eq!(
        checkins::renew_claims(
            &t.db,
            &[batch[1].id],
            &[&batch[1].claim],
            t0 + Duration::minutes(7)
        )
        .await
        .unwrap(),
        0,
        "a claim handed to another batch is not renewed by the old one"
    );
    t.drop_db().await;
}

/// The planner's counts: everyone whose period covers the day, per check-in time (in the
/// centre's time zone, as UTC instants) and channel.
#[tokio::test]
async fn capacity_demand_counts_people_per_time_and_channel() {
    use mimamori_core::store::capacity;
    let t = TestDb::new().await;
    let c = centre(&t.db).await;
    let today = jst_today();
    let end = today + Duration::days(3);
    for _ in 0..2 {
        person(&t.db, c, today, end).await;
    }
    let mut i = input(&today.to_string(), &today.to_string());
    i.channel = "voice".into();
    i.checkin_time = "09:00,17:00".into();
    persons::create(&t.db, Actor::System, c, &i.parse().unwrap(), WINDOW, None)
        .await
        .unwrap();
    let d = capacity::demand_on(&t.db, today).await.unwrap();
    let nine = today.and_hms_opt(0, 0, 0).unwrap().and_utc(); // 09:00 JST
    let got: Vec<(chrono::DateTime<chrono::Utc>, &str, i64)> = d
        .iter()
        .map(|x| (x.due_at, x.channel.as_str(), x.people))
        .collect();
    assert_eq!(
        got,
        [
            (nine, "sms", 2),
            (nine, "voice", 1),
            (nine + Duration::hours(8), "voice", 1)
        ]
    );
    // Tomorrow only the two whose period continues.
    let d = capacity::demand_on(&t.db, today + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(d.iter().map(|x| x.people).sum::<i64>(), 2);
    t.drop_db().await;
}

/// A transaction dropped while it starts (a handler whose client went away) leaves no
/// connection inside an open transaction: every later autocommit write on the pool is
/// committed and seen from another connection. (sqlx's PostgreSQL `begin` dropped after its
/// `BEGIN` was sent returned the connection in a transaction, and the writes after it were
/// silently rolled back.)
#[tokio::test]
async fn a_transaction_dropped_while_it_starts_loses_no_later_write() {
    use mimamori_core::db::BeginWrite;
    let t = TestDb::new().await;
    macro_rules! check {
        ($pool:expr) => {{
            // One connection, so each write goes to the one the dropped `BEGIN` used.
            let pool = $pool;
            sqlx::query("CREATE TABLE cancel_probe (n BIGINT NOT NULL)")
                .execute(&pool)
                .await
                .unwrap();
            for n in 0..60_i64 {
                // Polled once or a little more, then dropped: at every point of its start.
                let wait = std::time::Duration::from_micros((n as u64 % 6) * 50);
                let _ = tokio::time::timeout(wait, pool.begin_write()).await;
                sqlx::query("INSERT INTO cancel_probe (n) VALUES ($1)")
                    .bind(n)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            pool.close().await;
        }};
    }
    match &t.db {
        Db::Postgres(_) => check!(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&t.url)
                .await
                .unwrap()
        ),
        Db::Sqlite(_) => check!(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(&t.url)
                .await
                .unwrap()
        ),
    }
    let seen: i64 = with_db!(&t.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM cancel_probe").fetch_one(p).await.unwrap());
    assert_eq!(seen, 60, "every write after a dropped start is committed");
    t.drop_db().await;
}
