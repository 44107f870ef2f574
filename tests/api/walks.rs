//! People walking the product in headless Chromium at the size they use it, every page
//! checked with axe-core (0 violations of any impact, or the test fails), screenshots kept.
//!
//! Screenshots: `MIMAMORI_SCREENSHOTS=screens cargo test --test api walks` writes the PNGs
//! of every walk to `./screens` (default: the test target's temporary directory).
use serde_json::{Value, json};

use crate::helpers::{LINK_SECRET, TestApp, link_in, spawn_app, spawn_app_with, today};

fn screens_dir() -> String {
    std::env::var("MIMAMORI_SCREENSHOTS")
        .unwrap_or_else(|_| format!("{}/screens", env!("CARGO_TARGET_TMPDIR")))
}

/// Runs a walk and fails on a broken expectation or on any axe violation, naming the page.
async fn walk(viewport: (u32, u32), javascript: bool, steps: Vec<Value>) -> Value {
    let spec = json!({
        "viewport": {"width": viewport.0, "height": viewport.1},
        "javascript": javascript,
        "out": screens_dir(),
        "steps": steps,
    });
    let report = tokio::task::spawn_blocking(move || crate::peers::walk(&spec))
        .await
        .unwrap();
    assert!(
        report["failed"].is_null(),
        "walk stopped: {}",
        report["failed"]
    );
    let mut found = Vec::new();
    for (page, violations) in report["axe"].as_object().unwrap() {
        for v in violations.as_array().unwrap() {
            found.push(format!(
                "{page}: {} ({}) {} at {}",
                v["id"], v["impact"], v["help"], v["nodes"]
            ));
        }
    }
    assert!(
        found.is_empty(),
        "axe-core violations:\n{}",
        found.join("\n")
    );
    assert_eq!(
        report["dialogs"], 0,
        "no 'Confirm Form Resubmission' or other dialog"
    );
    report
}

async fn register(app: &TestApp, name: &str, phone: &str, lang: &str) -> String {
    let r = app
        .post_json(
            "/api/v1/persons",
            &json!({
                "name": name, "phone": phone, "language": lang,
                "observation_start": today(), "observation_end": today(), "checkin_time": "00:00"
            }),
        )
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let e164 = format!("+81{}", &phone[1..]);
    let who = mimamori_core::domain::short_name(name);
    let mut n = 1;
    let msg = loop {
        let msgs = app.wait_for_messages(&e164, n).await;
        if let Some(m) = msgs.into_iter().find(|m| m.body.contains(who)) {
            break m;
        }
        n += 1;
    };
    link_in(&msg.body)
}

fn go(url: &str) -> Value {
    json!({"goto": url})
}
fn see(text: &str) -> Value {
    json!({"see": text})
}
fn fill(sel: &str, value: &str) -> Value {
    json!({"fill": sel, "value": value})
}
fn check(sel: &str) -> Value {
    json!({"check": sel})
}
fn next() -> Value {
    json!({"submit": "button[value=next]"})
}
fn axe(name: &str) -> Value {
    json!({"axe": name})
}
fn shot(name: &str) -> Value {
    json!({"shot": name})
}

/// A patient on a 360×740 phone with JavaScript off: a normal day (bad input, Back, reload),
/// an urgent warning sign, a low SpO2, an expired link, a family phone, and the English form.
#[tokio::test]
async fn a_patient_on_an_old_phone() {
    let app = spawn_app().await;
    app.login().await;
    let normal = register(&app, "山田 花子", "08031310001", "ja").await;
    let _family = register(&app, "山田 太郎", "08031310001", "ja").await;
    let urgent = register(&app, "佐藤 一郎", "08031310002", "ja").await;
    let low = register(&app, "鈴木 次郎", "08031310003", "ja").await;
    let english = register(&app, "Jane Smith", "08031310004", "en").await;
    let id: i64 = normal
        .rsplit("/c/")
        .next()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let expired = format!(
        "{}/c/{}",
        app.base,
        mimamori_core::token::LinkSigner::new(LINK_SECRET.as_bytes()).sign(id, 1)
    );
    let steps = vec![
        // A normal day, with a mistake on the way.
        go(&normal),
        see("花子さんの"),
        see("tel:"),
        axe("patient-form-1"),
        shot("patient-01-form"),
        fill("#temperature", "abc"),
        next(),
        json!({"status": 422}),
        json!({"title": "エラー: "}),
        json!({"focused": "#error-summary"}),
        see("href=\"#temperature\""),
        axe("patient-form-1-error"),
        shot("patient-02-error"),
        fill("#temperature", "３６．８度"),
        next(),
        see("2 / 3"),
        axe("patient-form-2"),
        shot("patient-03-symptoms"),
        check("[name=\"none:symptoms\"]"),
        check("input[name=feeling][value=same]"),
        next(),
        see("3 / 3"),
        axe("patient-form-3"),
        shot("patient-04-urgent-signs"),
        // Browser Back and forward again: no resubmission, what was ticked is kept.
        json!({"back": true}),
        see("2 / 3"),
        json!({"reload": true}),
        see("2 / 3"),
        next(),
        see("3 / 3"),
        check("[name=\"none:urgent\"]"),
        next(),
        see("<h1>回答を受け付けました</h1>"),
        see("このあと"),
        see("太郎さんの回答へ"),
        axe("patient-thanks"),
        shot("patient-05-thanks-family"),
        json!({"reload": true}),
        json!({"status": 200}),
        // The family phone: on to the next member.
        json!({"submit": "ul.next a"}),
        see("太郎さんの"),
        json!({"back": true}),
        json!({"back": true}),
        see("すでに受け付けています"),
        axe("patient-already-answered"),
        // An urgent warning sign: one "yes" is enough.
        go(&urgent),
        fill("#temperature", "37.2"),
        next(),
        check("[name=\"none:symptoms\"]"),
        check("input[name=feeling][value=same]"),
        next(),
        check("#urgent_purple_lips"),
        next(),
        see("すぐに保健所へ電話してください"),
        see("119"),
        axe("patient-urgent"),
        shot("patient-06-urgent"),
        // Low SpO2 with every sign "no".
        go(&low),
        fill("#temperature", "38.9"),
        fill("#spo2", "88"),
        next(),
        check("[name=\"none:symptoms\"]"),
        check("input[name=feeling][value=same]"),
        next(),
        check("[name=\"none:urgent\"]"),
        next(),
        see("すぐに保健所へ電話してください"),
        shot("patient-07-low-spo2"),
        // An expired link still says whom to phone.
        go(&expired),
        json!({"status": 410}),
        see("tel:"),
        axe("patient-expired"),
        shot("patient-08-expired"),
        // The English form, with an error.
        go(&english),
        see("Jane's health check"),
        next(),
        json!({"title": "Error: "}),
        axe("patient-form-en-error"),
        shot("patient-09-english-error"),
    ];
    let axed = steps.iter().filter(|s| s.get("axe").is_some()).count();
    let report = walk((360, 740), false, steps).await;
    assert_eq!(
        report["axe"].as_object().unwrap().len(),
        axed,
        "every page was checked"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM observations").await, 3);
    app.finish().await;
}

fn login(base: &str, user: &str) -> Vec<Value> {
    vec![
        go(&format!("{base}/login")),
        fill("#username", user),
        fill("#password", crate::helpers::PASSWORD),
        json!({"submit": "button[type=submit]"}),
        fill("#code", &crate::helpers::totp_now()),
        json!({"submit": "button[type=submit]"}),
    ]
}

/// People with open escalations: one urgent (SpO2), one not reporting, one calm; all three
/// assigned to a follow-up contractor.
async fn people_to_review(app: &TestApp) -> (i64, i64, i64, i64) {
    use mimamori_core::{
        rules::Priority,
        store::{Actor, escalations, staff},
    };
    let urgent = app
        .register("080-3232-0001", "sms", json!({"name": "高橋 一郎"}))
        .await;
    let silent = app
        .register("080-3232-0002", "sms", json!({"name": "田中 次郎"}))
        .await;
    let calm = app
        .register("080-3232-0003", "sms", json!({"name": "伊藤 三郎"}))
        .await;
    for (p, reason, priority, detail) in [
        (silent, "non_reporting", Priority::High, "2 回連続で未回答"),
        (urgent, "spo2_low", Priority::Urgent, "SpO2 88 % ≤ 93"),
    ] {
        escalations::open(
            &app.db,
            escalations::Raise {
                person_id: p,
                reason,
                priority,
                detail,
                actor: Actor::System,
            },
        )
        .await
        .unwrap();
    }
    let org = staff::create_organisation(&app.db, "contractor", "みまもりコール", app.centre)
        .await
        .unwrap();
    for p in [urgent, silent, calm] {
        mimamori_core::store::assignments::assign(
            &app.db,
            mimamori_core::access::Access::System(mimamori_core::store::Actor::System),
            p,
            org,
            None,
        )
        .await
        .unwrap();
    }
    (urgent, silent, calm, org)
}

/// A nurse at 1366×768 finds the urgent case at the top of the queue, cannot resolve it with
/// one click, resolves it with the action and the confirmation, sees what she did and can
/// undo it; every console page she uses, in Japanese and English, is axe-core clean.
#[tokio::test]
async fn a_nurse_finds_and_resolves_an_urgent_case() {
    let app = spawn_app().await;
    app.login().await;
    let (urgent, _silent, calm, _) = people_to_review(&app).await;
    let b = app.base.clone();
    let mut steps = vec![go(&format!("{b}/login")), axe("console-login")];
    steps.extend(login(&b, "nurse"));
    steps.extend([
        see("urgent-count"),
        axe("console-dashboard"),
        shot("nurse-01-dashboard"),
        go(&format!("{b}/escalations")),
        see("高橋 一郎"),
        axe("console-queue"),
        shot("nurse-02-queue"),
        // The urgent row is first; its actions open in the row.
        json!({"click_first": "table.queue tbody tr:first-child summary"}),
        see("この案件への対応が済んだことを確認しました"),
        shot("nurse-03-row-open"),
        // One click that records nothing does not take it off the queue.
        json!({"submit": "table.queue tbody tr:first-child button.resolve"}),
        json!({"status": 422}),
        json!({"title": "エラー: "}),
        see("行った対応を記録してから"),
        axe("console-step-error"),
        shot("nurse-04-resolve-refused"),
        json!({"select": "form.resolve select", "value": "phoned"}),
        check("form.resolve input[name=confirm]"),
        json!({"submit": "form.resolve button.resolve"}),
        see("元に戻す"),
        not_see(&format!("/persons/{urgent}\"")),
        axe("console-queue-done"),
        shot("nurse-05-resolved-with-undo"),
        json!({"submit": "div.done button"}),
        see(&format!("/persons/{urgent}\"")),
        go(&format!("{b}/persons/{urgent}")),
        see("取り消し"),
        axe("console-person-observation"),
        shot("nurse-06-person"),
        go(&format!("{b}/persons/{urgent}?tab=record")),
        axe("console-person-record"),
        go(&format!("{b}/persons/{urgent}?tab=investigation")),
        axe("console-person-investigation"),
        go(&format!("{b}/persons/{urgent}?tab=details")),
        axe("console-person-details"),
        go(&format!("{b}/persons")),
        axe("console-persons"),
        go(&format!("{b}/cohort")),
        axe("console-cohort"),
        go(&format!("{b}/persons/new")),
        axe("console-register"),
        json!({"submit": "main form button[type=submit]"}),
        axe("console-register-error"),
        shot("nurse-07-register-error"),
        go(&format!("{b}/reports/new")),
        axe("console-report"),
        // The occurrence report sent empty: each mandatory field named once, in Japanese.
        json!({"submit": "main form button[type=submit]"}),
        json!({"see": "診断した医師の氏名は必須です"}),
        json!({"see": "有症状の患者は発症日が必須です"}),
        // Not asked again as the period it would give (the form has no fields for it).
        json!({"not_see": "観察開始日"}),
        axe("console-report-error"),
        shot("nurse-07b-report-error"),
        go(&format!("{b}/account")),
        axe("console-account"),
        go(&format!("{b}/persons/{calm}")),
        axe("console-person-calm"),
        // The same pages in English.
        go(&format!("{b}/lang/en")),
        go(&format!("{b}/escalations")),
        see("Review queue"),
        axe("console-queue-en"),
        shot("nurse-08-queue-en"),
        go(&format!("{b}/persons/{urgent}")),
        axe("console-person-en"),
        go(&format!("{b}/persons/new")),
        json!({"submit": "main form button[type=submit]"}),
        axe("console-register-error-en"),
        go(&format!("{b}/")),
        axe("console-dashboard-en"),
    ]);
    let axed = steps.iter().filter(|s| s.get("axe").is_some()).count();
    let report = walk((1366, 768), true, steps).await;
    assert_eq!(report["axe"].as_object().unwrap().len(), axed);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'escalation.undo'")
            .await,
        1
    );
    app.finish().await;
}

/// A health centre reads its figures on a 1366×768 console: the statistics page with the
/// epidemic curve, the press table with small numbers hidden, its printable page, and the
/// daily report refusing a bad count and then saving — in Japanese and English.
#[tokio::test]
async fn a_health_centre_reads_its_figures_and_files_a_daily_report() {
    let app = spawn_app().await;
    app.login().await;
    let _ = people_to_review(&app).await;
    // Wait for the statistics job to count them.
    for _ in 0..100 {
        let dirty = app.count("SELECT COUNT(*) FROM stats_dirty").await;
        let kept = app.count("SELECT COUNT(*) FROM stats_daily").await;
        if dirty == 0 && kept > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let b = app.base.clone();
    let mut steps = vec![go(&format!("{b}/login"))];
    steps.extend(login(&b, "nurse"));
    steps.extend([
        see("urgent-count"),
        go(&format!("{b}/stats")),
        see("流行曲線"),
        see("健康観察中の患者"),
        axe("stats-page"),
        shot("stats-01-page"),
        go(&format!("{b}/stats/press")),
        see("前週同曜日"),
        axe("stats-press"),
        shot("stats-02-press"),
        go(&format!("{b}/stats/press?format=print")),
        axe("stats-press-print"),
        go(&format!("{b}/daily-report")),
        axe("stats-daily-report"),
        fill("#count_20s", "-2"),
        json!({"submit": "main form button[type=submit]"}),
        json!({"status": 422}),
        see("20代の人数は 0 以上の整数"),
        axe("stats-daily-report-error"),
        shot("stats-03-daily-error"),
        fill("#count_20s", "3"),
        json!({"submit": "main form button[type=submit]"}),
        see("保存しました"),
        shot("stats-04-daily-saved"),
        go(&format!("{b}/lang/en")),
        go(&format!("{b}/stats")),
        see("Epidemic curve"),
        axe("stats-page-en"),
        shot("stats-05-page-en"),
    ]);
    let axed = steps.iter().filter(|s| s.get("axe").is_some()).count();
    let report = walk((1366, 768), true, steps).await;
    assert_eq!(report["axe"].as_object().unwrap().len(), axed);
    // On a phone: the figures and the chart fit the screen (the wide tables scroll in
    // their own box), in Japanese and in English.
    let mut steps = vec![go(&format!("{b}/login"))];
    steps.extend(login(&b, "nurse"));
    steps.extend([
        go(&format!("{b}/stats")),
        see("流行曲線"),
        json!({"fits": true}),
        axe("stats-page-360"),
        shot("stats-06-page-360"),
        go(&format!("{b}/lang/en")),
        go(&format!("{b}/stats/press")),
        see("Week before"),
        json!({"fits": true}),
        axe("stats-press-360-en"),
        shot("stats-07-press-360-en"),
    ]);
    walk((360, 740), true, steps).await;
    assert_eq!(
        app.count("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM daily_counts")
            .await,
        3
    );
    app.finish().await;
}

/// The nurse logged in (in English when `english`), on the import page with `file` chosen.
fn nurse_uploads(b: &str, english: bool, file: &std::path::Path) -> Vec<Value> {
    let mut steps = vec![go(&format!("{b}/login"))];
    steps.extend(login(b, "nurse"));
    if english {
        steps.push(go(&format!("{b}/lang/en")));
    }
    steps.extend([
        go(&format!("{b}/imports")),
        json!({"upload": "#file", "path": file.display().to_string()}),
    ]);
    steps
}

/// A file whose check takes longer than the upload may wait (a 1 s request limit here)
/// shows its progress on a phone — in Japanese, fitting the screen, with axe — and the page
/// leads by itself to the dry run's report when the check ends. Then in English: a file
/// whose every row is refused (no go-ahead), and a file past the room the console keeps for
/// import files (1 MB here) — told to retry, on the form.
#[tokio::test]
async fn a_long_check_shows_its_progress_on_a_phone() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.http.request_timeout_secs = 1;
        c.http.import_files_mb = 1;
    })
    .await;
    app.login().await;
    let file = std::env::temp_dir().join(format!("mimamori-long-{}.csv", std::process::id()));
    let mut csv = String::from(
        "case_number,report_type,diagnosis_date,diagnosis_method,doctor_name,institution_name,name,date_of_birth,phone,onset_date,sex,municipality\n",
    );
    for i in 0..3000 {
        csv.push_str(&format!(
            "L{i},patient,2022-01-10,pcr,医師,病院,長い 一覧{i},1950-01-01,080{i:08},2022-01-09,male,港区\n"
        ));
    }
    std::fs::write(&file, csv).unwrap();
    // ~600 KB: counted twice, past the 1 MB room.
    let big = std::env::temp_dir().join(format!("mimamori-big-{}.csv", std::process::id()));
    std::fs::write(&big, std::fs::read_to_string(&file).unwrap().repeat(2)).unwrap();
    let b = app.base.clone();
    let mut steps = nurse_uploads(&b, false, &file);
    steps.extend([
        json!({"submit": "main form button[type=submit]"}),
        see("ファイルを確認しています"),
        json!({"fits": true}),
        axe("import-checking-360"),
        shot("import-04-checking-360"),
        json!({"wait_url": "/imports/pending/[0-9a-f]+$"}),
        see("確認結果"),
        json!({"fits": true}),
        shot("import-05-checked-360"),
        go(&format!("{b}/imports")),
        json!({"upload": "#file", "path": big.display().to_string()}),
        json!({"submit": "main form button[type=submit]"}),
        see("少し待ってから、もう一度お試しください"),
        json!({"fits": true}),
        axe("import-busy-360"),
        shot("import-05b-busy-360"),
    ]);
    walk((360, 740), true, steps).await;
    // In English on a console screen, and a file whose only row is refused, each field named.
    let bad = std::env::temp_dir().join(format!("mimamori-bad-{}.csv", std::process::id()));
    std::fs::write(&bad, "case_number,phone\nX1,090-0000-0000\n").unwrap();
    let mut steps = nurse_uploads(&b, true, &file);
    steps.extend([
        json!({"submit": "main form button[type=submit]"}),
        see("Checking the file"),
        axe("import-checking-en"),
        shot("import-06-checking-en"),
        json!({"wait_url": "/imports/pending/[0-9a-f]+$"}),
        go(&format!("{b}/imports")),
        json!({"upload": "#file", "path": bad.display().to_string()}),
        json!({"submit": "main form button[type=submit]"}),
        // At once, or after the progress page when the machine is loaded (the request's
        // time is 1 s here).
        json!({"see_soon": "Errors (not imported)"}),
        see("the diagnosing doctor's name is required"),
        // Nothing would be written: no go-ahead, the way back instead.
        see("This file has no rows to import"),
        see("Choose another file"),
        axe("import-refused-en"),
        shot("import-07-refused-en"),
        go(&format!("{b}/imports")),
        json!({"upload": "#file", "path": big.display().to_string()}),
        json!({"submit": "main form button[type=submit]"}),
        see("Please try again shortly"),
        see("try again in a minute"),
        axe("import-busy-en"),
        shot("import-08-busy-en"),
    ]);
    walk((1366, 768), true, steps).await;
    let _ = std::fs::remove_file(&bad);
    let _ = std::fs::remove_file(&big);
    let _ = std::fs::remove_file(&file);
    app.finish().await;
}

/// A file set aside because the same member chose a newer one while it was being checked:
/// its page says so and leads back — on a phone in Japanese and on a console screen in
/// English, each with axe and a screenshot.
#[tokio::test]
async fn a_file_set_aside_for_a_newer_one_says_so() {
    let app = crate::helpers::spawn_app_with(|c| c.http.request_timeout_secs = 1).await;
    let csrf = app.login().await;
    // The same member as the browser's ("nurse"): the page is theirs.
    let (first, _) = crate::helpers::newer_file_while_checking(&app, &csrf).await;
    let b = app.base.clone();
    let mut steps = vec![go(&format!("{b}/login"))];
    steps.extend(login(&b, "nurse"));
    steps.extend([
        go(&format!("{b}{first}")),
        see("新しいファイルが選ばれました"),
        see("取込の画面に戻る"),
        json!({"fits": true}),
        axe("import-set-aside-360"),
        shot("import-09-set-aside-360"),
    ]);
    walk((360, 740), true, steps).await;
    let mut steps = vec![go(&format!("{b}/login"))];
    steps.extend(login(&b, "nurse"));
    steps.extend([
        go(&format!("{b}/lang/en")),
        go(&format!("{b}{first}")),
        see("A newer file was chosen"),
        see("Back to imports"),
        axe("import-set-aside-en"),
        shot("import-10-set-aside-en"),
    ]);
    walk((1366, 768), true, steps).await;
    app.finish().await;
}

/// A nurse imports an older system's export from the console: checks it (nothing written,
/// the rows to look at listed with their line and reason), imports it, and lands on the
/// batch's report — each page at 1366×768 with axe.
#[tokio::test]
async fn a_nurse_checks_and_imports_an_export() {
    let app = spawn_app().await;
    app.login().await;
    let file = std::env::temp_dir().join(format!("mimamori-import-{}.csv", std::process::id()));
    std::fs::write(
        &file,
        "NESID番号,届出区分,診断年月日,診断方法,医師名,医療機関名,氏名,フリガナ,性別,生年月日,電話番号,市区町村,発病年月日,20 備考\n\
         2001,患者,令和4年1月10日,PCR,医師 一郎,テスト病院,取込 花子,トリコミ ハナコ,女,昭和25年4月1日,090-8888-0001,港区,令和4年1月9日,\n\
         2002,患者,令和4年1月11日,PCR,医師 一郎,テスト病院,取込 花子,ﾄﾘｺﾐ ﾊﾅｺ,女,1950/04/01,090-8888-0001,港区,2022/01/10,\n\
         2003,患者,令和4年2月30日,PCR,医師 一郎,テスト病院,取込 次郎,トリコミ ジロウ,男,1960/01/01,090-8888-0002,港区,2022/01/10,\n",
    )
    .unwrap();
    let b = app.base.clone();
    let mut steps = nurse_uploads(&b, false, &file);
    steps.extend([
        axe("import-page"),
        json!({"select": "#mapping", "value": "nesid.mapping.toml"}),
        json!({"submit": "main form button[type=submit]"}),
        see("確認結果"),
        see("重複"),
        see("その日は存在しません"),
        axe("import-dry-run"),
        shot("import-01-dry-run"),
        json!({"submit": "main form:last-of-type button[type=submit]"}),
        json!({"wait_url": "/imports/[1-9][0-9]*$"}),
        see("新規登録"),
        axe("import-batch"),
        shot("import-02-batch"),
    ]);
    let axed = steps.iter().filter(|s| s.get("axe").is_some()).count();
    let report = walk((1366, 768), true, steps).await;
    assert_eq!(report["axe"].as_object().unwrap().len(), axed);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM import_rows WHERE outcome = 'created'")
            .await,
        1
    );
    // The same file again, in English on a phone: every row was imported before, the row
    // with the impossible date is still named.
    let mut steps = nurse_uploads(&b, true, &file);
    steps.extend([
        json!({"select": "#mapping", "value": "nesid.mapping.toml"}),
        json!({"submit": "main form button[type=submit]"}),
        see("there is no such day"),
        see("Imported before"),
        // The console header (its menu and account links) wraps on a phone instead of
        // making the page wider than the screen; the rows' table scrolls in its own region.
        json!({"fits": true}),
        axe("import-dry-run-en-360"),
        shot("import-03-dry-run-en-360"),
    ]);
    walk((360, 740), true, steps).await;
    let _ = std::fs::remove_file(&file);
    app.finish().await;
}

/// A follow-up contractor lands on its people, most worrying first, and records a call that
/// went unanswered; nothing of the health centre's own pages is offered to it.
#[tokio::test]
async fn a_contractor_lands_on_its_people_and_records_a_call() {
    let app = spawn_app().await;
    app.login().await;
    let (urgent, silent, calm, org) = people_to_review(&app).await;
    app.user("caller", mimamori_core::access::Role::Contractor, Some(org))
        .await;
    let b = app.base.clone();
    let mut steps = login(&b, "caller");
    steps.extend([
        see("見守り一覧"),
        not_see("href=\"/escalations\""),
        axe("contractor-landing"),
        shot("contractor-01-landing"),
        json!({"submit": "table tbody tr:nth-child(2) a[href$='#calls']"}),
        see("電話フォローアップ"),
        check("input[name=outcome][value=no_answer]"),
        fill("#call-note", "留守電に伝言"),
        json!({"submit": "#calls button[type=submit]"}),
        see("出なかった"),
        see("留守電に伝言"),
        axe("contractor-person"),
        shot("contractor-02-call-recorded"),
        // An empty submit names the problem.
        json!({"submit": "#calls button[type=submit]"}),
        json!({"status": 422}),
        see("電話の結果を選んでください"),
        axe("contractor-call-error"),
        go(&format!("{b}/lang/en")),
        go(&format!("{b}/cohort")),
        axe("contractor-landing-en"),
    ]);
    let report = walk((1366, 768), true, steps).await;
    assert!(report["failed"].is_null());
    let order = |id: i64| format!("/persons/{id}\"");
    let _ = (order(urgent), order(calm));
    let calls: i64 = mimamori_core::with_db!(&app.db, p => sqlx::query_scalar(
        "SELECT COUNT(*) FROM phone_followups WHERE person_id = $1 AND outcome = 'no_answer'")
        .bind(silent).fetch_one(p).await.unwrap());
    assert_eq!(
        calls, 1,
        "the second row (not reporting) was the one called"
    );
    app.finish().await;
}

fn not_see(text: &str) -> Value {
    json!({"not_see": text})
}

/// People whose SpO2 drifts down from a high baseline while staying above the fixed
/// threshold, recorded over the last days (for the rule lab).
async fn drifting_people(app: &TestApp) -> Vec<i64> {
    use mimamori_core::{
        domain::{Spo2, Temperature},
        rules::Thresholds,
        store::{Actor, observations},
    };
    let mut ids = Vec::new();
    for (i, course) in [
        [99, 99, 98, 97, 97],
        [99, 98, 99, 98, 97],
        [97, 97, 97, 97, 97],
    ]
    .iter()
    .enumerate()
    {
        let p = app
            .register(
                &format!("080-4545-000{i}"),
                "sms",
                json!({"name": format!("検証 {i}")}),
            )
            .await;
        for (d, s) in course.iter().enumerate() {
            let at = chrono::Utc::now() - chrono::Duration::days(5 - d as i64);
            let a = observations::Answer {
                temperature: Some(Temperature::new("t", 36.6).unwrap()),
                spo2: Some(Spo2::new("s", *s).unwrap()),
                ..Default::default()
            };
            observations::record_by_staff(
                &app.db,
                mimamori_core::access::Access::System(Actor::System),
                p,
                "self",
                "web",
                at,
                &a,
                None,
                &Thresholds::default(),
            )
            .await
            .unwrap();
        }
        ids.push(p);
    }
    ids
}

/// A nurse at 1366×768 tries a stricter SpO2 baseline rule in the rule lab: a draft that
/// cannot work is refused by field; the replay shows both rule sets side by side and who
/// would be flagged earlier; activating needs a reason and lands as version 1, shown as in
/// force today. Japanese and English pages are axe-core clean.
#[tokio::test]
async fn a_nurse_tries_a_rule_in_the_lab_and_activates_it() {
    let app = spawn_app().await;
    app.login().await;
    let people = drifting_people(&app).await;
    let b = app.base.clone();
    let mut steps = vec![go(&format!("{b}/login"))];
    steps.extend(login(&b, "nurse"));
    steps.extend([
        go(&format!("{b}/rules")),
        see("ルール検証"),
        see("標準ルール（まだ版の適用なし）"),
        axe("lab-page"),
        fill("#temp_rising_days", "1"),
        json!({"submit": "button[formaction='/rules/replay']"}),
        json!({"status": 422}),
        see("temp_rising_days = 1 compares nothing"),
        axe("lab-error"),
        fill("#temp_rising_days", "3"),
        fill("#spo2_baseline_drop", "2"),
        json!({"submit": "button[formaction='/rules/replay']"}),
        see("再計算の結果"),
        see("判定が異なる人"),
        see(&format!("#{}", people[0])),
        see("案のみ該当"),
        axe("lab-replay"),
        shot("lab-01-replay"),
        json!({"submit": "button[formaction='/rules/model']"}),
        see("人口モデルでの結果"),
        see("1,000人・1日あたりアラート数"),
        axe("lab-model"),
        shot("lab-01b-model"),
        json!({"submit": "button[formaction='/rules/activate']"}),
        json!({"status": 422}),
        see("変更の理由を短く書いてください"),
        fill("#spo2_baseline_drop", "2"),
        fill("#note", "基準値からの低下を早めに検知するため"),
        json!({"submit": "button[formaction='/rules/activate']"}),
        see("適用しました: 版 1"),
        see("基準値からの低下を早めに検知するため"),
        axe("lab-activated"),
        shot("lab-02-activated"),
        go(&format!("{b}/lang/en")),
        go(&format!("{b}/rules")),
        see("Rule lab"),
        axe("lab-page-en"),
        shot("lab-03-page-en"),
    ]);
    let axed = steps.iter().filter(|s| s.get("axe").is_some()).count();
    let report = walk((1366, 768), true, steps).await;
    assert_eq!(report["axe"].as_object().unwrap().len(), axed);
    // On a phone (360 px): the page, an error, both languages.
    let mut steps = vec![go(&format!("{b}/login"))];
    steps.extend(login(&b, "nurse"));
    steps.extend([
        go(&format!("{b}/lang/ja")),
        go(&format!("{b}/rules")),
        see("版 1"),
        axe("lab-phone"),
        shot("lab-04-phone"),
        fill("#spo2_baseline_drop", "x"),
        json!({"submit": "button[formaction='/rules/replay']"}),
        json!({"status": 422}),
        see("0以上の整数を入力してください"),
        axe("lab-phone-error"),
        shot("lab-05-phone-error"),
        go(&format!("{b}/lang/en")),
        go(&format!("{b}/rules")),
        see("Version"),
        axe("lab-phone-en"),
        shot("lab-06-phone-en"),
    ]);
    walk((360, 740), true, steps).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM rule_versions WHERE version = 1")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM health_centres WHERE rules = '{\"spo2_baseline_drop\":2}'")
            .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action IN ('rules.replay', 'rules.activate')"
        )
        .await,
        2
    );
    app.finish().await;
}

/// The console's error pages say what happened in both languages, the fields in the reader's
/// language (a file asked for in an unknown encoding, ja then en), and an unknown or another's
/// import progress page is a plain "not found"; the patients' door answers a path it does not
/// serve with the patient's own page, at 360 px. Every page axe-checked.
#[tokio::test]
async fn error_pages_say_what_happened_in_both_languages() {
    let app = spawn_app_with(|c| c.http.patient_addr = "127.0.0.1:0".into()).await;
    app.login().await;
    let b = app.base.clone();
    let door = app.patient_base.clone().expect("the patients' door");
    let mut steps = vec![go(&format!("{b}/login"))];
    steps.extend(login(&b, "nurse"));
    steps.extend([
        go(&format!("{b}/stats.csv?encoding=latin1")),
        see("受け付けられない項目があります"),
        see("文字コードは utf-8 か cp932"),
        axe("error-encoding-ja"),
        shot("error-01-encoding-ja"),
        go(&format!("{b}/imports/0?token=nothing")),
        see("見つかりませんでした"),
        see("was not found"),
        axe("error-not-found"),
        shot("error-02-not-found"),
        go(&format!("{b}/lang/en")),
        go(&format!("{b}/stats.csv?encoding=latin1")),
        see("the encoding must be utf-8 or cp932"),
        axe("error-encoding-en"),
        shot("error-03-encoding-en"),
    ]);
    walk((1366, 768), true, steps).await;
    walk(
        (360, 740),
        false,
        vec![
            go(&format!("{door}/persons")),
            see("このリンクは正しくありません"),
            see("This link is not valid"),
            axe("door-not-served"),
            shot("error-04-door-360"),
        ],
    )
    .await;
    app.finish().await;
}

/// The console told to retry (503, `Retry-After`) as a person sees it — on a phone and on a
/// console screen, both languages on one page, axe-checked: its one place is held by a
/// request waiting for a database connection that a storm of searches holds, and nobody may
/// queue. A request waits for a connection up to `database.connection_wait_secs`, set here
/// past any walk's time, so the held request waits until the storm ends whatever the
/// machine's speed (with the default 10 s a browser launched on a loaded machine could
/// arrive after the hold had ended).
#[tokio::test]
async fn a_busy_console_says_to_retry_in_both_languages() {
    let app = spawn_app_with(|c| {
        c.http.console_concurrency = 1;
        c.http.console_queue = 0;
        c.http.console_queue_ms = 0;
        c.http.request_timeout_secs = 300;
        c.database.connection_wait_secs = 300;
    })
    .await;
    app.login().await;
    let b = app.base.clone();
    let (release, stuck) = crate::lanes::hold_the_consoles_one_place(&app, "/persons").await;
    for (size, name) in [((360, 740), "busy-01-360"), ((1366, 768), "busy-02-1366")] {
        walk(
            size,
            true,
            vec![
                go(&format!("{b}/persons")),
                see("混み合って"),
                see("system is busy"),
                axe(name),
                shot(name),
            ],
        )
        .await;
    }
    let _ = release.send(());
    // The held request is served once the storm ends (never sent to log in again: it once
    // was, when its session could not be read).
    assert_eq!(
        stuck.await.unwrap(),
        200,
        "the held request is served after"
    );
    app.finish().await;
}
