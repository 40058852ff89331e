//! [`RetryBudget`]: one token bucket over a sliding window of slots.

use std::time::{Duration, Instant};

use super::BudgetSettings;

/// The window is `ttl` cut into this many slots (Finagle, tower).
const SLOTS: u32 = 10;
/// Slots held: the current one plus the `SLOTS` before it, so a deposit counts for at least
/// `ttl` and at most `ttl + ttl/SLOTS` (tower keeps the same ten slots plus a "writer").
const LIVE: usize = SLOTS as usize + 1;

/// A retry budget: requests [`deposit`](Self::deposit) credit, retries
/// [`try_withdraw`](Self::try_withdraw) it, and credit expires after about `ttl`.
///
/// In steady state it allows `retries/s ≤ retry_percent × requests/s + min_per_second`.
///
/// Accounting is in integer tokens, as in Finagle's `RetryBudget`: every percent is scaled by
/// [`SCALE`](Self::SCALE) (Finagle's `ScaleFactor`, 1000). With `retry_percent` `p > 0`, a
/// deposit adds 1000 tokens and a retry costs `⌊1000/p⌋`, so `p = 0.75` allows 7500 retries per
/// 10 000 requests and `p = 2.0` two retries per request; with `p = 0`, deposits add nothing and
/// retries cost 1. A constant reserve of `min_per_second × ttl` retries' worth of tokens (each
/// retry costing the same `⌊1000/p⌋`) backs the floor.
///
/// Tower's `TpsBudget` scales only percents above 1: for `p ≤ 1` it charges `⌊1/p⌋` tokens
/// against deposits of 1, so every percent in `(0.5, 1)` costs one token per retry and allows
/// *100%* retries (0.3 allows 33%). This budget does not copy that rounding flaw: for `p ≤ 1`
/// it allows less than `p + 0.001` retries per request. Large percents still round as in
/// Finagle (every `p` in `(500, 1000]` costs one token: 1000 retries per request).
///
/// Time is cut into slots of `ttl/10` counted from the `now` given to [`new`](Self::new).
/// Deposits *and* withdrawals are recorded in the current slot and both leave the window after
/// 10 more slots. So the reserve refills as the retries that used it expire, and
/// [`balance`](Self::balance) can go **negative** after credit expires while the retries it
/// paid for are still in the window. That debt is what keeps the retries in any window of `ttl`
/// within the budget; while in debt, no retry is allowed. A withdrawal itself never overdraws.
///
/// An earlier `now` than one already seen by a mutating call counts as that latest time: the
/// window never moves back.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::budget::{BudgetSettings, RetryBudget};
///
/// // Tower's "reserve" vector: no deposits, 5 retries per second.
/// let settings = BudgetSettings::new(Duration::from_secs(1), 5, 1.0)?;
/// let t0 = Instant::now();
/// let mut budget = RetryBudget::new(settings, t0);
/// assert_eq!(budget.available(t0), 5);
/// for _ in 0..5 {
///     assert!(budget.try_withdraw(t0));
/// }
/// assert!(!budget.try_withdraw(t0));
///
/// // Once those retries leave the window, the reserve is back.
/// assert!(budget.try_withdraw(t0 + Duration::from_millis(1100)));
/// # Ok::<(), ractor_resilience_core::InvalidSettings>(())
/// ```
#[derive(Debug, Clone)]
pub struct RetryBudget {
    settings: BudgetSettings,
    deposit_amount: i64,
    withdraw_amount: i64,
    reserve: i64,
    epoch: Instant,
    slot_len: Duration,
    /// The newest slot number written to.
    latest: u64,
    /// `ring[n % LIVE]` holds slot `n` if its `number` says so; older contents are stale.
    ring: [Slot; LIVE],
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    number: u64,
    tokens: i64,
}

// ===== impl RetryBudget =====

impl RetryBudget {
    /// The tokens one deposit is worth when `retry_percent > 0` (Finagle's `ScaleFactor`): a
    /// retry costs `⌊SCALE / retry_percent⌋` of them.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ractor_resilience_core::budget::{BudgetSettings, RetryBudget};
    ///
    /// let t0 = Instant::now();
    /// let mut budget = RetryBudget::new(BudgetSettings::new(Duration::from_secs(1), 0, 0.75)?, t0);
    /// budget.deposit(t0);
    /// assert_eq!(budget.balance(t0), RetryBudget::SCALE);
    /// for _ in 0..3 {
    ///     budget.deposit(t0);
    /// }
    /// assert_eq!(budget.available(t0), 3); // 4 requests × 0.75
    /// # Ok::<(), ractor_resilience_core::InvalidSettings>(())
    /// ```
    pub const SCALE: i64 = 1000;

    /// An empty budget (only the reserve) whose window starts at `now`.
    pub fn new(settings: BudgetSettings, now: Instant) -> Self {
        let percent = settings.retry_percent();
        // Finagle: `depositAmount = ScaleFactor`, `withdrawalAmount = (ScaleFactor / percent).toInt`.
        // Float-to-int `as` saturates, so a tiny percent gives a huge (not wrapped) cost; the
        // settings cap `p` at 1000, so a retry costs at least 1.
        let (deposit_amount, withdraw_amount) = if percent == 0.0 {
            (0, 1)
        } else {
            (Self::SCALE, (Self::SCALE as f64 / percent) as i64)
        };
        // Tower uses whole seconds of ttl; milliseconds keep a fractional ttl's floor exact.
        let ttl_ms = settings.ttl().as_millis() as i64; // ≤ 60_000
        let reserve_retries = i64::from(settings.min_per_second()) * ttl_ms / 1000;
        Self {
            settings,
            deposit_amount,
            withdraw_amount,
            reserve: reserve_retries.saturating_mul(withdraw_amount),
            epoch: now,
            slot_len: settings.ttl() / SLOTS,
            latest: 0,
            ring: [Slot::default(); LIVE],
        }
    }

    /// The settings this budget was made with.
    pub const fn settings(&self) -> &BudgetSettings {
        &self.settings
    }

    /// Records a request: adds its credit to the current slot.
    pub fn deposit(&mut self, now: Instant) {
        self.add(now, self.deposit_amount);
    }

    /// Takes the cost of one retry if the balance covers it; `false` (and no change) otherwise.
    pub fn try_withdraw(&mut self, now: Instant) -> bool {
        if self.can_withdraw(now) {
            self.withdraw(now);
            true
        } else {
            false
        }
    }

    /// The tokens in hand at `now`: the reserve plus every deposit minus every withdrawal still
    /// in the window. Negative while expired credit has left retries in the window unpaid.
    ///
    /// Units are the budget's internal tokens (a deposit is worth [`SCALE`](Self::SCALE) and a
    /// retry costs `⌊SCALE / retry_percent⌋`); for a gauge of retries, use
    /// [`available`](Self::available).
    pub fn balance(&self, now: Instant) -> i64 {
        let current = self.slot_number(now);
        let oldest = current.saturating_sub(u64::from(SLOTS));
        self.ring
            .iter()
            .filter(|slot| slot.number >= oldest)
            .fold(self.reserve, |sum, slot| sum.saturating_add(slot.tokens))
    }

    /// How many retries [`try_withdraw`](Self::try_withdraw) would allow at `now` in a row.
    pub fn available(&self, now: Instant) -> u64 {
        u64::try_from(self.balance(now) / self.withdraw_amount).unwrap_or(0)
    }

    /// Whether one retry is affordable at `now`.
    pub(super) fn can_withdraw(&self, now: Instant) -> bool {
        self.balance(now) >= self.withdraw_amount
    }

    /// Applies new settings at `now`, keeping the balance; returns whether it was kept.
    ///
    /// - The tokens deposited and withdrawn within the window are kept: retries already paid
    ///   for stay paid, credit already earned stays earned. With an unchanged `ttl` each slot
    ///   keeps its age; with a new `ttl` the window's net credit moves into the current slot (it
    ///   expires one new `ttl` from now, rather than being re-aged on a grid it was not
    ///   recorded on).
    /// - The reserve and the price of a retry follow the new `min_per_second` and
    ///   `retry_percent` from now on.
    /// - Switching `retry_percent` between 0 and a positive value changes what a token means
    ///   (a deposit is worth nothing at 0): the window starts empty then, and `false` is
    ///   returned.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use ractor_resilience_core::budget::{BudgetSettings, RetryBudget};
    ///
    /// let t0 = Instant::now();
    /// let mut budget = RetryBudget::new(BudgetSettings::new(Duration::from_secs(10), 0, 0.5)?, t0);
    /// for _ in 0..10 {
    ///     budget.deposit(t0);
    /// }
    /// assert_eq!(budget.available(t0), 5);
    /// // Retries become twice as cheap; the ten deposits are still there.
    /// assert!(budget.reconfigure(BudgetSettings::new(Duration::from_secs(10), 0, 1.0)?, t0));
    /// assert_eq!(budget.available(t0), 10);
    /// # Ok::<(), ractor_resilience_core::InvalidSettings>(())
    /// ```
    pub fn reconfigure(&mut self, settings: BudgetSettings, now: Instant) -> bool {
        let old = self.settings;
        let fresh = RetryBudget::new(settings, now);
        if (old.retry_percent() == 0.0) != (settings.retry_percent() == 0.0) {
            *self = fresh;
            return false;
        }
        if settings.ttl() == old.ttl() {
            self.settings = settings;
            self.deposit_amount = fresh.deposit_amount;
            self.withdraw_amount = fresh.withdraw_amount;
            self.reserve = fresh.reserve;
        } else {
            let net = self.balance(now).saturating_sub(self.reserve);
            *self = fresh;
            self.add(now, net);
        }
        true
    }

    /// Takes one retry's cost, affordable or not (the caller checked).
    pub(super) fn withdraw(&mut self, now: Instant) {
        self.add(now, -self.withdraw_amount);
    }

    /// The slot `now` falls in, never earlier than the latest slot written.
    fn slot_number(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.epoch).as_nanos();
        let number = u64::try_from(elapsed / self.slot_len.as_nanos()).unwrap_or(u64::MAX);
        number.max(self.latest)
    }

    fn add(&mut self, now: Instant, tokens: i64) {
        let number = self.slot_number(now);
        self.latest = number;
        let slot = &mut self.ring[(number % LIVE as u64) as usize];
        if slot.number != number {
            *slot = Slot { number, tokens: 0 };
        }
        slot.tokens = slot.tokens.saturating_add(tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn budget(ttl_ms: u64, min_per_second: u32, percent: f64, t0: Instant) -> RetryBudget {
        RetryBudget::new(
            BudgetSettings::new(ms(ttl_ms), min_per_second, percent).unwrap(),
            t0,
        )
    }

    #[test]
    fn token_amounts_follow_finagle() {
        let t0 = Instant::now();
        let amounts = |p| {
            let b = budget(1000, 0, p, t0);
            (b.deposit_amount, b.withdraw_amount)
        };
        assert_eq!(amounts(0.0), (0, 1));
        assert_eq!(amounts(0.2), (1000, 5000));
        assert_eq!(amounts(0.3), (1000, 3333));
        assert_eq!(amounts(0.75), (1000, 1333));
        assert_eq!(amounts(1.0), (1000, 1000));
        assert_eq!(amounts(2.0), (1000, 500));
        assert_eq!(amounts(1000.0), (1000, 1));
        assert_eq!(amounts(f64::MIN_POSITIVE), (1000, i64::MAX));
    }

    #[test]
    fn reserve_is_min_per_second_times_ttl_in_retries() {
        let t0 = Instant::now();
        assert_eq!(budget(10_000, 10, 0.2, t0).available(t0), 100);
        assert_eq!(budget(1_500, 10, 0.2, t0).available(t0), 15);
        assert_eq!(
            budget(60_000, u32::MAX, 0.0, t0).available(t0),
            u64::from(u32::MAX) * 60
        );
    }

    #[test]
    fn reconfigure_keeps_the_balance_and_reprices() {
        let t0 = Instant::now();
        let mut b = budget(10_000, 0, 0.5, t0);
        for _ in 0..10 {
            b.deposit(t0);
        }
        assert!(b.try_withdraw(t0));
        assert_eq!(b.available(t0), 4);
        // Same ttl: every slot keeps its age, the retry taken stays paid.
        assert!(b.reconfigure(BudgetSettings::new(ms(10_000), 1, 0.5).unwrap(), t0 + ms(1)));
        assert_eq!(
            b.available(t0 + ms(1)),
            4 + 10,
            "the reserve follows min_per_second"
        );
        // The deposits still expire one ttl after they were made.
        assert_eq!(b.available(t0 + ms(11_500)), 10);
    }

    #[test]
    fn reconfigure_with_a_new_ttl_moves_the_credit_to_now() {
        let t0 = Instant::now();
        let mut b = budget(10_000, 0, 1.0, t0);
        for _ in 0..6 {
            b.deposit(t0);
        }
        let t1 = t0 + ms(5_000);
        assert!(b.reconfigure(BudgetSettings::new(ms(2_000), 0, 1.0).unwrap(), t1));
        assert_eq!(b.available(t1), 6);
        assert_eq!(b.available(t1 + ms(1_000)), 6);
        assert_eq!(
            b.available(t1 + ms(2_300)),
            0,
            "gone one new ttl after the reload"
        );
    }

    #[test]
    fn reconfigure_between_zero_and_positive_percent_starts_empty() {
        let t0 = Instant::now();
        let mut b = budget(10_000, 0, 1.0, t0);
        b.deposit(t0);
        assert!(!b.reconfigure(BudgetSettings::new(ms(10_000), 0, 0.0).unwrap(), t0));
        assert_eq!(b.available(t0), 0);
    }

    /// Tower's `tps_slots` vector, with explicit instants.
    #[test]
    fn deposits_count_for_ttl_then_expire() {
        let t0 = Instant::now();
        let mut b = budget(1000, 0, 0.5, t0);
        b.deposit(t0);
        b.deposit(t0);
        assert!(
            b.try_withdraw(t0 + ms(901)),
            "900 ms later the deposits still count"
        );

        let t1 = t0 + ms(901 + 2001);
        b.deposit(t1);
        b.deposit(t1 + ms(301));
        b.deposit(t1 + ms(301 + 801));
        // The first of the three has expired; the other two pay for one retry.
        assert!(b.try_withdraw(t1 + ms(301 + 801)));
        assert!(!b.try_withdraw(t1 + ms(301 + 801)));
    }

    #[test]
    fn expired_credit_leaves_debt_until_its_retries_expire() {
        let t0 = Instant::now();
        let mut b = budget(1000, 0, 1.0, t0);
        b.deposit(t0);
        assert!(b.try_withdraw(t0 + ms(500)));
        assert_eq!(
            b.balance(t0 + ms(1150)),
            -RetryBudget::SCALE,
            "the deposit left, the retry did not"
        );
        b.deposit(t0 + ms(1150));
        assert!(
            !b.try_withdraw(t0 + ms(1150)),
            "new credit first repays the debt"
        );
        assert_eq!(b.balance(t0 + ms(1650)), RetryBudget::SCALE);
    }

    #[test]
    fn time_never_moves_back() {
        let t0 = Instant::now();
        let mut b = budget(1000, 0, 1.0, t0);
        b.deposit(t0 + ms(5000));
        b.deposit(t0);
        assert_eq!(b.balance(t0 + ms(5000)), 2 * RetryBudget::SCALE);
    }
}
