//! Demo data: one health centre, one staff login and ~50 people with a week of
//! observations, so a fresh install has a living console. Names and numbers are fictional.
use chrono::{Duration, Utc};

use crate::{
    Db, Result,
    db::now,
    domain::{Spo2, Temperature},
    rules::{self, model},
    store::{Actor, checkins, escalations, observations, persons, registry, staff},
    with_db,
};

const FAMILY: &[&str] = &[
    "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤",
];
const FAMILY_KANA: &[&str] = &[
    "サトウ",
    "スズキ",
    "タカハシ",
    "タナカ",
    "イトウ",
    "ワタナベ",
    "ヤマモト",
    "ナカムラ",
    "コバヤシ",
    "カトウ",
];
const GIVEN_KANA: &[&str] = &[
    "ハナコ",
    "タロウ",
    "ヒナ",
    "ヒロト",
    "ユイ",
    "レン",
    "サクラ",
    "ケンイチ",
    "ミサキ",
    "ショウタ",
];
const GIVEN: &[&str] = &[
    "花子",
    "太郎",
    "陽菜",
    "大翔",
    "結衣",
    "蓮",
    "さくら",
    "健一",
    "美咲",
    "翔太",
];

pub struct DemoLogin {
    pub health_centre_id: i64,
    pub username: String,
    /// A follow-up contractor's login (same password).
    pub contractor_username: String,
}

/// Loads the demo set. `password_hash` is the argon2id hash of the demo password chosen by
/// the caller. Deterministic apart from dates, which follow today.
pub async fn load(
    db: &Db,
    username: &str,
    password_hash: &str,
    people: usize,
) -> Result<DemoLogin> {
    let centre =
        staff::create_health_centre(db, "みなと保健所（デモ）", "03-0000-0000", "Asia/Tokyo")
            .await?;
    let staff_id = staff::create_staff(db, centre, username, password_hash, "デモ 保健師").await?;
    // A follow-up contractor [健康フォローアップ業務受託機関] with its own login; it sees the
    // people assigned to it and their health observations only.
    let contractor =
        staff::create_organisation(db, "contractor", "みまもりコール（委託・デモ）", centre)
            .await?;
    let contractor_staff = staff::create_staff(
        db,
        centre,
        &format!("{username}-contractor"),
        password_hash,
        "委託 オペレーター",
    )
    .await?;
    staff::set_role(
        db,
        contractor_staff,
        crate::access::Role::Contractor,
        Some(contractor),
    )
    .await?;
    // Second factor by SMS (the dev outbox shows the code on the login page), and the nurse
    // is on duty so urgent escalations notify her.
    staff::set_contact(db, staff_id, Some("+819099990001"), None).await?;
    staff::set_contact(db, contractor_staff, Some("+819099990002"), None).await?;
    with_db!(db, p => { sqlx::query("UPDATE staff SET on_duty = TRUE WHERE id = $1").bind(staff_id).execute(p).await?; });
    // A login for every other role, each with an SMS second factor; outside bodies get some
    // people assigned below.
    staff::set_prefecture(db, centre, "13").await?;
    staff::set_municipality(db, centre, "港区").await?;
    let hospital =
        staff::create_organisation(db, "medical_institution", "みなと総合病院（デモ）", centre)
            .await?;
    let hotel =
        staff::create_organisation(db, "lodging_facility", "宿泊療養ホテル（デモ）", centre)
            .await?;
    let others = [
        (
            "officer",
            crate::access::Role::AuthOfficer,
            None,
            "認証 担当者",
        ),
        (
            "prefecture",
            crate::access::Role::PrefectureStaff,
            None,
            "都 調整本部",
        ),
        (
            "hospital",
            crate::access::Role::MedicalInstitution,
            Some(hospital),
            "病院 医師",
        ),
        (
            "hotel",
            crate::access::Role::LodgingFacility,
            Some(hotel),
            "ホテル 看護師",
        ),
        ("analyst", crate::access::Role::Analyst, None, "分析 担当"),
        (
            "ministry",
            crate::access::Role::MinistryAdmin,
            None,
            "厚労省 管理者",
        ),
    ];
    for (i, (suffix, role, org, name)) in others.into_iter().enumerate() {
        let id = staff::create_staff(
            db,
            centre,
            &format!("{username}-{suffix}"),
            password_hash,
            name,
        )
        .await?;
        staff::set_role(db, id, role, org).await?;
        staff::set_contact(db, id, Some(&format!("+8190999900{:02}", i + 10)), None).await?;
    }
    let tz: chrono_tz::Tz = "Asia/Tokyo".parse().expect("valid zone");
    let today = checkins::local_date(tz, Utc::now());
    let window = Duration::hours(10);
    let nurse = crate::access::Viewer {
        staff_id,
        role: crate::access::Role::HealthCentreStaff,
        health_centre_id: centre,
        organisation_id: None,
    };
    let mut last_case: Option<i64> = None;
    // Courses from the population model, reproducible.
    let sims = model::cohort(people * 8 + 64, today - Duration::days(30), 20, 17);
    for i in 0..people {
        let name = format!(
            "{} {}",
            FAMILY[i % FAMILY.len()],
            GIVEN[(i / FAMILY.len() + i) % GIVEN.len()]
        );
        let started = (i % 6) as i64 + 2;
        let given = (i / FAMILY.len() + i) % GIVEN.len();
        let contact = i % 5 == 4;
        let input = persons::PersonInput {
            name,
            name_kana: format!("{} {}", FAMILY_KANA[i % FAMILY.len()], GIVEN_KANA[given]),
            sex: ["female", "male"][given % 2].into(),
            date_of_birth: format!(
                "{}-{:02}-{:02}",
                1940 + (i * 7) % 70,
                1 + i % 12,
                1 + i % 28
            ),
            prefecture_code: "13".into(),
            municipality: "港区".into(),
            onset_date: if contact {
                String::new()
            } else {
                (today - Duration::days(started)).to_string()
            },
            last_exposure_date: if contact {
                (today - Duration::days(started)).to_string()
            } else {
                String::new()
            },
            source_person_id: last_case.filter(|_| contact),
            period_override_reason: "デモデータ".into(),
            phone: format!("090-0000-{:04}", 1000 + i),
            email: format!("demo{i}@example.jp"),
            channel: ["sms", "sms", "email", "voice"][i % 4].into(),
            monitoring_type: if i % 5 == 4 { "contact" } else { "patient" }.into(),
            observation_start: (today - Duration::days(started)).to_string(),
            observation_end: (today + Duration::days(10 - started)).to_string(),
            checkin_time: "09:00".into(),
            ..Default::default()
        };
        let p = input.parse()?;
        let person = persons::create(db, Actor::Staff(staff_id), centre, &p, window, None).await?;
        if !contact {
            last_case = Some(person);
            // A positive test and the severity for every case; an investigation for some.
            let test = registry::TestInput {
                specimen_date: (today - Duration::days(started)).to_string(),
                result: "positive".into(),
                laboratory: "みなと検査センター".into(),
                ..Default::default()
            }
            .parse(today)?;
            registry::add_test(db, &nurse, person, &test, None).await?;
            let level = if i % 7 == 0 { "moderate1" } else { "mild" };
            registry::add_severity(
                db,
                &nurse,
                person,
                (level, today - Duration::days(started)),
                None,
            )
            .await?;
            if i % 4 == 0 {
                let b = registry::BehaviourInput {
                    on_date: (today - Duration::days(started + 1)).to_string(),
                    place: ["職場（港区）", "居酒屋みなと", "家族の集まり"][i % 3].into(),
                    setting: ["work", "restaurant", "home"][i % 3].into(),
                    people_met: "同僚・家族".into(),
                    ..Default::default()
                }
                .parse(today)?;
                registry::add_behaviour(db, &nurse, person, &b, None).await?;
            }
        }
        if i % 3 == 0 {
            crate::store::assignments::assign(
                db,
                crate::access::Access::Staff(&nurse),
                person,
                contractor,
                None,
            )
            .await?;
        }
        if i % 10 == 1 {
            crate::store::assignments::assign(
                db,
                crate::access::Access::Staff(&nurse),
                person,
                hospital,
                None,
            )
            .await?;
        }
        if i % 10 == 2 {
            crate::store::assignments::assign(
                db,
                crate::access::Access::Staff(&nurse),
                person,
                hotel,
                None,
            )
            .await?;
        }
        // Past days: answered check-ins with observations from the population model (every
        // 9th person deteriorating: the end of such a course, SpO2 falling; the others the
        // start of a mild one); every 7th person skips a day. The rules run over each
        // person's course as they would have live, so the review queue shows what they raise.
        let sim = pick(&sims, i, started as usize);
        let rules = rules::Thresholds::default();
        let mut history = rules::trend::History::default();
        let onset = Some(today - Duration::days(started));
        for d in (1..=started).rev() {
            let date = today - Duration::days(d);
            let due = checkins::slot_instant(tz, date, 9 * 60);
            let missed = i % 7 == 3 && d == 1;
            let cid: i64 = with_db!(db, pool => sqlx::query_scalar(
                "INSERT INTO checkins (person_id, local_date, slot, due_at, deadline_at, status, attempts, sent_at, closed_at)
                 VALUES ($1, $2, 0, $3, $4, $5, 0, $3, $6) RETURNING id")
                .bind(person).bind(date).bind(due).bind(due + window)
                .bind(if missed { "missed" } else { "answered" })
                .bind(if missed { due + window } else { due + Duration::minutes(17) })
                .fetch_one(pool).await?);
            if missed {
                continue;
            }
            let Some(r) = sim.get((started - d) as usize) else {
                continue;
            };
            let mut a = observations::Answer {
                temperature: Some(Temperature::new(
                    "temperature",
                    r.temperature.clamp(34.0, 42.0),
                )?),
                spo2: Some(Spo2::new("spo2", r.spo2.clamp(70, 100))?),
                symptoms: r.symptoms.clone(),
                choices: r.choices.clone(),
                ..Default::default()
            };
            let urgent = r.spo2 <= 92 && r.symptoms.get("breathless") == Some(&true);
            a.yes_no("urgent_sudden_breathless", urgent, true);
            a.yes_no("urgent_chest_pain", false, true);
            let symptoms = a.symptoms_json();
            let at = due + Duration::minutes(17);
            with_db!(db, pool => { sqlx::query(
                "INSERT INTO observations (person_id, checkin_id, source, reporter, observed_at, temperature_c, spo2, symptoms, urgent, created_at)
                 VALUES ($1, $2, 'demo', 'self', $3, $4, $5, $6, $7, $8)")
                .bind(person).bind(cid).bind(at).bind(a.temperature.map(Temperature::value))
                .bind(a.spo2.map(Spo2::value)).bind(symptoms).bind(a.urgent).bind(now())
                .execute(pool).await?; });
            for tr in rules::trend::step(
                &rules,
                &mut history,
                &rules::reading_of(&a, at),
                date,
                onset,
            ) {
                escalations::open(
                    db,
                    escalations::Raise {
                        person_id: person,
                        reason: tr.reason,
                        priority: tr.priority,
                        detail: &tr.detail,
                        actor: crate::store::Actor::System,
                    },
                )
                .await?;
            }
        }
        if i % 7 == 3 {
            escalations::open(
                db,
                escalations::Raise {
                    person_id: person,
                    reason: "non_reporting",
                    priority: rules::Priority::High,
                    detail: "demo: no answer yesterday",
                    actor: crate::store::Actor::System,
                },
            )
            .await?;
        }
    }
    Ok(DemoLogin {
        health_centre_id: centre,
        username: username.into(),
        contractor_username: format!("{username}-contractor"),
    })
}

/// The readings of demo person `i` for `n` days: the end of a deteriorating course for every
/// 9th person (SpO2 falling towards the critical day), the start of a recovering or steady
/// one for the others. Always `n` readings (model people are picked until one has enough).
fn pick(sims: &[model::SimPerson], i: usize, n: usize) -> Vec<model::SimReading> {
    let deteriorating = i.is_multiple_of(9);
    let fits = |p: &&model::SimPerson| {
        p.readings.len() >= n
            && if deteriorating {
                p.course == model::Course::Deteriorating && p.critical.is_some()
            } else {
                matches!(p.course, model::Course::Recovering | model::Course::Steady)
            }
    };
    let found: Vec<&model::SimPerson> = sims.iter().filter(fits).collect();
    match found.get(i % found.len().max(1)) {
        Some(p) if deteriorating => p.readings[p.readings.len() - n..].to_vec(),
        Some(p) => p.readings[..n].to_vec(),
        // A cohort too small to have one (never with the demo's sizes): a steady course.
        None => sims
            .iter()
            .find(|p| p.readings.len() >= n)
            .map(|p| p.readings[..n].to_vec())
            .unwrap_or_default(),
    }
}
