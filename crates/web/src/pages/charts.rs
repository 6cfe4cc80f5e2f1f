//! Charts drawn as SVG on the server with plotters (no script, no canvas): a campaign's joins and redemptions per
//! day.
//!
//! Drawn at a phone's width (360 user units, shown at most 1.5× that: app.css), so the labels' 12.9 units are
//! 12.5–19 px on screen. Each day is also a dot, so a first day's figures show as points, not as a line too short
//! to see. A campaign with nothing yet gets a sentence with today's figures instead of an empty frame.

use super::Tr;
use plotters::prelude::*;
use tuangou_app::DailyFigures;

const WIDTH: u32 = 360;
const HEIGHT: u32 = 240;
/// Label size as plotters takes it; its SVG writes it ÷ 1.24, so 16 is 12.9 units (≈ px at a phone's width).
const LABEL: u32 = 16;

/// Joins and redemptions per day as an SVG line chart; a sentence instead when there is nothing to draw.
pub fn daily_chart(days: &[DailyFigures], tr: &Tr) -> String {
    if days.iter().all(|d| d.joins == 0 && d.redemptions == 0) {
        let (joins, redemptions) = days.last().map_or((0, 0), |d| (d.joins, d.redemptions));
        let figures =
            tr.ta("looks-chart-today", &[("joins", joins.to_string()), ("redemptions", redemptions.to_string())]);
        return format!(
            "<div class=\"chart-day-one\"><p class=\"chart-today\">{figures}</p><p class=\"muted small\">{}</p></div>",
            tr.t("looks-chart-day-one")
        );
    }
    let mut svg = String::new();
    if draw(days, tr, &mut svg).is_err() {
        return format!("<p class=\"muted\">{}</p>", tr.t("chart-empty"));
    }
    svg
}

fn label(day: i64) -> String {
    // `day` counts China days since the epoch; the label is MM-DD.
    let date = tuangou_domain::time::china_time(tuangou_domain::time::Millis(day * 86_400_000));
    date.get(5..10).unwrap_or_default().to_owned()
}

fn draw<'a>(days: &[DailyFigures], tr: &Tr, svg: &'a mut String) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let first = days.first().map_or(0, |d| d.day);
    let last = days.last().map_or(0, |d| d.day).max(first + 1);
    let top = days.iter().map(|d| d.joins.max(d.redemptions)).max().unwrap_or(1).max(1);
    let root = SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(10)
        .x_label_area_size(26)
        .y_label_area_size(34)
        .build_cartesian_2d(first..last, 0..top + top / 5 + 1)?;
    chart
        .configure_mesh()
        .x_labels(5)
        .y_labels(5)
        .x_label_style(("sans-serif", LABEL))
        .y_label_style(("sans-serif", LABEL))
        .x_label_formatter(&|d| label(*d))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let joins = RGBColor(217, 56, 30);
    let redeemed = RGBColor(31, 119, 80);
    chart.draw_series(days.iter().map(|d| Circle::new((d.day, d.joins), 4, joins.filled())))?;
    chart.draw_series(days.iter().map(|d| Circle::new((d.day, d.redemptions), 4, redeemed.filled())))?;
    chart
        .draw_series(LineSeries::new(days.iter().map(|d| (d.day, d.joins)), joins.stroke_width(3)))?
        .label(tr.t("chart-joins"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], joins.stroke_width(3)));
    chart
        .draw_series(LineSeries::new(days.iter().map(|d| (d.day, d.redemptions)), redeemed.stroke_width(3)))?
        .label(tr.t("chart-redemptions"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], redeemed.stroke_width(3)));
    chart
        .configure_series_labels()
        .label_font(("sans-serif", LABEL))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tuangou_domain::rules_card::Lang;

    #[test]
    fn a_chart_is_an_svg_with_both_series() {
        let days = [
            DailyFigures { day: 20_000, joins: 5, redemptions: 0 },
            DailyFigures { day: 20_001, joins: 12, redemptions: 3 },
        ];
        let svg = daily_chart(&days, &Tr(Lang::En));
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("Joins") && svg.contains("Redemptions"));
        // Both series are drawn in their own colours (plotters writes them as upper-case hex strokes).
        assert!(svg.contains("#D9381E") && svg.contains("#1F7750"), "{svg}");
        assert!(daily_chart(&[], &Tr(Lang::Zh)).contains("chart-day-one"));
    }

    /// Every label is at least 12.5 units in a 360-unit-wide drawing: ≥ 12 px on a phone, never the 5 px of a
    /// 640-unit drawing squeezed into one.
    #[test]
    fn labels_are_readable_at_a_phones_width() {
        let days: Vec<DailyFigures> =
            (0..10).map(|i| DailyFigures { day: 20_000 + i, joins: i * 3, redemptions: i }).collect();
        let svg = daily_chart(&days, &Tr(Lang::Zh));
        assert!(svg.contains(&format!("width=\"{WIDTH}\"")), "{svg}");
        let sizes: Vec<f64> = regex_free_sizes(&svg);
        assert!(!sizes.is_empty(), "{svg}");
        assert!(sizes.iter().all(|&s| s >= 12.5), "{sizes:?}");
    }

    /// Day one: nothing yet is a sentence with today's numbers, not an empty frame; a first day's joins are dots.
    #[test]
    fn day_one_says_what_there_is() {
        let html = daily_chart(&[DailyFigures { day: 20_000, joins: 0, redemptions: 0 }], &Tr(Lang::Zh));
        assert!(!html.contains("<svg"), "{html}");
        assert!(html.contains("0 人参团") && html.contains("0 次核销"), "{html}");
        let svg = daily_chart(&[DailyFigures { day: 20_000, joins: 4, redemptions: 0 }], &Tr(Lang::Zh));
        assert!(svg.starts_with("<svg") && svg.contains("<circle"), "{svg}");
    }

    /// The `font-size` values of an SVG's text.
    fn regex_free_sizes(svg: &str) -> Vec<f64> {
        svg.split("font-size=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter_map(|size| size.trim_end_matches("px").parse().ok())
            .collect()
    }
}
