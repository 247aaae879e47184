//! The node's one reader of the stream: it fills the local window at start-up, then
//! follows the stream on a connection of its own, reconnecting with backoff.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use redis::aio::ConnectionLike;
use redis::{AsyncConnectionConfig, RedisResult, Script, Value};
use tokio::time::Instant;

use crate::encode::{self, ID};
use crate::event::EncodedEvent;
use crate::replay::window::Window;

use super::id::StreamId;
use super::script::{self, Entry, Range, Snapshot};

/// Entries read per round trip while catching up.
const BATCH: usize = 512;
/// How long one `XREAD BLOCK` waits for a new entry before it asks again; bounds how long
/// a silently dead connection goes unnoticed.
pub(super) const BLOCK: Duration = Duration::from_secs(5);
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(25);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// What the reader and the publishing handles share.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// The milliseconds part of the newest id seen, by the reader or a publish: the Redis
    /// clock that age trimming measures against, with no node clock involved.
    pub(super) newest_ms: AtomicU64,
    /// Connections the reader lost and made again.
    pub(super) reconnects: AtomicU64,
    /// Gaps: times entries were trimmed before this node read them (see `gap`).
    pub(super) gaps: AtomicU64,
}

/// Follows one stream into one window.
#[derive(Debug)]
pub(super) struct Reader {
    client: redis::Client,
    key: Arc<str>,
    script: Script,
    window: Arc<Window>,
    progress: Arc<Progress>,
    /// The newest entry this node has read (delivered, or passed over as not ours), or
    /// the boundary of its window while it has read none.
    last: StreamId,
    /// How many entries the stream had appended up to `last`, which tells how many this
    /// node has read or let go: compared with how many were trimmed, it shows a gap.
    read: u64,
    /// Reads that failed in a row, for the backoff.
    failures: u32,
    /// Set while the stream's last id is behind `last`, so its loss is logged once.
    stream_loss_logged: bool,
}

impl Reader {
    pub(super) fn new(
        client: redis::Client,
        key: Arc<str>,
        script: Script,
        window: Arc<Window>,
        progress: Arc<Progress>,
    ) -> Self {
        Self {
            client,
            key,
            script,
            window,
            progress,
            last: StreamId::ZERO,
            read: 0,
            failures: 0,
            stream_loss_logged: false,
        }
    }

    /// Fills the empty window with the newest entries the window can hold, in one atomic
    /// read, and makes the entry before them its boundary, so that the window resolves ids
    /// as if this node had always been reading.
    pub(super) async fn backfill<C: ConnectionLike>(
        &mut self,
        connection: &mut C,
    ) -> RedisResult<()> {
        let limits = self.window.config().limits;
        // One more than the window holds: the oldest one read is the boundary.
        let count = limits.max_events.min(i64::MAX as usize - 1) + 1;
        let mut snapshot =
            script::read(&self.script, connection, &self.key, Range::Tail(count)).await?;
        let mut entries = std::mem::take(&mut snapshot.entries);
        entries.reverse();
        let mut boundary = if entries.len() > limits.max_events {
            entries.remove(0).id
        } else if snapshot.trimmed() == 0 {
            StreamId::ZERO
        } else {
            // Trimmed entries are gone with their ids: all that is known is that they came
            // before the oldest entry left (or, with none left, up to the last id given).
            snapshot.first.map_or(snapshot.last, StreamId::just_before)
        };
        if let Some(max_age) = limits.max_age {
            // Redis ids carry the server's clock; this compares it with the node's, which is
            // as close as age can be known for events this node did not see arrive.
            let cutoff = wall_ms().saturating_sub(millis(max_age));
            let expired = entries.partition_point(|entry| entry.id.ms() < cutoff);
            if let Some(newest_expired) = expired.checked_sub(1) {
                boundary = entries[newest_expired].id;
                entries.drain(..expired);
            }
        }
        self.last = entries.last().map_or(boundary, |entry| entry.id);
        self.read = snapshot.added;
        self.progress
            .newest_ms
            .fetch_max(self.last.ms().max(snapshot.last.ms()), Ordering::Relaxed);
        let boundary_text: Arc<str> = Arc::from(boundary.to_string());
        let now = Instant::now();
        let wall = wall_ms();
        let entries: Vec<_> = entries
            .into_iter()
            .filter_map(|entry| {
                // Its age so far, so that a restart does not give old events a new life.
                let age = Duration::from_millis(wall.saturating_sub(entry.id.ms()));
                let at = limits.max_age.map(|_| now.checked_sub(age).unwrap_or(now));
                prepare(entry).map(|prepared| (prepared, at))
            })
            .collect();
        self.window.feed(|store, limits| {
            store.start_after(boundary.key(), boundary_text);
            let appended = entries.len() as u64;
            for ((key, id, frame), at) in entries {
                store.append_keyed(key, id, frame, at);
            }
            (appended, store.evict(limits, limits.max_age.map(|_| now)))
        });
        Ok(())
    }

    /// Reads the stream until the window is dropped, reconnecting after every failure.
    pub(super) async fn run(mut self) {
        loop {
            let error = match self.session().await {
                Ok(never) => match never {},
                Err(error) => error,
            };
            self.failures = self.failures.saturating_add(1);
            let delay = backoff(self.failures);
            tracing::warn!(
                key = &*self.key,
                %error,
                after = %self.last,
                retry_in = ?delay,
                "sse redis reader lost its connection"
            );
            tokio::time::sleep(delay).await;
            self.progress.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One connection's worth of reading: a checked read of what is there, then a blocking
    /// wait for more, over and over. Returns only its error.
    async fn session(&mut self) -> RedisResult<Infallible> {
        // Its own connection: a blocked XREAD holds up everything queued behind it, so it
        // must not share one with publishers.
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(BLOCK + CONNECT_TIMEOUT));
        let mut connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        loop {
            self.catch_up(&mut connection).await?;
            if self.failures > 0 {
                tracing::info!(key = &*self.key, after = %self.last, "sse redis reader reconnected");
                self.failures = 0;
            }
            // Only a wake-up: what it returns is read again by the checked read above,
            // which alone can tell whether entries were trimmed before this node saw them.
            let _: Value = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(millis(BLOCK))
                .arg("COUNT")
                .arg(1)
                .arg("STREAMS")
                .arg(&*self.key)
                .arg(self.last.to_string())
                .query_async(&mut connection)
                .await?;
        }
    }

    /// Checked reads of everything after `last`, delivered batch by batch, until one
    /// comes back short: the stream has nothing more for now.
    pub(super) async fn catch_up<C: ConnectionLike>(
        &mut self,
        connection: &mut C,
    ) -> RedisResult<()> {
        loop {
            let read = Range::After(self.last, BATCH);
            let snapshot = script::read(&self.script, connection, &self.key, read).await?;
            let caught_up = snapshot.entries.len() < BATCH;
            self.deliver(snapshot, caught_up);
            if caught_up {
                return Ok(());
            }
        }
    }

    /// The stream's key.
    pub(super) fn key(&self) -> &Arc<str> {
        &self.key
    }

    /// The newest entry this node has read: where a wake-up read starts.
    pub(super) fn last(&self) -> StreamId {
        self.last
    }

    /// Counts a reconnect of the connection that reads this stream.
    pub(super) fn reconnected(&self) {
        self.progress.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Checks for entries lost to trimming, then feeds the entries read into the window.
    fn deliver(&mut self, snapshot: Snapshot, caught_up: bool) {
        let trimmed = snapshot.trimmed();
        if snapshot.last < self.last {
            if !self.stream_loss_logged {
                // Redis lost the stream (a restart without persistence, or a deleted key).
                // Entries this node had not read yet are gone and cannot be told apart from
                // none; new ones get larger ids, as their ids follow the clock.
                tracing::warn!(
                    key = &*self.key,
                    stream_last = %snapshot.last,
                    node_last = %self.last,
                    "sse redis stream is behind this node: it was deleted or lost in a restart"
                );
                self.stream_loss_logged = true;
            }
            // Counting starts again with the new stream.
            self.read = trimmed;
        } else {
            self.stream_loss_logged = false;
            if snapshot.has_after {
                // Nothing after `last` was trimmed; and when everything after it was read,
                // the count is known exactly, whatever happened before.
                if caught_up {
                    self.read = snapshot.added - snapshot.entries.len() as u64;
                }
            } else if trimmed > self.read {
                let lost_up_to = snapshot.first.map_or(snapshot.last, StreamId::just_before);
                self.gap(lost_up_to, trimmed - self.read);
                self.read = trimmed;
            }
        }
        self.read += snapshot.entries.len() as u64;
        let Some(newest) = snapshot.entries.last().map(|entry| entry.id) else {
            return;
        };
        self.progress
            .newest_ms
            .fetch_max(newest.ms(), Ordering::Relaxed);
        let entries: Vec<_> = snapshot.entries.into_iter().filter_map(prepare).collect();
        let at = self.window.config().limits.max_age.map(|_| Instant::now());
        self.window.feed(|store, limits| {
            let appended = entries.len() as u64;
            for (key, id, frame) in entries {
                store.append_keyed(key, id, frame, at);
            }
            (appended, store.evict(limits, at))
        });
        self.last = newest;
    }

    /// `lost` entries, up to `lost_up_to` at most, were trimmed before this node read
    /// them: its clients lost them. The window is emptied so that every subscription falls
    /// behind it and gets the gap event (through its lag policy, then `Last-Event-ID`),
    /// exactly as for events the window evicted itself.
    fn gap(&mut self, lost_up_to: StreamId, lost: u64) {
        tracing::warn!(
            key = &*self.key,
            after = %self.last,
            lost,
            "sse redis reader fell behind the stream's retention; clients get a gap"
        );
        self.progress.gaps.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> = Arc::from(lost_up_to.to_string());
        self.window
            .feed(|store, _| (0, store.gap_to(lost_up_to.key(), id)));
        self.last = self.last.max(lost_up_to);
    }
}

/// An entry ready for the window: its key, its id, and the frame the publishing node
/// encoded with one `id:` line put in front; `None` for an entry that is not ours. Built
/// before the window is locked, so subscriptions do not wait on the copying.
fn prepare(entry: Entry) -> Option<(u128, Arc<str>, EncodedEvent)> {
    let Some(body) = entry.body else {
        tracing::debug!(id = %entry.id, "sse redis reader passed over an entry that is not a frame");
        return None;
    };
    let frame = frame(&entry.id_text, &body);
    Some((entry.id.key(), id_str(&entry.id_text), frame))
}

fn frame(id: &[u8], body: &Bytes) -> EncodedEvent {
    let mut buf = BytesMut::with_capacity(ID.len() + id.len() + 1 + body.len());
    encode::put_field(&mut buf, ID, id);
    buf.extend_from_slice(body);
    EncodedEvent::from_frame(buf.freeze())
}

fn id_str(id: &[u8]) -> Arc<str> {
    // Parsed as a `StreamId` already, so it is ASCII digits and one dash.
    Arc::from(String::from_utf8_lossy(id))
}

pub(super) fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_MIN.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

pub(super) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let delays: Vec<_> = (1..=9).map(backoff).collect();
        assert_eq!(delays[0], BACKOFF_MIN);
        assert_eq!(delays[1], BACKOFF_MIN * 2);
        assert!(delays.windows(2).all(|pair| pair[0] <= pair[1]));
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn frames_get_the_id_in_front() {
        let frame = frame(b"5-1", &Bytes::from_static(b"event: x\ndata: a\n\n"));
        assert_eq!(frame.as_bytes(), "id: 5-1\nevent: x\ndata: a\n\n");
    }
}
