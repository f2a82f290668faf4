//! The refresh timers of one secondary zone (RFC 1034 §4.3.5, RFC 1996):
//! a deterministic state machine with no clock and no sockets of its own.
//! The transfer task feeds it events with the current time and asks when to
//! wake up next; tests drive it with made-up times.

use std::time::{Duration, Instant};

use super::client::serial_gt;

/// Shortest interval between two refresh attempts, whatever the SOA says.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest refresh or retry interval honoured (RFC 1912 suggests at most days).
pub const MAX_INTERVAL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The SOA timer fields that drive a secondary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoaTimers {
    /// Serial of the version we hold.
    pub serial: u32,
    /// Interval between checks while all is well.
    pub refresh: Duration,
    /// Interval between checks after a failure.
    pub retry: Duration,
    /// How long the zone stays servable without a successful check.
    pub expire: Duration,
}

/// What the transfer task should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing until [`Refresh::next_wakeup`].
    Wait,
    /// Check the masters (SOA query, then IXFR/AXFR if newer).
    Check,
}

/// The refresh state of one zone.
#[derive(Debug, Clone)]
pub struct Refresh {
    timers: Option<SoaTimers>,
    /// When the next check is due.
    due: Instant,
    /// After this instant the zone must not be served (SERVFAIL).
    expires_at: Option<Instant>,
    /// A check is running; NOTIFYs meanwhile ask for one more afterwards.
    checking: bool,
    /// A NOTIFY arrived during a check.
    pending_notify: bool,
    /// Consecutive failed checks.
    failures: u32,
}

impl Refresh {
    /// A zone we hold no data for: check at once.
    pub fn empty(now: Instant) -> Refresh {
        Refresh {
            timers: None,
            due: now,
            expires_at: None,
            checking: false,
            pending_notify: false,
            failures: 0,
        }
    }

    /// A zone restored from the store. `since_refresh` is how long ago the
    /// last successful check was (wall clock, saturating), so a node that was
    /// off across the expire deadline does not serve the stale zone.
    pub fn restored(now: Instant, timers: SoaTimers, since_refresh: Duration) -> Refresh {
        let remaining = timers.expire.saturating_sub(since_refresh);
        Refresh {
            timers: Some(timers),
            // Refresh at once after a restart: the masters may have moved on.
            due: now,
            expires_at: Some(now + remaining),
            checking: false,
            pending_notify: false,
            failures: 0,
        }
    }

    /// The timers of the version held, if any.
    pub fn timers(&self) -> Option<SoaTimers> {
        self.timers
    }

    /// Whether the zone must be answered with SERVFAIL: never loaded, or
    /// past its expire deadline.
    pub fn is_expired(&self, now: Instant) -> bool {
        match self.expires_at {
            Some(deadline) => now >= deadline,
            None => true,
        }
    }

    /// The expire deadline, if the zone has data.
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// When the next check is due.
    pub fn due(&self) -> Instant {
        self.due
    }

    /// Consecutive failed checks.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// When the task should wake up next: the next check, or the expire
    /// deadline if that comes first (to start answering SERVFAIL on time).
    pub fn next_wakeup(&self) -> Instant {
        match self.expires_at {
            Some(deadline) if deadline < self.due => deadline,
            _ => self.due,
        }
    }

    /// Called when the task wakes up: whether to check now.
    pub fn poll(&mut self, now: Instant) -> Action {
        if self.checking || now < self.due {
            return Action::Wait;
        }
        self.checking = true;
        Action::Check
    }

    /// A NOTIFY from an allowed source (RFC 1996 §3.7). `serial` is the SOA
    /// serial it carried, if any: one equal to or older than ours changes
    /// nothing. NOTIFYs during a check are coalesced into one more check.
    pub fn notify(&mut self, now: Instant, serial: Option<u32>) -> Action {
        if let (Some(theirs), Some(ours)) = (serial, self.timers.map(|t| t.serial))
            && !serial_gt(theirs, ours)
        {
            return Action::Wait;
        }
        if self.checking {
            self.pending_notify = true;
            return Action::Wait;
        }
        // Due now; the caller's next `poll` starts the check.
        self.due = now;
        Action::Check
    }

    /// The check succeeded: a new version (or the same one) with these
    /// timers is held. `jitter` in 0.0..1.0 spreads the next refresh over
    /// the last tenth of the interval so a fleet does not refresh in step.
    pub fn succeeded(&mut self, now: Instant, timers: SoaTimers, jitter: f64) {
        self.timers = Some(timers);
        self.failures = 0;
        self.expires_at = Some(now + timers.expire.clamp(MIN_INTERVAL, Duration::MAX));
        self.finish(now, interval(timers.refresh, jitter));
    }

    /// The check failed on every master: retry after the SOA's retry
    /// interval (the zone keeps being served until it expires).
    pub fn failed(&mut self, now: Instant, jitter: f64) {
        self.failures = self.failures.saturating_add(1);
        let retry = match self.timers {
            Some(timers) => timers.retry,
            // Never loaded: back off from 1 s up to 5 min.
            None => MIN_INTERVAL * 2u32.saturating_pow(self.failures.min(8)),
        };
        self.finish(now, interval(retry.min(Duration::from_secs(300)), jitter));
    }

    fn finish(&mut self, now: Instant, next: Duration) {
        self.checking = false;
        if std::mem::take(&mut self.pending_notify) {
            self.due = now;
        } else {
            self.due = now + next;
        }
    }
}

/// An interval clamped to sane bounds, shortened by up to 10% of itself.
fn interval(base: Duration, jitter: f64) -> Duration {
    let base = base.clamp(MIN_INTERVAL, MAX_INTERVAL);
    let jitter = jitter.clamp(0.0, 1.0);
    base.saturating_sub(base.mul_f64(0.1 * jitter))
        .max(MIN_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timers(serial: u32) -> SoaTimers {
        SoaTimers {
            serial,
            refresh: Duration::from_secs(60),
            retry: Duration::from_secs(10),
            expire: Duration::from_secs(300),
        }
    }

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(serial_gt(2, 1));
        assert!(!serial_gt(1, 2));
        assert!(!serial_gt(5, 5));
        assert!(serial_gt(0, u32::MAX));
        assert!(serial_gt(0x7fff_ffff, 0));
        assert!(!serial_gt(0x8000_0000, 0));
    }

    #[test]
    fn empty_zone_is_expired_and_checks_at_once() {
        let now = Instant::now();
        let mut r = Refresh::empty(now);
        assert!(r.is_expired(now));
        assert_eq!(r.poll(now), Action::Check);
        assert_eq!(r.poll(now), Action::Wait, "one check at a time");
    }

    #[test]
    fn success_schedules_refresh_and_sets_expiry() {
        let t0 = Instant::now();
        let mut r = Refresh::empty(t0);
        r.poll(t0);
        r.succeeded(t0, timers(7), 0.0);
        assert!(!r.is_expired(t0));
        assert_eq!(r.due(), t0 + Duration::from_secs(60));
        assert_eq!(r.poll(t0 + Duration::from_secs(59)), Action::Wait);
        assert_eq!(r.poll(t0 + Duration::from_secs(60)), Action::Check);
        assert!(r.is_expired(t0 + Duration::from_secs(300)));
    }

    #[test]
    fn jitter_only_shortens_the_interval() {
        let t0 = Instant::now();
        let mut r = Refresh::empty(t0);
        r.poll(t0);
        r.succeeded(t0, timers(1), 1.0);
        assert_eq!(r.due(), t0 + Duration::from_secs(54));
    }

    #[test]
    fn failures_retry_and_the_zone_expires_without_success() {
        let t0 = Instant::now();
        let mut r = Refresh::empty(t0);
        r.poll(t0);
        r.succeeded(t0, timers(1), 0.0);
        let mut now = t0 + Duration::from_secs(60);
        while now < t0 + Duration::from_secs(300) {
            assert!(!r.is_expired(now));
            assert_eq!(r.poll(now), Action::Check);
            r.failed(now, 0.0);
            now = r.next_wakeup();
        }
        assert!(r.is_expired(now));
        assert_eq!(r.failures(), 24);
    }

    #[test]
    fn notify_with_our_serial_does_nothing_and_newer_checks_now() {
        let t0 = Instant::now();
        let mut r = Refresh::empty(t0);
        r.poll(t0);
        r.succeeded(t0, timers(10), 0.0);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(r.notify(t1, Some(10)), Action::Wait);
        assert_eq!(r.notify(t1, Some(9)), Action::Wait);
        assert_eq!(r.notify(t1, Some(11)), Action::Check);
    }

    #[test]
    fn notifies_during_a_check_are_coalesced_into_one_more() {
        let t0 = Instant::now();
        let mut r = Refresh::empty(t0);
        assert_eq!(r.poll(t0), Action::Check);
        assert_eq!(r.notify(t0, None), Action::Wait);
        assert_eq!(r.notify(t0, None), Action::Wait);
        r.succeeded(t0, timers(3), 0.0);
        assert_eq!(r.poll(t0), Action::Check);
        r.succeeded(t0, timers(3), 0.0);
        assert_eq!(r.poll(t0), Action::Wait);
    }

    #[test]
    fn restored_zone_past_its_deadline_is_expired() {
        let now = Instant::now();
        let r = Refresh::restored(now, timers(5), Duration::from_secs(400));
        assert!(r.is_expired(now));
        let r = Refresh::restored(now, timers(5), Duration::from_secs(100));
        assert!(!r.is_expired(now));
        assert_eq!(r.expires_at(), Some(now + Duration::from_secs(200)));
    }
}
