//! [`Window`]: the retained events behind their lock, shared by the handles that publish
//! into it ([`EventLog`](crate::replay::EventLog), the Redis reader) and the subscriptions that read
//! from it. Neither side knows the other; both know only this.

use std::convert::Infallible;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Waker;

use tokio::time::Instant;

use crate::event::{EncodedEvent, Event};

use super::id::WireId;
use crate::error::IdNotIncreasing;

use super::id::next_clock_id;
use super::policy::{Gap, GapReason, OnLag, OnUnknownId};
use super::stats::{Counters, ReplayStats};
use super::store::{number_key, Limits, MemoryStore};
use super::waiters::Waiters;

/// How a window keeps events and treats clients that cannot go on from where they are.
#[derive(Debug, Clone)]
pub(super) struct WindowConfig {
    pub(super) limits: Limits,
    pub(super) on_lag: OnLag,
    pub(super) on_unknown_id: OnUnknownId,
    /// The gap event without id and data.
    pub(super) gap: Event,
}

/// The window and what guards it.
pub(super) struct Window {
    config: WindowConfig,
    /// Serializes publishers and numbers their events, so that the costly part of
    /// publishing (framing) runs outside the lock subscriptions read through.
    publisher: Mutex<Numbering>,
    state: Mutex<State>,
    counters: Counters,
}

#[derive(Debug)]
struct State {
    store: MemoryStore,
    waiters: Waiters,
}

/// Where a client's `Last-Event-ID` places it in the window.
#[derive(Debug, Clone, Copy)]
pub(super) enum Resume {
    /// No id (a first connection): events published from now on.
    Live,
    /// From sequence number `cursor` on, leaving out events whose key is at most `floor`,
    /// which the client has seen (they may not have reached this window yet).
    At { cursor: u64, floor: Option<u128> },
    /// Not from where the client was: [`OnUnknownId`] decides.
    Gap(GapReason),
}

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Start {
    /// At `cursor.next`; events before `replay_end` (the next sequence number when it
    /// subscribed) count as replayed.
    At { cursor: Cursor, replay_end: u64 },
    /// Refused by [`OnUnknownId::NoContent`].
    Rejected,
}

/// A reader's place in the window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cursor {
    /// The sequence number of the next event to read.
    pub(super) next: u64,
    /// Events with a key up to this were seen by the client elsewhere: on another node
    /// whose reader was ahead of this one's. Cleared once an event above it is retained.
    pub(super) floor: Option<u128>,
    /// The reader's waker slot, once it has waited.
    pub(super) slot: Option<usize>,
}

/// What a reader finds at its cursor.
#[derive(Debug)]
pub(super) enum Read {
    Frame(EncodedEvent),
    /// Nothing yet: the reader's waker is registered.
    Wait,
    /// The cursor is behind the window, whose oldest event is `first`; `id` is the id of
    /// the one before it.
    Behind {
        first: u64,
        id: WireId,
    },
}

/// The numbers an appended event gets.
#[derive(Debug, Clone, Copy)]
pub(super) struct Numbered {
    /// Its place in the window.
    pub(super) seq: u64,
    /// Its numeric id: automatic, or the caller's number (for a text id, the number
    /// before it).
    pub(super) id: u64,
}

/// How publishers number events; behind the publishers' lock.
///
/// Numeric ids increase along a window, so that a numeric `Last-Event-ID` resolves by
/// order. Automatic ids come from the clock (see `id.rs`), unless the window's first
/// numeric id was the caller's: then they count on from the caller's, so that a source
/// with its own small numbers can mix in the log's events (a feed's gap events) without
/// leaping ahead of its next number.
#[derive(Debug)]
struct Numbering {
    next_seq: u64,
    /// The newest numeric id; 0 before the first.
    last_id: u64,
    /// Events with a text id since the newest numeric one: they are keyed after its key.
    texts_since: u64,
    /// Whether the first numeric id was the caller's; `None` before it.
    caller_first: Option<bool>,
}

/// An event's numbers before it is appended.
#[derive(Debug)]
struct Assigned {
    numbered: Numbered,
    key: u128,
    id: WireId,
    /// Whether it takes a new number (rather than being keyed after the last one).
    numbers: bool,
    /// Whether the number is the caller's.
    by_caller: bool,
}

impl Numbering {
    fn new() -> Self {
        Self {
            next_seq: 1,
            last_id: 0,
            texts_since: 0,
            caller_first: None,
        }
    }

    fn number(&self, id: u64, by_caller: bool) -> Assigned {
        Assigned {
            numbered: Numbered {
                seq: self.next_seq,
                id,
            },
            key: number_key(id),
            id: WireId::Number(id),
            numbers: true,
            by_caller,
        }
    }

    /// Numbers the next event with the next automatic id; changes nothing but the
    /// process-wide high-water mark.
    fn assign_auto(&self) -> Assigned {
        let next = match self.caller_first {
            Some(true) => self.last_id.checked_add(1),
            None | Some(false) => next_clock_id(self.last_id),
        };
        match next {
            Some(id) => self.number(id, false),
            None => self.past_the_last_number(),
        }
    }

    /// Numbers the next event with the caller's `id`, which when numeric must be above
    /// the last numeric id; changes nothing.
    fn assign_caller(&self, id: WireId) -> Result<Assigned, IdNotIncreasing> {
        match id {
            WireId::Number(id) if id > self.last_id => Ok(self.number(id, true)),
            WireId::Number(id) => Err(IdNotIncreasing::new(id, self.last_id)),
            text @ WireId::Text(_) => Ok(Assigned {
                numbered: Numbered {
                    seq: self.next_seq,
                    id: self.last_id,
                },
                key: self.text_key(),
                id: text,
                numbers: false,
                by_caller: true,
            }),
        }
    }

    /// After a caller's id of `u64::MAX` no number is left: later automatic events repeat
    /// it (keyed like text, so the window's order holds), and a client that resumes from
    /// it gets them again. Logged, as it is the caller's doing.
    fn past_the_last_number(&self) -> Assigned {
        tracing::error!("sse event log has no id left above u64::MAX; its events repeat it");
        Assigned {
            numbered: Numbered {
                seq: self.next_seq,
                id: self.last_id,
            },
            key: self.text_key(),
            id: WireId::Number(self.last_id),
            numbers: false,
            by_caller: false,
        }
    }

    fn text_key(&self) -> u128 {
        number_key(self.last_id) + u128::from(self.texts_since) + 1
    }

    fn commit(&mut self, assigned: &Assigned) {
        self.next_seq = assigned.numbered.seq + 1;
        if assigned.numbers {
            self.last_id = assigned.numbered.id;
            self.texts_since = 0;
            self.caller_first.get_or_insert(assigned.by_caller);
        } else {
            self.texts_since += 1;
        }
    }
}

/// Locks, recovering from poisoning: no critical section here leaves the state half
/// updated when it panics, as none calls out to user code.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Window {
    pub(super) fn new(config: WindowConfig) -> Self {
        Self {
            config,
            publisher: Mutex::new(Numbering::new()),
            state: Mutex::new(State {
                store: MemoryStore::new(),
                waiters: Waiters::default(),
            }),
            counters: Counters::default(),
        }
    }

    pub(super) fn config(&self) -> &WindowConfig {
        &self.config
    }

    pub(super) fn counters(&self) -> &Counters {
        &self.counters
    }

    pub(super) fn stats(&self) -> ReplayStats {
        self.counters.snapshot()
    }

    /// Appends the frame `frame` makes for the next automatic id, and wakes waiting
    /// readers. Returns the event's numbers.
    ///
    /// `frame` runs under the publishers' lock only, not the one readers take.
    pub(super) fn append(&self, frame: impl FnOnce(Numbered) -> EncodedEvent) -> Numbered {
        let appended = self.append_as(
            |numbering| Ok::<_, Infallible>(numbering.assign_auto()),
            frame,
        );
        match appended {
            Ok(numbered) => numbered,
            Err(never) => match never {},
        }
    }

    /// As [`append`](Self::append), under the caller's `id`, already in the frame.
    ///
    /// # Errors
    ///
    /// A caller's numeric id not above the last one; nothing is appended then.
    pub(super) fn append_caller(
        &self,
        id: WireId,
        frame: impl FnOnce(Numbered) -> EncodedEvent,
    ) -> Result<Numbered, IdNotIncreasing> {
        self.append_as(|numbering| numbering.assign_caller(id), frame)
    }

    fn append_as<E>(
        &self,
        assign: impl FnOnce(&Numbering) -> Result<Assigned, E>,
        frame: impl FnOnce(Numbered) -> EncodedEvent,
    ) -> Result<Numbered, E> {
        let mut numbering = lock(&self.publisher);
        let assigned = assign(&numbering)?;
        let numbered = assigned.numbered;
        let frame = frame(numbered);
        let limits = &self.config.limits;
        let at = limits.max_age.map(|_| Instant::now());
        numbering.commit(&assigned);
        let (evicted, bytes_bound, wakers) = {
            let mut state = lock(&self.state);
            let Assigned { key, id, .. } = assigned;
            state.store.append(numbered.seq, key, frame, id, at);
            let evicted = state.store.evict(limits, at);
            let bytes_bound = state.store.take_bytes_bound();
            (evicted, bytes_bound, state.waiters.take_armed())
        };
        drop(numbering);

        Counters::add(&self.counters.published, 1);
        Counters::add(&self.counters.evicted, evicted);
        self.warn_bytes_bound(bytes_bound);
        for waker in wakers {
            waker.wake();
        }
        Ok(numbered)
    }

    /// Runs `change` on the store under both locks, then wakes waiting readers.
    ///
    /// For a window fed from outside (a Redis stream) rather than by `append`: `change`
    /// returns how many events it appended and how many left the window.
    #[cfg(feature = "redis")]
    pub(super) fn feed(&self, change: impl FnOnce(&mut MemoryStore, &Limits) -> (u64, u64)) {
        // Keeps `append` (never called on such a window) in step with the store.
        let mut numbering = lock(&self.publisher);
        let (appended, evicted, bytes_bound, wakers) = {
            let mut state = lock(&self.state);
            let (appended, evicted) = change(&mut state.store, &self.config.limits);
            numbering.next_seq = state.store.next_seq();
            let bytes_bound = state.store.take_bytes_bound();
            // Every change matters to waiting readers: even one that appends and evicts
            // nothing may have opened a gap in the sequence numbers.
            (appended, evicted, bytes_bound, state.waiters.take_armed())
        };
        drop(numbering);
        Counters::add(&self.counters.published, appended);
        Counters::add(&self.counters.evicted, evicted);
        self.warn_bytes_bound(bytes_bound);
        for waker in wakers {
            waker.wake();
        }
    }

    /// Reads the store under its lock.
    #[cfg(feature = "redis")]
    pub(super) fn inspect<T>(&self, read: impl FnOnce(&MemoryStore) -> T) -> T {
        read(&lock(&self.state).store)
    }

    /// Once per window: the first time events left for `max_bytes` while `max_events`
    /// had room for them, replay became shorter than the count limit says.
    fn warn_bytes_bound(&self, bytes_bound: bool) {
        if bytes_bound {
            let limits = &self.config.limits;
            tracing::warn!(
                max_bytes = limits.max_bytes,
                max_events = limits.max_events,
                "sse replay log evicts by max_bytes before max_events: replay keeps fewer \
                 events than max_events (raise max_bytes to keep more)"
            );
        }
    }

    /// Where a new reader starts, and the gap event it sends first, if any: `resolve` reads
    /// the store under the same lock that publishing takes, so nothing is published in
    /// between.
    pub(super) fn start(
        &self,
        resolve: impl FnOnce(&MemoryStore) -> Resume,
    ) -> (Start, Option<Gap>) {
        let config = &self.config;
        let now = config.limits.max_age.map(|_| Instant::now());
        let (start, gap_at) = {
            let mut state = lock(&self.state);
            let evicted = state.store.evict(&config.limits, now);
            Counters::add(&self.counters.evicted, evicted);
            let store = &state.store;
            let replay_end = store.next_seq();
            let at = |next, floor| Start::At {
                cursor: Cursor {
                    next,
                    floor,
                    slot: None,
                },
                replay_end,
            };
            match resolve(store) {
                Resume::Live => (at(replay_end, None), None),
                Resume::At { cursor, floor } => (at(cursor, floor), None),
                Resume::Gap(reason) => {
                    let from = match config.on_unknown_id {
                        OnUnknownId::ResetFromOldest => store.first_seq(),
                        OnUnknownId::ResetFromLive => replay_end,
                        OnUnknownId::NoContent => return (Start::Rejected, None),
                    };
                    (
                        at(from, None),
                        Some((store.wire_id(from - 1), reason, from)),
                    )
                }
            }
        };
        let gap = gap_at.map(|(id, reason, from)| Gap::new(&config.gap, id, reason, from));
        (start, gap)
    }

    /// What is at `cursor`, moving it past a floor; registers `waker` when nothing is.
    pub(super) fn read(&self, cursor: &mut Cursor, waker: &Waker) -> Read {
        let limits = &self.config.limits;
        let now = limits.max_age.map(|_| Instant::now());
        let mut replaced = None;
        let (read, evicted) = {
            let mut state = lock(&self.state);
            // Only age can have changed the window since the last publish.
            let evicted = match now {
                Some(now) => state.store.evict(limits, Some(now)),
                None => 0,
            };
            if let Some(floor) = cursor.floor {
                let after = state.store.seq_after(floor);
                cursor.next = cursor.next.max(after);
                // Every later event has a larger key: the floor has done its work.
                if after < state.store.next_seq() {
                    cursor.floor = None;
                }
            }
            let first = state.store.first_seq();
            let read = if cursor.next < first {
                Read::Behind {
                    first,
                    id: state.store.wire_id(first - 1),
                }
            } else if let Some((_, frame)) = state.store.get(cursor.next) {
                Read::Frame(frame.clone())
            } else {
                // Registered under the same lock that saw no event at the cursor, so a
                // publish cannot slip in between the check and the registration.
                replaced = state.waiters.register(&mut cursor.slot, waker);
                Read::Wait
            };
            (read, evicted)
        };
        drop(replaced);
        Counters::add(&self.counters.evicted, evicted);
        read
    }

    /// Frees a reader's waker slot.
    pub(super) fn release(&self, slot: usize) {
        let waker = lock(&self.state).waiters.release(slot);
        drop(waker);
    }

    /// Slots, free slots, armed slots.
    #[cfg(test)]
    pub(super) fn waiter_capacity(&self) -> (usize, usize, usize) {
        lock(&self.state).waiters.capacity()
    }
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (first, next, bytes) = {
            let state = lock(&self.state);
            let store = &state.store;
            (store.first_seq(), store.next_seq(), store.bytes())
        };
        f.debug_struct("Window")
            .field("retained", &(first..next))
            .field("retained_bytes", &bytes)
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A window fed by keys, as the Redis reader feeds it: ids resolve by order.
#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;
    use std::sync::Arc;

    use futures_util::task::noop_waker;

    fn window(max_events: usize) -> Window {
        Window::new(WindowConfig {
            limits: Limits {
                max_events,
                max_bytes: usize::MAX,
                max_age: None,
            },
            on_lag: OnLag::Disconnect,
            on_unknown_id: OnUnknownId::ResetFromOldest,
            gap: Event::new().event("reset").unwrap(),
        })
    }

    fn feed(window: &Window, keys: &[u128]) {
        window.feed(|store, limits| {
            for &key in keys {
                let id: Arc<str> = Arc::from(key.to_string());
                let frame = Event::new().id(key.to_string()).unwrap().encode();
                store.append_keyed(key, id, frame, None);
            }
            (keys.len() as u64, store.evict(limits, None))
        });
    }

    /// A reader placed as `RedisLog::subscribe` places one that last saw `key`.
    fn at(window: &Window, key: u128) -> Reader {
        let (start, gap) = window.start(|store| match store.resolve_key(key) {
            Some(cursor) => Resume::At {
                cursor,
                floor: Some(key),
            },
            None => Resume::Gap(GapReason::CursorTooOld),
        });
        Reader::new(start, gap)
    }

    fn live(window: &Window) -> Reader {
        let (start, gap) = window.start(|_| Resume::Live);
        Reader::new(start, gap)
    }

    /// What a subscription does with a window, without its policies: the frames ready at
    /// its cursor, and whether it found itself behind the window.
    struct Reader {
        cursor: Cursor,
        gap: Option<Gap>,
    }

    impl Reader {
        fn new(start: Start, gap: Option<Gap>) -> Self {
            match start {
                Start::At { cursor, .. } => Self { cursor, gap },
                Start::Rejected => panic!("the default policy does not refuse"),
            }
        }

        fn ready(&mut self, window: &Window) -> (Vec<String>, bool) {
            let mut frames: Vec<String> = self
                .gap
                .take()
                .map(|gap| text(&gap.frame))
                .into_iter()
                .collect();
            let waker = noop_waker();
            loop {
                assert!(frames.len() < 100);
                match window.read(&mut self.cursor, &waker) {
                    Read::Frame(frame) => {
                        self.cursor.next += 1;
                        frames.push(text(&frame));
                    }
                    Read::Wait => return (frames, false),
                    Read::Behind { .. } => return (frames, true),
                }
            }
        }

        fn frames(&mut self, window: &Window) -> Vec<String> {
            let (frames, behind) = self.ready(window);
            assert!(!behind, "behind the window");
            frames
        }
    }

    fn text(frame: &EncodedEvent) -> String {
        String::from_utf8(frame.as_bytes().to_vec()).unwrap()
    }

    fn ids(keys: &[u128]) -> Vec<String> {
        keys.iter().map(|key| format!("id: {key}\n\n")).collect()
    }

    #[test]
    fn ids_resolve_by_order() {
        let window = window(3);
        window.feed(|store, _| {
            store.start_after(5, Arc::from("5"));
            (0, 0)
        });
        feed(&window, &[10, 20, 30]);
        assert_eq!(
            at(&window, 5).frames(&window),
            ids(&[10, 20, 30]),
            "the boundary"
        );
        assert_eq!(at(&window, 10).frames(&window), ids(&[20, 30]));
        // Between two events: the first one after it.
        assert_eq!(at(&window, 25).frames(&window), ids(&[30]));
        let frames = at(&window, 4).frames(&window);
        assert!(
            frames[0].starts_with("id: 5\nevent: reset\ndata: {\"reason\":\"cursor_too_old\""),
            "{frames:?}"
        );
        assert_eq!(frames[1..], ids(&[10, 20, 30]));
    }

    #[test]
    fn an_id_not_received_yet_leaves_out_the_events_up_to_it() {
        let window = window(1024);
        feed(&window, &[10]);
        // The client saw 30 on another node; 20 and 30 have not reached this one.
        let mut ahead = at(&window, 30);
        assert!(ahead.frames(&window).is_empty());
        feed(&window, &[20]);
        assert!(ahead.frames(&window).is_empty());
        feed(&window, &[30, 40]);
        assert_eq!(ahead.frames(&window), ids(&[40]));
        feed(&window, &[50]);
        assert_eq!(ahead.frames(&window), ids(&[50]));
    }

    #[test]
    fn events_evicted_below_the_floor_are_not_a_lag() {
        let window = window(2);
        let mut ahead = at(&window, 30);
        assert!(ahead.frames(&window).is_empty());
        // 10 and 20 come and go before the reader reads: it did not need them.
        feed(&window, &[10, 20, 30, 40]);
        assert_eq!(ahead.frames(&window), ids(&[40]));
    }

    #[test]
    fn a_gap_puts_every_reader_behind_the_window() {
        let window = window(1024);
        feed(&window, &[10]);
        let mut live = live(&window);
        assert!(live.frames(&window).is_empty());
        window.feed(|store, _| (0, store.gap_to(40, Arc::from("40"))));
        feed(&window, &[50]);
        // Events 20 to 40 never reached the window: the reader is behind it.
        assert_eq!(live.ready(&window), (vec![], true));
        let frames = at(&window, 10).frames(&window);
        assert!(
            frames[0].starts_with("id: 40\nevent: reset\n"),
            "{frames:?}"
        );
        assert_eq!(frames[1..], ids(&[50]));
        assert_eq!(at(&window, 40).frames(&window), ids(&[50]));
    }
}
