//! Draws a [`Timeline`] with plotters' SVG backend: a legend row, then four charts on one time
//! axis (tasks per second stacked by outcome, latency quantiles, retries per second, breaker
//! bands), each with the outage windows shaded behind.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use ractor_resilience::metrics::TaskOutcome;

use super::Timeline;

const WIDTH: u32 = 1200;
const LEGEND_ROW: u32 = 92;
const TASKS_HEIGHT: u32 = 300;
const LATENCY_HEIGHT: u32 = 200;
const RETRIES_HEIGHT: u32 = 150;
const BAND_HEIGHT: u32 = 30;
/// Room for the names of the bands, and the y labels of the other charts (so the time axes
/// line up).
const Y_LABELS: u32 = 150;
const FONT: &str = "sans-serif";

const OUTAGE: RGBColor = RGBColor(255, 214, 214);
const OUTAGE_EDGE: RGBColor = RGBColor(160, 0, 0);
const P50: RGBColor = RGBColor(31, 119, 180);
const P95: RGBColor = RGBColor(214, 39, 40);

/// Each outcome's colour, bottom of the stack first.
const OUTCOMES: [(TaskOutcome, RGBColor); 6] = [
    (TaskOutcome::Succeeded, RGBColor(44, 160, 44)),
    (TaskOutcome::Failed, RGBColor(214, 39, 40)),
    (TaskOutcome::Rejected, RGBColor(255, 127, 14)),
    (TaskOutcome::Overloaded, RGBColor(148, 103, 189)),
    (TaskOutcome::TimedOut, RGBColor(140, 86, 75)),
    (TaskOutcome::Cancelled, RGBColor(127, 127, 127)),
];

/// Each breaker state's colour and legend name.
const STATES: [(&str, &str, RGBColor); 5] = [
    ("closed", "closed", RGBColor(44, 160, 44)),
    ("open", "open", RGBColor(190, 20, 20)),
    ("half_open", "half-open", RGBColor(255, 191, 0)),
    ("forced_open", "forced open", RGBColor(123, 45, 142)),
    ("disabled", "disabled", RGBColor(180, 180, 180)),
];

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Seconds on the time axis: whole seconds unless the run is short.
fn seconds(end: f64) -> impl Fn(&f64) -> String {
    move |v| {
        if end >= 20.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    }
}

/// The SVG document.
pub(super) fn svg(t: &Timeline) -> Result<String, String> {
    let bands = t.bands.len().max(1) as u32;
    let bands_height = 80 + BAND_HEIGHT * bands;
    let height = LEGEND_ROW + TASKS_HEIGHT + LATENCY_HEIGHT + RETRIES_HEIGHT + bands_height;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let y = |h: u32| i32::try_from(h).unwrap_or(i32::MAX);
        let mut rows = root
            .split_by_breakpoints(
                [] as [i32; 0],
                [
                    y(LEGEND_ROW),
                    y(LEGEND_ROW + TASKS_HEIGHT),
                    y(LEGEND_ROW + TASKS_HEIGHT + LATENCY_HEIGHT),
                    y(LEGEND_ROW + TASKS_HEIGHT + LATENCY_HEIGHT + RETRIES_HEIGHT),
                ],
            )
            .into_iter();
        let mut next = || rows.next().ok_or_else(|| "layout".to_owned());
        let end = t
            .series
            .end()
            .as_secs_f64()
            .max(t.series.width().as_secs_f64());
        legend_row(&next()?, t)?;
        tasks(&next()?, t, end)?;
        latency(&next()?, t, end)?;
        retries(&next()?, t, end)?;
        breakers(&next()?, t, end)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// The title, and every legend (so that none covers data): outcomes, latency quantiles,
/// outage windows, breaker states.
fn legend_row(area: &Area<'_>, t: &Timeline) -> Drawn {
    let title = TextStyle::from((FONT, 20).into_font()).color(&BLACK);
    area.draw(&Text::new(t.title.clone(), (16, 8), title))
        .map_err(err)?;
    let text = TextStyle::from((FONT, 14).into_font()).color(&BLACK);
    let label = |x: i32, y: i32, s: &str| -> Drawn {
        area.draw(&Text::new(s.to_owned(), (x, y), text.clone()))
            .map_err(err)
    };
    let swatch = |x: &mut i32, y: i32, colour: RGBColor, name: &str| -> Drawn {
        let square = [(*x, y), (*x + 14, y + 14)];
        area.draw(&Rectangle::new(square, colour.filled()))
            .map_err(err)?;
        area.draw(&Rectangle::new(square, BLACK.stroke_width(1)))
            .map_err(err)?;
        label(*x + 20, y, name)?;
        *x += 34 + 8 * i32::try_from(name.len()).unwrap_or(0);
        Ok(())
    };
    let line = |x: &mut i32, y: i32, colour: RGBColor, name: &str| -> Drawn {
        area.draw(&PathElement::new(
            [(*x, y + 7), (*x + 20, y + 7)],
            colour.stroke_width(3),
        ))
        .map_err(err)?;
        label(*x + 26, y, name)?;
        *x += 40 + 8 * i32::try_from(name.len()).unwrap_or(0);
        Ok(())
    };
    let (row1, row2) = (40, 64);
    label(16, row1, "tasks ended:")?;
    let mut x = 120;
    for (outcome, colour) in OUTCOMES {
        swatch(&mut x, row1, colour, outcome.as_str())?;
    }
    x += 16;
    label(x, row1, "latency:")?;
    x += 70;
    for (name, colour) in [("p50", P50), ("p95", P95)] {
        line(&mut x, row1, colour, name)?;
    }
    label(16, row2, "breaker state:")?;
    let mut x = 120;
    for (_, name, colour) in STATES {
        swatch(&mut x, row2, colour, name)?;
    }
    x += 16;
    swatch(&mut x, row2, OUTAGE, "simulated provider outage")?;
    let mut note = format!(
        "buckets of {} s",
        t.series.width().as_secs_f64().round() as u64
    );
    if t.bands_not_shown > 0 {
        note.push_str(&format!(
            "; {} more breaker(s) not drawn",
            t.bands_not_shown
        ));
    }
    label(x + 8, row2, &note)
}

/// Shades the outage windows over `[y0, y1]` of a chart.
fn shade_outages<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    t: &Timeline,
    y0: f64,
    y1: f64,
) -> Drawn {
    let windows = t.outages.iter().map(|o| {
        Rectangle::new(
            [(o.start.as_secs_f64(), y0), (o.end.as_secs_f64(), y1)],
            OUTAGE.filled(),
        )
    });
    chart.draw_series(windows).map_err(err)?;
    Ok(())
}

/// A step line through each bucket's value: (start, v), (end, v), ….
fn steps(t: &Timeline, value: impl Fn(usize) -> f64) -> Vec<(f64, f64)> {
    let width = t.series.width().as_secs_f64();
    (0..t.series.len())
        .flat_map(|i| {
            let (x, v) = (t.series.start_of(i), value(i));
            [(x, v), (x + width, v)]
        })
        .collect()
}

fn tasks(area: &Area<'_>, t: &Timeline, end: f64) -> Drawn {
    let x_labels = seconds(end);
    let total = |i: usize| -> f64 {
        OUTCOMES
            .iter()
            .map(|(o, _)| t.series.rate(i, *o))
            .sum::<f64>()
    };
    let top = (0..t.series.len()).map(total).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .margin_right(20)
        .margin_top(8)
        .x_label_area_size(24)
        .y_label_area_size(Y_LABELS)
        .caption("tasks ended per second, by outcome", (FONT, 16))
        .build_cartesian_2d(0f64..end, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&x_labels)
        .y_desc("tasks/s")
        .light_line_style(WHITE.mix(0.0))
        .label_style((FONT, 12))
        .draw()
        .map_err(err)?;
    shade_outages(&mut chart, t, 0.0, top)?;
    for o in &t.outages {
        let label = match &o.model {
            Some(model) => format!("outage ({model})"),
            None => "outage".to_owned(),
        };
        chart
            .draw_series(std::iter::once(Text::new(
                label,
                (o.start.as_secs_f64(), top),
                (FONT, 12).into_font().color(&OUTAGE_EDGE),
            )))
            .map_err(err)?;
    }
    // The stack, drawn from its top layer down: layer k is the sum of the first k+1 outcomes.
    for k in (0..OUTCOMES.len()).rev() {
        let colour = OUTCOMES[k].1;
        let cumulative = |i: usize| -> f64 {
            OUTCOMES[..=k]
                .iter()
                .map(|(o, _)| t.series.rate(i, *o))
                .sum()
        };
        chart
            .draw_series(AreaSeries::new(steps(t, cumulative), 0.0, colour.filled()))
            .map_err(err)?;
    }
    // The outage's edges, over the stack that covers its shading.
    for o in &t.outages {
        for at in [o.start, o.end] {
            let edge = [(at.as_secs_f64(), 0.0), (at.as_secs_f64(), top)];
            chart
                .draw_series(std::iter::once(PathElement::new(
                    edge,
                    OUTAGE_EDGE.stroke_width(1),
                )))
                .map_err(err)?;
        }
    }
    Ok(())
}

fn latency(area: &Area<'_>, t: &Timeline, end: f64) -> Drawn {
    let x_labels = seconds(end);
    let ms = |i: usize, q: f64| t.series.latency(i, q).map(|d| d.as_secs_f64() * 1000.0);
    let top = (0..t.series.len())
        .filter_map(|i| ms(i, 0.95))
        .fold(10.0, f64::max)
        * 2.0;
    let mut chart = ChartBuilder::on(area)
        .margin_right(20)
        .margin_top(8)
        .x_label_area_size(24)
        .y_label_area_size(Y_LABELS)
        .caption(
            "latency of successes, submission to answer (ms, log scale)",
            (FONT, 16),
        )
        .build_cartesian_2d(0f64..end, (1f64..top).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&x_labels)
        .y_desc("ms")
        .light_line_style(WHITE.mix(0.0))
        .label_style((FONT, 12))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    shade_outages(&mut chart, t, 1.0, top)?;
    let width = t.series.width().as_secs_f64();
    for (q, colour) in [(0.5, P50), (0.95, P95)] {
        // One line per run of buckets that have successes: a gap stays a gap.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for i in 0..t.series.len() {
            match ms(i, q) {
                Some(v) => runs
                    .last_mut()
                    .expect("never empty")
                    .push((t.series.start_of(i) + width / 2.0, v)),
                None if runs.last().is_some_and(|r| !r.is_empty()) => runs.push(Vec::new()),
                None => {}
            }
        }
        let style = colour.stroke_width(2);
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            chart
                .draw_series(LineSeries::new(run, style))
                .map_err(err)?;
        }
    }
    Ok(())
}

fn retries(area: &Area<'_>, t: &Timeline, end: f64) -> Drawn {
    let x_labels = seconds(end);
    let top = (0..t.series.len())
        .map(|i| t.series.retry_rate(i))
        .fold(1.0, f64::max)
        * 1.2;
    let mut chart = ChartBuilder::on(area)
        .margin_right(20)
        .margin_top(8)
        .x_label_area_size(24)
        .y_label_area_size(Y_LABELS)
        .caption("retries sent per second", (FONT, 16))
        .build_cartesian_2d(0f64..end, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&x_labels)
        .y_desc("retries/s")
        .y_labels(4)
        .light_line_style(WHITE.mix(0.0))
        .label_style((FONT, 12))
        .draw()
        .map_err(err)?;
    shade_outages(&mut chart, t, 0.0, top)?;
    let blue = RGBColor(31, 119, 180);
    chart
        .draw_series(
            AreaSeries::new(steps(t, |i| t.series.retry_rate(i)), 0.0, blue.mix(0.35))
                .border_style(blue.stroke_width(1)),
        )
        .map_err(err)?;
    Ok(())
}

fn breakers(area: &Area<'_>, t: &Timeline, end: f64) -> Drawn {
    let x_labels = seconds(end);
    let rows = t.bands.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .margin_right(20)
        .margin_top(8)
        .x_label_area_size(40)
        .y_label_area_size(Y_LABELS)
        .caption("circuit breakers, by state", (FONT, 16))
        .build_cartesian_2d(0f64..end, 0f64..rows)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_label_formatter(&x_labels)
        .disable_y_mesh()
        .y_labels(0)
        .light_line_style(WHITE.mix(0.0))
        .x_desc("time since the start of the run (s)")
        .label_style((FONT, 12))
        .draw()
        .map_err(err)?;
    shade_outages(&mut chart, t, 0.0, rows)?;
    // Band k is row k from the top: y from rows - k - 1 to rows - k.
    let names = TextStyle::from((FONT, 14).into_font())
        .color(&BLACK)
        .pos(Pos::new(HPos::Right, VPos::Center));
    let (base_x, base_y) = area.get_base_pixel();
    for (k, band) in t.bands.iter().enumerate() {
        let (y0, y1) = (rows - k as f64 - 1.0, rows - k as f64);
        let spans = band.spans.iter().map(|s| {
            let colour = STATES
                .iter()
                .find(|(state, _, _)| *state == s.state)
                .map_or(BLACK, |(_, _, c)| *c);
            let mut rect = Rectangle::new(
                [(s.from.as_secs_f64(), y0), (s.to.as_secs_f64(), y1)],
                colour.filled(),
            );
            // A thin margin above and below keeps neighbouring bands apart.
            rect.set_margin(4, 4, 0, 0);
            rect
        });
        chart.draw_series(spans).map_err(err)?;
        let (x, y) = chart.backend_coord(&(0.0, (y0 + y1) / 2.0));
        area.draw(&Text::new(
            band.name.clone(),
            (x - base_x - 8, y - base_y),
            names.clone(),
        ))
        .map_err(err)?;
    }
    Ok(())
}
