//! Server-rendered SVG of a person's observations: temperature and SpO2 over the whole
//! observation period with threshold bands, missed check-ins marked. Readable without
//! JavaScript and printable; one `<path>` per series.
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};
use mimamori_core::{domain::Lang, store::observations::Observation};

use super::i18n::tr;

const W: f64 = 760.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const PANEL_H: f64 = 150.0;
const GAP: f64 = 44.0;
const TOP: f64 = 28.0;

struct Panel {
    y0: f64,
    min: f64,
    max: f64,
}

impl Panel {
    fn y(&self, v: f64) -> f64 {
        let v = v.clamp(self.min, self.max);
        self.y0 + PANEL_H - (v - self.min) / (self.max - self.min) * PANEL_H
    }
}

pub struct ChartInput<'a> {
    pub lang: Lang,
    pub tz: Tz,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub observations: &'a [Observation],
    /// Local dates of check-ins that ended missed or failed.
    pub missed: &'a [NaiveDate],
    /// The person's own SpO2 baseline (median of their first readings), when known: drawn
    /// as a dashed line, so a fall from it shows while still above the fixed bands.
    pub baseline: Option<i32>,
}

/// Fractional day index of an instant relative to local midnight of `start`.
fn day_pos(tz: Tz, start: NaiveDate, at: DateTime<Utc>) -> f64 {
    let local = at.with_timezone(&tz).naive_local();
    let base = start.and_hms_opt(0, 0, 0).expect("midnight");
    (local - base).num_seconds() as f64 / 86_400.0
}

pub fn render(c: &ChartInput) -> Markup {
    let lang = c.lang;
    let days = ((c.end - c.start).num_days() + 1).max(1) as f64;
    let plot_w = W - LEFT - RIGHT;
    let x = |d: f64| LEFT + (d / days) * plot_w;
    let temp = Panel {
        y0: TOP,
        min: 35.0,
        max: 41.0,
    };
    let spo2 = Panel {
        y0: TOP + PANEL_H + GAP,
        min: 85.0,
        max: 100.0,
    };
    // Room below the day labels for the legend.
    let height = spo2.y0 + PANEL_H + 78.0;

    // A line joins readings of consecutive days only: across a missed check-in or a day
    // without a reading it breaks, so a gap is never drawn as if it had been measured.
    let local_day = |at: DateTime<Utc>| at.with_timezone(&c.tz).date_naive();
    let series =
        |f: &dyn Fn(&Observation) -> Option<f64>, p: &Panel| -> (String, Vec<(f64, f64, f64)>) {
            let mut d = String::new();
            let mut pts = Vec::new();
            let mut last: Option<NaiveDate> = None;
            for o in c.observations {
                if let Some(v) = f(o) {
                    let (px, py) = (x(day_pos(c.tz, c.start, o.observed_at)), p.y(v));
                    let day = local_day(o.observed_at);
                    let joined = last.is_some_and(|l| {
                        (day - l).num_days() <= 1 && !c.missed.iter().any(|m| *m > l && *m <= day)
                    });
                    d.push_str(&format!(
                        "{}{px:.1},{py:.1} ",
                        if joined { "L" } else { "M" }
                    ));
                    pts.push((px, py, v));
                    last = Some(day);
                }
            }
            (d.trim_end().to_string(), pts)
        };
    let (temp_d, temp_pts) = series(&|o| o.temperature_c, &temp);
    let (spo2_d, spo2_pts) = series(&|o| o.spo2.map(f64::from), &spo2);
    let title = tr(lang, "temperature-and-spo2-over-the");
    let ticks: Vec<(f64, String)> = (0..days as i64)
        .map(|i| {
            (
                x(i as f64 + 0.5),
                (c.start + chrono::Duration::days(i))
                    .format("%-m/%-d")
                    .to_string(),
            )
        })
        .collect();
    let step = if ticks.len() > 16 { 2 } else { 1 };

    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {W} {height}")) width=(W) height=(height)
            role="img" aria-labelledby="chart-title chart-desc" font-family="sans-serif" font-size="11" {
            title id="chart-title" { (title) }
            desc id="chart-desc" {
                (format!("{} {} – {}; {} {}", tr(lang, "observation-period"), c.start, c.end,
                    c.observations.len(), tr(lang, "observations")))
            }
            // Temperature panel with bands at 37.5 and 38.0 °C.
            text x=(LEFT) y=(temp.y0 - 8.0) font-weight="bold" { (tr(lang, "temperature-c")) }
            rect x=(LEFT) y=(temp.y0) width=(plot_w) height=(PANEL_H) fill="#fafbfc" stroke="#ccd" {}
            rect class="band-fever" x=(LEFT) y=(temp.y(41.0)) width=(plot_w) height=(temp.y(38.0) - temp.y(41.0)) fill="#fdecea" {}
            rect class="band-warm" x=(LEFT) y=(temp.y(38.0)) width=(plot_w) height=(temp.y(37.5) - temp.y(38.0)) fill="#fff4e0" {}
            // Whole degrees labelled; 37.5 is the band's edge, named in the legend (three
            // labels half a degree apart crowded into each other).
            @for v in [36.0, 37.0, 37.5, 38.0, 39.0, 40.0] {
                line x1=(LEFT) x2=(W - RIGHT) y1=(temp.y(v)) y2=(temp.y(v)) stroke="#dde" stroke-dasharray="3 3" {}
                @if v != 37.5 {
                    text x=(LEFT - 6.0) y=(temp.y(v) + 4.0) text-anchor="end" { (format!("{v:.1}")) }
                }
            }
            // SpO2 panel with bands at ≤ 93 % and 94–95 %.
            text x=(LEFT) y=(spo2.y0 - 8.0) font-weight="bold" { (tr(lang, "spo2")) }
            rect x=(LEFT) y=(spo2.y0) width=(plot_w) height=(PANEL_H) fill="#fafbfc" stroke="#ccd" {}
            rect class="band-low" x=(LEFT) y=(spo2.y(93.0)) width=(plot_w) height=(spo2.y(85.0) - spo2.y(93.0)) fill="#fdecea" {}
            rect class="band-watch" x=(LEFT) y=(spo2.y(96.0)) width=(plot_w) height=(spo2.y(93.0) - spo2.y(96.0)) fill="#fff4e0" {}
            @for v in [85.0, 90.0, 93.0, 96.0, 100.0] {
                line x1=(LEFT) x2=(W - RIGHT) y1=(spo2.y(v)) y2=(spo2.y(v)) stroke="#dde" stroke-dasharray="3 3" {}
                text x=(LEFT - 6.0) y=(spo2.y(v) + 4.0) text-anchor="end" { (format!("{v:.0}")) }
            }
            // Day labels.
            @for (i, (tx, label)) in ticks.iter().enumerate() {
                @if i % step == 0 {
                    text x=(format!("{tx:.1}")) y=(spo2.y0 + PANEL_H + 16.0) text-anchor="middle" { (label) }
                }
            }
            @if !temp_d.is_empty() {
                path class="series-temperature" d=(temp_d) fill="none" stroke="#c5221f" stroke-width="2" {}
            }
            @for (px, py, v) in &temp_pts {
                circle cx=(format!("{px:.1}")) cy=(format!("{py:.1}")) r="3.5" fill="#c5221f" { title { (format!("{v:.1} ℃")) } }
            }
            // Answers with an urgent warning sign: a red ring on the day, in both panels.
            @for o in c.observations.iter().filter(|o| o.urgent) {
                @let ux = x(day_pos(c.tz, c.start, o.observed_at));
                g class="urgent" {
                    title { (tr(lang, "urgent-warning-sign")) }
                    circle cx=(format!("{ux:.1}")) cy=(format!("{:.1}", temp.y0 + 10.0)) r="7" fill="none" stroke="#b3261e" stroke-width="2.5" {}
                    text x=(format!("{ux:.1}")) y=(format!("{:.1}", temp.y0 + 14.0)) text-anchor="middle" fill="#b3261e" font-weight="bold" { "!" }
                }
            }
            @if let Some(b) = c.baseline {
                @let by = spo2.y(f64::from(b));
                g class="baseline" {
                    title { (format!("{} {b} %", tr(lang, "chart-own-baseline"))) }
                    line x1=(LEFT) x2=(W - RIGHT) y1=(format!("{by:.1}")) y2=(format!("{by:.1}")) stroke="#0b57d0" stroke-width="1.5" stroke-dasharray="6 4" {}
                    text x=(W - RIGHT - 4.0) y=(format!("{:.1}", by - 4.0)) text-anchor="end" fill="#0b57d0" { (format!("{} {b} %", tr(lang, "chart-own-baseline"))) }
                }
            }
            @if !spo2_d.is_empty() {
                path class="series-spo2" d=(spo2_d) fill="none" stroke="#0b57d0" stroke-width="2" {}
            }
            @for (px, py, v) in &spo2_pts {
                circle cx=(format!("{px:.1}")) cy=(format!("{py:.1}")) r="3.5" fill="#0b57d0" { title { (format!("{v:.0} %")) } }
            }
            // A low SpO2 is urgent by itself: its point gets the red ring too.
            @for (px, py, v) in spo2_pts.iter().filter(|(_, _, v)| *v <= 93.0) {
                g class="urgent-spo2" {
                    title { (format!("{v:.0} % — {}", tr(lang, "urgent-spo2-93-or-less"))) }
                    circle cx=(format!("{px:.1}")) cy=(format!("{py:.1}")) r="7" fill="none" stroke="#b3261e" stroke-width="2.5" {}
                }
            }
            // The legend: what the bands and marks mean.
            @let ly = spo2.y0 + PANEL_H + 34.0;
            g class="legend" font-size="11" {
                rect x=(LEFT) y=(ly - 9.0) width="12" height="12" fill="#fdecea" stroke="#b3261e" stroke-width="0.5" {}
                text x=(LEFT + 16.0) y=(ly + 1.0) { (tr(lang, "t-38-0-c-and-over-spo2-93-or-less")) }
                rect x=(LEFT + 250.0) y=(ly - 9.0) width="12" height="12" fill="#fff4e0" stroke="#b06000" stroke-width="0.5" {}
                text x=(LEFT + 266.0) y=(ly + 1.0) { (tr(lang, "t-37-5-37-9-c-spo2-94-95")) }
                text x=(LEFT) y=(ly + 22.0) fill="#b3261e" font-size="14" { "×" }
                text x=(LEFT + 16.0) y=(ly + 21.0) { (tr(lang, "no-answer-that-day")) }
                circle cx=(LEFT + 136.0) cy=(ly + 17.0) r="6" fill="none" stroke="#b3261e" stroke-width="2.5" {}
                text x=(LEFT + 148.0) y=(ly + 21.0) { (tr(lang, "urgent-a-warning-sign-or-spo2")) }
            }
            // Missed check-ins: a mark on the day in both panels.
            @for d in c.missed {
                @let mx = x((*d - c.start).num_days() as f64 + 0.5);
                g class="missed" {
                    title { (format!("{d} {}", tr(lang, "no-answer"))) }
                    text x=(format!("{mx:.1}")) y=(temp.y0 + PANEL_H - 6.0) text-anchor="middle" fill="#b3261e" font-size="14" { "×" }
                    text x=(format!("{mx:.1}")) y=(spo2.y0 + PANEL_H - 6.0) text-anchor="middle" fill="#b3261e" font-size="14" { "×" }
                }
            }
        }
    }
}

/// A small temperature sparkline (last readings), for cohort lists: 37.5 °C drawn as a line.
/// A row's temperature trend; its text alternative says it in words (first, last and how
/// many readings, or that there are none yet).
pub fn sparkline(observations: &[Observation], lang: Lang) -> Markup {
    let temps: Vec<f64> = observations
        .iter()
        .filter_map(|o| o.temperature_c)
        .collect();
    let (w, h) = (140.0, 32.0);
    let y = |v: f64| h - 2.0 - ((v.clamp(35.5, 40.0) - 35.5) / 4.5) * (h - 4.0);
    let step = if temps.len() > 1 {
        w / (temps.len() - 1) as f64
    } else {
        0.0
    };
    let d: String = temps
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{}{:.1},{:.1}",
                if i == 0 { "M" } else { " L" },
                i as f64 * step,
                y(*v)
            )
        })
        .collect();
    let label = match (temps.first(), temps.last()) {
        (Some(a), Some(b)) => match lang {
            Lang::Ja => format!("体温の推移 {a:.1} ℃ → {b:.1} ℃（{} 回）", temps.len()),
            Lang::En => format!(
                "Temperature {a:.1} °C → {b:.1} °C ({} readings)",
                temps.len()
            ),
        },
        _ => tr(lang, "no-temperature-recorded-yet").to_string(),
    };
    html! {
        svg class="sparkline" width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) role="img"
            aria-label=(label) {
            line x1="0" x2=(w) y1=(format!("{:.1}", y(37.5))) y2=(format!("{:.1}", y(37.5))) stroke="#f0b400" stroke-dasharray="2 2" {}
            @if !d.is_empty() { path d=(d) fill="none" stroke="#c5221f" stroke-width="1.5" {} }
        }
    }
}
