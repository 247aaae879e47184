//! Stream metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`).
//!
//! With the feature on, every stream an [`SseLayer`](crate::SseLayer) serves records the
//! metrics below into whatever recorder the application installed: a Prometheus,
//! OpenTelemetry or statsd exporter plugs into the same facade. Without a recorder nothing
//! is recorded; without the feature there is no code for it at all.
//!
//! | name | kind | unit | labels | what |
//! | --- | --- | --- | --- | --- |
//! | `sse.server.active_streams` | gauge (up and down) | `{stream}` | `sse.route` | streams open now |
//! | `sse.server.streams.opened` | counter | `{stream}` | `sse.route` | streams opened |
//! | `sse.server.streams.closed` | counter | `{stream}` | `sse.route`, `sse.end_reason` | streams ended, by [`EndReason`] |
//! | `sse.server.time_to_first_event` | histogram | `s` | `sse.route` | from a stream's first poll to its first event on the wire |
//! | `sse.server.stream.duration` | histogram | `s` | `sse.route` | a stream's lifetime, from its first poll to its end |
//! | `sse.server.events` | counter | `{event}` | `sse.route` | events sent |
//! | `sse.server.bytes` | counter | `By` | `sse.route` | body bytes sent: events, comments, `retry:` hints |
//! | `sse.server.keep_alives` | counter | `{keep_alive}` | `sse.route` | keep-alive comments sent |
//!
//! The names follow OpenTelemetry's conventions (dotted, units apart from the name);
//! Prometheus exporters turn the dots into underscores (`sse_server_bytes`). The only labels
//! are `sse.route`, a name the application gives the layer
//! ([`SseLayer::metrics_route`](crate::SseLayer::metrics_route)) or one response
//! ([`SseOptions::metrics_route`](crate::SseOptions::metrics_route)), `"default"` otherwise,
//! and `sse.end_reason`, one of [`EndReason::as_str`]'s names: a bounded set, never taken
//! from the request. A stream is counted when the layer makes its body for a `200 OK`
//! response; responses with another status are not streams.
//!
//! The metric handles are looked up in the recorder once per route (on the layer's first
//! stream, or once per stream for a response with a route of its own), so install the
//! recorder before serving. The body counts bytes and events once per frame it sends, not
//! once per event.
//!
//! Histogram buckets are the exporter's to set: [`TIME_TO_FIRST_EVENT_BUCKETS`] and
//! [`STREAM_DURATION_BUCKETS`] (up to hours) suit these two. [`describe`] gives the
//! recorder each metric's unit and description.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use futures_util::stream;
//! use http::{Request, Response};
//! use http_body_util::BodyExt;
//! use metrics_util::debugging::{DebugValue, DebuggingRecorder};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_sse::SseLayer;
//!
//! // Any recorder: here one that shows what was recorded, on this thread only.
//! let recorder = DebuggingRecorder::new();
//! let snapshotter = recorder.snapshotter();
//! let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! metrics::with_local_recorder(&recorder, || {
//!     runtime.block_on(async {
//!         let service = ServiceBuilder::new()
//!             .layer(SseLayer::new().metrics_route("feed"))
//!             .service_fn(|_: Request<()>| async {
//!                 Ok::<_, Infallible>(Response::new(stream::iter(["a", "b", "c"])))
//!             });
//!         let response = service.oneshot(Request::new(())).await.unwrap();
//!         response.into_body().collect().await.unwrap();
//!     })
//! });
//!
//! let events = snapshotter
//!     .snapshot()
//!     .into_vec()
//!     .into_iter()
//!     .find(|(key, ..)| key.key().name() == tower_sse::metrics::EVENTS)
//!     .map(|(key, _, _, value)| (key.key().labels().next().unwrap().value().to_owned(), value));
//! assert_eq!(events, Some(("feed".to_owned(), DebugValue::Counter(3))));
//! ```

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Unit};

use crate::end_reason::EndReason;
use crate::replay::ReplayStats;

/// Streams open now (gauge, `{stream}`).
pub const ACTIVE_STREAMS: &str = "sse.server.active_streams";
/// Streams opened (counter, `{stream}`).
pub const STREAMS_OPENED: &str = "sse.server.streams.opened";
/// Streams ended, labelled with [`END_REASON`] (counter, `{stream}`).
pub const STREAMS_CLOSED: &str = "sse.server.streams.closed";
/// From a stream's first poll to its first event on the wire (histogram, seconds).
pub const TIME_TO_FIRST_EVENT: &str = "sse.server.time_to_first_event";
/// A stream's lifetime, from its first poll to its end (histogram, seconds).
pub const STREAM_DURATION: &str = "sse.server.stream.duration";
/// Events sent (counter, `{event}`).
pub const EVENTS: &str = "sse.server.events";
/// Body bytes sent, comments and hints included (counter, bytes).
pub const BYTES: &str = "sse.server.bytes";
/// Keep-alive comments sent (counter, `{keep_alive}`).
pub const KEEP_ALIVES: &str = "sse.server.keep_alives";

/// Events published into a replay log (counter, `{event}`); see [`ReplayMetrics`].
pub const REPLAY_PUBLISHED: &str = "sse.replay.events.published";
/// Events evicted from a replay log's window (counter, `{event}`).
pub const REPLAY_EVICTED: &str = "sse.replay.events.evicted";
/// Events sent to catch a resuming stream up (counter, `{event}`).
pub const REPLAY_REPLAYED: &str = "sse.replay.events.replayed";
/// Gap events sent, for unknown or evicted ids and for streams that skipped ahead (counter,
/// `{event}`).
pub const REPLAY_GAPS: &str = "sse.replay.gaps";
/// Streams ended because they fell behind the window (counter, `{stream}`).
pub const REPLAY_LAGGED: &str = "sse.replay.streams.lagged";
/// Resumes refused with `204 No Content` (counter, `{stream}`).
pub const REPLAY_REJECTED: &str = "sse.replay.resumes.rejected";
/// Events a fed source lost before they reached the log (counter, `{event}`).
pub const REPLAY_SOURCE_LOST: &str = "sse.replay.source.lost";
/// Numbered items a feed left out because their number did not increase (counter,
/// `{event}`).
pub const REPLAY_OUT_OF_ORDER: &str = "sse.replay.source.out_of_order";
/// Subscriptions that came with a `Last-Event-ID`, by outcome (counter, `{stream}`,
/// labelled [`RESUME_OUTCOME`]).
pub const REPLAY_RESUMES: &str = "sse.replay.resumes";
/// Events in the retention window now (gauge, `{event}`).
pub const REPLAY_WINDOW_EVENTS: &str = "sse.replay.window.events";
/// Bytes of framed events in the retention window now (gauge, `By`).
pub const REPLAY_WINDOW_BYTES: &str = "sse.replay.window.bytes";
/// The label of [`REPLAY_RESUMES`]: `replayed` (resumed with no gap), `too_old` (the id
/// was evicted) or `unknown_id` (the log never gave it).
pub const RESUME_OUTCOME: &str = "sse.resume_outcome";
/// Subscriptions reading the log now (gauge, `{stream}`).
pub const REPLAY_SUBSCRIBERS: &str = "sse.replay.subscribers";
/// Keys that have a log now, in a [`LogRegistry`](crate::replay::LogRegistry) (gauge,
/// `{key}`).
pub const REGISTRY_KEYS: &str = "sse.registry.keys";
/// Subscriptions through a registry that have not been dropped, over all keys (gauge,
/// `{stream}`).
pub const REGISTRY_SUBSCRIBERS: &str = "sse.registry.subscribers";
/// Logs a registry made, one per key on its first use (counter, `{key}`).
pub const REGISTRY_CREATED: &str = "sse.registry.keys.created";
/// Logs a registry evicted (counter, `{key}`).
pub const REGISTRY_EVICTED: &str = "sse.registry.keys.evicted";
/// New keys a full registry refused (counter, `{key}`).
pub const REGISTRY_REFUSED: &str = "sse.registry.keys.refused";

/// Event streams the client opened (counter, `{connection}`; feature `client`).
pub const CLIENT_CONNECTS: &str = "sse.client.connects";
/// Reconnections the client scheduled, by [`RECONNECT_CAUSE`] (counter, `{connection}`;
/// feature `client`).
pub const CLIENT_RECONNECTS: &str = "sse.client.reconnects";
/// Streams the client failed for a decode error: a line or event over its limits (counter,
/// `{connection}`; feature `client`).
pub const CLIENT_DECODE_ERRORS: &str = "sse.client.decode_errors";
/// The label of [`CLIENT_RECONNECTS`]: `ended`, `body`, `service`, `connect_timeout`,
/// `read_timeout`, `status` or `requested`.
pub const RECONNECT_CAUSE: &str = "sse.reconnect_cause";

/// The label that carries the route name, on every stream metric.
pub const ROUTE: &str = "sse.route";
/// The label that carries [`EndReason::as_str`], on [`STREAMS_CLOSED`].
pub const END_REASON: &str = "sse.end_reason";
/// The label that carries a replay log's name, on every replay metric.
pub const LOG: &str = "sse.log";
/// The route name of a layer or response that was given none.
pub const DEFAULT_ROUTE: &str = "default";

/// Bucket bounds in seconds for [`TIME_TO_FIRST_EVENT`]: 1 ms to 1 min.
pub const TIME_TO_FIRST_EVENT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Bucket bounds in seconds for [`STREAM_DURATION`]: 1 s to 8 h.
pub const STREAM_DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
];

/// The reasons a stream's close is counted under; `NotStreamed` bodies are no streams.
const CLOSE_REASONS: [EndReason; 6] = [
    EndReason::SourceEnded,
    EndReason::ClientGone,
    EndReason::MaxDuration,
    EndReason::IdleTimeout,
    EndReason::Shutdown,
    EndReason::ItemError,
];

/// Gives the installed recorder the unit and description of every metric above.
///
/// Call it once, after installing the recorder; exporters show descriptions as help text.
///
/// # Example
///
/// ```
/// // With no recorder installed this does nothing.
/// tower_sse::metrics::describe();
/// ```
pub fn describe() {
    let count = Unit::Count;
    metrics::describe_gauge!(ACTIVE_STREAMS, count, "SSE streams open now");
    metrics::describe_counter!(STREAMS_OPENED, count, "SSE streams opened");
    metrics::describe_counter!(STREAMS_CLOSED, count, "SSE streams ended, by end reason");
    metrics::describe_histogram!(
        TIME_TO_FIRST_EVENT,
        Unit::Seconds,
        "Time from an SSE stream's start to its first event"
    );
    metrics::describe_histogram!(STREAM_DURATION, Unit::Seconds, "SSE stream lifetimes");
    metrics::describe_counter!(EVENTS, count, "SSE events sent");
    metrics::describe_counter!(BYTES, Unit::Bytes, "SSE body bytes sent");
    metrics::describe_counter!(KEEP_ALIVES, count, "SSE keep-alive comments sent");
    metrics::describe_counter!(REPLAY_PUBLISHED, count, "Events published into the log");
    metrics::describe_counter!(REPLAY_EVICTED, count, "Events evicted from the window");
    metrics::describe_counter!(
        REPLAY_REPLAYED,
        count,
        "Events replayed to resuming streams"
    );
    metrics::describe_counter!(REPLAY_GAPS, count, "Gap events sent");
    metrics::describe_counter!(REPLAY_LAGGED, count, "Streams ended for falling behind");
    metrics::describe_counter!(REPLAY_REJECTED, count, "Resumes refused with 204");
    metrics::describe_counter!(REPLAY_SOURCE_LOST, count, "Events a fed source lost");
    metrics::describe_counter!(
        REPLAY_OUT_OF_ORDER,
        count,
        "Numbered items a feed left out because their number did not increase"
    );
    metrics::describe_gauge!(REPLAY_SUBSCRIBERS, count, "Subscriptions reading the log");
    metrics::describe_gauge!(REGISTRY_KEYS, count, "Keys that have a log now");
    metrics::describe_gauge!(REGISTRY_SUBSCRIBERS, count, "Subscriptions over all keys");
    metrics::describe_counter!(REGISTRY_CREATED, count, "Logs a registry made");
    metrics::describe_counter!(REGISTRY_EVICTED, count, "Logs a registry evicted");
    metrics::describe_counter!(REGISTRY_REFUSED, count, "New keys a full registry refused");
    metrics::describe_counter!(CLIENT_CONNECTS, count, "Event streams the client opened");
    metrics::describe_counter!(CLIENT_RECONNECTS, count, "Client reconnections, by cause");
    metrics::describe_counter!(
        CLIENT_DECODE_ERRORS,
        count,
        "Client streams failed for a decode error"
    );
    metrics::describe_counter!(
        REPLAY_RESUMES,
        count,
        "Subscriptions that came with a Last-Event-ID, by outcome"
    );
    metrics::describe_gauge!(
        REPLAY_WINDOW_EVENTS,
        count,
        "Events in the retention window"
    );
    metrics::describe_gauge!(
        REPLAY_WINDOW_BYTES,
        Unit::Bytes,
        "Bytes in the retention window"
    );
}

/// A replay log's counters ([`ReplayStats`]) as metrics, labelled [`LOG`] with a name you
/// give the log.
///
/// The log keeps its counters itself; this copies a snapshot of them into the recorder.
/// Record [`EventLog::stats`](crate::replay::EventLog::stats) (or `RedisLog::stats`) when
/// the metrics are scraped, or on a timer. Make one per log, once: its handles are looked
/// up when it is made.
///
/// | name | kind | unit | what |
/// | --- | --- | --- | --- |
/// | `sse.replay.events.published` | counter | `{event}` | events published |
/// | `sse.replay.events.evicted` | counter | `{event}` | events evicted from the window |
/// | `sse.replay.events.replayed` | counter | `{event}` | events sent to catch resuming streams up |
/// | `sse.replay.gaps` | counter | `{event}` | gap events: unknown or evicted ids, skips ahead |
/// | `sse.replay.streams.lagged` | counter | `{stream}` | streams ended for falling behind ([`OnLag::Disconnect`](crate::replay::OnLag::Disconnect)) |
/// | `sse.replay.resumes.rejected` | counter | `{stream}` | resumes refused ([`OnUnknownId::NoContent`](crate::replay::OnUnknownId::NoContent)) |
/// | `sse.replay.source.lost` | counter | `{event}` | events a fed source lost |
/// | `sse.replay.source.out_of_order` | counter | `{event}` | numbered items a feed left out because their number did not increase |
/// | `sse.replay.subscribers` | gauge | `{stream}` | subscriptions reading the log now |
/// | `sse.replay.resumes` | counter | `{stream}` | subscriptions with a `Last-Event-ID`, by `sse.resume_outcome`: `replayed`, `too_old`, `unknown_id` |
/// | `sse.replay.window.events` | gauge | `{event}` | events the window holds now |
/// | `sse.replay.window.bytes` | gauge | `By` | bytes of framed events the window holds now |
///
/// # Example
///
/// ```
/// use tower_sse::metrics::ReplayMetrics;
/// use tower_sse::replay::EventLog;
/// use tower_sse::Event;
///
/// let log = EventLog::new();
/// let replay_metrics = ReplayMetrics::new("prices");
/// log.publish(Event::new().data("42"));
/// // Where the metrics are rendered, just before:
/// replay_metrics.record(&log.stats());
/// ```
#[derive(Debug)]
pub struct ReplayMetrics {
    published: Counter,
    evicted: Counter,
    replayed: Counter,
    gaps: Counter,
    lagged: Counter,
    rejected: Counter,
    source_lost: Counter,
    out_of_order: Counter,
    subscribers: Gauge,
    resumed: Counter,
    resumes_too_old: Counter,
    resumes_unknown_id: Counter,
    window_events: Gauge,
    window_bytes: Gauge,
}

impl ReplayMetrics {
    /// The metrics of the log named `log`, looked up in the recorder installed now.
    pub fn new(log: impl Into<Cow<'static, str>>) -> Self {
        let log = log.into();
        let resumes = |outcome: &'static str| {
            let labels = [(LOG, log.clone()), (RESUME_OUTCOME, Cow::Borrowed(outcome))];
            metrics::counter!(REPLAY_RESUMES, &labels)
        };
        let labels = [(LOG, log.clone())];
        Self {
            published: metrics::counter!(REPLAY_PUBLISHED, &labels),
            evicted: metrics::counter!(REPLAY_EVICTED, &labels),
            replayed: metrics::counter!(REPLAY_REPLAYED, &labels),
            gaps: metrics::counter!(REPLAY_GAPS, &labels),
            lagged: metrics::counter!(REPLAY_LAGGED, &labels),
            rejected: metrics::counter!(REPLAY_REJECTED, &labels),
            source_lost: metrics::counter!(REPLAY_SOURCE_LOST, &labels),
            out_of_order: metrics::counter!(REPLAY_OUT_OF_ORDER, &labels),
            subscribers: metrics::gauge!(REPLAY_SUBSCRIBERS, &labels),
            resumed: resumes("replayed"),
            resumes_too_old: resumes("too_old"),
            resumes_unknown_id: resumes("unknown_id"),
            window_events: metrics::gauge!(REPLAY_WINDOW_EVENTS, &labels),
            window_bytes: metrics::gauge!(REPLAY_WINDOW_BYTES, &labels),
        }
    }

    /// Sets every metric to the log's counters in `stats`.
    pub fn record(&self, stats: &ReplayStats) {
        self.published.absolute(stats.published);
        self.evicted.absolute(stats.evicted);
        self.replayed.absolute(stats.replayed);
        self.gaps.absolute(stats.gap_events);
        self.lagged.absolute(stats.lag_disconnects);
        self.rejected.absolute(stats.rejected);
        self.source_lost.absolute(stats.source_lost);
        self.out_of_order.absolute(stats.out_of_order);
        self.resumed.absolute(stats.resumed);
        self.resumes_too_old.absolute(stats.resumes_too_old);
        self.resumes_unknown_id.absolute(stats.resumes_unknown_id);
        // Exact as gauges up to 2^53.
        self.subscribers.set(stats.live_subscribers as f64);
        self.window_events.set(stats.window_events as f64);
        self.window_bytes.set(stats.window_bytes as f64);
    }
}

/// A [`LogRegistry`](crate::replay::LogRegistry)'s counters
/// ([`RegistryStats`](crate::replay::RegistryStats)) as metrics, labelled [`LOG`] with a
/// name you give the registry; as [`ReplayMetrics`], record a snapshot when the metrics are
/// scraped. A key's own log is one [`ReplayMetrics`] away, when a key deserves it (labels
/// must stay few: never one per key of an open set).
///
/// | name | kind | unit | what |
/// | --- | --- | --- | --- |
/// | `sse.registry.keys` | gauge | `{key}` | keys that have a log now |
/// | `sse.registry.subscribers` | gauge | `{stream}` | subscriptions over all keys |
/// | `sse.registry.keys.created` | counter | `{key}` | logs made |
/// | `sse.registry.keys.evicted` | counter | `{key}` | logs evicted |
/// | `sse.registry.keys.refused` | counter | `{key}` | new keys refused when full |
///
/// ```
/// use tower_sse::metrics::RegistryMetrics;
/// use tower_sse::replay::LogRegistry;
///
/// let rooms: LogRegistry<String> = LogRegistry::builder().build();
/// let room_metrics = RegistryMetrics::new("rooms");
/// room_metrics.record(&rooms.stats());
/// ```
#[derive(Debug)]
pub struct RegistryMetrics {
    keys: Gauge,
    subscribers: Gauge,
    created: Counter,
    evicted: Counter,
    refused: Counter,
}

impl RegistryMetrics {
    /// The metrics of the registry named `registry`, looked up in the recorder installed now.
    pub fn new(registry: impl Into<Cow<'static, str>>) -> Self {
        let labels = [(LOG, registry.into())];
        Self {
            keys: metrics::gauge!(REGISTRY_KEYS, &labels),
            subscribers: metrics::gauge!(REGISTRY_SUBSCRIBERS, &labels),
            created: metrics::counter!(REGISTRY_CREATED, &labels),
            evicted: metrics::counter!(REGISTRY_EVICTED, &labels),
            refused: metrics::counter!(REGISTRY_REFUSED, &labels),
        }
    }

    /// Sets every metric to the registry's counters in `stats`.
    pub fn record(&self, stats: &crate::replay::RegistryStats) {
        // Exact as gauges up to 2^53.
        self.keys.set(stats.keys as f64);
        self.subscribers.set(stats.subscribers as f64);
        self.created.absolute(stats.created);
        self.evicted.absolute(stats.evicted);
        self.refused.absolute(stats.refused);
    }
}

/// One route's metrics: its name, and its handles once looked up.
///
/// Lives in the layer's config, so the handles are looked up once per layer (or once per
/// response that names a route of its own), never per frame.
#[derive(Debug, Default)]
pub(crate) struct RouteMetrics {
    route: Option<Cow<'static, str>>,
    handles: OnceLock<Arc<Handles>>,
}

impl RouteMetrics {
    pub(crate) fn new(route: Cow<'static, str>) -> Self {
        Self {
            route: Some(route),
            handles: OnceLock::new(),
        }
    }

    /// This route's handles, looked up in the recorder on first use.
    fn handles(&self) -> Arc<Handles> {
        let handles = self.handles.get_or_init(|| {
            let route = self.route.clone().unwrap_or(Cow::Borrowed(DEFAULT_ROUTE));
            Arc::new(Handles::new(route))
        });
        Arc::clone(handles)
    }
}

#[derive(Debug)]
struct Handles {
    active: Gauge,
    opened: Counter,
    /// In the order of `CLOSE_REASONS`.
    closed: [Counter; CLOSE_REASONS.len()],
    time_to_first_event: Histogram,
    duration: Histogram,
    events: Counter,
    bytes: Counter,
    keep_alives: Counter,
}

impl Handles {
    fn new(route: Cow<'static, str>) -> Self {
        let labels = [(ROUTE, route.clone())];
        let closed = CLOSE_REASONS.map(|reason| {
            let labels = [
                (ROUTE, route.clone()),
                (END_REASON, Cow::Borrowed(reason.as_str())),
            ];
            metrics::counter!(STREAMS_CLOSED, &labels)
        });
        Self {
            active: metrics::gauge!(ACTIVE_STREAMS, &labels),
            opened: metrics::counter!(STREAMS_OPENED, &labels),
            closed,
            time_to_first_event: metrics::histogram!(TIME_TO_FIRST_EVENT, &labels),
            duration: metrics::histogram!(STREAM_DURATION, &labels),
            events: metrics::counter!(EVENTS, &labels),
            bytes: metrics::counter!(BYTES, &labels),
            keep_alives: metrics::counter!(KEEP_ALIVES, &labels),
        }
    }

    fn closed(&self, reason: EndReason) -> Option<&Counter> {
        let index = CLOSE_REASONS.iter().position(|r| *r == reason)?;
        self.closed.get(index)
    }
}

/// What one stream has recorded so far; held by the stream's report.
#[derive(Debug)]
pub(crate) struct StreamMetrics {
    handles: Arc<Handles>,
    /// Events already added to the events counter.
    events_recorded: u64,
}

impl StreamMetrics {
    /// Counts a new stream as opened and active.
    pub(crate) fn open(route: &RouteMetrics) -> Self {
        let handles = route.handles();
        handles.opened.increment(1);
        handles.active.increment(1.0);
        Self {
            handles,
            events_recorded: 0,
        }
    }

    /// Records a frame of `bytes` sent when the stream had sent `events` events in all;
    /// `since_start` is how long ago the stream started, read only for its first event.
    pub(crate) fn frame(
        &mut self,
        bytes: usize,
        events: u64,
        since_start: impl FnOnce() -> Duration,
    ) {
        self.handles.bytes.increment(bytes as u64);
        if events > self.events_recorded {
            if self.events_recorded == 0 {
                let elapsed = since_start().as_secs_f64();
                self.handles.time_to_first_event.record(elapsed);
            }
            self.flush_events(events);
        }
    }

    pub(crate) fn keep_alive(&self) {
        self.handles.keep_alives.increment(1);
    }

    /// Counts the stream as closed for `reason`, after a lifetime of `duration` if it started.
    pub(crate) fn close(&mut self, reason: EndReason, events: u64, duration: Option<Duration>) {
        self.flush_events(events);
        if let Some(closed) = self.handles.closed(reason) {
            closed.increment(1);
        }
        if let Some(duration) = duration {
            self.handles.duration.record(duration.as_secs_f64());
        }
        self.handles.active.decrement(1.0);
    }

    fn flush_events(&mut self, events: u64) {
        if events > self.events_recorded {
            self.handles.events.increment(events - self.events_recorded);
            self.events_recorded = events;
        }
    }
}

/// The client's counters: few and rare (a connection, a reconnection), so each is looked up
/// when it happens.
#[cfg(feature = "client")]
pub(crate) mod client {
    use crate::client::Cause;

    pub(crate) fn connected() {
        metrics::counter!(super::CLIENT_CONNECTS).increment(1);
    }

    pub(crate) fn reconnecting(cause: &Cause) {
        let cause = match cause {
            Cause::Ended => "ended",
            Cause::Body(_) => "body",
            Cause::Service(_) => "service",
            Cause::ConnectTimeout => "connect_timeout",
            Cause::ReadTimeout => "read_timeout",
            Cause::Status { .. } => "status",
            Cause::Requested => "requested",
        };
        metrics::counter!(super::CLIENT_RECONNECTS, super::RECONNECT_CAUSE => cause).increment(1);
    }

    pub(crate) fn decode_error() {
        metrics::counter!(super::CLIENT_DECODE_ERRORS).increment(1);
    }
}
