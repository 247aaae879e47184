//! [`Deadline`]: the one timer type behind a stream's lifetime, idle timeout and keep-alive.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{sleep_until, Instant, Sleep};

use crate::jitter::{jittered, shortest};

/// How long after its clock last restarted a [`Deadline`] falls due: at a random point of
/// `[(1 - jitter) * longest, longest]`, drawn each time its timer is armed.
///
/// Not stored in the deadline: the body reads it from its configuration, which keeps each
/// boxed timer down to a `Sleep` and an `Instant`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Delay {
    longest: Duration,
    jitter: f64,
}

impl Delay {
    /// Exactly `after`, never drawn.
    pub(super) fn exact(after: Duration) -> Self {
        Self::jittered(after, 0.0)
    }

    /// A random point of `[(1 - jitter) * longest, longest]`.
    pub(super) fn jittered(longest: Duration, jitter: f64) -> Self {
        Self { longest, jitter }
    }

    /// The earliest point of the window: once this much time has passed, the deadline is
    /// due, whatever point the timer was armed at.
    fn shortest(self) -> Duration {
        shortest(self.longest, self.jitter)
    }

    /// A fresh random point of the window, never before its start, so an armed timer never
    /// fires before the deadline is due. With no jitter this is `longest`, drawn without a
    /// random number.
    fn draw(self) -> Duration {
        jittered(self.longest, self.jitter).max(self.shortest())
    }
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
        let timer = now.checked_add(delay.draw()).map(|at| {
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

    /// Restarts the clock at `now` and moves the sleep to exactly `after` from it, or
    /// turns the timer off if that lies past the end of time.
    pub(super) fn restart_exact(&mut self, now: Instant, after: Duration) {
        let Some(timer) = self.timer.as_mut() else {
            return;
        };
        match now.checked_add(after) {
            Some(at) => {
                let timer = timer.as_mut().project();
                *timer.since = now;
                timer.sleep.reset(at);
            }
            None => self.timer = None,
        }
    }

    /// Ready once the shortest `delay` has passed since the clock last restarted.
    ///
    /// When the sleep fires early, because the clock restarted since it was armed, it
    /// re-arms at a fresh draw of `delay` after the restart: so the draw happens once per
    /// timer wake-up, never per frame.
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
        let Some(at) = timer.since.checked_add(delay.draw()) else {
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
    use std::future::poll_fn;

    use tokio::time::advance;

    use super::*;

    async fn expired(deadline: &mut Deadline, delay: Delay) -> bool {
        poll_fn(|cx| Poll::Ready(deadline.poll_expired(cx, delay).is_ready())).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_past_the_end_of_time_is_off() {
        let delay = Delay::exact(Duration::MAX);
        let mut deadline = Deadline::start(Instant::now(), delay);
        assert!(deadline.timer.is_none());
        assert!(!expired(&mut deadline, delay).await);
        deadline.restart_exact(Instant::now(), Duration::MAX);
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
