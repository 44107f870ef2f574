//! The permission matrix, tested from the same table the store enforces
//! (`mimamori_core::access`): every role × every person route and console page × a record
//! in and out of its scope → allowed or refused exactly as the table says. Prints the count.
use mimamori_core::{
    access::{self, Action, FieldGroup, Role, Scope},
    store::{Actor, persons, staff},
};

use crate::helpers::{TestApp, spawn_app};

struct User {
    role: Role,
    client: reqwest::Client,
    csrf: String,
}

fn today() -> String {
    chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
        .to_string()
}

async fn person(app: &TestApp, centre: i64, phone: &str) -> i64 {
    let p = persons::PersonInput {
        name: format!("対象者{phone}"),
        email: format!("{phone}@example.jp"),
        channel: "email".into(),
        observation_start: today(),
        observation_end: today(),
        ..Default::default()
    }
    .parse()
    .unwrap();
    persons::create(
        &app.db,
        Actor::System,
        centre,
        &p,
        chrono::Duration::hours(10),
        None,
    )
    .await
    .unwrap()
}

async fn login(app: &TestApp, username: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let csrf = crate::helpers::login_as(&app.base, &client, username).await;
    (client, csrf)
}

/// What the table says for reading/writing a group of a record that is or is not in scope.
fn expect(role: Role, in_scope: bool, group: FieldGroup, action: Action, ok: u16) -> u16 {
    if !in_scope || access::scope(role) == Scope::NoPersons {
        404
    } else if access::allowed(role, group, action)
        && access::allowed(role, FieldGroup::Basic, Action::Read)
    {
        ok
    } else {
        403
    }
}

#[tokio::test]
async fn every_role_sees_exactly_its_slice() {
    let app = spawn_app().await;
    // Two health centres in prefecture 13, one in 27.
    let a = app.centre;
    let b = staff::create_health_centre(&app.db, "B保健所", "0", "Asia/Tokyo")
        .await
        .unwrap();
    let c = staff::create_health_centre(&app.db, "C保健所", "0", "Asia/Tokyo")
        .await
        .unwrap();
    for (centre, pref) in [(a, "13"), (b, "13"), (c, "27")] {
        staff::set_prefecture(&app.db, centre, pref).await.unwrap();
    }
    let inside = person(&app, a, "in").await;
    let outside = person(&app, c, "out").await;
    let hash: String = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar("SELECT password_hash FROM staff WHERE username = 'nurse'").fetch_one(p).await.unwrap());

    let mut users = Vec::new();
    for role in Role::ALL {
        let username = format!("u_{}", role.as_str());
        let home = if role == Role::PrefectureStaff { b } else { a };
        let id = staff::create_staff(&app.db, home, &username, &hash, role.as_str())
            .await
            .unwrap();
        let org = match role {
            Role::MedicalInstitution | Role::Contractor | Role::LodgingFacility => {
                let kind = match role {
                    Role::MedicalInstitution => "medical_institution",
                    Role::Contractor => "contractor",
                    _ => "lodging_facility",
                };
                let org = staff::create_organisation(&app.db, kind, &username, a)
                    .await
                    .unwrap();
                staff::assign(&app.db, inside, org).await.unwrap();
                Some(org)
            }
            _ => None,
        };
        staff::set_role(&app.db, id, role, org).await.unwrap();
        staff::set_totp(&app.db, id, Some(crate::helpers::TOTP_SECRET))
            .await
            .unwrap();
        let (client, csrf) = login(&app, &username).await;
        users.push(User { role, client, csrf });
    }

    let mut checked = 0;
    for u in &users {
        let hc = u.role == Role::HealthCentreStaff;
        let get = |path: String| {
            let c = u.client.clone();
            let url = app.url(&path);
            async move { c.get(url).send().await.unwrap() }
        };
        // Pages that belong to the health centre.
        for page in ["/escalations", "/outbox", "/simulator", "/persons/new"] {
            let want = if hc { 200 } else { 403 };
            assert_eq!(
                get(page.into()).await.status().as_u16(),
                want,
                "{:?} {page}",
                u.role
            );
            checked += 1;
        }
        assert_eq!(
            get("/".into()).await.status().as_u16(),
            if hc { 200 } else { 303 },
            "{:?} /",
            u.role
        );
        checked += 1;
        for (record, in_scope) in [(inside, true), (outside, false)] {
            let read = expect(u.role, in_scope, FieldGroup::Basic, Action::Read, 200);
            for path in [
                format!("/persons/{record}"),
                format!("/api/v1/persons/{record}"),
            ] {
                assert_eq!(
                    get(path.clone()).await.status().as_u16(),
                    read,
                    "{:?} {path}",
                    u.role
                );
                checked += 1;
            }
            let ho = expect(
                u.role,
                in_scope,
                FieldGroup::HealthObservation,
                Action::Read,
                200,
            );
            for path in [
                format!("/api/v1/persons/{record}/observations"),
                format!("/api/v1/persons/{record}/checkins"),
            ] {
                assert_eq!(
                    get(path.clone()).await.status().as_u16(),
                    ho,
                    "{:?} {path}",
                    u.role
                );
                checked += 1;
            }
            let write = expect(
                u.role,
                in_scope,
                FieldGroup::HealthObservation,
                Action::Write,
                303,
            );
            let r = u
                .client
                .post(app.url(&format!("/persons/{record}/observations")))
                .form(&[
                    ("csrf", u.csrf.as_str()),
                    ("temperature", "36.8"),
                    ("reporter", "staff"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status().as_u16(),
                write,
                "{:?} POST observation on {record}",
                u.role
            );
            checked += 1;
            // Lists show the record exactly when it may be read.
            let html = get("/persons?list=all".into()).await.text().await.unwrap();
            assert_eq!(
                html.contains(&format!("/persons/{record}\"")),
                read == 200,
                "{:?} /persons shows {record}",
                u.role
            );
            checked += 1;
            // The cohort is a health-observation view.
            let r = get("/cohort".into()).await;
            if access::allowed(u.role, FieldGroup::HealthObservation, Action::Read) {
                let html = r.text().await.unwrap();
                assert_eq!(
                    html.contains(&format!("/persons/{record}\"")),
                    read == 200,
                    "{:?} /cohort shows {record}",
                    u.role
                );
            } else {
                assert_eq!(r.status().as_u16(), 403, "{:?} /cohort", u.role);
            }
            checked += 1;
        }
    }
    // Writes that were refused left nothing behind.
    let obs: i64 = app.count("SELECT COUNT(*) FROM observations").await;
    let writers = Role::ALL
        .iter()
        .filter(|r| expect(**r, true, FieldGroup::HealthObservation, Action::Write, 303) == 303)
        .count() as i64;
    assert_eq!(obs, writers, "one observation per role allowed to write");
    println!(
        "access matrix: checked {checked} cases ({} roles)",
        users.len()
    );
    assert_eq!(checked, Role::ALL.len() * 19);
    app.finish().await;
}
