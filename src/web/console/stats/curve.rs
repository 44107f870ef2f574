//! The daily figures of a period and the epidemic curve [流行曲線] drawn from them.
use super::*;

/// Daily sums of the period (and six days before, for the 7-day average).
pub(super) struct Daily {
    pub(super) days: Vec<NaiveDate>,
    pub(super) by: std::collections::HashMap<(String, NaiveDate), i64>,
}

impl Daily {
    pub(super) fn get(&self, m: Measure, d: NaiveDate) -> i64 {
        self.by
            .get(&(m.as_str().to_string(), d))
            .copied()
            .unwrap_or(0)
    }
    pub(super) fn avg7(&self, m: Measure, d: NaiveDate) -> f64 {
        (0..7)
            .map(|i| self.get(m, d - Duration::days(i)))
            .sum::<i64>() as f64
            / 7.0
    }
    pub(super) fn sum(&self, m: Measure) -> i64 {
        self.days.iter().map(|d| self.get(m, *d)).sum()
    }
}

pub(super) const DAILY_MEASURES: [Measure; 10] = [
    Measure::CaseReported,
    Measure::CaseOnset,
    Measure::Tested,
    Measure::Positive,
    Measure::Admitted,
    Measure::Recovered,
    Measure::Death,
    Measure::ContactNew,
    Measure::Escalation,
    Measure::EscalationUrgent,
];

pub(super) async fn daily(s: &AppState, a: &Asked) -> Result<Daily, AppError> {
    let points = stats::series(
        &s.db,
        &a.area,
        &DAILY_MEASURES,
        &["total"],
        a.from - Duration::days(6),
        a.to,
    )
    .await?;
    let mut days = Vec::new();
    let mut d = a.from;
    while d <= a.to {
        days.push(d);
        d += Duration::days(1);
    }
    Ok(Daily {
        days,
        by: points
            .into_iter()
            .map(|p| ((p.measure, p.day), p.n))
            .collect(),
    })
}

/// The epidemic curve: new cases per report day (bars), their 7-day average, and cases by
/// onset date (line). SVG drawn on the server, with a text summary for screen readers.
pub(super) fn curve(lang: Lang, d: &Daily) -> Markup {
    let (w, h, bottom, top) = (760.0, 260.0, 36.0, 16.0);
    let n = d.days.len().max(1) as f64;
    let max = d
        .days
        .iter()
        .map(|x| {
            d.get(Measure::CaseReported, *x)
                .max(d.get(Measure::CaseOnset, *x))
        })
        .max()
        .unwrap_or(0);
    // The axis: four steps of 1, 2 or 5 × 10ⁿ (whole counts, each label its own — a top of 3
    // cases had labelled 0, 1, 2, 2, 3), grouped by thousands, with room on the left for
    // the widest label (a nation's peak day, "500,000", is twice as wide as a centre's).
    let step = {
        let raw = (max as f64 / 4.0).max(1.0);
        let mag = 10f64.powi(raw.log10().floor() as i32);
        [1.0, 2.0, 5.0, 10.0]
            .into_iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag)
    };
    let max = step * 4.0;
    let ticks: Vec<(f64, String)> = (0..=4)
        .map(|k| {
            let v = step * k as f64;
            (v, count(v as i64))
        })
        .collect();
    let widest = ticks.iter().map(|(_, t)| t.len()).max().unwrap_or(1) as f64;
    let left = (12.0 + 6.5 * widest).max(48.0);
    let plot_w = w - left - 8.0;
    let plot_h = h - top - bottom;
    let bw = plot_w / n;
    let y = |v: f64| top + plot_h - v / max * plot_h;
    let x = |i: usize| left + i as f64 * bw;
    let line = |f: &dyn Fn(NaiveDate) -> f64| {
        d.days
            .iter()
            .enumerate()
            .map(|(i, day)| {
                format!(
                    "{}{:.1},{:.1}",
                    if i == 0 { "M" } else { "L" },
                    x(i) + bw / 2.0,
                    y(f(*day))
                )
            })
            .collect::<String>()
    };
    let avg = line(&|day| d.avg7(Measure::CaseReported, day));
    let onset = line(&|day| d.get(Measure::CaseOnset, day) as f64);
    let total = d.sum(Measure::CaseReported);
    let peak = d
        .days
        .iter()
        .max_by_key(|x| d.get(Measure::CaseReported, **x))
        .copied()
        .unwrap_or(d.days[0]);
    let step = (d.days.len() / 8).max(1);
    html! {
        figure {
            // On a phone the chart keeps readable labels and scrolls in its box.
            div style="overflow-x:auto" tabindex="0" role="region" aria-labelledby="curve-desc" {
            svg viewBox=(format!("0 0 {w} {h}")) style="min-width:600px" role="img" aria-labelledby="curve-title curve-desc" {
                title id="curve-title" { (tr(lang, "stats-curve-title")) }
                desc id="curve-desc" {
                    (format!("{} {} – {}: {}; {} {} ({})", tr(lang, "stats-new-cases"), d.days[0], d.days[d.days.len() - 1], count(total),
                        tr(lang, "stats-peak"), peak, count(d.get(Measure::CaseReported, peak))))
                }
                line x1=(left) y1=(top + plot_h) x2=(w - 8.0) y2=(top + plot_h) stroke="#555" {}
                @for (v, label) in &ticks {
                    text x=(left - 6.0) y=(y(*v) + 4.0) text-anchor="end" font-size="11" fill="#333" { (label) }
                    line x1=(left) y1=(y(*v)) x2=(w - 8.0) y2=(y(*v)) stroke="#e3e6ea" {}
                }
                @for (i, day) in d.days.iter().enumerate() {
                    @let v = d.get(Measure::CaseReported, *day) as f64;
                    rect x=(format!("{:.1}", x(i) + bw * 0.1)) y=(format!("{:.1}", y(v))) width=(format!("{:.1}", bw * 0.8)) height=(format!("{:.1}", top + plot_h - y(v))) fill="#7aa7e0" {}
                    @if i % step == 0 {
                        text x=(format!("{:.1}", x(i) + bw / 2.0)) y=(h - bottom + 16.0) text-anchor="middle" font-size="11" fill="#333" { (day.format("%m/%d")) }
                    }
                }
                path d=(avg) fill="none" stroke="#12355b" stroke-width="2.5" {}
                path d=(onset) fill="none" stroke="#b3261e" stroke-width="1.5" stroke-dasharray="5 3" {}
            }
            }
            figcaption {
                span style="color:#4a7fc1" { "■ " } (tr(lang, "stats-by-report-date")) " · "
                span style="color:#12355b" { "━ " } (tr(lang, "stats-7-day-average")) " · "
                span style="color:#b3261e" { "╌ " } (tr(lang, "stats-by-onset-date"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The curve's axis has five labels, each its own, grouped by thousands, and none starts
    /// left of the chart: the room on the left grows with the widest (a nation's peak day).
    #[test]
    fn the_curve_has_room_for_its_widest_label() {
        let day = NaiveDate::from_ymd_opt(2022, 8, 19).unwrap();
        for (n, label) in [(3, "4"), (12, "20"), (1_200, "2,000"), (260_000, "400,000")] {
            let d = Daily {
                days: vec![day],
                by: [((Measure::CaseReported.as_str().to_string(), day), n)].into(),
            };
            let svg = curve(Lang::Ja, &d).into_string();
            assert!(svg.contains(&format!(">{label}</text>")), "{label}: {svg}");
            // The top label's anchor (its right end) less its width at 6.5 px a character.
            let x: f64 = svg
                .split(&format!(">{label}</text>"))
                .next()
                .and_then(|s| s.rsplit("<text x=\"").next())
                .and_then(|s| s.split('"').next())
                .and_then(|s| s.parse().ok())
                .unwrap();
            assert!(x - 6.5 * label.len() as f64 >= 0.0, "{label} at {x}");
            // Five labels, each its own.
            let labels: Vec<&str> = svg
                .split("text-anchor=\"end\" font-size=\"11\" fill=\"#333\">")
                .skip(1)
                .map(|s| s.split('<').next().unwrap())
                .collect();
            let mut distinct = labels.clone();
            distinct.dedup();
            assert_eq!((labels.len(), distinct.len()), (5, 5), "{labels:?}");
        }
    }
}
