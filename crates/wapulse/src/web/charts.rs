//! Charts drawn on the server (issue 31): stacked bars as SVG rectangles,
//! each with a `<title>` holding its exact value (shown on hover, read by
//! screen readers), and the same figures as a table for anyone who cannot
//! see the chart. Pure: tested without a page.

/// One column of a chart: a label and one value per series.
#[derive(Clone, Debug)]
pub struct Column {
    /// What the column covers (`14:00`).
    pub label: String,
    /// One value per series, in the chart's series order.
    pub values: Vec<u64>,
}

/// One series: its CSS class and its name.
#[derive(Clone, Debug)]
pub struct Series {
    /// The class that colours it (`ok`, `warning`, `critical`, `muted`).
    pub class: &'static str,
    /// Its name in titles and the table head.
    pub name: String,
}

/// One drawn rectangle.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Left edge, in viewBox units.
    pub x: String,
    /// Top edge.
    pub y: String,
    /// Width.
    pub w: String,
    /// Height.
    pub h: String,
    /// Its series' class.
    pub class: &'static str,
    /// What it shows, exactly.
    pub title: String,
}

/// A chart ready for a template.
#[derive(Clone, Debug)]
pub struct Chart {
    /// What it shows (the SVG's `aria-label` and the table's caption).
    pub label: String,
    /// The rectangles.
    pub bars: Vec<Bar>,
    /// The series, for the legend.
    pub series: Vec<Series>,
    /// The table's head (the first cell names the columns).
    pub head: Vec<String>,
    /// The table's rows: one per column.
    pub rows: Vec<Vec<String>>,
    /// The tallest column's total.
    pub max: u64,
}

/// The viewBox's width and height.
pub const WIDTH: f64 = 1000.0;
/// See [`WIDTH`].
pub const HEIGHT: f64 = 120.0;

/// Stacks each column's values bottom up, scaled to the tallest column.
pub fn stacked(label: &str, columns: &[Column], series: Vec<Series>, unit: &str) -> Chart {
    let max = columns
        .iter()
        .map(|c| c.values.iter().sum::<u64>())
        .max()
        .unwrap_or(0);
    let width = WIDTH / columns.len().max(1) as f64;
    let mut bars = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        let mut bottom = HEIGHT;
        for (v, s) in c.values.iter().zip(&series) {
            if *v == 0 {
                continue;
            }
            let h = *v as f64 / max.max(1) as f64 * HEIGHT;
            bottom -= h;
            bars.push(Bar {
                x: format!("{:.2}", i as f64 * width),
                y: format!("{bottom:.2}"),
                // A hair narrower than the column, so columns stay apart.
                w: format!("{:.2}", (width * 0.9).max(0.5)),
                h: format!("{h:.2}"),
                class: s.class,
                title: format!("{}: {} {v}{unit}", c.label, s.name),
            });
        }
    }
    let mut head = vec!["When".to_owned()];
    head.extend(series.iter().map(|s| s.name.clone()));
    let rows = columns
        .iter()
        .map(|c| {
            let mut row = vec![c.label.clone()];
            row.extend(c.values.iter().map(u64::to_string));
            row
        })
        .collect();
    Chart {
        label: label.to_owned(),
        bars,
        series,
        head,
        rows,
        max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Vec<Series> {
        vec![
            Series {
                class: "ok",
                name: "connected".into(),
            },
            Series {
                class: "critical",
                name: "logged out".into(),
            },
        ]
    }

    #[test]
    fn columns_stack_bottom_up_scaled_to_the_tallest_with_exact_titles() {
        let columns = [
            Column {
                label: "10:00".into(),
                values: vec![3, 1],
            },
            Column {
                label: "11:00".into(),
                values: vec![2, 0],
            },
        ];
        let c = stacked("Sessions", &columns, series(), "");
        assert_eq!(c.max, 4);
        assert_eq!(c.bars.len(), 3, "a zero draws nothing");
        // 3 of 4 from the bottom, then 1 of 4 on top.
        assert_eq!(
            (c.bars[0].y.as_str(), c.bars[0].h.as_str()),
            ("30.00", "90.00")
        );
        assert_eq!(
            (c.bars[1].y.as_str(), c.bars[1].h.as_str()),
            ("0.00", "30.00")
        );
        assert_eq!(c.bars[1].title, "10:00: logged out 1");
        assert_eq!(c.bars[2].x, "500.00");
        assert_eq!(c.head, ["When", "connected", "logged out"]);
        assert_eq!(c.rows[1], ["11:00", "2", "0"]);
    }

    #[test]
    fn an_empty_chart_draws_nothing_and_keeps_its_table() {
        let c = stacked(
            "Nothing",
            &[Column {
                label: "x".into(),
                values: vec![0, 0],
            }],
            series(),
            "",
        );
        assert!(c.bars.is_empty());
        assert_eq!(c.rows.len(), 1);
    }
}
