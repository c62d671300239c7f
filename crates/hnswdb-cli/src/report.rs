//! Presenting results: number formatting, aligned tables, JSON and the recall-vs-speed plot.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use crate::CliError;

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte count in B, KiB, MiB or GiB, one decimal.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A duration in the unit that reads best: µs, ms or s.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1e-3 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.1} s")
    }
}

/// A table printed with right-aligned columns under a header row.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Column widths: the widest cell of each column.
    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        widths
    }

    /// Adds a row; it should have one cell per column.
    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// Prints the header and every row, each cell right-aligned, two spaces between columns.
    pub fn print(&self, out: &mut impl Write) -> io::Result<()> {
        let widths = self.widths();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, &w)| format!("{cell:>w$}"))
                .collect();
            writeln!(out, "  {}", line.join("  "))?;
        }
        Ok(())
    }
}

/// Prints `value` as pretty JSON on its own line.
pub fn print_json(out: &mut impl Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// One measured search setting: the point of a recall-vs-speed curve.
#[derive(Clone, Debug, Serialize)]
pub struct SearchPoint {
    /// The candidate-list size searched with.
    pub ef: usize,
    /// Number of nearest keys asked for.
    pub k: usize,
    /// Number of queries run.
    pub queries: usize,
    /// Mean fraction of the exact k nearest neighbours found.
    pub recall: f64,
    /// Queries per second on one thread, one query per call.
    pub qps: f64,
    /// Median latency in microseconds.
    pub p50_us: f64,
    /// 99th-percentile latency in microseconds.
    pub p99_us: f64,
}

/// One measured batch search: every query in one `search_batch` call.
#[derive(Clone, Debug, Serialize)]
pub struct BatchPoint {
    /// The candidate-list size searched with.
    pub ef: usize,
    /// Threads of the batch.
    pub threads: usize,
    /// Mean fraction of the exact k nearest neighbours found.
    pub recall: f64,
    /// Queries per second of the whole batch.
    pub qps: f64,
}

/// The header of the ef-sweep table; rows from [`sweep_line`] line up under it.
pub fn sweep_header(k: usize) -> String {
    format!(
        "  {:>5}  {:>10}  {:>10}  {:>8}  {:>8}",
        "ef",
        format!("recall@{k}"),
        "queries/s",
        "p50 µs",
        "p99 µs"
    )
}

/// One row of the ef-sweep table.
pub fn sweep_line(p: &SearchPoint) -> String {
    format!(
        "  {:>5}  {:>10.4}  {:>10}  {:>8.0}  {:>8.0}",
        p.ef,
        p.recall,
        thousands(p.qps.round() as u64),
        p.p50_us,
        p.p99_us
    )
}

/// Draws recall (x) against queries/s (y) into an SVG at `path`: one line per named series, each
/// point labelled with its `ef`.
pub fn plot_recall_qps<S: AsRef<str>>(
    path: &Path,
    title: &str,
    series: &[(S, &[SearchPoint])],
) -> Result<(), CliError> {
    let fail = |e: String| CliError::new(format!("cannot draw {}: {e}", path.display()));
    let all = || series.iter().flat_map(|(_, points)| points.iter());
    let Some(first) = all().next() else {
        return Err(fail("no points to plot".into()));
    };
    let k = first.k;
    let min_recall = all().map(|p| p.recall).fold(1.0, f64::min);
    let x_lo = ((min_recall - 0.05).max(0.0) * 20.0).floor() / 20.0;
    let y_hi = all().map(|p| p.qps).fold(1.0, f64::max) * 1.15;
    const COLOURS: [RGBColor; 4] = [BLUE, RED, GREEN, MAGENTA];

    let root = SVGBackend::new(path, (800, 560)).into_drawing_area();
    let draw = || -> Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x_lo..1.01, 0.0..y_hi)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc(format!("recall@{k}"))
            .y_desc("queries/s (one thread)")
            .x_label_formatter(&|x| format!("{x:.2}"))
            .y_label_formatter(&|y| thousands(y.round() as u64))
            .draw()?;
        // Labels sit left of their points: the high-ef points crowd against recall 1.
        let label = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (i, (name, points)) in series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let line: Vec<(f64, f64)> = points.iter().map(|p| (p.recall, p.qps)).collect();
            chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
                .label(name.as_ref())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
            chart.draw_series(line.iter().zip(points.iter()).map(|(&(x, y), p)| {
                EmptyElement::at((x, y))
                    + Circle::new((0, 0), 4, colour.filled())
                    + Text::new(format!("ef {}", p.ef), (-8, 0), label.clone())
            }))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(duration(Duration::from_micros(250)), "250 µs");
        assert_eq!(duration(Duration::from_millis(12)), "12.0 ms");
        assert_eq!(duration(Duration::from_secs(3)), "3.0 s");
    }

    #[test]
    fn plot_writes_an_svg() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.svg");
        let points: Vec<SearchPoint> =
            [(16, 0.8, 20000.0), (64, 0.95, 9000.0), (256, 0.99, 3000.0)]
                .iter()
                .map(|&(ef, recall, qps)| SearchPoint {
                    ef,
                    k: 10,
                    queries: 100,
                    recall,
                    qps,
                    p50_us: 1.0,
                    p99_us: 2.0,
                })
                .collect();
        plot_recall_qps(&path, "test", &[("cache on", points.as_slice())]).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("ef 256"), "{svg}");
    }
}
