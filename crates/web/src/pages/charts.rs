//! Charts drawn as SVG on the server with plotters (no script, no canvas): a campaign's joins and redemptions per
//! day.

use super::Tr;
use plotters::prelude::*;
use tuangou_app::DailyFigures;

const WIDTH: u32 = 640;
const HEIGHT: u32 = 280;

/// Joins and redemptions per day as an SVG line chart; a sentence instead when there is nothing to draw.
pub fn daily_chart(days: &[DailyFigures], tr: &Tr) -> String {
    if days.is_empty() {
        return format!("<p class=\"muted\">{}</p>", tr.t("chart-empty"));
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
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(40)
        .build_cartesian_2d(first..last, 0..top + top / 5 + 1)?;
    chart
        .configure_mesh()
        .x_labels(7)
        .y_labels(5)
        .x_label_formatter(&|d| label(*d))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let joins = RGBColor(217, 56, 30);
    let redeemed = RGBColor(31, 119, 80);
    chart
        .draw_series(LineSeries::new(days.iter().map(|d| (d.day, d.joins)), joins.stroke_width(3)))?
        .label(tr.t("chart-joins"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], joins.stroke_width(3)));
    chart
        .draw_series(LineSeries::new(days.iter().map(|d| (d.day, d.redemptions)), redeemed.stroke_width(3)))?
        .label(tr.t("chart-redemptions"))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], redeemed.stroke_width(3)));
    chart.configure_series_labels().background_style(WHITE.mix(0.9)).border_style(BLACK).draw()?;
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
        assert!(daily_chart(&[], &Tr(Lang::Zh)).contains("<p"));
    }
}
