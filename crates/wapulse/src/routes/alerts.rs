//! `/alerts`, `/alerts/history` and `/v1/silences`: what the evaluator
//! holds, read from its published snapshot (no evaluation on a read), and
//! silences written through the alerting store.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use wapulse_core::{Level, Matcher, Phase, Silence, Timestamp};

use super::ApiError;
use super::session::label_filter;
use crate::app::Shared;
use crate::clock;
use crate::tenancy::Caller;

/// Most matchers one silence takes.
const MAX_MATCHERS: usize = 16;
/// Most silences active or pending at once.
const MAX_SILENCES: usize = 10_000;

/// Alerts one page of `/alerts` holds by default, and at most.
const DEFAULT_PAGE: usize = 500;
const MAX_PAGE: usize = 5000;

/// `GET /alerts?level=&code=&state=&session=&label=name:value&limit=&offset=`:
/// worst first; a page of `limit` (500) from `offset`, with `total` and
/// `nextOffset` (the list is the evaluator's latest snapshot, so pages taken
/// while alerts change may overlap or skip one).
pub(super) async fn list(
    State(state): State<Shared>,
    caller: Caller,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(pairs) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut level = None;
    let mut code = None;
    let mut phase = None;
    let mut session = None;
    let mut labels = Vec::new();
    let mut limit = DEFAULT_PAGE;
    let mut offset = 0usize;
    for (key, value) in pairs {
        match key.as_str() {
            "level" => {
                level = Some(
                    Level::parse(&value)
                        .filter(|l| *l != Level::Ok)
                        .ok_or_else(|| {
                            ApiError::invalid(
                                "level",
                                format!("level `{value}` is not warning or critical"),
                            )
                        })?,
                )
            }
            "code" => code = Some(value),
            "state" => {
                phase = Some(match value.as_str() {
                    "pending" => Phase::Pending,
                    "firing" => Phase::Firing,
                    _ => {
                        return Err(ApiError::invalid(
                            "state",
                            format!("state `{value}` is not pending or firing"),
                        ));
                    }
                })
            }
            "session" => session = Some(value),
            "label" => labels.push(label_filter(&value)?),
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            "limit",
                            format!("limit `{value}` is not between 1 and {MAX_PAGE}"),
                        )
                    })?
            }
            "offset" => {
                offset = value.parse::<usize>().map_err(|_| {
                    ApiError::invalid(
                        "offset",
                        format!("offset `{value}` is not a non-negative integer"),
                    )
                })?
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{other}` (level, code, state, session, label, limit, offset)"
                )));
            }
        }
    }
    let judged = state.alerting.snapshot();
    let active = &judged.active;
    // The narrowest index first (a session's alerts, a code's), then the
    // other filters over what it gives.
    let base: Box<dyn Iterator<Item = &crate::alerting::ActiveAlert>> =
        match (session.as_deref(), code.as_deref()) {
            (Some(s), _) => Box::new(active.of_session(s)),
            (None, Some(c)) => Box::new(active.alerts(active.with_code(c))),
            (None, None) => Box::new(active.iter()),
        };
    let mut matching = base
        .filter(|a| caller.sees_alert(a))
        .filter(|a| level.is_none_or(|l| a.level == l))
        .filter(|a| code.as_deref().is_none_or(|c| a.code == c))
        .filter(|a| phase.is_none_or(|p| a.state == p))
        .filter(|a| session.as_deref().is_none_or(|s| *a.session == *s))
        .filter(|a| {
            labels
                .iter()
                .all(|(n, v)| a.labels.get(n).is_some_and(|x| x == v))
        });
    // Only the page is kept; the rest is counted.
    let page: Vec<_> = matching.by_ref().skip(offset).take(limit).collect();
    let next = offset + page.len();
    let total = next + matching.count();
    Ok(Json(json!({
        "evaluatedAt": judged.evaluated_at.map(Timestamp::to_rfc3339),
        "total": total,
        "count": page.len(),
        "nextOffset": (next < total).then_some(next),
        "alerts": page,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    limit: Option<usize>,
    before: Option<i64>,
}

/// `GET /alerts/history?limit=&before=`: transitions and notifications,
/// newest first; `next` is the `before` of the next page.
pub(super) async fn history(
    State(state): State<Shared>,
    caller: Caller,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = record_limit(q.limit)?;
    let (rows, next) = history_rows(&state, &caller, limit, q.before).await?;
    let entries: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            let mut v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut v {
                map.insert("seq".into(), json!(r.seq));
                map.insert("kind".into(), json!(r.kind));
                map.entry("at").or_insert(json!(r.at.to_rfc3339()));
            }
            v
        })
        .collect();
    Ok(Json(json!({ "entries": entries, "next": next })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewSilence {
    pub(crate) id: Option<String>,
    pub(crate) matchers: Option<Vec<RawMatcher>>,
    pub(crate) starts_at: Option<String>,
    pub(crate) ends_at: Option<String>,
    pub(crate) created_by: Option<String>,
    pub(crate) comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RawMatcher {
    pub(crate) name: String,
    pub(crate) value: String,
    #[serde(default)]
    pub(crate) is_regex: bool,
}

fn silence_json(s: &Silence, now: Timestamp) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    v["status"] = json!(if s.ends_at <= now {
        "expired"
    } else if s.starts_at > now {
        "pending"
    } else {
        "active"
    });
    v
}

fn new_id() -> String {
    let mut id = String::with_capacity(32);
    for _ in 0..16 {
        id.push_str(&format!("{:02x}", fastrand::u8(..)));
    }
    id
}

/// `POST /v1/silences`: creates a silence (or replaces the one whose `id`
/// is given) → `{id}`.
pub(super) async fn create(
    State(state): State<Shared>,
    caller: Caller,
    body: Result<Json<NewSilence>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(n) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let id = save_silence(&state, &caller, n).await?;
    Ok(Json(json!({ "id": id })))
}

/// `?limit=` of a log read newest first (alert history, audit log):
/// 100 by default, 1 to 1,000.
pub(super) fn record_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::invalid(
            "limit",
            format!("limit {limit} is not between 1 and 1000"),
        ));
    }
    Ok(limit)
}

/// Pages of scanned history a scoped caller's page may take: past them
/// the page ends short, with `next` where the scan stopped.
const MAX_SCANNED_PAGES: usize = 20;

/// The history rows `caller` sees, newest first, and the `before` of the
/// next page. A scoped caller sees the transitions of the sessions it sees
/// now; never notifications (a receiver's messages speak for every tenant)
/// nor fleet incidents. A label scope sees a session's current life only:
/// of a session retired and taken again, the transitions after its last
/// retirement, and never the resolves its retirement wrote.
pub(crate) async fn history_rows(
    state: &Shared,
    caller: &Caller,
    limit: usize,
    mut before: Option<i64>,
) -> Result<(Vec<crate::alerting::store::HistoryRow>, Option<i64>), ApiError> {
    let read_failed = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "cannot read the alert history");
        ApiError::Internal("the alert history could not be read; the server log says why".into())
    };
    if caller.scope().is_none() {
        let rows = state
            .alerting
            .history(limit, before)
            .await
            .map_err(read_failed)?;
        let next = (rows.len() == limit)
            .then(|| rows.last().map(|r| r.seq))
            .flatten();
        return Ok((rows, next));
    }
    let snapshot = state.model.snapshot();
    // The session of a transition the caller sees, and the row's JSON.
    let seen = |row: &crate::alerting::store::HistoryRow| {
        if row.kind != "transition" {
            return None;
        }
        let body: Value = serde_json::from_str(&row.body).unwrap_or(Value::Null);
        let session = snapshot.get(body["session"].as_str()?)?;
        caller.sees(session).then(|| (session.id().clone(), body))
    };
    // When each session seen was last retired, read once per call.
    let mut retired: std::collections::HashMap<wapulse_core::SessionId, Option<Timestamp>> =
        Default::default();
    let mut out = Vec::new();
    for _ in 0..MAX_SCANNED_PAGES {
        let rows = state
            .alerting
            .history(limit, before)
            .await
            .map_err(read_failed)?;
        let full = rows.len() == limit;
        before = rows.last().map(|r| r.seq);
        let rows: Vec<_> = rows
            .into_iter()
            .filter_map(|row| seen(&row).map(|(id, body)| (row, id, body)))
            .collect();
        if caller.current_life_only() {
            let unknown: Vec<_> = rows
                .iter()
                .map(|(_, id, _)| id.clone())
                .filter(|id| !retired.contains_key(id))
                .collect();
            retired.extend(retired_at_of(state, unknown).await?);
        }
        for (row, id, body) in rows {
            if out.len() == limit {
                // The next page starts after the last row given, not after
                // the page scanned: the rows left in it come next.
                let next = out
                    .last()
                    .map(|r: &crate::alerting::store::HistoryRow| r.seq);
                return Ok((out, next));
            }
            let past_life = retired
                .get(&id)
                .copied()
                .flatten()
                .is_some_and(|cut| row.at <= cut || body["reason"] == "retired");
            if !past_life {
                out.push(row);
            }
        }
        if !full {
            return Ok((out, None));
        }
    }
    Ok((out, before))
}

/// When each of `ids` was last retired, if it was: one read off the async
/// workers for them all.
async fn retired_at_of(
    state: &Shared,
    ids: Vec<wapulse_core::SessionId>,
) -> Result<Vec<(wapulse_core::SessionId, Option<Timestamp>)>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let reader = state.model.history();
    tokio::task::spawn_blocking(move || {
        ids.into_iter()
            .map(|id| reader.retired_at(&id).map(|at| (id, at)))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ApiError::Internal(format!("history read failed: {e}")))?
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// Refuses a new silence when [`MAX_SILENCES`] are active or pending.
fn room_for_one_more(silences: &[Silence], now: Timestamp) -> Result<(), ApiError> {
    if silences.iter().filter(|s| s.ends_at > now).count() >= MAX_SILENCES {
        return Err(ApiError::invalid(
            "matchers",
            format!(
                "{MAX_SILENCES} silences are active or pending, the most wapulse keeps: \
                 expire some, or replace one by its id"
            ),
        ));
    }
    Ok(())
}

/// Checks and saves a silence (new, or replacing `id`) made by `caller`,
/// held to its scope, and records it in the audit log; its id.
pub(crate) async fn save_silence(
    state: &Shared,
    caller: &Caller,
    n: NewSilence,
) -> Result<String, ApiError> {
    let now = clock::now();
    let raw = n.matchers.filter(|m| !m.is_empty()).ok_or_else(|| {
        ApiError::invalid("matchers", "matchers: at least one matcher is required")
    })?;
    if raw.len() > MAX_MATCHERS {
        return Err(ApiError::invalid(
            "matchers",
            format!(
                "matchers: {} given; a silence takes at most {MAX_MATCHERS}",
                raw.len()
            ),
        ));
    }
    let mut matchers = Vec::new();
    for (i, m) in raw.into_iter().enumerate() {
        matchers.push(
            Matcher::new(m.name, m.value, m.is_regex)
                .map_err(|e| ApiError::invalid("matchers", format!("matchers[{i}]: {e}")))?,
        );
    }
    let time = |field: &'static str, text: Option<String>| -> Result<Option<Timestamp>, ApiError> {
        text.map(|t| {
            Timestamp::parse_rfc3339(&t)
                .map_err(|e| ApiError::invalid(field, format!("{field}: {e}")))
        })
        .transpose()
    };
    let starts_at = time("startsAt", n.starts_at)?.unwrap_or(now);
    let ends_at = time("endsAt", n.ends_at)?
        .ok_or_else(|| ApiError::invalid("endsAt", "endsAt: required (RFC 3339)"))?;
    if ends_at <= starts_at {
        return Err(ApiError::invalid(
            "endsAt",
            "endsAt: must be after startsAt",
        ));
    }
    if ends_at <= now {
        return Err(ApiError::invalid("endsAt", "endsAt: must be in the future"));
    }
    let text = |field: &'static str, v: Option<String>| -> Result<String, ApiError> {
        match v {
            Some(t) if !t.trim().is_empty() && t.chars().count() <= 1024 => Ok(t),
            Some(t) if !t.trim().is_empty() => Err(ApiError::invalid(
                field,
                format!("{field}: at most 1024 characters"),
            )),
            _ => Err(ApiError::invalid(field, format!("{field}: required"))),
        }
    };
    let created_by = text("createdBy", n.created_by)?;
    let comment = text("comment", n.comment)?;
    let silences = state.alerting.silences();
    let id = match n.id {
        Some(id) => {
            if !silences
                .iter()
                .any(|s| s.id == id && caller.sees_silence(s))
            {
                return Err(ApiError::NotFound(format!("no silence with id `{id}`")));
            }
            id
        }
        None => {
            room_for_one_more(&silences, now)?;
            new_id()
        }
    };
    let silence = Silence {
        id: id.clone(),
        matchers,
        starts_at,
        ends_at,
        created_by,
        comment,
        scope: caller.scope().cloned(),
    };
    let detail = json!({
        "matchers": &silence.matchers,
        "startsAt": silence.starts_at.to_rfc3339(),
        "endsAt": silence.ends_at.to_rfc3339(),
        "createdBy": &silence.created_by,
        "comment": &silence.comment,
    });
    state.save_silence(silence).await?;
    audit(state, caller, now, "silence.created", &id, detail).await?;
    Ok(id)
}

/// Records an admin action that has been done: when the record cannot be
/// written the action stands, and the answer says so.
async fn audit(
    state: &Shared,
    caller: &Caller,
    now: Timestamp,
    action: &'static str,
    target: &str,
    detail: Value,
) -> Result<(), ApiError> {
    state
        .audit
        .record(now, &caller.who(), action, target, detail)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, action, "cannot write the audit log");
            ApiError::Internal(format!(
                "done, but its audit record was not written ({e}); the server log says more"
            ))
        })
}

/// `GET /v1/silences`: a scoped token's own scope's only.
pub(super) async fn list_silences(State(state): State<Shared>, caller: Caller) -> Json<Value> {
    let now = clock::now();
    let all: Vec<Value> = state
        .alerting
        .silences()
        .iter()
        .filter(|s| caller.sees_silence(s))
        .map(|s| silence_json(s, now))
        .collect();
    Json(json!({ "silences": all }))
}

/// `DELETE /v1/silences/{id}`: expires it now (it stays listed as
/// expired, for the record).
pub(super) async fn expire(
    State(state): State<Shared>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (s, now) = expire_silence(&state, &caller, &id).await?;
    Ok(Json(silence_json(&s, now)))
}

/// Ends silence `id` now (a pending one never starts), recorded in the
/// audit log; a scoped caller ends only its own scope's.
pub(crate) async fn expire_silence(
    state: &Shared,
    caller: &Caller,
    id: &str,
) -> Result<(Silence, Timestamp), ApiError> {
    let now = clock::now();
    let Some(mut s) = state
        .alerting
        .silences()
        .iter()
        .find(|s| s.id == id && caller.sees_silence(s))
        .cloned()
    else {
        return Err(ApiError::NotFound(format!("no silence with id `{id}`")));
    };
    if s.ends_at > now {
        s.ends_at = now.max(s.starts_at);
        if s.ends_at == s.starts_at && s.starts_at > now {
            s.starts_at = now;
            s.ends_at = now;
        }
        state.save_silence(s.clone()).await?;
        audit(state, caller, now, "silence.expired", id, json!({})).await?;
    }
    Ok((s, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_silence_needs_room_under_the_cap() {
        let now = Timestamp::from_millis(1_770_000_000_000);
        let silence = |i: usize, ends: Timestamp| Silence {
            id: format!("s{i}"),
            matchers: vec![Matcher::new("session", format!("s-{i}"), false).unwrap()],
            starts_at: now,
            ends_at: ends,
            created_by: "t".into(),
            comment: "c".into(),
            scope: None,
        };
        let later = now.plus(wapulse_core::DurationMs::from_hours(1));
        let mut all: Vec<Silence> = (0..MAX_SILENCES - 1).map(|i| silence(i, later)).collect();
        // Expired ones do not count.
        all.extend((0..50).map(|i| silence(MAX_SILENCES + i, now)));
        assert!(room_for_one_more(&all, now).is_ok());
        all.push(silence(MAX_SILENCES * 2, later));
        let err = room_for_one_more(&all, now).unwrap_err();
        assert!(
            err.message().contains("10000 silences"),
            "{}",
            err.message()
        );
    }
}
