//! The stream, folded into this replica's model in order.
//!
//! An ordered consumer starts after the sequence the journal holds. Each
//! message is handed to the model's writer without waiting for the one
//! before (the writer commits all that wait in one transaction); the
//! answers are awaited in order whenever no message is ready at once, or
//! 512 are in flight. The writer stores each message's sequence with its
//! events, so a message is applied once even across a crash: a restart
//! starts after the last committed one. When the consumer fails (NATS
//! restarted, the connection lost), it is created again from the position
//! committed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::DeliverPolicy;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::{oneshot, watch};
use wapulse_core::{BatchOutcome, Silence};

use super::{Cluster, EventsMessage, Local};
use crate::model::IngestError;

/// Messages handed to the writer before their answers are awaited.
const IN_FLIGHT: usize = 512;

/// How long the consumer may deliver nothing while the stream holds
/// messages past it before it is created again. An ordered consumer lives
/// on one NATS server: when that server dies it may hang without an error
/// (seen with a three-node cluster losing one node).
const STALL: Duration = Duration::from_secs(5);

type Reply = oneshot::Receiver<Result<BatchOutcome, IngestError>>;

pub(super) async fn run(
    cluster: Arc<Cluster>,
    local: Arc<Local>,
    js: jetstream::Context,
    mut stop: watch::Receiver<bool>,
) {
    let events_subject = cluster.settings.events_subject();
    let silences_subject = cluster.settings.silences_subject();
    loop {
        if *stop.borrow() {
            return;
        }
        let from = local.model.position() + 1;
        let messages = async {
            let stream = js
                .get_stream(&cluster.settings.stream)
                .await
                .map_err(|e| e.to_string())?;
            let consumer = stream
                .create_consumer(jetstream::consumer::pull::OrderedConfig {
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: from,
                    },
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        };
        let mut messages = match messages.await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, from, "cannot consume the stream; retrying");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        tracing::info!(from, stream = %cluster.settings.stream, "consuming the stream");
        let mut in_flight: VecDeque<(u64, Option<Reply>)> = VecDeque::new();
        // The ordered consumer may start over from the stream's beginning
        // after a NATS restart (it re-creates itself from what it
        // delivered, and it delivered nothing yet): what was applied is
        // passed over before anything looks at it (silences included).
        let mut next_seq = from;
        let mut last_message = tokio::time::Instant::now();
        loop {
            // Take what is ready without waiting; when nothing is, let the
            // writer's answers through (their requests wait on them), then
            // wait for the next message.
            let next = match messages.next().now_or_never() {
                Some(m) => m,
                None => {
                    if !finish(&cluster, &local.model, &mut in_flight).await {
                        break;
                    }
                    tokio::select! {
                        m = messages.next() => m,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {
                            let behind = cluster.stream_last.load(std::sync::atomic::Ordering::Acquire)
                                >= next_seq;
                            if behind && last_message.elapsed() >= STALL {
                                tracing::warn!(
                                    next_seq,
                                    "the stream consumer delivered nothing for {STALL:?} while the \
                                     stream holds more; starting it again"
                                );
                                break;
                            }
                            continue;
                        }
                        _ = stop.changed() => return,
                    }
                }
            };
            let message = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "the stream consumer failed; starting again");
                    break;
                }
                None => break,
            };
            last_message = tokio::time::Instant::now();
            let Ok(info) = message.info() else {
                tracing::warn!("a stream message without delivery info; starting again");
                break;
            };
            let seq = info.stream_sequence;
            if seq < next_seq {
                cluster.applied(seq, None);
                continue;
            }
            next_seq = seq + 1;
            let subject = message.subject.as_str();
            if subject == events_subject {
                match serde_json::from_slice::<EventsMessage>(&message.payload) {
                    Ok(m) => {
                        cluster
                            .metrics
                            .consumed
                            .with_label_values(&["events"])
                            .inc();
                        in_flight.push_back((
                            seq,
                            Some(local.model.submit_message(seq, m.events, m.received)),
                        ));
                    }
                    Err(e) => {
                        unreadable(&cluster, seq, &e.to_string());
                        break;
                    }
                }
            } else if subject == silences_subject {
                match serde_json::from_slice::<Silence>(&message.payload) {
                    Ok(silence) => {
                        // Everything before it first: a silence applies
                        // after the events that preceded it.
                        if !finish(&cluster, &local.model, &mut in_flight).await {
                            break;
                        }
                        cluster
                            .metrics
                            .consumed
                            .with_label_values(&["silence"])
                            .inc();
                        if let Err(e) = local.alerting.put_silence(silence).await {
                            tracing::error!(error = %e, seq, "cannot save a silence from the stream; starting again");
                            break;
                        }
                        in_flight.push_back((
                            seq,
                            Some(local.model.submit_message(
                                seq,
                                Vec::new(),
                                wapulse_core::Timestamp::from_millis(0),
                            )),
                        ));
                    }
                    Err(e) => {
                        unreadable(&cluster, seq, &e.to_string());
                        break;
                    }
                }
            } else {
                skip(&cluster, &local, &mut in_flight, seq, "unknown subject");
            }
            if in_flight.len() >= IN_FLIGHT && !finish(&cluster, &local.model, &mut in_flight).await
            {
                break;
            }
        }
        finish(&cluster, &local.model, &mut in_flight).await;
        let pause = if cluster.consumer_stuck() { 5000 } else { 200 };
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(pause)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// A message of our events or silences that does not decode (written by a
/// newer wapulse?): never skipped, since skipping would lose it on this
/// replica for good. The consumer stops there and starts over every few
/// seconds; the replica is not ready and says why until it can read it.
fn unreadable(cluster: &Cluster, seq: u64, why: &str) {
    tracing::error!(
        seq,
        why,
        "a stream message this wapulse cannot read; stopped before it"
    );
    cluster
        .metrics
        .consumed
        .with_label_values(&["unreadable"])
        .inc();
    cluster.consumer_problem(Some(format!(
        "stream message {seq} cannot be read ({why}): is another replica a newer wapulse? \
         This replica stops before it until it can"
    )));
}

/// A message on a subject that is not ours: passed over the same way on
/// every replica, its position recorded.
fn skip(
    cluster: &Cluster,
    local: &Local,
    in_flight: &mut VecDeque<(u64, Option<Reply>)>,
    seq: u64,
    why: &str,
) {
    tracing::warn!(seq, why, "a stream message that is not ours; passed over");
    cluster
        .metrics
        .consumed
        .with_label_values(&["foreign"])
        .inc();
    in_flight.push_back((
        seq,
        Some(
            local
                .model
                .submit_message(seq, Vec::new(), wapulse_core::Timestamp::from_millis(0)),
        ),
    ));
}

/// Awaits every answer in order and tells the waiting requests; false when
/// a commit failed (the consumer starts again from the last committed
/// position, so nothing is skipped).
async fn finish(
    cluster: &Cluster,
    model: &crate::model::Model,
    in_flight: &mut VecDeque<(u64, Option<Reply>)>,
) -> bool {
    while let Some((seq, reply)) = in_flight.pop_front() {
        let Some(reply) = reply else { continue };
        match reply.await {
            Ok(Ok(outcome)) => {
                cluster.applied(seq, Some(outcome));
                cluster.consumer_problem(None);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, seq, "cannot commit a stream message; consuming again from the last commit");
                // The rest were refused by the writer, or are answered
                // before the resume below reaches it.
                for (_, reply) in in_flight.drain(..) {
                    if let Some(reply) = reply {
                        let _ = reply.await;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                model.resume_stream().await;
                return false;
            }
            Err(_) => {
                in_flight.clear();
                return false;
            }
        }
    }
    true
}
