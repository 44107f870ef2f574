//! Permission is a value you must hold: every public store function that reads or writes
//! personal data takes an `Access` (a staff member, an opened person page, or the product
//! itself named as an actor), a `&Viewer`, an `Actor`, or the caller's transaction — never an
//! `Option` that can be left out. Functions the product itself runs (workers, webhooks, the
//! person's own link) are listed below by name, each with why; a new function touching
//! personal data without one of these fails this test.
use std::collections::BTreeMap;

/// Tables holding personal data (names, contact details, health answers, records).
const PERSONAL: &[&str] = &[
    "persons",
    "observations",
    "occurrence_reports",
    "phone_followups",
    "answer_drafts",
    "escalation_events",
    "person_",
];

/// What in a signature shows who is acting.
const HOLDS: &[&str] = &[
    "Access<", "&Viewer", ": Actor", "Raise<", "WriteTx<", "&Opened",
];

/// The product's own work, by (file, function): why no staff member's access applies.
const SYSTEM: &[(&str, &str, &str)] = &[
    (
        "stats/mod.rs",
        "refresh",
        "the statistics job: re-derives counts from the raw rows; only sums leave it",
    ),
    (
        "stats/mod.rs",
        "recount_answers",
        "the statistics job: counts check-ins per day and centre; only sums leave it",
    ),
    (
        "stats/published.rs",
        "published_cases",
        "open data for an Area the caller's role may see (`area_of`): returns only the published items (age band — the date of birth never leaves —, sex, municipality, dates); the handler audits the export",
    ),
    (
        "audit.rs",
        "search",
        "the audit log itself (ids and actions), for the officer checked by the handler; no personal fields",
    ),
    (
        "calls.rs",
        "opt_out",
        "inbound SMS STOP from the person's own number; audited as the person",
    ),
    (
        "calls.rs",
        "opt_in",
        "inbound SMS START from the person's own number; audited as the person",
    ),
    (
        "calls.rs",
        "household_next",
        "the call engine: the next member on the same phone, ids only",
    ),
    (
        "calls.rs",
        "identify",
        "inbound call: caller id + date of birth typed by the caller, id only",
    ),
    ("calls.rs", "known_caller", "inbound call: yes/no only"),
    (
        "calls.rs",
        "phone_of_checkin",
        "the call engine: the number being called",
    ),
    (
        "capacity.rs",
        "demand_on",
        "counts for the capacity plan, no person-level data",
    ),
    (
        "checkins/mod.rs",
        "plan_day",
        "the planner worker (set-based insert, ids only)",
    ),
    (
        "checkins/mod.rs",
        "close_overdue",
        "the reconcile worker: missed check-ins and their escalations (audited as system)",
    ),
    (
        "checkins/mod.rs",
        "recent_outcomes",
        "rule evaluation: statuses only",
    ),
    (
        "checkins/link.rs",
        "household_open",
        "the person's own signed link: who else on the phone has a check-in open (short names)",
    ),
    (
        "checkins/link.rs",
        "link_context",
        "the person's own signed link or call: language, flow, centre; no name or contact",
    ),
    (
        "checkins/link.rs",
        "link_contexts",
        "link_context for several signed links at once (the link pages' gathered reads)",
    ),
    (
        "checkins/link.rs",
        "done_contexts",
        "the person's own signed links: the page after an answer (the link pages' gathered reads; it audits each page it will show)",
    ),
    (
        "dialect.rs",
        "claim_due",
        "the dispatcher worker: claims due check-ins to send",
    ),
    (
        "dialect.rs",
        "claim_reminders",
        "the dispatcher worker: claims reminders to send",
    ),
    (
        "drafts.rs",
        "open",
        "the person's own signed link: their unsent answers (audited as the person)",
    ),
    (
        "drafts.rs",
        "save",
        "the person's own signed link: their unsent answers (audited as the person)",
    ),
    (
        "drafts.rs",
        "purge",
        "the reconcile worker: deletes expired drafts",
    ),
    (
        "escalations.rs",
        "urgent_open",
        "a count for the review queue, no person-level data",
    ),
    (
        "escalations.rs",
        "counts",
        "counts by priority for the dashboard, no person-level data",
    ),
    (
        "escalations.rs",
        "pending_notifications",
        "the staff-alert worker: escalation ids to staff, no patient data",
    ),
    (
        "merges.rs",
        "list",
        "merge history of a centre: record ids and field choices, no personal values",
    ),
    (
        "observations/answers.rs",
        "answer_checkins",
        "the answer writer: the person's own answers through their link or call (audited as the person)",
    ),
    (
        "outbox.rs",
        "put",
        "the development outbox provider storing a message it 'sent'",
    ),
    (
        "outbox.rs",
        "all",
        "the development outbox for tests; staff read it through list_for (scoped, audited)",
    ),
    (
        "checkins/mod.rs",
        "claim_due_in",
        "the delivery worker claiming one lane's due check-ins to send (ids and channels)",
    ),
    (
        "checkins/mod.rs",
        "claim_reminders_in",
        "the delivery worker claiming one lane's reminders to send (ids and channels)",
    ),
    (
        "stats/mod.rs",
        "recount",
        "the statistics check: re-derives counts from the raw rows; only sums leave it",
    ),
    (
        "stats/mod.rs",
        "rebuild",
        "the statistics rebuild (`mimamori stats rebuild`): only sums leave it",
    ),
    (
        "persons/lists.rs",
        "answer_rate",
        "a rate for the dashboard, no person-level data",
    ),
];

/// The file's public functions as (name, signature, body up to the next item), each body
/// followed by the bodies of the file's private functions it calls, and theirs in turn — a
/// public function that hands its work to a private helper is judged by what the helper
/// does.
fn public_functions(src: &str) -> Vec<(String, String, String)> {
    let all = functions(src);
    let private: Vec<&(String, String, String, bool)> = all.iter().filter(|f| !f.3).collect();
    all.iter()
        .filter(|f| f.3)
        .map(|(name, sig, body, _)| {
            let mut body = body.clone();
            let mut taken: Vec<&str> = Vec::new();
            loop {
                let more: Vec<&&(String, String, String, bool)> = private
                    .iter()
                    .filter(|p| !taken.contains(&p.0.as_str()) && calls(&body, &p.0))
                    .collect();
                if more.is_empty() {
                    break;
                }
                for p in more {
                    taken.push(&p.0);
                    body.push_str(&p.2);
                }
            }
            (name.clone(), sig.clone(), body)
        })
        .collect()
}

/// Whether `body` calls `name(…)` (not `other_name(…)` or `.name(…)`).
fn calls(body: &str, name: &str) -> bool {
    body.match_indices(&format!("{name}(")).any(|(i, _)| {
        let before = body[..i].chars().last().unwrap_or(' ');
        !before.is_alphanumeric() && before != '_' && before != '.'
    })
}

/// Every top-level function: (name, signature, body up to the next item, public); and every
/// `macro_rules!` as a private function named `name!` (a query's text kept in a macro is
/// judged where it is used).
fn functions(src: &str) -> Vec<(String, String, String, bool)> {
    let mut out = Vec::new();
    let macros: Vec<usize> = src
        .match_indices("\nmacro_rules! ")
        .map(|(i, _)| i + 1)
        .collect();
    let starts: Vec<(usize, bool)> = src
        .match_indices("\npub async fn ")
        .chain(src.match_indices("\npub fn "))
        .map(|(i, _)| (i + 1, true))
        .chain(
            src.match_indices("\nasync fn ")
                .chain(src.match_indices("\nfn "))
                .map(|(i, _)| (i + 1, false)),
        )
        .collect();
    let mut items: Vec<usize> = src
        .match_indices("\npub ")
        .chain(src.match_indices("\nfn "))
        .chain(src.match_indices("\nasync fn "))
        .chain(src.match_indices("\nimpl"))
        .chain(src.match_indices("\n#["))
        .chain(src.match_indices("\nconst "))
        .chain(src.match_indices("\ntype "))
        .chain(src.match_indices("\n///"))
        .chain(src.match_indices("\nmacro_rules! "))
        .map(|(i, _)| i + 1)
        .collect();
    items.push(src.len());
    items.sort();
    for &s in &macros {
        let rest = &src[s + "macro_rules! ".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let end = items.iter().copied().find(|&i| i > s).unwrap_or(src.len());
        out.push((
            format!("{name}!"),
            String::new(),
            src[s..end].to_string(),
            false,
        ));
    }
    for (s, public) in starts {
        let rest = &src[s..];
        let name_start = rest.find("fn ").unwrap() + 3;
        let name: String = rest[name_start..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let sig_end = rest.find('{').unwrap_or(rest.len());
        let sig = rest[..sig_end].to_string();
        let end = items.iter().copied().find(|&i| i > s).unwrap_or(src.len());
        out.push((name, sig, src[s..end].to_string(), public));
    }
    out
}

fn touches_personal_data(body: &str) -> bool {
    PERSONAL.iter().any(|t| {
        body.match_indices(t).any(|(i, _)| {
            let before = body[..i].chars().last().unwrap_or(' ');
            let after = body[i + t.len()..].chars().next().unwrap_or(' ');
            !before.is_alphanumeric()
                && before != '_'
                && before != ':'
                && (t.ends_with('_') || !(after.is_alphanumeric() || after == '_' || after == ':'))
        })
    })
}

#[test]
fn every_store_function_on_personal_data_needs_an_access_or_an_actor() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store");
    let mut missing = Vec::new();
    let mut option_viewer = Vec::new();
    let mut seen: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut paths = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                paths.push(path);
            }
        }
    }
    for path in paths {
        // "checkins.rs", or "persons/lists.rs" inside a module folder.
        let file = path
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let src = std::fs::read_to_string(&path).unwrap();
        if src.contains("Option<&Viewer>") || src.contains("Option<Viewer>") {
            option_viewer.push(file.clone());
        }
        for (name, sig, body) in public_functions(&src) {
            if !takes_the_database(&sig) || !touches_personal_data(&body) {
                continue;
            }
            let holds = HOLDS.iter().any(|h| sig.contains(h));
            let listed = SYSTEM.iter().any(|(f, n, _)| *f == file && *n == name);
            seen.insert((file.clone(), name.clone()), holds);
            if !holds && !listed {
                missing.push(format!("{file}::{name}"));
            }
        }
    }
    assert!(
        option_viewer.is_empty(),
        "a viewer is never optional: {option_viewer:?}"
    );
    assert!(
        missing.is_empty(),
        "store functions reading or writing personal data without an Access, a Viewer or an \
         Actor (take one, or list the function in SYSTEM with why): {missing:?}"
    );
    // The list stays true: every entry is a real function that still needs to be listed.
    for (f, n, why) in SYSTEM {
        assert!(!why.is_empty());
        match seen.get(&(f.to_string(), n.to_string())) {
            Some(false) => {}
            Some(true) => panic!("{f}::{n} now holds an access; take it off SYSTEM"),
            None => {
                panic!("{f}::{n} is listed in SYSTEM but is not a store function on personal data")
            }
        }
    }
    assert!(
        seen.len() > 40,
        "the scan found the store's functions ({})",
        seen.len()
    );
}

/// A store function takes the database: a `Db`, or where its statement runs (`db::On`: a
/// pool, or a writer's kept connection).
fn takes_the_database(sig: &str) -> bool {
    sig.contains("Db") || sig.contains("On<")
}

#[test]
fn the_scan_sees_a_function_on_a_kept_connection() {
    let src = "\npub async fn gathered<'a>(\n    on: impl Into<On<'a>>,\n    ids: &[i64],\n) -> Result<Vec<Row>> {\n    sqlx::query(\"SELECT name FROM persons WHERE id = ANY($1)\");\n}\n";
    let fns = public_functions(src);
    assert_eq!(fns.len(), 1);
    let (name, sig, body) = &fns[0];
    assert_eq!(name, "gathered");
    assert!(takes_the_database(sig), "{sig}");
    assert!(touches_personal_data(body));
    assert!(!HOLDS.iter().any(|h| sig.contains(h)));
}

#[test]
fn the_scan_sees_a_function_without_access() {
    let src = "\n/// reads\npub async fn leaky(db: &Db, id: i64) -> Result<()> {\n    sqlx::query(\"SELECT name FROM persons WHERE id = $1\");\n}\n\npub async fn fine(db: &Db, access: Access<'_>, id: i64) -> Result<()> {\n    sqlx::query(\"SELECT name FROM persons\");\n}\n";
    let fns = public_functions(src);
    assert_eq!(fns.len(), 2);
    let leaky = &fns.iter().find(|f| f.0 == "leaky").unwrap();
    assert!(touches_personal_data(&leaky.2));
    assert!(!HOLDS.iter().any(|h| leaky.1.contains(h)));
    let fine = &fns.iter().find(|f| f.0 == "fine").unwrap();
    assert!(HOLDS.iter().any(|h| fine.1.contains(h)));
    assert!(!touches_personal_data("SELECT 1 FROM health_centres"));
    assert!(!touches_personal_data(
        "crate::store::persons::load(db, id)"
    ));
}

/// A public function that hands its work to a private helper is judged by the helper's
/// body (and the helpers it calls in turn); a doc comment belongs to the function after it.
#[test]
fn the_scan_follows_private_helpers() {
    let src = "\npub async fn front(db: &Db, id: i64) -> Result<()> {\n    inner(db, id).await\n}\n\n/// Writes the observations of persons.\nasync fn inner(db: &Db, id: i64) -> Result<()> {\n    deeper(db, id).await\n}\n\nfn deeper(db: &Db, id: i64) -> Result<()> {\n    sqlx::query(\"UPDATE observations SET note = NULL WHERE id = $1\");\n}\n\npub async fn other(db: &Db) -> Result<()> {\n    db.inner_count()\n}\n";
    let fns = public_functions(src);
    assert_eq!(fns.len(), 2, "only public functions are judged");
    let front = fns.iter().find(|f| f.0 == "front").unwrap();
    assert!(touches_personal_data(&front.2), "{}", front.2);
    // `.inner_count()` is not a call of `inner`, and no doc comment leaks into `other`.
    let other = fns.iter().find(|f| f.0 == "other").unwrap();
    assert!(!touches_personal_data(&other.2), "{}", other.2);
}

#[test]
fn the_scan_sees_through_a_query_kept_in_a_macro() {
    let src = "\nmacro_rules! cols {\n    () => { \"SELECT name FROM persons \" };\n}\n\npub async fn front(db: &Db, id: i64) -> Result<()> {\n    sqlx::query(concat!(cols!(), \"WHERE id = $1\"))\n}\n\npub async fn other(db: &Db) -> Result<()> {\n    db.ping()\n}\n";
    let fns = public_functions(src);
    assert_eq!(fns.len(), 2, "a macro is not judged on its own");
    let front = fns.iter().find(|f| f.0 == "front").unwrap();
    assert!(touches_personal_data(&front.2), "{}", front.2);
    let other = fns.iter().find(|f| f.0 == "other").unwrap();
    assert!(!touches_personal_data(&other.2), "{}", other.2);
}
