//! The permission matrix, tested from the same table the store enforces
//! (`mimamori_core::access`): every role × every person route and console page × a record
//! in and out of its scope → allowed or refused exactly as the table says. Prints the count.
use mimamori_core::{
    access::{self, Action, FieldGroup, Role, Scope},
    store::{Actor, persons, sessions, staff},
};

use crate::helpers::{TestApp, spawn_app, today};

struct User {
    role: Role,
    client: reqwest::Client,
    csrf: String,
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
                mimamori_core::store::assignments::assign(
                    &app.db,
                    mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
                    inside,
                    org,
                    None,
                )
                .await
                .unwrap();
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
        // Pages of the officer (and, for IDs, the ministry), and one's own account.
        let officer = u.role == Role::AuthOfficer;
        for (page, allowed) in [
            ("/audit", officer),
            ("/audit.csv", officer),
            ("/ids", officer || u.role == Role::MinistryAdmin),
            ("/account", true),
        ] {
            assert_eq!(
                get(page.into()).await.status().as_u16(),
                if allowed { 200 } else { 403 },
                "{:?} {page}",
                u.role
            );
            checked += 1;
        }
        // Health-centre actions: registering through the API, assigning, sharing.
        let r = u.client.post(app.url("/api/v1/persons")).json(&serde_json::json!({
            "name": "x", "email": "x@example.jp", "channel": "email", "observation_start": today(), "observation_end": today()
        })).send().await.unwrap();
        assert_eq!(
            r.status().as_u16(),
            if hc { 201 } else { 403 },
            "{:?} POST /api/v1/persons",
            u.role
        );
        checked += 1;
        for action in ["assign", "share"] {
            let field = if action == "assign" {
                "organisation_id"
            } else {
                "health_centre_id"
            };
            let r = u
                .client
                .post(app.url(&format!("/persons/{inside}/{action}")))
                .form(&[("csrf", u.csrf.as_str()), (field, "999999")])
                .send()
                .await
                .unwrap();
            // Health-centre staff pass the guard and get a validation error for the bogus target.
            assert_eq!(
                r.status().as_u16(),
                if hc { 422 } else { 403 },
                "{:?} POST {action}",
                u.role
            );
            checked += 1;
        }
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
    assert_eq!(
        app.count("SELECT COUNT(*) FROM persons").await,
        3,
        "only health-centre staff registered one"
    );
    let obs: i64 = app.count("SELECT COUNT(*) FROM observations").await;
    let writers = Role::ALL
        .iter()
        .filter(|r| expect(**r, true, FieldGroup::HealthObservation, Action::Write, 303) == 303)
        .count() as i64;
    assert_eq!(obs, writers, "one observation per role allowed to write");

    // Field by field: the person object (GET and every search item) carries exactly the
    // groups the role may read. The person is in hospital: residence and "admitted" say so.
    mimamori_core::with_db!(&app.db, p => sqlx::query(
        "UPDATE persons SET status = 'admitted', residence_kind = 'hospital', workplace = '港区役所', address = '港区1-1' WHERE id = $1")
        .bind(inside).execute(p).await.unwrap().rows_affected());
    let mut fields_checked = 0;
    for u in &users {
        if expect(u.role, true, FieldGroup::Basic, Action::Read, 200) != 200 {
            continue;
        }
        let one: serde_json::Value = u
            .client
            .get(app.url(&format!("/api/v1/persons/{inside}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let list: serde_json::Value = u
            .client
            .get(app.url("/api/v1/persons?q=対象者in"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let residence = access::allowed(u.role, FieldGroup::Residence, Action::Read);
        let outside_body = matches!(u.role, Role::Contractor | Role::LodgingFacility);
        for (how, obj) in [("GET", &one), ("search item", &list["items"][0])] {
            assert_eq!(
                obj["id"].as_i64(),
                Some(inside),
                "{:?} {how}: {obj}",
                u.role
            );
            assert_eq!(
                obj.get("residence_kind").is_some(),
                residence,
                "{:?} {how} residence_kind: {obj}",
                u.role
            );
            assert_eq!(
                obj["status"],
                if residence { "admitted" } else { "paused" },
                "{:?} {how} status",
                u.role
            );
            for f in ["workplace", "address"] {
                assert_eq!(
                    obj[f].is_null(),
                    outside_body,
                    "{:?} {how} {f}: {obj}",
                    u.role
                );
            }
            assert!(obj["name"].is_string() && obj.get("email").is_some());
            fields_checked += 1;
        }
    }
    println!(
        "access matrix: checked {checked} cases ({} roles), {fields_checked} person objects field by field",
        users.len()
    );
    assert_eq!(checked, Role::ALL.len() * 26);
    assert_eq!(
        fields_checked, 10,
        "5 roles that read basic information × GET and search"
    );
    app.finish().await;
}

/// The ID chain: the officer issues a contractor ID (password shown once, second factor by
/// SMS), a nurse assigns a person, the contractor logs in and sees them; suspension ends the
/// contractor's session; "government staff only" hides the centre's people from outside bodies.
#[tokio::test]
async fn officer_issues_suspends_and_restricts_ids() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let hash: String = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar("SELECT password_hash FROM staff WHERE username = 'nurse'").fetch_one(p).await.unwrap());
    let officer = staff::create_staff(&app.db, app.centre, "officer", &hash, "認証 担当")
        .await
        .unwrap();
    staff::set_role(&app.db, officer, Role::AuthOfficer, None)
        .await
        .unwrap();
    staff::set_totp(&app.db, officer, Some(crate::helpers::TOTP_SECRET))
        .await
        .unwrap();
    let (oc, ocsrf) = login(&app, "officer").await;
    assert_eq!(
        app.get("/ids").await.status(),
        403,
        "nurses do not manage IDs"
    );
    // A bad request names the fields and issues nothing.
    let r = oc
        .post(app.url("/ids"))
        .form(&[
            ("csrf", ocsrf.as_str()),
            ("username", "callco"),
            ("display_name", "x"),
            ("role", "contractor"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(
        staff::staff_by_username(&app.db, "callco")
            .await
            .unwrap()
            .is_none()
    );
    let r = oc
        .post(app.url("/ids"))
        .form(&[
            ("csrf", ocsrf.as_str()),
            ("username", "callco"),
            ("display_name", "コールセンター"),
            ("role", "contractor"),
            ("organisation", "みまもりコール"),
            ("phone", "080-5555-0000"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let password: String = html
        .split(r#"class="password">"#)
        .nth(1)
        .unwrap()
        .chars()
        .take(16)
        .collect();
    let p = person(&app, app.centre, "ass").await;
    let org = staff::organisations_of(&app.db, app.centre).await.unwrap()[0].0;
    let r = app
        .post_form(
            &format!("/persons/{p}/assign"),
            &[
                ("csrf", csrf.as_str()),
                ("organisation_id", &org.to_string()),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);

    // The contractor logs in with the issued password and the SMS code.
    let cc = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let v: serde_json::Value = cc
        .post(app.url("/api/v1/session"))
        .json(&serde_json::json!({"username": "callco", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["mfa"], "sms");
    let code: String = app
        .wait_for_message("+818055550000")
        .await
        .body
        .split("code: ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let r = cc
        .post(app.url("/api/v1/session/mfa"))
        .json(&serde_json::json!({"challenge": v["challenge"], "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        cc.get(app.url(&format!("/api/v1/persons/{p}/observations")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Basic information for outside bodies: the narrow reading by default (no address), all
    // of it once the centre's officer chooses so — and back.
    mimamori_core::with_db!(&app.db, pool => sqlx::query("UPDATE persons SET address = '港区芝公園1-1', workplace = '港商事' WHERE id = $1")
        .bind(p).execute(pool).await.unwrap().rows_affected());
    let url = app.url(&format!("/api/v1/persons/{p}"));
    let read = |cc: reqwest::Client, url: String| async move {
        cc.get(url)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    };
    let narrow = read(cc.clone(), url.clone()).await;
    assert!(
        narrow["name"].is_string() && narrow["address"].is_null() && narrow["workplace"].is_null(),
        "{narrow}"
    );
    for (on, address) in [("1", Some("港区芝公園1-1")), ("", None)] {
        let r = oc
            .post(app.url("/ids/outside-basic"))
            .form(&[("csrf", ocsrf.as_str()), ("on", on)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let seen = read(cc.clone(), url.clone()).await;
        assert_eq!(seen["address"].as_str(), address, "on={on:?}");
        assert!(seen["residence_kind"].is_null(), "residence never");
    }

    // Government staff only: outside bodies lose the centre's people at once.
    oc.post(app.url("/ids/government-only"))
        .form(&[("csrf", ocsrf.as_str()), ("on", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        cc.get(app.url(&format!("/api/v1/persons/{p}/observations")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    oc.post(app.url("/ids/government-only"))
        .form(&[("csrf", ocsrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        cc.get(app.url(&format!("/api/v1/persons/{p}/observations")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Suspension ends the session and refuses new logins.
    let callco = staff::staff_by_username(&app.db, "callco")
        .await
        .unwrap()
        .unwrap()
        .id;
    let r = oc
        .post(app.url(&format!("/ids/{callco}/suspend")))
        .form(&[("csrf", ocsrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        cc.get(app.url(&format!("/api/v1/persons/{p}")))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let r = cc
        .post(app.url("/api/v1/session"))
        .json(&serde_json::json!({"username": "callco", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The chain runs one way: the centre's officer cannot suspend or reset the ministry (nor
    // see its new password), and does not even see that ID in the list.
    let admin = staff::create_staff(&app.db, app.centre, "mhlw", &hash, "厚労省")
        .await
        .unwrap();
    staff::set_role(&app.db, admin, Role::MinistryAdmin, None)
        .await
        .unwrap();
    for step in ["suspend", "reset"] {
        let r = oc
            .post(app.url(&format!("/ids/{admin}/{step}")))
            .form(&[("csrf", ocsrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{step}");
        assert!(!r.text().await.unwrap().contains(r#"class="password""#));
    }
    let list = oc
        .get(app.url("/ids"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!list.contains("mhlw") && list.contains("callco"));
    let actions: Vec<String> = mimamori_core::with_db!(&app.db, pool => sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE actor_id = $1 AND (action LIKE 'id.%' OR action LIKE 'centre.%') ORDER BY id").bind(officer).fetch_all(pool).await.unwrap());
    assert_eq!(
        actions,
        [
            "id.issue",
            "centre.outside_basic_full",
            "centre.outside_basic_narrow",
            "centre.government_only",
            "centre.outside_allowed",
            "id.suspend"
        ]
    );
    app.finish().await;
}

/// The top of the ID chain: the ministry issues and suspends officers, and nothing else.
#[tokio::test]
async fn the_ministry_issues_officer_ids_only() {
    let app = spawn_app().await;
    let b = staff::create_health_centre(&app.db, "B保健所", "0", "Asia/Tokyo")
        .await
        .unwrap();
    let hash: String = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar("SELECT password_hash FROM staff WHERE username = 'nurse'").fetch_one(p).await.unwrap());
    let admin = staff::create_staff(&app.db, app.centre, "mhlw", &hash, "厚労省")
        .await
        .unwrap();
    staff::set_role(&app.db, admin, Role::MinistryAdmin, None)
        .await
        .unwrap();
    staff::set_totp(&app.db, admin, Some(crate::helpers::TOTP_SECRET))
        .await
        .unwrap();
    let (mc, mcsrf) = login(&app, "mhlw").await;
    let form = |role: &'static str, user: &'static str| {
        vec![
            ("csrf", mcsrf.clone()),
            ("username", user.to_string()),
            ("display_name", "担当".to_string()),
            ("role", role.to_string()),
            ("email", format!("{user}@example.jp")),
            ("health_centre_id", b.to_string()),
        ]
    };
    let r = mc
        .post(app.url("/ids"))
        .form(&form("health_centre_staff", "x1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "the ministry issues officers only");
    let r = mc
        .post(app.url("/ids"))
        .form(&form("auth_officer", "officer-b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let officer = staff::staff_by_username(&app.db, "officer-b")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (officer.role.as_str(), officer.health_centre_id),
        ("auth_officer", b)
    );
    let nurse = staff::staff_by_username(&app.db, "nurse")
        .await
        .unwrap()
        .unwrap()
        .id;
    let r = mc
        .post(app.url(&format!("/ids/{nurse}/suspend")))
        .form(&[("csrf", mcsrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "staff IDs are their officer's business");
    let r = mc
        .post(app.url(&format!("/ids/{}/suspend", officer.id)))
        .form(&[("csrf", mcsrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        sessions::login_state(&app.db, officer.id)
            .await
            .unwrap()
            .suspended
    );
    app.finish().await;
}

/// Related health centres [関係保健所]: sharing gives the other centre access at once.
#[tokio::test]
async fn sharing_with_a_related_health_centre() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let b = staff::create_health_centre(&app.db, "B保健所", "0", "Asia/Tokyo")
        .await
        .unwrap();
    let hash: String = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar("SELECT password_hash FROM staff WHERE username = 'nurse'").fetch_one(p).await.unwrap());
    let nb = staff::create_staff(&app.db, b, "nurse-b", &hash, "B 看護師")
        .await
        .unwrap();
    staff::set_totp(&app.db, nb, Some(crate::helpers::TOTP_SECRET))
        .await
        .unwrap();
    let (bc, _) = login(&app, "nurse-b").await;
    let p = person(&app, app.centre, "shared").await;
    assert_eq!(
        bc.get(app.url(&format!("/persons/{p}")))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = app
        .post_form(
            &format!("/persons/{p}/share"),
            &[
                ("csrf", csrf.as_str()),
                ("health_centre_id", &app.centre.to_string()),
            ],
        )
        .await;
    assert_eq!(r.status(), 422, "sharing with oneself is refused");
    let r = app
        .post_form(
            &format!("/persons/{p}/share"),
            &[
                ("csrf", csrf.as_str()),
                ("health_centre_id", &b.to_string()),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        bc.get(app.url(&format!("/persons/{p}")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        bc.get(app.url(&format!("/api/v1/persons/{p}/observations")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert!(
        bc.get(app.url("/persons"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains(&format!("/persons/{p}\""))
    );
    app.finish().await;
}

/// A console import's progress page is its starter's only: another member of the same centre
/// who learns the token finds nothing there (the batch page itself is access-checked as any).
#[tokio::test]
async fn an_imports_progress_page_is_its_starters_only() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let oc = app.user("nurse2", Role::HealthCentreStaff, None).await;
    let post = |fields, file| app.post_multipart("/imports", fields, file);
    let csv = "case_number,report_type,diagnosis_date,diagnosis_method,doctor_name,institution_name,name,date_of_birth,phone,onset_date,sex,municipality\n\
               C1,patient,2022-01-10,pcr,医師,病院,患者 一,1950-01-01,090-4000-0001,2022-01-09,female,港区\n";
    let r = post(
        vec![("csrf", csrf.clone()), ("mapping", String::new())],
        Some(csv.as_bytes().to_vec()),
    )
    .await;
    assert_eq!(r.status(), 200, "the dry run");
    let page = r.text().await.unwrap();
    let token = crate::helpers::go_ahead_token(&page, "the dry run's go-ahead token");
    let r = post(vec![("csrf", csrf), ("token", token.clone())], None).await;
    assert!(r.status().is_redirection(), "the import starts");
    let progress = format!("/imports/0?token={token}");
    // The starter follows it to the batch; the other member finds nothing.
    let mut mine = 0;
    for _ in 0..100 {
        mine = app.get(&progress).await.status().as_u16();
        if mine == 303 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(mine, 303, "the starter is led to the batch");
    let r = oc.get(app.url(&progress)).send().await.unwrap();
    assert_eq!(r.status(), 404, "another's progress page");
    assert!(!r.text().await.unwrap().contains("/imports/1"));
    app.finish().await;
}

/// A dry run with nothing to write — every row refused, or every row imported before — offers
/// no go-ahead (there is nothing to import): it says so, and leads back to the form.
#[tokio::test]
async fn a_dry_run_with_nothing_to_import_offers_no_go_ahead() {
    let app = spawn_app().await;
    let csrf = app.login().await;
    let post = |fields, file| app.post_multipart("/imports", fields, file);
    let head = "case_number,report_type,diagnosis_date,diagnosis_method,doctor_name,institution_name,name,date_of_birth,phone,onset_date,sex,municipality\n";
    let refused = format!(
        "{head}C1,patient,2022-13-10,pcr,医師,病院,患者 一,1950-01-01,090-4000-0001,2022-01-09,female,港区\n"
    );
    let r = post(
        vec![("csrf", csrf.clone()), ("mapping", String::new())],
        Some(refused.into_bytes()),
    )
    .await;
    assert_eq!(r.status(), 200, "the dry run");
    let page = r.text().await.unwrap();
    assert!(
        !page.contains("name=\"token\"")
            && page.contains("新たに取り込む行がありません")
            && page.contains("href=\"/imports\""),
        "no go-ahead for a file whose every row is refused: {page}"
    );
    // Imported once, the same file checked again has nothing new either.
    let good = format!(
        "{head}C1,patient,2022-01-10,pcr,医師,病院,患者 一,1950-01-01,090-4000-0001,2022-01-09,female,港区\n"
    );
    let page = post(
        vec![("csrf", csrf.clone()), ("mapping", String::new())],
        Some(good.clone().into_bytes()),
    )
    .await
    .text()
    .await
    .unwrap();
    let token = crate::helpers::go_ahead_token(&page, "a go-ahead for a new row");
    crate::helpers::go_ahead_and_wait(&app, &csrf, &token).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 1);
    let page = post(
        vec![("csrf", csrf), ("mapping", String::new())],
        Some(good.into_bytes()),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        !page.contains("name=\"token\"") && page.contains("新たに取り込む行がありません"),
        "no go-ahead for a file imported before: {page}"
    );
    app.finish().await;
}

/// The import files the console holds at once stay within `http.import_files_mb` (each
/// counted twice, for its report): a file past the room left is told to retry (503 with
/// Retry-After, the reason on the form, nothing written), and room comes back when a file is
/// let go — replaced by the same member's next file, or imported.
#[tokio::test]
async fn the_files_held_for_imports_stay_within_their_room() {
    let app = crate::helpers::spawn_app_with(|c| c.http.import_files_mb = 1).await;
    let csrf = app.login().await;
    let post = |fields, file| app.post_multipart("/imports", fields, file);
    let dry_run = |bytes: Vec<u8>| {
        post(
            vec![("csrf", csrf.clone()), ("mapping", String::new())],
            Some(bytes),
        )
    };
    // ~600 KB: counted 1.2 MB, over the 1 MB room.
    let big = crate::helpers::occurrence_csv(6_000, "B");
    assert!(big.len() > 512 * 1024);
    let r = dry_run(big.clone()).await;
    assert_eq!(r.status(), 503, "past the room");
    assert_eq!(r.headers()["retry-after"], "60");
    let page = r.text().await.unwrap();
    assert!(
        page.contains("受け付けられる量がいっぱいです")
            && page.contains("mimamori import")
            && page.contains("少し待ってから")
            && !page.contains("次の項目を確認してください"),
        "the reason, and what to do: {page}"
    );
    // ~300 KB: fits; the same member's next file replaces it (and its room).
    let small = crate::helpers::occurrence_csv(3_000, "S");
    assert!(small.len() < 512 * 1024 && small.len() > 256 * 1024);
    assert_eq!(dry_run(small.clone()).await.status(), 200);
    let page = dry_run(small).await.text().await.unwrap();
    let token = crate::helpers::go_ahead_token(
        &page,
        "the second check's go-ahead: the first one's room was given back",
    );
    // Waiting for its go-ahead, it holds its room: a ~450 KB file does not fit beside it.
    let mid = crate::helpers::occurrence_csv(4_600, "M");
    assert!(mid.len() > 400 * 1024 && mid.len() < 512 * 1024);
    // (Checked by another member: the same member's new file would replace the waiting one.)
    let (other, other_csrf) = app
        .user_with_csrf("nurse2", Role::HealthCentreStaff, None)
        .await;
    let r = crate::helpers::post_multipart_as(
        &other,
        &app.url("/imports"),
        vec![("csrf", other_csrf), ("mapping", String::new())],
        Some(mid.clone()),
    )
    .await;
    assert_eq!(
        r.status(),
        503,
        "no room beside a file waiting for its go-ahead"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 0);
    crate::helpers::go_ahead_and_wait(&app, &csrf, &token).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 3_000);
    // Imported, the file is let go: the larger one now fits.
    assert_eq!(
        dry_run(mid).await.status(),
        200,
        "room given back after the import"
    );
    app.finish().await;
}

/// A member who chooses a newer file while their first is still being checked: whichever
/// check ends last, the newer file's report is the one that waits for the go-ahead; the
/// first file's progress page says it was set aside (not that it expired), and its room is
/// given back.
#[tokio::test]
async fn a_newer_file_is_kept_whichever_check_ends_last() {
    let app = crate::helpers::spawn_app_with(|c| c.http.request_timeout_secs = 1).await;
    let csrf = app.login().await;
    let (first, newer) = crate::helpers::newer_file_while_checking(&app, &csrf).await;
    let token = crate::helpers::go_ahead_token(&newer, "the newer file's go-ahead");
    let page = app.get(&first).await.text().await.unwrap();
    assert!(
        page.contains("新しいファイルが選ばれました") && page.contains("href=\"/imports\""),
        "the first file was set aside, and the page says so: {page}"
    );
    // The newer file's report still waits for its go-ahead, and is the one imported.
    let r = app.get(&format!("/imports/pending/{token}")).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains(&format!("name=\"token\" value=\"{token}\"")),
        "the newer file's go-ahead is still offered"
    );
    crate::helpers::go_ahead_and_wait(&app, &csrf, &token).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM import_rows WHERE case_number LIKE 'A%'")
            .await,
        0,
        "nothing of the first file"
    );
    app.finish().await;
}

/// A file whose dry run takes longer than the upload's request may wait (here a fifth of a
/// 1 s request limit) is checked in the background: the upload answers with a progress page
/// that counts the rows read (kept up to date by a script, or by hand with its link), its starter's only, which leads to the
/// dry run's report and its go-ahead when the check ends; the import then runs as before.
#[tokio::test]
async fn a_long_dry_run_goes_on_behind_a_progress_page() {
    let app = crate::helpers::spawn_app_with(|c| c.http.request_timeout_secs = 1).await;
    let csrf = app.login().await;
    let oc = app.user("nurse2", Role::HealthCentreStaff, None).await;
    let csv = crate::helpers::occurrence_csv(3000, "C");
    let post = |fields, file| app.post_multipart("/imports", fields, file);
    let r = post(
        vec![("csrf", csrf.clone()), ("mapping", String::new())],
        Some(csv),
    )
    .await;
    assert_eq!(r.status(), 303, "answered before the check ends");
    let progress = r.headers()["location"].to_str().unwrap().to_string();
    let token = progress.split("token=").nth(1).unwrap().to_string();
    let page = app.get(&progress).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("/static/progress.js")
            && page.contains(&format!("href=\"{progress}\""))
            && !page.contains("http-equiv")
            && page.contains("ファイルを確認しています"),
        "the progress page keeps itself up to date, with a link to do it by hand: {page}"
    );
    let r = oc.get(app.url(&progress)).send().await.unwrap();
    assert_eq!(r.status(), 404, "another's progress page");
    let mut status = 200;
    for _ in 0..600 {
        status = app.get(&progress).await.status().as_u16();
        if status != 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, 303, "the check ends");
    let r = app.get(&format!("/imports/pending/{token}")).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(
        page.contains(&format!("name=\"token\" value=\"{token}\"")),
        "the go-ahead: {page}"
    );
    assert!(
        page.contains("<dd>3,000</dd>"),
        "the dry run's counts, grouped: {page}"
    );
    let r = oc
        .get(app.url(&format!("/imports/pending/{token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "another's dry run");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM persons").await,
        0,
        "a dry run writes nothing"
    );
    crate::helpers::go_ahead_and_wait(&app, &csrf, &token).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM persons").await, 3000);
    // The batch's report of every row, streamed a page at a time.
    let batch = app
        .get(&format!("/imports/0?token={token}"))
        .await
        .headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    let r = app.get(&format!("{batch}/report.csv")).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = r.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3001, "a header and every row");
    assert!(
        lines[1].starts_with("2,C0,created,") && lines[3000].starts_with("3001,C2999,created,")
    );
    app.finish().await;
}
