//! [`Deadline`]: the one timer type behind a stream's lifetime, idle timeout and keep-alive.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{sleep_until, Instant, Sleep};

use crate::jitter::shortest;

/// A jittered deadline lies on a grid shared by every stream with the same window, with at
/// most this many points per window and points at least [`MIN_GRID_STEP`] apart; streams
/// take the points in turn. Ten thousand streams then wake the runtime a few dozen times per
/// window, each time together (and over HTTP/2 the streams of one connection share a
/// write), instead of each at an instant of its own: every wake-up of an idle server costs
/// more than the work it does, and the spread over the window stays.
const MAX_GRID_POINTS: u32 = 32;

/// So that a 100 ms span holds at most one point of a grid, a twentieth of the streams
/// with the default window and fewer with wider ones.
const MIN_GRID_STEP: Duration = Duration::from_millis(125);

/// The next stream's point on the grid.
static NEXT_SLOT: AtomicU32 = AtomicU32::new(0);

/// How long after its clock last restarted a [`Deadline`] falls due: at a point of
/// `[(1 - jitter) * longest, longest]` on the window's grid, the next one in turn each time
/// its timer is armed; or, for a stream with a [`slot`](Self::in_slot), at the point of its
/// slot.
///
/// Not stored in the deadline: the body reads it from its configuration, which keeps each
/// boxed timer down to a `Sleep` and an `Instant`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Delay {
    longest: Duration,
    jitter: f64,
    slot: Option<u32>,
}

impl Delay {
    /// Exactly `after`.
    pub(super) fn exact(after: Duration) -> Self {
        Self::jittered(after, 0.0)
    }

    /// A point of `[(1 - jitter) * longest, longest]`.
    pub(super) fn jittered(longest: Duration, jitter: f64) -> Self {
        Self {
            longest,
            jitter,
            slot: None,
        }
    }

    /// The point of the grid whose index is `slot` modulo the points per window, instead of
    /// the next one in turn: streams with the same slot fall due together whenever their
    /// windows overlap, as the streams of one connection should.
    pub(super) fn in_slot(self, slot: Option<u32>) -> Self {
        Self { slot, ..self }
    }

    /// The earliest point of the window: once this much time has passed, the deadline is
    /// due, whatever point the timer was armed at.
    fn shortest(self) -> Duration {
        shortest(self.longest, self.jitter)
    }

    /// When a deadline whose clock restarted at `since` falls due: on the window's grid,
    /// never before the window nor after it; `None` past the end of time.
    fn due(self, since: Instant) -> Option<Instant> {
        let end = since.checked_add(self.longest)?;
        let start = since.checked_add(self.shortest())?;
        let width = end - start;
        let step = (width / MAX_GRID_POINTS).max(MIN_GRID_STEP.min(width));
        // Also no jitter: the window is one instant.
        if step.is_zero() {
            return Some(start);
        }
        let points = u32::try_from(width.as_nanos() / step.as_nanos()).unwrap_or(1);
        let slot = self
            .slot
            .unwrap_or_else(|| NEXT_SLOT.fetch_add(1, Ordering::Relaxed));
        grid_point_in_slot(start, step, slot % points.max(1), points.max(1))
            .filter(|due| *due <= end)
            .or(Some(start))
    }
}

/// Where every grid starts: an instant well before any deadline of the process.
fn grid_epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(|| {
        let now = Instant::now();
        now.checked_sub(Duration::from_secs(3600)).unwrap_or(now)
    })
}

/// The first point of the grid of `step` at or after `start` whose index is `slot` modulo
/// `points`: it lies less than `points` steps after `start`. `None` before the grid's epoch.
fn grid_point_in_slot(start: Instant, step: Duration, slot: u32, points: u32) -> Option<Instant> {
    let epoch = grid_epoch();
    let step_nanos = step.as_nanos();
    let first = start
        .checked_duration_since(epoch)?
        .as_nanos()
        .div_ceil(step_nanos);
    let points = u128::from(points);
    let index = first + (u128::from(slot) + points - first % points) % points;
    epoch.checked_add(nanos(index.checked_mul(step_nanos)?)?)
}

fn nanos(nanos: u128) -> Option<Duration> {
    u64::try_from(nanos).ok().map(Duration::from_nanos)
}

/// A deadline a [`Delay`] after its clock last restarted, on one pinned, boxed `Sleep`, or
/// off when its policy is not configured.
///
/// Reset lazily: [`restart`](Self::restart) only records the new start, which costs a store
/// per frame and keeps timer-wheel updates off the per-event path. When the sleep fires it
/// checks the real deadline, and re-arms at it if that lies ahead.
#[derive(Debug)]
pub(super) struct Deadline {
    // Boxed, and only when configured: a stream with no time limits then holds one pointer
    // per deadline instead of an inline `Sleep` each, which matters at tens of thousands of
    // open streams.
    timer: Option<Pin<Box<Timer>>>,
}

pin_project! {
    #[derive(Debug)]
    struct Timer {
        #[pin]
        sleep: Sleep,
        // When the clock last restarted: the stream opened, or a frame or item went out.
        since: Instant,
    }
}

impl Deadline {
    /// No timer: the policy is not configured, or the stream has ended.
    pub(super) const OFF: Self = Self { timer: None };

    /// A deadline `delay` after `now`, or off if that lies past the end of time: it would
    /// never be reached, and `Instant` arithmetic there panics.
    pub(super) fn start(now: Instant, delay: Delay) -> Self {
        let timer = delay.due(now).map(|at| {
            Box::pin(Timer {
                sleep: sleep_until(at),
                since: now,
            })
        });
        Self { timer }
    }

    /// Restarts the clock at `now`; the sleep stays where it is and catches up when it fires.
    pub(super) fn restart(&mut self, now: Instant) {
        if let Some(timer) = self.timer.as_mut() {
            *timer.as_mut().project().since = now;
        }
    }

    /// Restarts the clock at the instant the sleep fell due and moves the sleep to exactly
    /// `after` from it, or turns the timer off if that lies past the end of time.
    ///
    /// From the instant it fell due, not from now, which is later by the wake-up's latency:
    /// streams that fell due together fall due together again. From now if the sleep fell
    /// due more than `after` ago (the runtime stalled), so a stall sends one frame, not a
    /// burst of them.
    pub(super) fn restart_from_due(&mut self, after: Duration) {
        let Some(timer) = self.timer.as_mut() else {
            return;
        };
        let timer = timer.as_mut().project();
        let now = Instant::now();
        let due = timer.sleep.deadline();
        let since = match due.checked_add(after) {
            Some(next) if next > now => due,
            _ => now,
        };
        match since.checked_add(after) {
            Some(at) => {
                *timer.since = since;
                timer.sleep.reset(at);
            }
            None => self.timer = None,
        }
    }

    /// Ready once the shortest `delay` has passed since the clock last restarted.
    ///
    /// When the sleep fires early, because the clock restarted since it was armed, it
    /// re-arms at a point of `delay`'s window after the restart: so a point is taken once
    /// per timer wake-up, never per frame.
    pub(super) fn poll_expired(&mut self, cx: &mut Context<'_>, delay: Delay) -> Poll<()> {
        let Some(timer) = self.timer.as_mut() else {
            return Poll::Pending;
        };
        let mut timer = timer.as_mut().project();
        if timer.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let Some(earliest) = timer.since.checked_add(delay.shortest()) else {
            return Poll::Pending;
        };
        if earliest <= Instant::now() {
            return Poll::Ready(());
        }
        let Some(at) = delay.due(*timer.since) else {
            return Poll::Pending;
        };
        timer.sleep.as_mut().reset(at);
        // Registers the waker for the new deadline; it lies ahead, so this is pending.
        let _ = timer.sleep.poll(cx);
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::future::poll_fn;

    use tokio::time::advance;

    use super::*;

    impl Deadline {
        fn due_at(&self) -> Instant {
            self.timer.as_ref().expect("armed").sleep.deadline()
        }
    }

    const INTERVAL: Duration = Duration::from_secs(15);

    #[tokio::test(start_paused = true)]
    async fn many_streams_share_a_few_instants_spread_over_the_window() {
        let now = Instant::now();
        let delay = Delay::jittered(INTERVAL, 0.2);
        let mut per_instant = std::collections::BTreeMap::<Instant, usize>::new();
        for _ in 0..1_000 {
            let due = Deadline::start(now, delay).due_at();
            assert!(due >= now + Duration::from_secs(12) && due <= now + INTERVAL);
            *per_instant.entry(due).or_default() += 1;
        }
        // 3 s on a grid of 125 ms: 24 points, each taken in turn.
        assert_eq!(per_instant.len(), 24);
        // Even, give or take the streams of tests running alongside.
        assert!(per_instant.values().all(|&n| (30..=55).contains(&n)));
        let first = *per_instant.keys().next().unwrap();
        let last = *per_instant.keys().last().unwrap();
        assert!(last - first >= Duration::from_millis(2_875));
    }

    #[tokio::test(start_paused = true)]
    async fn streams_of_one_slot_fall_due_together_when_their_windows_overlap() {
        let now = Instant::now();
        let slot = |slot| Delay::jittered(INTERVAL, 0.2).in_slot(Some(slot));
        let first = Deadline::start(now, slot(7)).due_at();
        assert_eq!(Deadline::start(now, slot(7)).due_at(), first);
        // Opened a second later: the same instant, unless that lies before its window.
        let later = Deadline::start(now + Duration::from_secs(1), slot(7)).due_at();
        assert!(later == first || later == first + Duration::from_secs(3));
        // Other slots spread over the window.
        let others: BTreeSet<_> = (0..24)
            .map(|n| Deadline::start(now, slot(n)).due_at())
            .collect();
        assert_eq!(others.len(), 24);
    }

    #[tokio::test(start_paused = true)]
    async fn streams_that_fell_due_together_stay_together() {
        let delay = Delay::jittered(INTERVAL, 0.2).in_slot(Some(3));
        let mut a = Deadline::start(Instant::now(), delay);
        let mut b = Deadline::start(Instant::now(), delay);
        tokio::time::sleep_until(a.due_at()).await;
        assert!(expired(&mut a, delay).await);
        a.restart_from_due(INTERVAL);
        // Polled later than `a`, as the second of two woken tasks is.
        advance(Duration::from_millis(3)).await;
        assert!(expired(&mut b, delay).await);
        b.restart_from_due(INTERVAL);
        assert_eq!(a.due_at(), b.due_at());
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_longer_than_the_interval_sends_one_keep_alive_not_a_burst() {
        let delay = Delay::jittered(INTERVAL, 0.2);
        let mut deadline = Deadline::start(Instant::now(), delay);
        advance(INTERVAL * 3).await;
        assert!(expired(&mut deadline, delay).await);
        deadline.restart_from_due(INTERVAL);
        assert_eq!(deadline.due_at(), Instant::now() + INTERVAL);
    }

    async fn expired(deadline: &mut Deadline, delay: Delay) -> bool {
        poll_fn(|cx| Poll::Ready(deadline.poll_expired(cx, delay).is_ready())).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_past_the_end_of_time_is_off() {
        let delay = Delay::exact(Duration::MAX);
        let mut deadline = Deadline::start(Instant::now(), delay);
        assert!(deadline.timer.is_none());
        assert!(!expired(&mut deadline, delay).await);
        deadline.restart_from_due(Duration::MAX);
        assert!(!expired(&mut deadline, delay).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_moves_the_deadline_when_the_sleep_fires() {
        let delay = Delay::exact(Duration::from_secs(10));
        let mut deadline = Deadline::start(Instant::now(), delay);
        advance(Duration::from_secs(6)).await;
        deadline.restart(Instant::now());
        advance(Duration::from_secs(4)).await;
        assert!(
            !expired(&mut deadline, delay).await,
            "due 10 s after the restart"
        );
        advance(Duration::from_secs(6)).await;
        assert!(expired(&mut deadline, delay).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_jittered_deadline_rearms_within_the_window_after_a_restart() {
        let delay = Delay::jittered(Duration::from_secs(10), 0.5);
        let mut deadline = Deadline::start(Instant::now(), delay);
        // The sleep fired somewhere in 5..=10 s; the restart moves the window to 15..=20 s.
        advance(Duration::from_secs(10)).await;
        deadline.restart(Instant::now());
        assert!(!expired(&mut deadline, delay).await);
        advance(Duration::from_secs(4)).await;
        assert!(!expired(&mut deadline, delay).await);
        advance(Duration::from_secs(6)).await;
        assert!(expired(&mut deadline, delay).await);
    }
}
