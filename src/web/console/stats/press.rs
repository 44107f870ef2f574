//! The daily press table [公表資料].
use super::*;

/// The daily press table [公表資料]: new cases of the day by age band, sex, municipality and
/// severity, with the previous day and the same day a week before, small numbers suppressed
/// by the body's rule; an age × sex table for the day. HTML, printable (`?format=print`) or
/// CSV (`?format=csv`).
pub(super) async fn press(
    State(s): State<AppState>,
    who: CurrentStaff,
    UiLang(lang): UiLang,
    Query(f): Query<Filter>,
) -> Result<Response, HtmlError> {
    let f = Filter {
        to: f.day.clone(),
        from: f.day.clone(),
        ..f
    };
    let a = asked(&s, &who.viewer(), &f, 1).await?;
    let day = a.to;
    let chosen: Vec<&Centre> = a.centres.iter().filter(|c| a.area.contains(c.id)).collect();
    // The strictest rule among the bodies whose figures are in the table.
    let max = chosen
        .iter()
        .map(|c| c.suppress_max as i64)
        .max()
        .unwrap_or(4);
    let days = [day, day - Duration::days(1), day - Duration::days(7)];
    let mut sections = Vec::new();
    for dim in ["age", "sex", "muni", "sev"] {
        let mut cols = Vec::new();
        for d in days {
            cols.push(stats::totals(&s.db, &a.area, Measure::CaseReported, dim, d, d).await?);
        }
        let mut keys: Vec<String> = match dim {
            "age" => AGE_BANDS.iter().map(|x| x.to_string()).collect(),
            "sex" => SEXES.iter().map(|x| x.to_string()).collect(),
            "sev" => SEVERITIES.iter().map(|x| x.to_string()).collect(),
            _ => {
                let mut k: Vec<String> = cols.iter().flatten().map(|r| r.0.clone()).collect();
                k.sort();
                k.dedup();
                k
            }
        };
        keys.retain(|k| cols.iter().flatten().any(|r| &r.0 == k && r.1 != 0) || dim != "muni");
        let cells: Vec<Vec<i64>> = keys
            .iter()
            .map(|k| {
                cols.iter()
                    .map(|c| c.iter().find(|r| &r.0 == k).map_or(0, |r| r.1))
                    .collect()
            })
            .collect();
        let t = Table {
            cells,
            col_totals: true,
            row_totals: false,
        };
        let shown = if t.cells.is_empty() {
            None
        } else {
            Some(suppress::suppress(&t, max))
        };
        sections.push((dim, keys, shown));
    }
    let cross = stats::totals(&s.db, &a.area, Measure::CaseReported, "age_sex", day, day).await?;
    let sexes = ["male", "female", "other", "unknown"];
    let cross_t = Table {
        cells: AGE_BANDS
            .iter()
            .map(|b| {
                sexes
                    .iter()
                    .map(|x| {
                        cross
                            .iter()
                            .find(|r| r.0 == format!("{b}|{x}"))
                            .map_or(0, |r| r.1)
                    })
                    .collect()
            })
            .collect(),
        col_totals: true,
        row_totals: true,
    };
    let cross_s = suppress::suppress(&cross_t, max);
    let place = if let Some(c) = a
        .centre
        .and_then(|id| a.centres.iter().find(|c| c.id == id))
    {
        c.name.clone()
    } else {
        tr(lang, "stats-whole-area").to_string()
    };
    if f.format == "csv" {
        let mut w = CsvChunks::new(Encoding::parse(&f.encoding).unwrap_or_default());
        w.row([
            "section",
            "category",
            &day.to_string(),
            &days[1].to_string(),
            &days[2].to_string(),
        ]);
        for (dim, keys, shown) in &sections {
            if let Some(sh) = shown {
                for (k, row) in keys.iter().zip(&sh.cells) {
                    let mut r = vec![dim.to_string(), label(Lang::Ja, dim, k)];
                    r.extend(row.iter().map(|c| suppress::text(*c)));
                    w.row(&r);
                }
                let mut r = vec![dim.to_string(), "計".to_string()];
                r.extend(sh.col_totals.iter().map(|c| suppress::text(*c)));
                w.row(&r);
            }
        }
        return Ok(csv_response(
            Encoding::parse(&f.encoding).unwrap_or_default(),
            &format!("press-{day}.csv"),
            Body::from(w.take()),
        ));
    }
    let tables = html! {
        p { (tr(lang, "stats-press-lead")) " " strong { (place) } " — " (day) }
        p class="muted" { (tr(lang, "stats-suppression-note")) " (1–" (max) ")" }
        @for (dim, keys, shown) in &sections {
            @if let Some(sh) = shown {
                div class="scroll" tabindex="0" {
                    table style="margin:1rem 0" {
                        caption style="text-align:left;font-weight:700" { (dim_title(lang, dim)) }
                        thead { tr {
                            th scope="col" { (dim_title(lang, dim)) }
                            th scope="col" { (tr(lang, "stats-that-day")) " " (day) }
                            th scope="col" { (tr(lang, "stats-previous-day")) }
                            th scope="col" { (tr(lang, "stats-week-before")) }
                        } }
                        tbody {
                            @for (k, row) in keys.iter().zip(&sh.cells) {
                                tr { th scope="row" { (label(lang, dim, k)) } @for c in row { td { (cell(*c)) } } }
                            }
                            tr { th scope="row" { (tr(lang, "stats-total")) } @for c in &sh.col_totals { td { strong { (cell(*c)) } } } }
                        }
                    }
                }
            }
        }
        div class="scroll" tabindex="0" {
            table style="margin:1rem 0" {
                caption style="text-align:left;font-weight:700" { (tr(lang, "stats-age-by-sex")) " " (day) }
                thead { tr {
                    th scope="col" { (tr(lang, "stats-dim-age")) }
                    @for x in sexes { th scope="col" { (label(lang, "sex", x)) } }
                    th scope="col" { (tr(lang, "stats-total")) }
                } }
                tbody {
                    @for (i, b) in AGE_BANDS.iter().enumerate() {
                        tr { th scope="row" { (label(lang, "age", b)) }
                            @for c in &cross_s.cells[i] { td { (cell(*c)) } }
                            td { (cell(cross_s.row_totals[i])) } }
                    }
                    tr { th scope="row" { (tr(lang, "stats-total")) }
                        @for c in &cross_s.col_totals { td { (cell(*c)) } }
                        td { strong { (count(cross_s.grand.unwrap_or(0))) } } }
                }
            }
        }
    };
    if f.format == "print" {
        return Ok(layout::bare_lang(
            lang,
            tr(lang, "stats-press-table"),
            html! {
                main { h1 { (tr(lang, "stats-press-table")) } (tables) }
            },
        )
        .into_response());
    }
    let qs = serde_urlencoded::to_string([
        ("day", day.to_string()),
        (
            "centre",
            a.centre.map(|c| c.to_string()).unwrap_or_default(),
        ),
    ])
    .unwrap_or_default();
    Ok(layout::page(lang, &who, tr(lang, "stats-press-table"), html! {
        (filter_form(lang, &a, "/stats/press", Some(day)))
        p class="actions" {
            a class="button" href=(format!("/stats/press?{qs}&format=print")) { (tr(lang, "stats-printable")) }
            a class="button" href=(format!("/stats/press?{qs}&format=csv")) { "CSV" }
            a class="button" href=(format!("/stats/press?{qs}&format=csv&encoding=cp932")) { "CSV (Shift_JIS)" }
        }
        (tables)
        @if who.role == Role::HealthCentreStaff {
            @if let Some(own) = a.centres.iter().find(|c| c.id == who.health_centre_id) {
                form method="post" action="/stats/publication" class="card" id="rules" {
                    h2 { (tr(lang, "stats-publication-rules")) }
                    input type="hidden" name="csrf" value=(who.csrf);
                    label for="suppress_max" { (tr(lang, "stats-suppress-max")) }
                    input type="number" id="suppress_max" name="suppress_max" value=(own.suppress_max) inputmode="numeric";
                    label for="lg_code" { (tr(lang, "stats-lg-code")) }
                    input type="text" id="lg_code" name="lg_code" value=(own.lg_code) inputmode="numeric" autocomplete="off";
                    button type="submit" { (tr(lang, "stats-save-rules")) }
                }
            }
        }
    }).into_response())
}

/// A shown cell on the page: a hidden count as `*`, a count with its thousands grouped (the
/// CSV keeps plain digits, [`suppress::text`]).
fn cell(c: Option<i64>) -> String {
    c.map_or_else(|| "*".to_string(), count)
}
