//! `wapulse demo`: the service plus a simulated fleet that lives through
//! realistic trouble, so every alert code shows up within a few minutes.
//!
//! The simulation runs on a one-second tick and replays a ten-minute script
//! per trouble role; the rest of the fleet stays healthy (heartbeats every
//! 30 s, traffic, an occasional quick reconnect). Events go through the
//! front door: posted over HTTP to the service's own `POST /v1/events`,
//! with its ingest token, exactly as a gateway posts them (so the ingest
//! figures move, and in cluster mode they go through the stream).

use std::time::Duration;

use wapulse_core::{
    AckStatus, AuthMethod, Direction, DurationMs, ErrorCode, Event, EventKind, MetricName,
    SessionId, SessionState, Timestamp,
};

use crate::clock;
use crate::secret::Secret;

/// How long one pass of the trouble script lasts, in ticks (seconds).
const CYCLE: u64 = 600;

/// What a simulated session goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Healthy,
    /// Stays "connected" but its keepalives stop: the silent killer.
    Stall,
    /// Reconnect storm, then its circuit breaker trips.
    Storm,
    /// A credential integrity check fails, later passes again.
    Corruption,
    /// Needs a QR re-pair, gets one.
    QrRepair,
    /// WhatsApp logs the device out.
    Logout,
    /// Has been disconnected for over half an hour.
    LongDown,
    /// Credentials not written for over a day.
    StaleCredentials,
    /// Credentials not written for over a week.
    AncientCredentials,
    /// Keepalives get lost now and then.
    Flaky,
    /// Another replica died holding the session lock.
    StuckLock,
    /// Connected, keepalives flowing, but inbound messages stopped: deaf.
    Deaf,
    /// Two gateway instances run it: "connection replaced" closes.
    Conflict,
    /// Connected, keepalives and inbound fine, but its sends are never
    /// acked: a mute session.
    Mute,
    /// WhatsApp refuses its sends with 463 for a minute (a reach-out
    /// timelock); restricted until a later send is delivered, four
    /// minutes on.
    Restricted,
    /// A Cloud API number (no socket, no keepalives): flagged for quality,
    /// then its messaging limit lowered, then raised again.
    CloudNumber,
}

const TROUBLE: [Role; 15] = [
    Role::Stall,
    Role::Storm,
    Role::Corruption,
    Role::QrRepair,
    Role::Logout,
    Role::LongDown,
    Role::StaleCredentials,
    Role::AncientCredentials,
    Role::Flaky,
    Role::StuckLock,
    Role::Deaf,
    Role::Conflict,
    Role::Mute,
    Role::Restricted,
    Role::CloudNumber,
];

struct Simulated {
    id: SessionId,
    role: Role,
    /// Offset of this session's heartbeat within the 30 s interval.
    phase: u64,
}

/// An ack the simulated gateway will report.
struct DueAck {
    tick: u64,
    session: SessionId,
    message: Box<str>,
    status: AckStatus,
    code: Option<&'static str>,
}

/// The simulated fleet.
pub struct Simulation {
    sessions: Vec<Simulated>,
    rng: fastrand::Rng,
    tick: u64,
    sent: u64,
    acks: Vec<DueAck>,
}

fn ev(id: &SessionId, at: Timestamp, kind: EventKind) -> Event {
    Event {
        session: id.clone(),
        at,
        id: None,
        kind,
    }
}

fn st(state: SessionState) -> EventKind {
    EventKind::State {
        state,
        reason: None,
    }
}

/// A state with the gateway's close code as its reason.
fn closed(state: SessionState, code: u16) -> EventKind {
    EventKind::State {
        state,
        reason: Some(code.to_string().into()),
    }
}

fn inbound(count: u32) -> EventKind {
    EventKind::Message {
        direction: Direction::Inbound,
        count,
        ids: Box::default(),
    }
}

fn hb() -> EventKind {
    EventKind::Heartbeat { rtt_ms: None }
}

/// A (re)pairing as a gateway reports it: authenticated by `method`,
/// connected, credentials written to the store when `writes_credentials`,
/// first heartbeat.
fn paired(
    out: &mut Vec<Event>,
    id: &SessionId,
    now: Timestamp,
    method: AuthMethod,
    writes_credentials: bool,
) {
    out.push(ev(id, now, EventKind::Auth { method }));
    out.push(ev(id, now, st(SessionState::Connected)));
    if writes_credentials {
        out.push(ev(
            id,
            now,
            EventKind::CredentialsWritten {
                store: Some("postgres".into()),
            },
        ));
    }
    out.push(ev(id, now, hb()));
}

impl Simulation {
    /// `count` sessions: the first ten have trouble roles (when the fleet is
    /// that large), the rest are healthy. `default` is the first session, so
    /// `/session/…` shows something happening.
    pub fn new(count: usize, default: &SessionId, seed: u64) -> Self {
        let sessions = (0..count.max(1))
            .map(|i| Simulated {
                id: if i == 0 {
                    default.clone()
                } else {
                    SessionId::parse(&format!("demo-{i:03}")).expect("valid id")
                },
                role: if i == 0 {
                    Role::Healthy
                } else {
                    TROUBLE.get(i - 1).copied().unwrap_or(Role::Healthy)
                },
                phase: (i as u64 * 7) % 30,
            })
            .collect();
        Self {
            sessions,
            rng: fastrand::Rng::with_seed(seed),
            tick: 0,
            sent: 0,
            acks: Vec::new(),
        }
    }

    /// A send of one message with an id; its acks come as `acks` says:
    /// `(after ticks, status, code)`.
    fn send(
        &mut self,
        out: &mut Vec<Event>,
        id: &SessionId,
        now: Timestamp,
        acks: &[(u64, AckStatus, Option<&'static str>)],
    ) {
        self.sent += 1;
        let message: Box<str> = format!("3EB0{:016X}", self.sent).into();
        out.push(ev(
            id,
            now,
            EventKind::Message {
                direction: Direction::Outbound,
                count: 1,
                ids: Box::new([message.clone()]),
            },
        ));
        for (after, status, code) in acks {
            self.acks.push(DueAck {
                tick: self.tick + after,
                session: id.clone(),
                message: message.clone(),
                status: *status,
                code: *code,
            });
        }
    }

    /// A healthy send: server ack next second, delivered within a few, read
    /// by half the recipients; one ack in fifty is lost on the way.
    fn healthy_send(&mut self, out: &mut Vec<Event>, id: &SessionId, now: Timestamp) {
        let mut acks = vec![
            (1, AckStatus::Server, None),
            (2 + self.rng.u64(0..4), AckStatus::Delivered, None),
        ];
        if self.rng.bool() {
            acks.push((10 + self.rng.u64(0..30), AckStatus::Read, None));
        }
        acks.retain(|_| self.rng.u32(0..50) != 0);
        self.send(out, id, now, &acks);
    }

    /// The acks due by now.
    fn due_acks(&mut self, out: &mut Vec<Event>, now: Timestamp) {
        let tick = self.tick;
        let (due, later): (Vec<DueAck>, Vec<DueAck>) = std::mem::take(&mut self.acks)
            .into_iter()
            .partition(|a| a.tick <= tick);
        self.acks = later;
        for a in due {
            out.push(ev(
                &a.session,
                now,
                EventKind::Ack {
                    message: a.message,
                    status: a.status,
                    code: a.code.and_then(|c| ErrorCode::parse(c).ok()),
                    detail: a.code.map(|_| "reachout timelock".into()),
                },
            ));
        }
    }

    /// The events of the first tick: everyone connects, and the roles whose
    /// trouble lies in the past get their back-dated history.
    pub fn start(&mut self, now: Timestamp) -> Vec<Event> {
        let ago = |d: DurationMs| now.minus(d);
        let mut out = Vec::new();
        for s in &self.sessions {
            let id = &s.id;
            match s.role {
                Role::LongDown => {
                    out.push(ev(
                        id,
                        ago(DurationMs::from_mins(45)),
                        st(SessionState::Connected),
                    ));
                    out.push(ev(
                        id,
                        ago(DurationMs::from_mins(35)),
                        closed(SessionState::Disconnected, 428),
                    ));
                    continue;
                }
                Role::StaleCredentials | Role::AncientCredentials => {
                    let age = if s.role == Role::StaleCredentials {
                        DurationMs::from_hours(30)
                    } else {
                        DurationMs::from_hours(200)
                    };
                    out.push(ev(
                        id,
                        ago(age),
                        EventKind::CredentialsWritten {
                            store: Some("file".into()),
                        },
                    ));
                }
                Role::Flaky => {
                    out.push(ev(
                        id,
                        ago(DurationMs::from_mins(12)),
                        st(SessionState::Connected),
                    ));
                    for mins in [12, 9, 5] {
                        out.push(ev(id, ago(DurationMs::from_mins(mins)), hb()));
                    }
                }
                Role::Deaf => {
                    // Five hours of a message a minute, silent for the last
                    // six: INBOUND_SILENCE at ten minutes of silence, then
                    // critical at ~14 (the rule's floor and its 0.0001 %
                    // bar), while heartbeats keep flowing.
                    out.push(ev(
                        id,
                        ago(DurationMs::from_hours(5)),
                        st(SessionState::Connected),
                    ));
                    for mins in (6..300).rev() {
                        out.push(ev(
                            id,
                            ago(DurationMs::from_mins(mins)),
                            EventKind::Message {
                                direction: Direction::Inbound,
                                count: 1,
                                ids: Box::default(),
                            },
                        ));
                    }
                    out.push(ev(id, now, hb()));
                    continue;
                }
                Role::Mute => {
                    // Connected for a quarter of an hour; its sends were
                    // acked until nine minutes ago and not since:
                    // DELIVERY_STALLED at once, critical a minute and a
                    // half later, while keepalives and inbound flow.
                    out.push(ev(
                        id,
                        ago(DurationMs::from_mins(15)),
                        st(SessionState::Connected),
                    ));
                    for secs in (30..=15 * 60).rev().step_by(30) {
                        let at = ago(DurationMs::from_secs(secs));
                        let message: Box<str> = format!("MUTE{secs:08}").into();
                        out.push(ev(
                            id,
                            at,
                            EventKind::Message {
                                direction: Direction::Outbound,
                                count: 1,
                                ids: Box::new([message.clone()]),
                            },
                        ));
                        if secs > 9 * 60 {
                            out.push(ev(
                                id,
                                at.plus(DurationMs::from_millis(400)),
                                EventKind::Ack {
                                    message,
                                    status: AckStatus::Server,
                                    code: None,
                                    detail: None,
                                },
                            ));
                        }
                    }
                    out.push(ev(id, now, hb()));
                    continue;
                }
                Role::StuckLock => {
                    out.push(ev(
                        id,
                        ago(DurationMs::from_mins(6)),
                        EventKind::LockAcquired {
                            held_by: "replica-b".into(),
                            operation: "reconnect".into(),
                        },
                    ));
                }
                _ => {}
            }
            out.push(ev(id, now, st(SessionState::Connecting)));
            let fresh_credentials =
                !matches!(s.role, Role::StaleCredentials | Role::AncientCredentials);
            paired(
                &mut out,
                id,
                now,
                AuthMethod::SessionRestore,
                fresh_credentials,
            );
        }
        out
    }

    /// The events of the next one-second tick.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        self.tick += 1;
        let t = self.tick % CYCLE;
        let mut out = Vec::new();
        self.due_acks(&mut out, now);
        let sessions: Vec<(SessionId, Role, u64)> = self
            .sessions
            .iter()
            .map(|s| (s.id.clone(), s.role, s.phase))
            .collect();
        for (id, role, phase) in &sessions {
            let beat_due = (self.tick + phase).is_multiple_of(30);
            let mut beating = true;
            match role {
                Role::Stall => {
                    // Silent from t=20 to t=400: HEARTBEAT_STALE at ~80 s,
                    // HEARTBEAT_DEAD at ~320 s; then a forced reconnect.
                    beating = !(20..400).contains(&t);
                    if t == 400 {
                        out.push(ev(id, now, st(SessionState::Reconnecting)));
                        out.push(ev(id, now, st(SessionState::Connected)));
                        out.push(ev(id, now, hb()));
                    }
                }
                Role::Storm => {
                    if (30..=75).contains(&t) && t.is_multiple_of(5) {
                        out.push(ev(id, now, closed(SessionState::Reconnecting, 408)));
                        out.push(ev(
                            id,
                            now,
                            EventKind::Error {
                                kind: "connection".into(),
                                message: Some("Connection Closed".into()),
                            },
                        ));
                    }
                    if t == 80 {
                        out.push(ev(
                            id,
                            now,
                            EventKind::CircuitBreaker {
                                open: true,
                                consecutive_failures: Some(10),
                            },
                        ));
                        out.push(ev(id, now, st(SessionState::CircuitOpen)));
                    }
                    if t == 200 {
                        out.push(ev(
                            id,
                            now,
                            EventKind::CircuitBreaker {
                                open: false,
                                consecutive_failures: None,
                            },
                        ));
                        out.push(ev(id, now, st(SessionState::Connected)));
                        out.push(ev(id, now, hb()));
                    }
                    beating = !(30..200).contains(&t);
                }
                Role::Corruption => {
                    if t == 40 {
                        out.push(ev(
                            id,
                            now,
                            EventKind::Validation {
                                valid: false,
                                detail: Some("creds.json checksum mismatch".into()),
                            },
                        ));
                    }
                    if t == 240 {
                        out.push(ev(
                            id,
                            now,
                            EventKind::Validation {
                                valid: true,
                                detail: None,
                            },
                        ));
                    }
                }
                Role::QrRepair => {
                    if t == 50 {
                        out.push(ev(id, now, st(SessionState::QrRequired)));
                    }
                    if t == 170 {
                        paired(&mut out, id, now, AuthMethod::QrScan, true);
                    }
                    beating = !(50..170).contains(&t);
                }
                Role::Logout => {
                    if t == 60 {
                        out.push(ev(id, now, closed(SessionState::LoggedOut, 401)));
                    }
                    if t == 0 {
                        paired(&mut out, id, now, AuthMethod::PairingCode, false);
                    }
                    beating = !(60..CYCLE).contains(&t);
                }
                // Another instance takes the session over three times.
                Role::Conflict if [100, 130, 160].contains(&t) => {
                    out.push(ev(id, now, closed(SessionState::Disconnected, 440)));
                    out.push(ev(id, now, st(SessionState::Reconnecting)));
                    out.push(ev(id, now, st(SessionState::Connected)));
                    out.push(ev(id, now, hb()));
                }
                Role::Mute => {
                    if t.is_multiple_of(20) {
                        self.send(&mut out, id, now, &[]);
                    }
                    if t.is_multiple_of(7) {
                        out.push(ev(id, now, inbound(1)));
                    }
                }
                // Refused with 463 from 90 s to 150 s; then the gateway
                // holds its sends until 400 s, when a delivered one lifts
                // the restriction.
                Role::Restricted if t.is_multiple_of(10) => {
                    if (90..150).contains(&t) {
                        self.send(&mut out, id, now, &[(1, AckStatus::Error, Some("463"))]);
                    } else if !(150..400).contains(&t) {
                        self.healthy_send(&mut out, id, now);
                    }
                }
                Role::CloudNumber => {
                    beating = false;
                    let quality = |event: &str, tier: &str| EventKind::Quality {
                        event: event.into(),
                        tier: Some(tier.into()),
                        rating: None,
                    };
                    match t {
                        1 => out.push(ev(id, now, EventKind::Keepalives { expected: false })),
                        30 => out.push(ev(id, now, quality("FLAGGED", "TIER_1K"))),
                        200 => out.push(ev(id, now, quality("DOWNGRADE", "TIER_250"))),
                        500 => out.push(ev(id, now, quality("UPGRADE", "TIER_1K"))),
                        _ => {}
                    }
                    if t.is_multiple_of(15) {
                        self.healthy_send(&mut out, id, now);
                    }
                }
                Role::LongDown => beating = false,
                Role::Flaky if t % 120 == 60 => beating = false,
                _ => {}
            }
            if beating && beat_due {
                out.push(ev(
                    id,
                    now,
                    EventKind::Heartbeat {
                        rtt_ms: Some(30 + self.rng.u32(0..200)),
                    },
                ));
            }
            if *role == Role::Healthy && self.rng.u32(0..4) == 0 {
                if self.rng.bool() {
                    let count = self.rng.u32(1..5);
                    out.push(ev(id, now, inbound(count)));
                } else {
                    self.healthy_send(&mut out, id, now);
                }
            }
        }
        // Now and then a healthy session drops and comes back quickly, which
        // fills the reconnect latency percentiles.
        if self.rng.u32(0..20) == 0 {
            let healthy: Vec<&Simulated> = self
                .sessions
                .iter()
                .filter(|s| s.role == Role::Healthy)
                .collect();
            if let Some(s) = healthy.get(self.rng.usize(0..healthy.len().max(1))) {
                let took = DurationMs::from_millis(u64::from(self.rng.u32(1_000..12_000)));
                out.push(ev(&s.id, now.minus(took), st(SessionState::Reconnecting)));
                out.push(ev(&s.id, now, st(SessionState::Connected)));
            }
        }
        let name = |n: &str| MetricName::parse(n).expect("valid name");
        if self.rng.u32(0..3) == 0 {
            let default = &self.sessions[0].id;
            out.push(ev(
                default,
                now,
                EventKind::Counter {
                    name: name("queue_jobs_enqueued"),
                    delta: 3.0,
                },
            ));
            out.push(ev(
                default,
                now,
                EventKind::Counter {
                    name: name("queue_jobs_completed"),
                    delta: 3.0,
                },
            ));
            out.push(ev(
                default,
                now,
                EventKind::Gauge {
                    name: name("calls_active"),
                    value: f64::from(self.rng.u32(0..6)),
                },
            ));
        }
        out
    }
}

/// Where the simulated gateway posts: the service's own ingest API.
pub struct FrontDoor {
    /// `http://127.0.0.1:<port>/v1/events`.
    pub url: String,
    /// The ingest token, when the service asks for one.
    pub token: Option<Secret>,
    /// Most events in one request (`max_batch_events`).
    pub max_batch: usize,
}

impl FrontDoor {
    /// Posts `events` as NDJSON, at most `max_batch` a request; the first
    /// refusal stops the rest of this call (they are the simulation's
    /// own, so the next tick goes on).
    async fn post(&self, client: &reqwest::Client, events: &[Event]) -> Result<(), String> {
        for chunk in events.chunks(self.max_batch.max(1)) {
            let mut body = String::new();
            for e in chunk {
                body.push_str(&serde_json::to_string(e).map_err(|e| e.to_string())?);
                body.push('\n');
            }
            let mut request = client
                .post(&self.url)
                .header("content-type", "application/x-ndjson")
                .body(body);
            if let Some(token) = &self.token {
                request = request.bearer_auth(token.expose());
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            if !response.status().is_success() {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                return Err(format!("{status}: {text}"));
            }
        }
        Ok(())
    }
}

/// Feeds the service from a simulation, through its front door, until
/// `shutdown` is dropped or fires. `default_session` is simulated too (the
/// seed's `/session/…` paths show it).
pub async fn run(
    door: FrontDoor,
    default_session: SessionId,
    sessions: usize,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let mut sim = Simulation::new(sessions, &default_session, 0x5eed);
    let mut every = tokio::time::interval(Duration::from_secs(1));
    // The fleet's history first, retried until the service takes it (it
    // may still be starting).
    let start = sim.start(clock::now());
    loop {
        tokio::select! {
            _ = every.tick() => match door.post(&client, &start).await {
                Ok(()) => break,
                Err(e) => tracing::warn!(error = %e, "demo: the first events were refused; retrying"),
            },
            _ = shutdown.changed() => return,
        }
    }
    loop {
        tokio::select! {
            _ = every.tick() => {
                if let Err(e) = door.post(&client, &sim.tick(clock::now())).await {
                    tracing::warn!(error = %e, "demo: events refused");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use wapulse_core::{Fleet, Thresholds, evaluate};

    /// Runs the script at one tick per simulated second and collects every
    /// alert code seen: every one must appear within one cycle.
    #[test]
    fn every_alert_code_shows_up_within_one_cycle() {
        let t = Thresholds::default();
        let mut fleet = Fleet::new(t.clone());
        let default = SessionId::parse("default").unwrap();
        let mut sim = Simulation::new(50, &default, 1);
        let mut now = Timestamp::from_millis(1_770_000_000_000);
        fleet.apply_all(&sim.start(now));
        let mut seen = BTreeSet::new();
        for _ in 0..CYCLE {
            now = now.plus(DurationMs::from_secs(1));
            fleet.apply_all(&sim.tick(now));
            for s in fleet.view().sessions() {
                for a in evaluate(s, &t, now).alerts {
                    seen.insert(a.code.as_str());
                }
            }
        }
        let all: BTreeSet<&str> = wapulse_core::AlertCode::ALL
            .iter()
            .map(|c| c.as_str())
            .collect();
        assert_eq!(seen, all);
        assert_eq!(fleet.view().len(), 50);
    }
}
