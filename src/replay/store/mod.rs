//! The retained events in memory, in order, and how a client's id resolves to them.
//!
//! [`MemoryStore`] appends framed events, reads the frame at a cursor, resolves a client's
//! `Last-Event-ID` to a cursor and evicts from the front. [`EventLog`](super::EventLog)
//! fills it by sequence number; `RedisLog` (feature `redis`) fills it through `keyed.rs`,
//! by the order of Redis stream ids.
//!
//! Every entry carries an ordering key. For the log's own events it is the sequence
//! number; the Redis reader appends frames under the key of their stream entry id
//! (`<ms>-<seq>` as `ms << 64 | seq`), so a client's id resolves by order, as "the first
//! entry after it", even when it names an entry this node has not received yet.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::event::EncodedEvent;

use super::id::{parse_decimal, WireId};

#[cfg(feature = "redis")]
mod keyed;

/// How much the window keeps; all three bounds hold after every append.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// At least 1: the newest event always stays, so subscribers waiting for it see it.
    pub(super) max_events: usize,
    pub(super) max_bytes: usize,
    pub(super) max_age: Option<Duration>,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    /// Increasing along the window.
    key: u128,
    frame: EncodedEvent,
    /// Only read when the window has a `max_age`.
    at: Option<Instant>,
    /// The caller's id, for events published with one.
    external: Option<WireId>,
}

/// Retained events, numbered by consecutive sequence numbers from 1.
///
/// The entries hold the sequence numbers `first_seq()..next_seq()`, so the entry for a
/// sequence number is found by subtraction. The newest evicted event (`first_seq() - 1`)
/// is remembered as the boundary: a client whose last event was that one has missed
/// nothing, so its id still resolves.
#[derive(Debug)]
pub(super) struct MemoryStore {
    entries: VecDeque<Entry>,
    next_seq: u64,
    bytes: usize,
    /// The caller's id of the boundary event, if it had one.
    boundary: Option<WireId>,
    /// The key of the boundary event: every event with a key up to it has left the window.
    boundary_key: u128,
    /// Caller ids of the retained events and the boundary, text and numeric apart (so a
    /// numeric `Last-Event-ID` is looked up as a number); the latest use of an id wins.
    by_id: HashMap<Arc<str>, u64>,
    by_number: HashMap<u64, u64>,
    /// Whether an eviction has happened for `max_bytes` while `max_events` had room.
    bytes_bound: BytesBound,
}

/// Whether retention has been bound by bytes before count, told once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BytesBound {
    No,
    Seen,
    Told,
}

impl MemoryStore {
    pub(super) fn new() -> Self {
        Self {
            entries: VecDeque::new(),
            next_seq: 1,
            bytes: 0,
            boundary: None,
            boundary_key: 0,
            by_id: HashMap::new(),
            by_number: HashMap::new(),
            bytes_bound: BytesBound::No,
        }
    }

    /// The sequence number the next append gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The oldest retained sequence number; `next_seq()` when nothing is retained.
    pub(super) fn first_seq(&self) -> u64 {
        self.entries
            .front()
            .map_or(self.next_seq, |entry| entry.seq)
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends the frame of event `seq`, which must be `next_seq()`; its key is `seq`.
    pub(super) fn append(
        &mut self,
        seq: u64,
        frame: EncodedEvent,
        external: Option<WireId>,
        at: Option<Instant>,
    ) {
        debug_assert_eq!(seq, self.next_seq, "events are appended in sequence");
        match &external {
            Some(WireId::Text(id)) => {
                self.by_id.insert(id.clone(), seq);
            }
            Some(WireId::Number(id)) => {
                self.by_number.insert(*id, seq);
            }
            None => {}
        }
        self.push(u128::from(seq), frame, external, at);
    }

    fn push(
        &mut self,
        key: u128,
        frame: EncodedEvent,
        external: Option<WireId>,
        at: Option<Instant>,
    ) {
        let seq = self.next_seq;
        self.bytes += frame.as_bytes().len();
        self.entries.push_back(Entry {
            seq,
            key,
            frame,
            at,
            external,
        });
        self.next_seq = seq + 1;
    }

    /// The frame of event `seq` and its key, if it is retained.
    pub(super) fn get(&self, seq: u64) -> Option<(u128, &EncodedEvent)> {
        self.entry(seq).map(|entry| (entry.key, &entry.frame))
    }

    /// The sequence number of the first retained event with a key above `key`, or
    /// `next_seq()` when there is none (yet).
    pub(super) fn seq_after(&self, key: u128) -> u64 {
        let index = self.entries.partition_point(|entry| entry.key <= key);
        self.first_seq() + index as u64
    }

    fn entry(&self, seq: u64) -> Option<&Entry> {
        let index = usize::try_from(seq.checked_sub(self.first_seq())?).ok()?;
        self.entries.get(index)
    }

    /// The sequence number of the event a client names by `id`, if the window still knows
    /// it: a retained event, or the boundary just before them.
    ///
    /// Caller ids are looked up first (a number in canonical decimal as a number, anything
    /// else as text); otherwise `id` must be a sequence number the log assigned itself, in
    /// canonical decimal, so `"7"` never names an event published under another id, and
    /// `"07"` or `"+7"` name nothing. `"0"` names the start of a log that has evicted
    /// nothing.
    pub(super) fn resolve(&self, id: &str) -> Option<u64> {
        let Some(seq) = parse_decimal(id.as_bytes()) else {
            return self.by_id.get(id).copied();
        };
        if let Some(&seq) = self.by_number.get(&seq) {
            return Some(seq);
        }
        if seq >= self.next_seq {
            return None;
        }
        let first = self.first_seq();
        let assigned = if seq == first - 1 {
            self.boundary.is_none()
        } else {
            self.entry(seq)?.external.is_none()
        };
        assigned.then_some(seq)
    }

    /// Whether `id` is a sequence number the window has moved past (rather than unknown).
    pub(super) fn is_evicted_seq(&self, id: &str) -> bool {
        // `first_seq()` is at least 1: sequence numbers start there.
        parse_decimal(id.as_bytes()).is_some_and(|seq| seq < self.first_seq() - 1)
    }

    /// The id event `seq` went out with, for `seq` from `first_seq() - 1` to
    /// `next_seq() - 1`; `Seq(0)` stands for the start of the log.
    pub(super) fn wire_id(&self, seq: u64) -> WireId {
        let external = if seq == self.first_seq() - 1 {
            self.boundary.clone()
        } else {
            self.entry(seq).and_then(|entry| entry.external.clone())
        };
        external.unwrap_or(WireId::Number(seq))
    }

    /// Evicts from the front until every limit holds; returns how many went.
    ///
    /// `now` is needed only for `max_age`; without it age is not checked.
    pub(super) fn evict(&mut self, limits: &Limits, now: Option<Instant>) -> u64 {
        let mut evicted = 0;
        while let Some(front) = self.entries.front() {
            let len = self.entries.len();
            let by_count = len > limits.max_events;
            // The newest event stays even when it alone is larger than the budget.
            let by_bytes = self.bytes > limits.max_bytes && len > 1;
            let by_age = expired(front.at, now, limits.max_age);
            if !(by_count || by_bytes || by_age) {
                break;
            }
            if by_bytes && !by_count && !by_age && self.bytes_bound == BytesBound::No {
                self.bytes_bound = BytesBound::Seen;
            }
            self.pop_front();
            evicted += 1;
        }
        evicted
    }

    /// True once: the first time after an eviction for `max_bytes` alone, which means
    /// replay holds fewer events than `max_events` allows.
    pub(super) fn take_bytes_bound(&mut self) -> bool {
        let seen = self.bytes_bound == BytesBound::Seen;
        if seen {
            self.bytes_bound = BytesBound::Told;
        }
        seen
    }

    fn pop_front(&mut self) {
        let Some(entry) = self.entries.pop_front() else {
            return;
        };
        self.bytes -= entry.frame.as_bytes().len();
        self.boundary_key = entry.key;
        // The old boundary is now two behind the window: resuming from it would lose the
        // event just evicted, so its id no longer resolves.
        let previous = entry.seq - 1;
        match self.boundary.take() {
            Some(WireId::Text(old)) if self.by_id.get(&old) == Some(&previous) => {
                self.by_id.remove(&old);
            }
            Some(WireId::Number(old)) if self.by_number.get(&old) == Some(&previous) => {
                self.by_number.remove(&old);
            }
            _ => {}
        }
        self.boundary = entry.external;
    }
}

fn expired(at: Option<Instant>, now: Option<Instant>, max_age: Option<Duration>) -> bool {
    match (at, now, max_age) {
        (Some(at), Some(now), Some(max_age)) => now.saturating_duration_since(at) > max_age,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Event;

    const UNBOUNDED: Limits = Limits {
        max_events: usize::MAX,
        max_bytes: usize::MAX,
        max_age: None,
    };

    fn push(store: &mut MemoryStore, external: Option<&str>) -> u64 {
        let seq = store.next_seq();
        let frame = Event::new().id_u64(seq).data("x").encode();
        let external = external.map(WireId::parse);
        store.append(seq, frame, external, None);
        seq
    }

    fn limit_events(n: usize) -> Limits {
        Limits {
            max_events: n,
            ..UNBOUNDED
        }
    }

    #[test]
    fn resolves_the_window_and_its_boundary() {
        let mut store = MemoryStore::new();
        assert_eq!(store.resolve("0"), Some(0));
        assert_eq!(store.resolve("1"), None, "from the future");
        for _ in 0..5 {
            push(&mut store, None);
        }
        assert_eq!(store.evict(&limit_events(3), None), 2);
        assert_eq!((store.first_seq(), store.next_seq()), (3, 6));
        assert_eq!(store.resolve("1"), None, "evicted");
        assert_eq!(store.resolve("0"), None, "evicted");
        assert_eq!(store.resolve("2"), Some(2), "boundary");
        assert_eq!(store.resolve("5"), Some(5));
        assert_eq!(store.resolve("6"), None);
        assert_eq!(store.wire_id(2), WireId::Number(2));
    }

    #[test]
    fn caller_ids_are_forgotten_once_behind_the_boundary() {
        let mut store = MemoryStore::new();
        push(&mut store, Some("a")); // 1
        push(&mut store, Some("b")); // 2
        push(&mut store, None); // 3
        push(&mut store, Some("7")); // 4
        assert_eq!(store.resolve("a"), Some(1));
        assert_eq!(store.resolve("4"), None, "published as \"7\"");
        assert_eq!(store.resolve("7"), Some(4));
        assert_eq!(store.resolve("3"), Some(3));

        store.evict(&limit_events(3), None);
        assert_eq!(store.resolve("a"), Some(1), "the boundary still resolves");
        assert_eq!(store.wire_id(1), WireId::Text("a".into()));
        store.evict(&limit_events(2), None);
        assert_eq!(store.resolve("a"), None);
        assert_eq!(store.resolve("b"), Some(2));
        assert_eq!(store.resolve("1"), None, "never an id");
        store.evict(&limit_events(1), None);
        assert_eq!(store.resolve("b"), None);
        assert_eq!(store.resolve("3"), Some(3));
        assert_eq!(store.by_id.len(), 0);
        assert_eq!(store.by_number.len(), 1, "only \"7\" is left");
    }

    #[test]
    fn a_reused_caller_id_names_its_latest_event() {
        let mut store = MemoryStore::new();
        push(&mut store, Some("a"));
        push(&mut store, Some("a"));
        push(&mut store, None);
        assert_eq!(store.resolve("a"), Some(2));
        // Evicting the first "a" must not forget the second.
        store.evict(&limit_events(1), None);
        assert_eq!(store.resolve("a"), Some(2));
    }

    #[test]
    fn bytes_keep_the_newest_event() {
        let mut store = MemoryStore::new();
        push(&mut store, None);
        push(&mut store, None);
        let frame_len = store.bytes() / 2;
        let limits = Limits {
            max_bytes: frame_len - 1,
            ..UNBOUNDED
        };
        assert_eq!(store.evict(&limits, None), 1);
        assert_eq!(store.entries.len(), 1);
        assert_eq!(store.bytes(), frame_len);
    }
}
