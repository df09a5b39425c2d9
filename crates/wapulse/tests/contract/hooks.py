"""Schemathesis hooks for wapulse's contract run (scripts/check-openapi).

Some rules of the API are beyond what a JSON Schema can say. Two depend
on the clock: an event's `at` may be at most `max_future_skew` (5 min)
ahead of the server's clock and `max_event_age` (30 days) behind it, and a
silence must end in the future, after it
starts (generated date-times span years 0001-9999, so most fall on the
wrong side). One ties the body to the path: on /v1/sessions/{id}/events an
event's `session`, when given, must be the path's. The delivery events
add cross-field rules: a message's `count` is at least its number of
`ids`, `ids` are for outbound messages, an ack's `code` for error acks.
These hooks move such values to the right side of the rule and touch
nothing else: every other generated value reaches the server as generated,
and a body invalid for another reason stays invalid.
"""

import re
from datetime import datetime, timedelta, timezone

import schemathesis


def _parse(value):
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def _stamp(t):
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _past_event_times(body):
    events = body if isinstance(body, list) else [body]
    now = datetime.now(timezone.utc)
    for event in events:
        if isinstance(event, dict):
            t = _parse(event.get("at"))
            # Within max_future_skew ahead and max_event_age (30 days) behind.
            if t is not None and (t > now or t < now - timedelta(days=29)):
                event["at"] = _stamp(now - timedelta(hours=1))
    return body


def _delivery_rules(body):
    """A message's `count` is at least its number of `ids`, and `ids` are
    for outbound messages only; an ack's `code` is for error acks only."""
    events = body if isinstance(body, list) else [body]
    for event in events:
        if not isinstance(event, dict):
            continue
        ids = event.get("ids")
        if event.get("type") == "message" and isinstance(ids, list):
            if event.get("direction") == "inbound":
                event["ids"] = None
            elif (
                isinstance(event.get("count"), int)
                and not isinstance(event["count"], bool)
                and 0 <= event["count"] < len(ids)
            ):
                event["count"] = len(ids)
        if event.get("type") == "ack" and event.get("status") != "error" and "code" in event:
            event["code"] = None
    return body


def _retires(body):
    events = body if isinstance(body, list) else [body]
    return [e for e in events if isinstance(e, dict) and e.get("type") == "retire"]


def _no_default_retire(body):
    """The default session cannot be retired (409, a rule of the settings):
    a retire names another session."""
    for event in _retires(body):
        session = event.get("session")
        if session is None or session == "default":
            event["session"] = "contract-retired"
    return body


def _future_silence(body):
    if not isinstance(body, dict):
        return body
    # A regex matcher must compile: generated text often does not. Escaped,
    # it is a regex matching the text itself.
    for m in body.get("matchers") or []:
        if isinstance(m, dict) and m.get("isRegex") is True and isinstance(m.get("value"), str):
            try:
                re.compile(m["value"])
            except re.error:
                m["value"] = re.escape(m["value"])
    now = datetime.now(timezone.utc)
    starts = _parse(body.get("startsAt"))
    ends = _parse(body.get("endsAt"))
    if ends is not None and (ends <= now or (starts is not None and ends <= starts)):
        begin = starts if starts is not None and starts > now else now
        body["endsAt"] = _stamp(begin + timedelta(hours=1))
    return body


def _path_session(body, session):
    events = body if isinstance(body, list) else [body]
    for event in events:
        if isinstance(event, dict) and isinstance(event.get("session"), str) and _SESSION(event["session"]):
            event["session"] = session
    return body


def _SESSION(text):
    return re.fullmatch(r"[A-Za-z0-9._:@-]{1,128}", text) is not None


# `map_case`, not `map_body`: the coverage phase applies only case hooks.
@schemathesis.hook
def map_case(context, case):
    operation = context.operation
    if operation is None or operation.method.upper() != "POST":
        return case
    if operation.path in ("/v1/events", "/v1/sessions/{id}/events"):
        case.body = _no_default_retire(_delivery_rules(_past_event_times(case.body)))
    if operation.path == "/v1/sessions/{id}/events":
        # The body's `session`, when a valid id, must be the path's: a
        # cross-field rule of this route, like the clock rules above.
        if (case.path_parameters or {}).get("id") == "default" and _retires(case.body):
            case.path_parameters["id"] = "contract-retired"
        session = (case.path_parameters or {}).get("id")
        if isinstance(session, str) and _SESSION(session):
            case.body = _path_session(case.body, session)
    if operation.path == "/v1/silences":
        case.body = _future_silence(case.body)
    return case
