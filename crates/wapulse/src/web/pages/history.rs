//! The history on the dashboard (issue 31): the overview's last 24 hours,
//! a session's week, and `/ui/availability`, the sessions and label values
//! ranked.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use wapulse_core::availability::{Phase, Timeline};
use wapulse_core::{DurationMs, Level, SessionId, SessionState, Timestamp};

use super::session::{BandView, band_views};
use super::session_href;
use super::viewer;
use crate::app::Shared;
use crate::clock;
use crate::history::{self, HOUR_MS};
use crate::web::charts::{Chart, Column, Series, stacked};
use crate::web::view::{Viewing, When, html, span, state as state_badge, when};

/// `14:00` of an instant (UTC).
fn hour_label(ms: i64) -> String {
    let text = Timestamp::from_millis(ms).to_rfc3339();
    text.get(11..16).unwrap_or(&text).to_owned()
}

/// `Mon 14:00`-like label with the day, for charts longer than a day.
fn day_hour_label(ms: i64) -> String {
    let text = Timestamp::from_millis(ms).to_rfc3339();
    format!(
        "{} {}",
        text.get(5..10).unwrap_or(""),
        text.get(11..16).unwrap_or("")
    )
}

/// Keeps only the series with something to show (and the columns' values
/// for them).
fn drop_empty(columns: &mut [Column], series: Vec<Series>) -> Vec<Series> {
    let keep: Vec<bool> = (0..series.len())
        .map(|i| columns.iter().any(|c| c.values[i] > 0))
        .collect();
    for c in columns.iter_mut() {
        let mut i = 0;
        c.values.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
    series
        .into_iter()
        .zip(&keep)
        .filter_map(|(s, k)| k.then_some(s))
        .collect()
}

/// The overview's two charts: sessions by state and alerts firing, hour by
/// hour over the last 24 hours (the hour now running last, live).
pub(super) async fn fleet_day(state: &Shared, now: Timestamp) -> Result<(Chart, Chart), String> {
    let reader = state.model.history();
    let from = Timestamp::from_millis(history::bucket(
        now.minus(DurationMs::from_hours(24)),
        HOUR_MS,
    ));
    // The store at most once a minute (the hour now running is live, below).
    let recent = state.recent_hours.clone();
    let mut points = tokio::task::spawn_blocking(move || {
        recent.get_or_read(from.as_millis(), || reader.fleet(from, now, HOUR_MS))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    if let Some(last) = points.last_mut() {
        last.states = Some(state.model.snapshot().by_state().map(|n| n as u64));
        let judged = state.alerting.snapshot();
        last.levels = Some(history::LevelSample {
            minute_ms: history::bucket(now, history::MINUTE_MS),
            ok: judged.by_level[Level::Ok as usize] as u64,
            warning: judged.by_level[Level::Warning as usize] as u64,
            critical: judged.by_level[Level::Critical as usize] as u64,
            alerts_firing: judged.counts.firing as u64,
        });
    }
    let mut columns: Vec<Column> = points
        .iter()
        .map(|p| Column {
            label: hour_label(p.at_ms),
            values: p
                .states
                .map(|s| s.to_vec())
                .unwrap_or_else(|| vec![0; SessionState::ALL.len()]),
        })
        .collect();
    let series = SessionState::ALL
        .iter()
        .map(|s| Series {
            class: state_badge(*s).class,
            name: s.as_str().replace('_', " "),
        })
        .collect();
    let series = drop_empty(&mut columns, series);
    let sessions = stacked(
        "Sessions by state, hour by hour, last 24 hours",
        &columns,
        series,
        "",
    );
    let firing: Vec<Column> = points
        .iter()
        .map(|p| Column {
            label: hour_label(p.at_ms),
            values: vec![p.levels.map_or(0, |l| l.alerts_firing)],
        })
        .collect();
    let alerts = stacked(
        "Alerts firing, hour by hour, last 24 hours",
        &firing,
        vec![Series {
            class: "critical",
            name: "alerts firing".into(),
        }],
        "",
    );
    Ok((sessions, alerts))
}

/// One outage of a session's week.
pub struct OutageRow {
    pub at: When,
    pub lasted: String,
}

/// A session's week: its state timeline, availability over 24 h, 7 d and
/// 30 d, messages and round trips by the hour, and its outages.
pub struct Week {
    pub bands: Vec<BandView>,
    pub from: When,
    pub availability: Vec<(&'static str, String)>,
    pub messages: Chart,
    pub rtt: Chart,
    pub outages: Vec<OutageRow>,
}

/// Reads a session's week from the history (with `current_life`, only
/// what followed its last retirement: a tenant's view).
pub(super) async fn session_week(
    state: &Shared,
    id: &SessionId,
    now: Timestamp,
    current_life: bool,
) -> Result<Week, String> {
    let reader = state.model.history();
    let month = now.minus(DurationMs::from_hours(30 * 24));
    let week = now.minus(DurationMs::from_hours(7 * 24));
    let two_days = Timestamp::from_millis(history::bucket(
        now.minus(DurationMs::from_hours(47)),
        HOUR_MS,
    ));
    let read = id.clone();
    let (timeline, hours) = tokio::task::spawn_blocking(move || {
        let timeline =
            history::timeline_of_life(reader.as_ref(), &read, (month, now), current_life)?;
        let hours = history::hours_of(reader.as_ref(), &read, (two_days, now), current_life)?;
        Ok::<_, history::read::ReadFailed>((timeline, hours))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let availability = [("24 h", 24), ("7 d", 7 * 24), ("30 d", 30 * 24)]
        .into_iter()
        .map(|(name, h)| {
            let a = timeline.over(now.minus(DurationMs::from_hours(h)), now, now);
            let text = a.share().map_or_else(
                || "no data".to_owned(),
                |s| {
                    format!(
                        "{:.3} % ({} connected of {} observed)",
                        s * 100.0,
                        span(a.connected_ms),
                        span(a.observed_ms)
                    )
                },
            );
            (name, text)
        })
        .collect();
    let bands = week_bands(&timeline, week, now);
    let mut rows = hours.iter().peekable();
    let mut messages = Vec::new();
    let mut rtt = Vec::new();
    let mut at = two_days.as_millis();
    while at <= now.as_millis() {
        let f = rows
            .next_if(|h| h.hour_ms == at)
            .map(|h| h.figures)
            .unwrap_or_default();
        messages.push(Column {
            label: day_hour_label(at),
            values: vec![f.messages_in, f.messages_out],
        });
        rtt.push(Column {
            label: day_hour_label(at),
            values: vec![f.mean_rtt_ms().unwrap_or(0)],
        });
        at += HOUR_MS;
    }
    let messages = stacked(
        "Messages per hour, last 48 hours",
        &messages,
        vec![
            Series {
                class: "ok",
                name: "in".into(),
            },
            Series {
                class: "muted",
                name: "out".into(),
            },
        ],
        "",
    );
    let rtt = stacked(
        "Mean heartbeat round trip per hour, last 48 hours",
        &rtt,
        vec![Series {
            class: "warning",
            name: "round trip".into(),
        }],
        " ms",
    );
    let outages = timeline
        .outages(week, now, now)
        .into_iter()
        .rev()
        .map(|(start, ms)| OutageRow {
            at: when(start, now),
            lasted: span(ms),
        })
        .collect();
    Ok(Week {
        bands,
        from: when(week, now),
        availability,
        messages,
        rtt,
        outages,
    })
}

fn week_bands(timeline: &Timeline, from: Timestamp, now: Timestamp) -> Vec<BandView> {
    let changes: Vec<(Timestamp, SessionState)> = timeline
        .resolved()
        .filter_map(|(at, p)| match p {
            Phase::In(s) => Some((at, s)),
            _ => None,
        })
        .collect();
    band_views(
        &crate::web::timeline::bands(&changes, None, from, now),
        from,
        now,
    )
}

/// `/ui/availability` query.
#[derive(Deserialize, Default)]
pub(in crate::web) struct AvailabilityQuery {
    by: Option<String>,
    window: Option<String>,
}

/// One row of the ranking.
pub struct RankRow {
    pub name: String,
    pub href: Option<String>,
    pub share: String,
    pub sessions: usize,
    pub class: &'static str,
}

#[derive(Template)]
#[template(path = "availability.html")]
pub struct AvailabilityPage {
    pub now: When,
    pub viewing: Option<Viewing>,
    pub window: String,
    pub windows: Vec<(&'static str, String, bool)>,
    pub by: String,
    pub groups: Vec<RankRow>,
    pub worst: Vec<RankRow>,
    pub error: Option<String>,
}

fn share_class(share: f64) -> &'static str {
    if share >= 0.999 {
        "ok"
    } else if share >= 0.99 {
        "warning"
    } else {
        "critical"
    }
}

/// `GET /ui/availability?by=tenant&window=7d`: label values and the worst
/// sessions, ranked.
pub(in crate::web) async fn availability(
    State(state): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<AvailabilityQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let caller = match viewer(&state, &headers, &uri) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let viewing = Viewing::of(&caller);
    let now = clock::now();
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let window = match q.window.as_deref() {
        Some(w @ ("24h" | "7d" | "30d")) => w.to_owned(),
        _ => "7d".to_owned(),
    };
    let by =
        q.by.filter(|b| wapulse_core::labels::check_name(b).is_ok())
            .unwrap_or_else(|| "tenant".to_owned());
    let d = DurationMs::parse(&window).unwrap_or(DurationMs::from_hours(7 * 24));
    let reader = state.model.history();
    let snapshot = state.model.snapshot();
    let label = by.clone();
    let ranked = tokio::task::spawn_blocking(move || {
        let label_of = |id: &str| snapshot.get(id)?.labels.get(&label).map(str::to_owned);
        // One pass: the label's values, and the worst sessions of the
        // whole fleet, labelled or not.
        let ranked = history::rank(
            reader.as_ref(),
            (now.minus(d), now, now),
            Some(&label),
            &label_of,
            // A tenant's view ranks its own sessions only, each from its
            // current life.
            history::Seen {
                admits: &|id: &str| caller.sees_id(&snapshot, id),
                current_life: caller.current_life_only(),
            },
            1.0,
            50,
        )?;
        Ok::<_, history::read::ReadFailed>((ranked.groups, ranked.fleet_below))
    })
    .await;
    let (groups, worst, error) = match ranked {
        Ok(Ok((g, w))) => (g, w, None),
        Ok(Err(e)) => (Vec::new(), Vec::new(), Some(e.to_string())),
        Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
    };
    let mut groups: Vec<_> = groups
        .into_iter()
        .filter_map(|(value, a, n)| a.share().map(|share| (value, share, n)))
        .collect();
    groups.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let groups: Vec<RankRow> = groups
        .into_iter()
        .map(|(value, share, n)| RankRow {
            name: value,
            href: None,
            share: format!("{:.3} %", share * 100.0),
            sessions: n,
            class: share_class(share),
        })
        .collect();
    let worst = worst
        .into_iter()
        .map(|(session, share)| RankRow {
            href: Some(session_href(&session)),
            name: session,
            share: format!("{:.3} %", share * 100.0),
            sessions: 1,
            class: share_class(share),
        })
        .collect();
    let page = AvailabilityPage {
        now: when(now, now),
        viewing,
        windows: ["24h", "7d", "30d"]
            .into_iter()
            .map(|w| {
                (
                    w,
                    format!("/ui/availability?by={by}&window={w}"),
                    w == window,
                )
            })
            .collect(),
        window,
        by,
        groups,
        worst,
        error,
    };
    html(StatusCode::OK, page.render())
}
