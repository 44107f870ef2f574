//! Importing occurrence-report records on a real database (SQLite, or PostgreSQL with
//! `MIMAMORI_TEST_DATABASE_URL`): duplicates in kana variants, a re-positive chain of three
//! reports, invalid rows of every kind, CP932 and XLSX input read alike, a second run that
//! creates nothing, an interrupted run resumed, the ID officer's undo, and a file longer
//! than a report keeps (every row in the CSV).
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use chrono::{Duration, NaiveDate, Utc};
use mimamori_core::{
    Db, Error,
    access::{Role, Viewer},
    import::{self, Mapping},
    periods::Periods,
    store::{
        Actor, imports,
        persons::{self, PersonInput},
        staff,
    },
    testing::TestDb,
    with_db,
};

fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Tokyo)
        .date_naive()
}

fn none(_: usize, _: usize) {}

async fn centre(db: &Db) -> (Viewer, Viewer) {
    centre_named(db, "みなと保健所").await
}

/// A health centre with a nurse and an ID officer (user names after the centre's id).
async fn centre_named(db: &Db, name: &str) -> (Viewer, Viewer) {
    let c = staff::create_health_centre(db, name, "03-1111-2222", "Asia/Tokyo")
        .await
        .unwrap();
    let s = staff::create_staff(db, c, &format!("nurse{c}"), "x", "看護師")
        .await
        .unwrap();
    let o = staff::create_staff(db, c, &format!("officer{c}"), "x", "担当")
        .await
        .unwrap();
    let v = Viewer {
        staff_id: s,
        role: Role::HealthCentreStaff,
        health_centre_id: c,
        organisation_id: None,
    };
    (
        v,
        Viewer {
            staff_id: o,
            role: Role::AuthOfficer,
            ..v
        },
    )
}

fn nesid() -> Mapping {
    Mapping::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows/nesid.mapping.toml"),
    )
    .unwrap()
}

const HEADERS: [&str; 15] = [
    "NESID番号",
    "届出区分",
    "診断年月日",
    "診断方法",
    "医師名",
    "医療機関名",
    "氏名",
    "フリガナ",
    "性別",
    "生年月日",
    "電話番号",
    "20 備考",
    "発病年月日",
    "検体採取日",
    "市区町村",
];

/// (case, kind, diagnosis, name kana, sex, date of birth, phone, remarks, doctor)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

const ROWS: [Row; 11] = [
    (
        "1001",
        "患者",
        "令和4年1月10日",
        "ヤマダ ハナコ",
        "女",
        "昭和25年4月1日",
        "090-1111-0001",
        "",
        "医師 一郎",
    ),
    // The same case registered twice, in half-width kana: a duplicate.
    (
        "1002",
        "患者",
        "2022/01/11",
        "ﾔﾏﾀﾞ ﾊﾅｺ",
        "2",
        "1950/04/01",
        "09011110001",
        "",
        "医師 一郎",
    ),
    // The same person again after her period ended: re-positive (found by the person).
    (
        "1003",
        "患者",
        "R4.3.1",
        "やまだ はなこ",
        "女",
        "1950-04-01",
        "090-1111-0001",
        "",
        "医師 二郎",
    ),
    // And again, named in the remarks: the third report of the chain.
    (
        "1004",
        "患者",
        "令和4年6月1日",
        "ヤマダ ハナコ",
        "女",
        "1950-04-01",
        "090-1111-0001",
        "再陽性（前回 NESID番号 １００３）",
        "医師 三郎",
    ),
    // Invalid rows, one of each kind.
    (
        "",
        "患者",
        "令和4年1月12日",
        "スズキ イチロウ",
        "男",
        "1960-01-01",
        "090-2222-0001",
        "",
        "医師 一郎",
    ),
    (
        "1006",
        "患者",
        "令和4年2月30日",
        "スズキ ジロウ",
        "男",
        "1960-01-02",
        "090-2222-0002",
        "",
        "医師 一郎",
    ),
    (
        "1007",
        "患者",
        "令和4年1月12日",
        "スズキ サブロウ",
        "X",
        "1960-01-03",
        "090-2222-0003",
        "",
        "医師 一郎",
    ),
    (
        "1008",
        "患者",
        "令和4年1月12日",
        "スズキ シロウ",
        "男",
        "1960-01-04",
        "090-2222-0004",
        "",
        "",
    ),
    (
        "1001",
        "患者",
        "令和4年1月12日",
        "スズキ ゴロウ",
        "男",
        "1960-01-05",
        "090-2222-0005",
        "",
        "医師 一郎",
    ),
    // Someone already registered (linked), and someone whose case has ended (re-positive).
    (
        "1010",
        "患者",
        "令和4年1月12日",
        "タナカ タロウ",
        "男",
        "1970-07-07",
        "090-3333-0001",
        "",
        "医師 一郎",
    ),
    (
        "1011",
        "無症状病原体保有者",
        "令和4年1月12日",
        "サトウ ケイコ",
        "女",
        "1980-08-08",
        "090-3333-0002",
        "",
        "医師 一郎",
    ),
];

fn cells(r: &Row) -> Vec<String> {
    let onset = if r.1 == "患者" { r.2 } else { "" };
    [
        r.0,
        r.1,
        r.2,
        "PCR",
        r.8,
        "テスト病院",
        "テスト 氏名",
        r.3,
        r.4,
        r.5,
        r.6,
        r.7,
        onset,
        r.2,
        "港区",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn csv_text(rows: &[Row]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADERS).unwrap();
    for r in rows {
        w.write_record(cells(r)).unwrap();
    }
    String::from_utf8(w.into_inner().unwrap()).unwrap()
}

fn xlsx(rows: &[Row]) -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (j, h) in HEADERS.iter().enumerate() {
        ws.write_string(0, j as u16, *h).unwrap();
    }
    for (i, r) in rows.iter().enumerate() {
        for (j, c) in cells(r).iter().enumerate() {
            // The case number as a number, as spreadsheets keep it.
            if j == 0 && !c.is_empty() {
                ws.write_number(i as u32 + 1, 0, c.parse::<f64>().unwrap())
                    .unwrap();
            } else {
                ws.write_string(i as u32 + 1, j as u16, c).unwrap();
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

/// Registers the two people of the registry rows (one observing, one ended).
async fn registry(db: &Db, v: &Viewer) -> (i64, i64) {
    let mk = |kana: &str, dob: &str, phone: &str| PersonInput {
        name: "既存 登録".into(),
        name_kana: kana.into(),
        date_of_birth: dob.into(),
        phone: phone.into(),
        channel: "sms".into(),
        observation_start: "2022-01-05".into(),
        observation_end: "2022-01-20".into(),
        period_override_reason: "test".into(),
        ..Default::default()
    };
    let observing = persons::create(
        db,
        Actor::System,
        v.health_centre_id,
        &mk("タナカ タロウ", "1970-07-07", "090-3333-0001")
            .parse()
            .unwrap(),
        Duration::hours(1),
        None,
    )
    .await
    .unwrap();
    let mut ended = mk("サトウ ケイコ", "1980-08-08", "090-3333-0002");
    ended.observation_start = "2021-06-01".into();
    ended.observation_end = "2021-06-10".into();
    let ended = persons::create(
        db,
        Actor::System,
        v.health_centre_id,
        &ended.parse().unwrap(),
        Duration::hours(1),
        None,
    )
    .await
    .unwrap();
    (observing, ended)
}

fn opts<'a>(
    periods: &'a Periods,
    progress: &'a (dyn Fn(usize, usize) + Sync),
) -> imports::Options<'a> {
    imports::Options {
        periods,
        today: today(),
        file_name: "nesid.csv",
        progress,
        lang: mimamori_core::domain::Lang::En,
        report_csv: None,
    }
}

fn outcome(r: &imports::Report, case: &str, line: usize) -> (String, Option<usize>) {
    let o = r
        .rows
        .iter()
        .find(|o| o.case_number == case && o.line == line)
        .unwrap_or_else(|| panic!("row {case} line {line}: {:?}", r.rows));
    (o.outcome.to_string(), o.of_line)
}

#[tokio::test]
async fn a_nesid_file_is_cleaned_linked_and_imported_once() {
    let t = TestDb::new().await;
    let db = &t.db;
    let (v, officer) = centre(db).await;
    let (observing, ended) = registry(db, &v).await;
    let periods = Periods::default();
    let m = nesid();
    let text = csv_text(&ROWS);
    let sheet = import::read(text.as_bytes(), "auto").unwrap();

    // The dry run says what would happen to each row and writes nothing.
    let persons_before = count(db, "SELECT COUNT(*) FROM persons").await;
    let dry = imports::dry_run(db, &v, &m, text.as_bytes(), opts(&periods, &none))
        .await
        .unwrap();
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM persons").await,
        persons_before
    );
    assert_eq!(count(db, "SELECT COUNT(*) FROM import_rows").await, 0);
    assert_eq!(dry.rows_read, 11);
    assert_eq!(outcome(&dry, "1001", 2).0, "created");
    assert_eq!(outcome(&dry, "1002", 3), ("duplicate".into(), Some(2)));
    assert_eq!(outcome(&dry, "1003", 4), ("repositive".into(), Some(2)));
    assert_eq!(outcome(&dry, "1004", 5), ("repositive".into(), Some(4)));
    assert_eq!(outcome(&dry, "1010", 11).0, "linked");
    assert_eq!(outcome(&dry, "1011", 12).0, "repositive");
    let why = |line: usize| {
        dry.rows
            .iter()
            .find(|o| o.line == line)
            .unwrap()
            .reason
            .clone()
            .unwrap_or_default()
    };
    assert!(why(6).starts_with("case_number"), "{}", why(6));
    assert!(
        why(7).starts_with("diagnosis_date") && why(7).contains("no such day"),
        "{}",
        why(7)
    );
    assert!(
        why(8).starts_with("sex") && why(8).contains("'X'"),
        "{}",
        why(8)
    );
    assert!(why(9).contains("doctor_name"), "{}", why(9));
    assert!(why(10).contains("also on line 2"), "{}", why(10));
    // The reasons come in the importing staff member's language.
    let ja = imports::dry_run(
        db,
        &v,
        &m,
        text.as_bytes(),
        imports::Options {
            lang: mimamori_core::domain::Lang::Ja,
            ..opts(&periods, &none)
        },
    )
    .await
    .unwrap();
    let ja_why = |line: usize| {
        ja.rows
            .iter()
            .find(|o| o.line == line)
            .and_then(|o| o.reason.clone())
            .unwrap_or_default()
    };
    assert!(ja_why(7).contains("その日は存在しません"), "{}", ja_why(7));
    assert!(ja_why(8).contains("対応表にない値"), "{}", ja_why(8));
    assert!(ja_why(10).contains("2 行目にもあります"), "{}", ja_why(10));
    assert_eq!(
        (
            dry.created,
            dry.linked,
            dry.repositive,
            dry.duplicate,
            dry.rejected
        ),
        (1, 1, 3, 1, 5)
    );

    // CP932 and XLSX read alike.
    let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode(&text);
    let from_sjis = import::read(&sjis, "auto").unwrap();
    assert_eq!(from_sjis, sheet);
    let xlsx_bytes = xlsx(&ROWS);
    let from_xlsx = import::read(&xlsx_bytes, "auto").unwrap();
    assert_eq!(from_xlsx.headers, sheet.headers);
    assert_eq!(from_xlsx, sheet);

    // The import does it.
    let r = imports::run(db, &v, &m, &xlsx_bytes, opts(&periods, &none))
        .await
        .unwrap();
    assert_eq!(
        (r.created, r.linked, r.repositive, r.duplicate, r.rejected),
        (1, 1, 3, 1, 5)
    );
    let person = |line: usize| {
        r.rows
            .iter()
            .find(|o| o.line == line)
            .unwrap()
            .person_id
            .unwrap()
    };
    let (first, second, third) = (person(2), person(4), person(5));
    assert_eq!(person(3), first, "the duplicate names the kept record");
    assert_eq!(person(11), observing, "linked to the registered person");
    let prev = |id: i64| async move {
        with_db!(db, p => sqlx::query_scalar::<_, Option<i64>>("SELECT previous_case_id FROM persons WHERE id = $1").bind(id).fetch_one(p).await.unwrap())
    };
    assert_eq!(prev(second).await, Some(first));
    assert_eq!(prev(third).await, Some(second));
    assert_eq!(prev(person(12)).await, Some(ended));
    // Old cases end without check-ins; every new person has a report; every row is audited.
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) FROM checkins c JOIN import_rows r ON r.person_id = c.person_id"
        )
        .await,
        0
    );
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM persons p JOIN import_rows r ON r.person_id = p.id WHERE r.outcome IN ('created', 'repositive') AND p.status = 'ended'").await,
        4
    );
    let linked_reports: i64 = with_db!(db, p => sqlx::query_scalar("SELECT COUNT(*) FROM occurrence_reports WHERE person_id = $1").bind(observing).fetch_one(p).await.unwrap());
    assert_eq!(linked_reports, 1);
    assert_eq!(
        count(
            db,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'import.row'"
        )
        .await,
        5
    );
    let kana: Option<String> = with_db!(db, p => sqlx::query_scalar("SELECT name_kana FROM persons WHERE id = $1").bind(first).fetch_one(p).await.unwrap());
    assert_eq!(kana.as_deref(), Some("ヤマダ ハナコ"));

    // A second run creates nothing.
    let again = imports::run(db, &v, &m, text.as_bytes(), opts(&periods, &none))
        .await
        .unwrap();
    assert_eq!(
        (again.created, again.linked, again.repositive, again.already),
        (0, 0, 0, 6)
    );
    let stored = imports::outcomes(db, &v, r.batch_id.unwrap())
        .await
        .unwrap();
    assert_eq!(stored.rows.len(), 11);
    assert!(
        String::from_utf8(stored.csv())
            .unwrap()
            .contains("duplicate")
    );

    // Undo: refused to anyone but the officer, and once someone was worked on; then done.
    let b = r.batch_id.unwrap();
    assert!(matches!(
        imports::undo(db, &v, b).await,
        Err(Error::Forbidden(_))
    ));
    with_db!(db, p => sqlx::query("UPDATE persons SET updated_at = $1 WHERE id = $2").bind(Utc::now()).bind(third).execute(p).await.unwrap().rows_affected());
    match imports::undo(db, &officer, b).await {
        Err(Error::Invalid(f)) => {
            assert!(f[0].reason.contains(&third.to_string()), "{}", f[0].reason)
        }
        other => panic!("{other:?}"),
    }
    with_db!(db, p => sqlx::query("UPDATE persons SET updated_at = created_at WHERE id = $1").bind(third).execute(p).await.unwrap().rows_affected());
    assert_eq!(imports::undo(db, &officer, b).await.unwrap(), 4);
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM persons").await,
        persons_before
    );
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM occurrence_reports").await,
        0,
        "the linked person's report went too"
    );
    // And the same file can be imported again.
    let re = imports::run(db, &v, &m, text.as_bytes(), opts(&periods, &none))
        .await
        .unwrap();
    assert_eq!((re.created, re.already), (1, 0));
    t.drop_db().await;
}

async fn count(db: &Db, sql: &'static str) -> i64 {
    with_db!(db, p => sqlx::query_scalar(sql).fetch_one(p).await.unwrap())
}

/// An import stopped after its first chunk continues where it stopped when run again.
#[tokio::test]
async fn an_interrupted_import_resumes() {
    let t = TestDb::new().await;
    let db = &t.db;
    let (v, _) = centre(db).await;
    let periods = Periods::default();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "case_number",
        "report_type",
        "diagnosis_date",
        "diagnosis_method",
        "doctor_name",
        "institution_name",
        "name",
        "date_of_birth",
        "phone",
        "onset_date",
        "sex",
        "municipality",
    ])
    .unwrap();
    for i in 0..1_200 {
        w.write_record([
            format!("C{i:05}"),
            "patient".into(),
            "2022-01-10".into(),
            "pcr".into(),
            "医師".into(),
            "病院".into(),
            format!("患者 {i}"),
            format!("19{:02}-01-01", 30 + i % 60),
            format!("090-4{:03}-{:04}", i / 1000, i % 10_000),
            "2022-01-09".into(),
            "female".into(),
            "港区".into(),
        ])
        .unwrap();
    }
    let bytes = w.into_inner().unwrap();

    let m = Mapping::standard("other-system");
    // Stop the run as soon as its first chunk is committed (the second is then in flight).
    let first = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(tokio::sync::Notify::new());
    let progress = {
        let (first, stop) = (first.clone(), stop.clone());
        move |_: usize, total: usize| {
            // (rows read, 0) while the file is read; then (written, total) per chunk.
            if total > 0 && !first.swap(true, Ordering::SeqCst) {
                stop.notify_one();
            }
        }
    };
    tokio::select! {
        r = imports::run(db, &v, &m, &bytes, opts(&periods, &progress)) => panic!("the run should have been stopped: {:?}", r.map(|r| (r.created, r.rejected, r.rows.first().cloned()))),
        _ = stop.notified() => {}
    }
    // A chunk whose commit was already sent when the run stopped may still land (as after a
    // kill): wait until the counts are still for a moment.
    let mut kept = -1;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = count(db, "SELECT COUNT(*) FROM import_rows").await;
        if now == kept {
            break;
        }
        kept = now;
    }
    assert!(
        (500..1_200).contains(&kept),
        "the committed chunks stay: {kept}"
    );
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM persons").await,
        kept,
        "no half-written row"
    );
    let r = imports::run(db, &v, &m, &bytes, opts(&periods, &none))
        .await
        .unwrap();
    assert_eq!((r.already as i64, r.created as i64), (kept, 1_200 - kept));
    assert_eq!(count(db, "SELECT COUNT(*) FROM persons").await, 1_200);
    t.drop_db().await;
}

/// A list of close contacts of a case, checked and then registered in one step: duplicates in
/// the list and against the registry left out, bad rows named, each new contact linked to the
/// case with today's check-in.
#[tokio::test]
async fn a_contact_list_is_registered_in_one_step() {
    let t = TestDb::new().await;
    let db = &t.db;
    let (v, _) = centre(db).await;
    let case = persons::create(
        db,
        Actor::System,
        v.health_centre_id,
        &PersonInput {
            name: "症例 一郎".into(),
            phone: "090-9000-0000".into(),
            channel: "sms".into(),
            onset_date: today().to_string(),
            ..Default::default()
        }
        .parse()
        .unwrap(),
        Duration::hours(10),
        None,
    )
    .await
    .unwrap();
    let known = persons::create(
        db,
        Actor::System,
        v.health_centre_id,
        &PersonInput {
            name: "既知 花子".into(),
            name_kana: "キチ ハナコ".into(),
            phone: "090-9000-0009".into(),
            date_of_birth: "1990-01-01".into(),
            channel: "sms".into(),
            monitoring_type: "contact".into(),
            last_exposure_date: today().to_string(),
            ..Default::default()
        }
        .parse()
        .unwrap(),
        Duration::hours(10),
        None,
    )
    .await
    .unwrap();
    let text = format!(
        "氏名,フリガナ,電話番号,生年月日,最終接触日\n\
         接触 一郎,セッショク イチロウ,090-9000-0001,1980-01-01,{d}\n\
         接触 一郎,ｾｯｼｮｸ ｲﾁﾛｳ,090-9000-0001,1980-01-01,{d}\n\
         既知 花子,きち はなこ,090-9000-0009,1990-01-01,{d}\n\
         接触 三郎,セッショク サブロウ,12345,1985-01-01,令和4年2月30日\n",
        d = today()
    );
    let sheet = import::read(text.as_bytes(), "auto").unwrap();
    let periods = Periods::default();
    let before = count(db, "SELECT COUNT(*) FROM persons").await;
    let dry = imports::contacts(
        db,
        &v,
        case,
        &sheet,
        true,
        Duration::hours(10),
        opts(&periods, &none),
    )
    .await
    .unwrap();
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM persons").await,
        before,
        "the check writes nothing"
    );
    assert_eq!((dry.created, dry.duplicate, dry.rejected), (1, 2, 1));
    let row =
        |r: &imports::Report, line: usize| r.rows.iter().find(|o| o.line == line).cloned().unwrap();
    assert_eq!(row(&dry, 3).of_line, Some(2));
    assert_eq!(row(&dry, 4).person_id, Some(known));
    let why = row(&dry, 5).reason.unwrap();
    assert!(
        why.contains("last_exposure_date") && why.contains("no such day"),
        "{why}"
    );
    let done = imports::contacts(
        db,
        &v,
        case,
        &sheet,
        false,
        Duration::hours(10),
        opts(&periods, &none),
    )
    .await
    .unwrap();
    let new = row(&done, 2).person_id.unwrap();
    let (source, kind): (Option<i64>, String) = with_db!(db, p => sqlx::query_as(
        "SELECT source_person_id, monitoring_type FROM persons WHERE id = $1").bind(new).fetch_one(p).await.unwrap());
    assert_eq!((source, kind.as_str()), (Some(case), "contact"));
    assert_eq!(count(db, "SELECT COUNT(*) FROM persons").await, before + 1);
    // Only those who may write the case's contacts.
    let contractor = Viewer {
        role: Role::Contractor,
        organisation_id: Some(1),
        ..v
    };
    assert!(
        imports::contacts(
            db,
            &contractor,
            case,
            &sheet,
            true,
            Duration::hours(10),
            opts(&periods, &none)
        )
        .await
        .is_err()
    );
    t.drop_db().await;
}

/// Rows that follow or duplicate people created by other chunks (written two at a time on
/// PostgreSQL) point at the right person, whichever chunk lands first; the dry run says the
/// same as the run.
#[tokio::test]
async fn rows_follow_people_created_in_earlier_chunks() {
    let t = TestDb::new().await;
    let db = &t.db;
    let (v, _) = centre(db).await;
    let periods = Periods::default();
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "case_number",
        "report_type",
        "diagnosis_date",
        "diagnosis_method",
        "name",
        "name_kana",
        "date_of_birth",
        "phone",
        "onset_date",
        "doctor_name",
        "institution_name",
        "sex",
        "municipality",
    ])
    .unwrap();
    // 600 people; each again two days later (a duplicate: the case is open) and two months
    // later (re-positive: it has ended). Sorted by diagnosis date, each group is its own chunk.
    const N: usize = 600;
    for (k, day) in [(0, "2022-01-01"), (1, "2022-01-03"), (2, "2022-03-01")] {
        for i in 0..N {
            w.write_record([
                format!("R{k}-{i:04}"),
                "patient".into(),
                day.into(),
                "pcr".into(),
                format!("患者 {i}"),
                // Kana in another width the second time: the same folded key.
                if k == 1 {
                    format!("ｶﾝｼﾞｬ{i}")
                } else {
                    format!("カンジャ{i}")
                },
                format!("19{:02}-02-03", 30 + i % 60),
                format!("090-5{:03}-{:04}", i / 1000, i % 10_000),
                day.into(),
                "医師".into(),
                "病院".into(),
                "male".into(),
                "港区".into(),
            ])
            .unwrap();
        }
    }
    let bytes = w.into_inner().unwrap();

    let m = Mapping::standard("chunks");
    let dry = imports::dry_run(db, &v, &m, &bytes, opts(&periods, &none))
        .await
        .unwrap();
    assert_eq!(
        (dry.created, dry.duplicate, dry.repositive, dry.rejected),
        (N, N, N, 0)
    );
    let r = imports::run(db, &v, &m, &bytes, opts(&periods, &none))
        .await
        .unwrap();
    assert_eq!(
        (r.created, r.duplicate, r.repositive, r.rejected),
        (N, N, N, 0)
    );
    let strip = |rows: &[imports::Outcome]| -> Vec<(usize, String, &'static str, Option<usize>)> {
        rows.iter()
            .map(|o| (o.line, o.case_number.clone(), o.outcome, o.of_line))
            .collect()
    };
    assert_eq!(
        strip(&dry.rows),
        strip(&r.rows),
        "the dry run foretold the run"
    );
    for i in 0..N {
        let first = &r.rows[i];
        let dup = &r.rows[N + i];
        let again = &r.rows[2 * N + i];
        assert_eq!(
            (first.outcome, dup.outcome, again.outcome),
            ("created", "duplicate", "repositive")
        );
        assert_eq!(dup.of_line, Some(first.line));
        assert_eq!(
            dup.person_id, first.person_id,
            "a duplicate names the person it duplicates"
        );
        assert_eq!(again.of_line, Some(first.line));
        let previous: Option<i64> = with_db!(db, p => sqlx::query_scalar("SELECT previous_case_id FROM persons WHERE id = $1")
            .bind(again.person_id.unwrap()).fetch_one(p).await.unwrap());
        assert_eq!(
            previous, first.person_id,
            "line {}: the re-positive case follows its first",
            again.line
        );
    }
    // What was recorded for each row is what the report says.
    let stored = imports::outcomes(db, &v, r.batch_id.unwrap())
        .await
        .unwrap();
    let ids = |rows: &[imports::Outcome]| -> Vec<(usize, &'static str, Option<i64>)> {
        rows.iter()
            .map(|o| (o.line, o.outcome, o.person_id))
            .collect()
    };
    assert_eq!(ids(&stored.rows), ids(&r.rows));
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM persons").await,
        2 * N as i64
    );
    assert_eq!(
        count(db, "SELECT COUNT(*) FROM occurrence_reports").await,
        2 * N as i64
    );
    t.drop_db().await;
}

/// A file of more rows than a report keeps in memory: the report keeps the rows to look at
/// (every rejected row, every duplicate) and says it is not all; the CSV written to the sink
/// has every row, in file order, as the kept rows say.
#[tokio::test]
async fn a_long_file_reports_every_row_to_the_csv_and_keeps_those_to_look_at() {
    let t = TestDb::new().await;
    let db = &t.db;
    let (v, _) = centre(db).await;
    let periods = Periods::default();
    let rows = imports::ROWS_KEPT + 300;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "case_number",
        "report_type",
        "diagnosis_date",
        "diagnosis_method",
        "name",
        "date_of_birth",
        "phone",
        "onset_date",
        "doctor_name",
        "institution_name",
        "sex",
        "municipality",
    ])
    .unwrap();
    for i in 0..rows {
        // Every 100th row a date that does not exist, every 100th (offset 50) the person of
        // the row before it again.
        let person = if i % 100 == 50 { i - 1 } else { i };
        w.write_record([
            format!("L{i:06}"),
            "patient".into(),
            if i % 100 == 7 {
                "2022-02-30".into()
            } else {
                "2022-01-10".into()
            },
            "pcr".into(),
            format!("患者 {person}"),
            format!("19{:02}-03-04", 30 + person % 60),
            format!("090-6{:03}-{:04}", person / 10_000, person % 10_000),
            "2022-01-09".into(),
            "医師".into(),
            "病院".into(),
            "female".into(),
            "港区".into(),
        ])
        .unwrap();
    }
    let bytes = w.into_inner().unwrap();
    let csv_out = std::sync::Mutex::new(Vec::new());
    let sink = |b: &[u8]| {
        csv_out.lock().unwrap().extend_from_slice(b);
        Ok(())
    };
    // Reading is told as it goes: (rows read so far, 0).
    let read = std::sync::Mutex::new(Vec::new());
    let progress = |done: usize, total: usize| read.lock().unwrap().push((done, total));
    let dry = imports::dry_run(
        db,
        &v,
        &Mapping::standard("long"),
        &bytes,
        imports::Options {
            report_csv: Some(&sink),
            ..opts(&periods, &progress)
        },
    )
    .await
    .unwrap();
    let read = read.into_inner().unwrap();
    assert!(read.len() > 10, "{read:?}");
    assert!(read.iter().all(|(_, total)| *total == 0));
    assert!(read.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(read.last().unwrap().0, rows);
    let bad = rows.div_ceil(100);
    let twice = (rows - 51) / 100 + 1;
    assert_eq!(dry.rows_read, rows);
    assert_eq!(dry.rows[0].reason, None, "{:?}", dry.rows[0]);
    assert_eq!(
        (dry.rejected, dry.duplicate, dry.created),
        (bad, twice, rows - bad - twice)
    );
    assert!(!dry.all_rows);
    assert_eq!(dry.rows.len(), imports::ROWS_KEPT);
    let kept = |o: &str| dry.rows.iter().filter(|r| r.outcome == o).count();
    assert_eq!(
        (kept("rejected"), kept("duplicate")),
        (bad, twice),
        "every row to look at is kept"
    );
    assert!(dry.rows.windows(2).all(|w| w[0].line < w[1].line));
    // The CSV: a header and every row, in file order.
    let text = String::from_utf8(csv_out.into_inner().unwrap()).unwrap();
    let mut r = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let all: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(all.len(), rows);
    for (i, rec) in all.iter().enumerate() {
        assert_eq!(rec[0].parse::<usize>().unwrap(), i + 2, "line of row {i}");
        assert_eq!(&rec[1], format!("L{i:06}"));
    }
    for o in &dry.rows {
        let rec = &all[o.line - 2];
        assert_eq!(&rec[2], o.outcome, "line {}", o.line);
        assert_eq!(rec[4].parse::<usize>().ok(), o.of_line, "line {}", o.line);
    }
    assert_eq!(&all[50][2], "duplicate");
    assert_eq!(&all[50][4], "51", "the duplicate names the row it repeats");
    assert!(all[7][6].starts_with("diagnosis_date"), "{:?}", &all[7]);

    // Imported, the batch's page counts every outcome and keeps the rows to look at; its CSV
    // is read a page at a time, every row once, in line order.
    let batch = imports::run(
        db,
        &v,
        &Mapping::standard("long"),
        &bytes,
        opts(&periods, &none),
    )
    .await
    .unwrap()
    .batch_id
    .unwrap();
    let page = imports::outcomes(db, &v, batch).await.unwrap();
    assert_eq!(page.rows_read, rows);
    assert_eq!(
        (page.rejected, page.duplicate, page.created, page.valid),
        (bad, twice, rows - bad - twice, rows - bad)
    );
    assert!(!page.all_rows);
    assert_eq!(
        page.rows.len(),
        bad + twice,
        "the rows to look at, no created one"
    );
    assert!(page.rows.iter().all(|r| r.outcome != "created"));
    assert!(page.rows.windows(2).all(|w| w[0].line < w[1].line));
    let (mut lines, mut after) = (Vec::new(), -1);
    loop {
        let p = imports::outcome_page(db, &v, batch, after, 4_000)
            .await
            .unwrap();
        let Some(last) = p.last() else { break };
        after = last.line as i64;
        lines.extend(p.iter().map(|r| r.line));
    }
    assert_eq!(lines, (2..rows + 2).collect::<Vec<_>>());
    let mut csv = imports::ReportCsv::new();
    csv.rows(&imports::outcome_page(db, &v, batch, -1, 3).await.unwrap());
    let text = String::from_utf8(csv.take()).unwrap();
    assert_eq!(text.lines().count(), 4, "a header and three rows: {text}");
    // Another centre's staff find no such batch.
    let (other, _) = centre_named(db, "よその保健所").await;
    assert!(matches!(
        imports::outcomes(db, &other, batch).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        imports::outcome_page(db, &other, batch, -1, 10).await,
        Err(Error::NotFound(_))
    ));
    t.drop_db().await;
}

/// A file the reader cannot take is refused naming the file, in the importing person's
/// language: Japanese on the console, English for the API and `--lang en`.
#[test]
fn an_unreadable_file_is_refused_in_either_language() {
    // Shift_JIS bytes ("あ") read as UTF-8.
    let Err(Error::Invalid(f)) = import::read(b"name\n\x82\xa0\n", "utf-8") else {
        panic!("a file that is not UTF-8 is refused");
    };
    assert_eq!(f[0].field, "file");
    let ja = f[0].message(mimamori_core::domain::Lang::Ja);
    assert!(
        ja.contains("UTF-8 ではありません") && ja.contains("cp932"),
        "{ja}"
    );
    let en = f[0].message(mimamori_core::domain::Lang::En);
    assert!(en.contains("not UTF-8 (byte 5)"), "{en}");
}
