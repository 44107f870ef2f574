//! The person-page and session caches (`web::cache`, `mimamori_core::changes`): on
//! PostgreSQL pages and sessions come from memory, and every write made anywhere — through
//! this process, or straight into the database as another process would — reaches the page;
//! on SQLite (no change feed) nothing is ever served from memory. Each test runs on both.
use mimamori_core::{Db, access::Role, store::staff, with_db};
use sqlx::postgres::PgListener;

use crate::helpers::*;

fn on_pg(app: &TestApp) -> bool {
    matches!(app.db, Db::Postgres(_))
}

/// A person whose observation starts tomorrow: no check-in is sent during the test, so
/// the only writes are the test's own.
fn quiet() -> serde_json::Value {
    let tomorrow = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
        + chrono::Duration::days(1);
    serde_json::json!({"observation_start": tomorrow, "observation_end": tomorrow})
}

/// The person page as `client` sees it: status, `x-cache`, body.
async fn view(app: &TestApp, client: &reqwest::Client, id: i64) -> (u16, String, String) {
    let r = client
        .get(app.url(&format!("/persons/{id}")))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let cache = r
        .headers()
        .get("x-cache")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, cache, r.text().await.unwrap())
}

/// Views until `ok` holds (another process's write reaches this one within milliseconds;
/// 5 s is the give-up point). Returns how many views it took.
async fn until(
    app: &TestApp,
    client: &reqwest::Client,
    id: i64,
    ok: impl Fn(u16, &str) -> bool,
) -> usize {
    for n in 1..=100 {
        let (status, _, body) = view(app, client, id).await;
        if ok(status, &body) {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the page never showed the change");
}

/// Views until the page comes from memory (PostgreSQL: the feed starts listening just after
/// the app starts), or once on SQLite.
async fn warm(app: &TestApp, client: &reqwest::Client, id: i64) {
    if !on_pg(app) {
        view(app, client, id).await;
        return;
    }
    for _ in 0..100 {
        if view(app, client, id).await.1 == "hit" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the page was never kept");
}

async fn record(app: &TestApp, id: i64, t: f64) {
    let a = mimamori_core::store::observations::Answer {
        temperature: Some(mimamori_core::domain::Temperature::new("t", t).unwrap()),
        ..Default::default()
    };
    mimamori_core::store::observations::record_by_staff(
        &app.db,
        mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
        id,
        "self",
        "web",
        chrono::Utc::now(),
        &a,
        None,
        &Default::default(),
    )
    .await
    .unwrap();
}

async fn reads_audited(app: &TestApp, id: i64) -> i64 {
    with_db!(&app.db, p => sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'person.read' AND target_id = $1")
        .bind(id).fetch_one(p).await.unwrap())
}

#[tokio::test]
async fn the_page_is_kept_audited_and_follows_writes_made_elsewhere() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let id = app.register("+819011110001", "sms", quiet()).await;
    warm(&app, &app.client, id).await;
    let audited = reads_audited(&app, id).await;
    let (_, first, body) = view(&app, &app.client, id).await;
    let (status, second, again) = view(&app, &app.client, id).await;
    assert_eq!(status, 200);
    // PostgreSQL serves the views from memory; SQLite reads each again.
    for c in [first, second] {
        assert_eq!(c, if on_pg(&app) { "hit" } else { "miss" });
    }
    assert_eq!(body, again, "a kept page is the page");
    assert!(
        again.contains(&csrf),
        "the viewer's own CSRF token is in the forms"
    );
    // Served from memory or not, every view is in the audit log before it is shown.
    assert_eq!(reads_audited(&app, id).await, audited + 2);

    // Another process records an observation straight into the database.
    record(&app, id, 39.4).await;
    let views = until(&app, &app.client, id, |_, b| b.contains("39.4 ℃")).await;
    if !on_pg(&app) {
        assert_eq!(views, 1, "SQLite reads every view from the database");
    }
    // And the new page is kept in turn.
    let (_, cache, body) = view(&app, &app.client, id).await;
    assert!(body.contains("39.4 ℃"));
    assert_eq!(cache, if on_pg(&app) { "hit" } else { "miss" });

    // A nurse's own entry through the console is on the very next view (no waiting for
    // the feed): the write forgets the page before its response leaves.
    let r = app
        .post_form(
            &format!("/persons/{id}/observations"),
            &[
                ("csrf", &csrf),
                ("temperature", "38.8"),
                ("spo2", ""),
                ("reporter", "staff"),
                ("note", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, cache, body) = view(&app, &app.client, id).await;
    assert_eq!(cache, "miss");
    assert!(body.contains("38.8 ℃"));
    app.finish().await;
}

#[tokio::test]
async fn each_viewer_gets_their_own_token_and_their_role_s_page() {
    let app = spawn_app().await;
    let a = app.login().await;
    let id = app.register("+819011110002", "sms", quiet()).await;
    warm(&app, &app.client, id).await;
    let (_, _, page_a) = view(&app, &app.client, id).await;
    // A second nurse session: the kept page, with its own token and never the first one's.
    let other = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let b = login_as(&app.base, &other, "nurse").await;
    assert_ne!(a, b);
    let (_, cache, page_b) = view(&app, &other, id).await;
    assert_eq!(cache, if on_pg(&app) { "hit" } else { "miss" });
    assert!(page_a.contains(&a) && !page_a.contains(&b));
    assert!(page_b.contains(&b) && !page_b.contains(&a));
    assert!(!page_b.contains("csrf-"), "no placeholder left in the page");

    // A contractor assigned the person gets the contractor's page (no review timeline, which
    // is the health centre's), built for it; one not assigned gets nothing.
    let org = staff::create_organisation(&app.db, "contractor", "委託先", app.centre)
        .await
        .unwrap();
    mimamori_core::store::assignments::assign(
        &app.db,
        mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
        id,
        org,
        None,
    )
    .await
    .unwrap();
    let contractor = app.user("contractor1", Role::Contractor, Some(org)).await;
    let (status, cache, page_c) = view(&app, &contractor, id).await;
    assert_eq!((status, cache.as_str()), (200, "miss"));
    assert!(page_a.contains("対応の記録") && !page_c.contains("対応の記録"));
    let org2 = staff::create_organisation(&app.db, "contractor", "別の委託先", app.centre)
        .await
        .unwrap();
    let stranger = app.user("contractor2", Role::Contractor, Some(org2)).await;
    let (status, _, _) = view(&app, &stranger, id).await;
    assert_eq!(status, 404);
    // Taking the assignment away (in the database, as another process would) takes the
    // page away from the contractor too.
    with_db!(&app.db, p => { sqlx::query("DELETE FROM person_assignments WHERE person_id = $1")
        .bind(id).execute(p).await.unwrap(); });
    until(&app, &contractor, id, |s, _| s == 404).await;
    app.finish().await;
}

#[tokio::test]
async fn a_session_ended_anywhere_is_refused() {
    let app = spawn_app().await;
    app.login().await;
    let id = app.register("+819011110003", "sms", quiet()).await;
    warm(&app, &app.client, id).await;
    // Suspension, "log out everywhere" or expiry in another process: the row goes.
    with_db!(&app.db, p => { sqlx::query("DELETE FROM sessions").execute(p).await.unwrap(); });
    let views = until(&app, &app.client, id, |s, _| s == 303).await;
    if !on_pg(&app) {
        assert_eq!(views, 1);
    }
    // Logging out here ends the session here at once.
    let csrf = app.login().await;
    assert_eq!(view(&app, &app.client, id).await.0, 200);
    assert_eq!(view(&app, &app.client, id).await.0, 200);
    let r = app.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(view(&app, &app.client, id).await.0, 303);
    app.finish().await;
}

/// The triggers of migration 0016, table by table: what each write announces. Proves no
/// write the observation page shows can reach the database unannounced.
#[tokio::test]
async fn every_write_the_page_shows_is_announced() {
    let app = spawn_app().await;
    let Db::Postgres(pool) = &app.db else {
        // SQLite has no change feed; its pages are never kept (the tests above).
        app.finish().await;
        return;
    };
    app.login().await;
    let id = app
        .register("+819011110004", "sms", serde_json::json!({}))
        .await;
    let mut l = PgListener::connect_with(pool).await.unwrap();
    l.listen(mimamori_core::changes::CHANNEL).await.unwrap();
    let person = format!("p{id}");
    let p: &str = &person;
    let ck: i64 = sqlx::query_scalar("SELECT id FROM checkins WHERE person_id = $1 LIMIT 1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    let org = staff::create_organisation(&app.db, "contractor", "x", app.centre)
        .await
        .unwrap();
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "persons",
            format!("UPDATE persons SET name = 'y' WHERE id = {id}"),
            vec![p],
        ),
        (
            "observations",
            format!(
                "INSERT INTO observations (person_id, source, reporter, observed_at, symptoms, created_at) VALUES ({id}, 'web', 'self', now(), '{{}}', now())"
            ),
            vec![p],
        ),
        (
            "checkins (update)",
            format!("UPDATE checkins SET attempts = attempts + 1 WHERE id = {ck}"),
            vec![p],
        ),
        (
            "checkins (insert)",
            format!(
                "INSERT INTO checkins (person_id, local_date, slot, due_at, deadline_at) VALUES ({id}, '2099-01-01', 0, now(), now())"
            ),
            vec!["*"],
        ),
        (
            "contact_attempts",
            format!(
                "INSERT INTO contact_attempts (checkin_id, channel, provider, idempotency_key, status, created_at, updated_at) VALUES ({ck}, 'sms', 'dev', 'k-{ck}', 'sent', now(), now())"
            ),
            vec![p],
        ),
        (
            "escalations",
            format!(
                "INSERT INTO escalations (person_id, reason, priority, opened_at, updated_at) VALUES ({id}, 'callback', 'high', now(), now())"
            ),
            vec![p],
        ),
        (
            "escalation_events",
            format!(
                "INSERT INTO escalation_events (escalation_id, person_id, kind, at) SELECT id, {id}, 'note', now() FROM escalations WHERE person_id = {id}"
            ),
            vec![p],
        ),
        (
            "phone_followups",
            format!(
                "INSERT INTO phone_followups (person_id, staff_id, outcome, at) SELECT {id}, id, 'busy', now() FROM staff LIMIT 1"
            ),
            vec![p],
        ),
        (
            "person_slots",
            format!("UPDATE person_slots SET minutes = minutes WHERE person_id = {id}"),
            vec![p],
        ),
        (
            "person_shares",
            format!(
                "INSERT INTO person_shares (person_id, health_centre_id, created_at) VALUES ({id}, {}, now())",
                app.centre
            ),
            vec![p],
        ),
        (
            "person_assignments",
            format!(
                "INSERT INTO person_assignments (person_id, organisation_id, created_at) VALUES ({id}, {org}, now())"
            ),
            vec![p],
        ),
        (
            "health_centres",
            format!(
                "UPDATE health_centres SET time_zone = 'Asia/Tokyo' WHERE id = {}",
                app.centre
            ),
            vec!["*"],
        ),
        (
            "staff (name, shown on review timelines)",
            "UPDATE staff SET display_name = display_name || '.'".into(),
            vec!["*"],
        ),
        ("sessions", "DELETE FROM sessions".into(), vec!["s"]),
        // Not announced: bookkeeping no page shows.
        (
            "staff (failed logins)",
            "UPDATE staff SET failed_logins = 0".into(),
            vec![],
        ),
    ];
    // One transaction per case, between two markers: a transaction's announcements reach
    // listeners together and in order, so what lies between the markers is exactly what
    // the case announced, whatever the app's own workers announce meanwhile.
    for (i, (what, sql, expected)) in cases.into_iter().enumerate() {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(mimamori_core::changes::CHANNEL)
            .bind(format!("begin {i}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(mimamori_core::changes::CHANNEL)
            .bind(format!("end {i}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let mut between = None::<Vec<String>>;
        loop {
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), l.recv())
                .await
                .unwrap_or_else(|_| panic!("{what}: announcements did not arrive"))
                .unwrap();
            let p = n.payload().to_string();
            if p == format!("begin {i}") {
                between = Some(Vec::new());
            } else if p == format!("end {i}") {
                break;
            } else if let Some(b) = between.as_mut() {
                b.push(p);
            }
        }
        let mut got = between.expect("begin marker");
        got.dedup();
        let want: Vec<String> = expected.iter().map(|e| e.to_string()).collect();
        assert_eq!(got, want, "{what}");
    }
    // The listener holds one of the test pool's connections; closing the pool waits for it.
    drop(l);
    app.finish().await;
}

/// A lost feed connection: announcements may have been missed, so nothing is served from
/// memory until the feed is back, and then from an empty cache.
#[tokio::test]
async fn a_lost_feed_falls_back_to_the_database() {
    let app = spawn_app().await;
    let Db::Postgres(pool) = &app.db else {
        app.finish().await;
        return;
    };
    app.login().await;
    let id = app.register("+819011110005", "sms", quiet()).await;
    warm(&app, &app.client, id).await;
    // The change feed's connection is cut (not the alert worker's, which listens on its own
    // channel), and a write lands while nobody listens.
    let cut: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND query ILIKE 'LISTEN%mimamori_changes%'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(cut, 1, "one change-feed connection per process");
    record(&app, id, 39.9).await;
    until(&app, &app.client, id, |_, b| b.contains("39.9 ℃")).await;
    // The feed comes back (within its retry delay) and pages are kept again.
    let mut hit = false;
    for _ in 0..100 {
        if view(&app, &app.client, id).await.1 == "hit" {
            hit = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(hit, "pages are kept again once the feed is back");
    assert!(view(&app, &app.client, id).await.2.contains("39.9 ℃"));
    app.finish().await;
}
