//! Properties of `RetryBudget` and `BudgetTree`, with explicit instants (no clock, no sleep).

use std::time::{Duration, Instant};

use proptest::prelude::*;
use ractor_resilience_core::budget::{BudgetId, BudgetSettings, BudgetTree, RetryBudget};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn settings(ttl: Duration, min_per_second: u32, retry_percent: f64) -> BudgetSettings {
    BudgetSettings::new(ttl, min_per_second, retry_percent).unwrap()
}

// ===== tower's vectors =====

#[test]
fn empty_budget_refuses() {
    let t0 = Instant::now();
    let mut budget = RetryBudget::new(settings(ms(1000), 0, 1.0), t0);
    assert!(!budget.try_withdraw(t0));
}

#[test]
fn deposits_leak_after_ttl() {
    let t0 = Instant::now();
    let mut budget = RetryBudget::new(settings(ms(1000), 0, 1.0), t0);
    budget.deposit(t0);
    assert!(!budget.try_withdraw(t0 + ms(3000)));
}

#[test]
fn reserve_allows_min_per_second_times_ttl() {
    let t0 = Instant::now();
    let mut budget = RetryBudget::new(settings(ms(1000), 5, 1.0), t0);
    for i in 0..5 {
        assert!(budget.try_withdraw(t0), "withdrawal {i}");
    }
    assert!(!budget.try_withdraw(t0));
}

#[test]
fn default_budget_is_finagles() {
    let t0 = Instant::now();
    let budget = RetryBudget::new(BudgetSettings::default(), t0);
    assert_eq!(budget.available(t0), 100); // 10/s × 10 s
}

// ===== outage =====

/// A total outage: 1000 requests/s for 60 s, every request fails and asks for one retry.
/// Retries in every window of `ttl` stay within `retry_percent × requests + min_per_second × ttl`.
fn outage(retry_percent: f64) {
    const MS: usize = 60_000;
    const TTL_MS: usize = 10_000;
    let t0 = Instant::now();
    let mut budget = RetryBudget::new(settings(ms(TTL_MS as u64), 10, retry_percent), t0);
    let mut retried = vec![0u32; MS]; // one request per ms
    for (i, slot) in retried.iter_mut().enumerate() {
        let now = t0 + ms(i as u64);
        budget.deposit(now);
        *slot = u32::from(budget.try_withdraw(now));
    }
    // No tolerance needed. Deposits and withdrawals stay in the budget's window for at least
    // ttl, so every ttl window that ends at a retry lies inside the window the budget checked.
    // That window can be up to ttl/10 longer (slot granularity), which in general could admit
    // up to `retry_percent × rate × ttl/10` extra retries; here every request asks for a retry,
    // so credit is spent the millisecond it is earned and none is carried into a window.
    // retries ÷ requests ≤ retry_percent + min_per_second ÷ rate, with 10 000 requests per window.
    let limit = (retry_percent * TTL_MS as f64 + 10.0 * 10.0).round() as u32;
    let total: u32 = retried.iter().sum();
    let mut in_window: u32 = retried[..TTL_MS].iter().sum();
    let mut worst = in_window;
    for start in 1..=MS - TTL_MS {
        in_window = in_window + retried[start + TTL_MS - 1] - retried[start - 1];
        worst = worst.max(in_window);
    }
    assert!(
        worst <= limit,
        "{worst} retries in a {TTL_MS} ms window, limit {limit}"
    );
    // And the budget is not starved either: it lets through at least the steady share.
    assert!(
        f64::from(total) >= retry_percent * MS as f64,
        "only {total} retries in total"
    );
}

#[test]
fn outage_at_20_percent_stays_within_budget() {
    outage(0.2);
}

#[test]
fn outage_at_10_percent_stays_within_budget() {
    outage(0.1);
}

// ===== reference model =====

/// A budget as the spec reads: a flat list of entries, live while in the last 11 slots.
struct Model {
    t0: Instant,
    slot: Duration,
    reserve: i64,
    deposit: i64,
    cost: i64,
    entries: Vec<(u64, i64)>,
    latest: u64,
}

impl Model {
    fn new(ttl: Duration, min_per_second: u32, deposit: i64, cost: i64, t0: Instant) -> Self {
        let reserve = i64::from(min_per_second) * ttl.as_millis() as i64 / 1000 * cost;
        Self {
            t0,
            slot: ttl / 10,
            reserve,
            deposit,
            cost,
            entries: Vec::new(),
            latest: 0,
        }
    }

    fn slot_of(&self, now: Instant) -> u64 {
        ((now - self.t0).as_nanos() / self.slot.as_nanos()) as u64
    }

    fn balance(&self, now: Instant) -> i64 {
        let current = self.slot_of(now).max(self.latest);
        let live = self.entries.iter().filter(|(slot, _)| slot + 10 >= current);
        self.reserve + live.map(|(_, tokens)| tokens).sum::<i64>()
    }

    fn record(&mut self, now: Instant, tokens: i64) {
        self.latest = self.slot_of(now).max(self.latest);
        self.entries.push((self.latest, tokens));
    }
}

#[derive(Debug, Clone)]
enum Op {
    Deposit,
    Withdraw,
    Advance(u64),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => Just(Op::Deposit),
        3 => Just(Op::Withdraw),
        2 => (0u64..3_000).prop_map(Op::Advance),
    ];
    prop::collection::vec(op, 0..300)
}

/// `(retry_percent, deposit tokens, withdraw tokens)`: Finagle's amounts, a deposit worth 1000
/// and a retry `⌊1000/p⌋`.
fn percents() -> impl Strategy<Value = (f64, i64, i64)> {
    prop_oneof![
        Just((0.0, 0, 1)),
        Just((0.25, 1000, 4000)),
        Just((0.5, 1000, 2000)),
        Just((0.75, 1000, 1333)),
        Just((1.0, 1000, 1000)),
        Just((2.0, 1000, 500)),
    ]
}

proptest! {
    #[test]
    fn budget_matches_the_reference_model_and_never_overdraws(
        ttl_s in 1u64..=5,
        min_per_second in 0u32..5,
        (percent, deposit, cost) in percents(),
        ops in ops(),
    ) {
        let ttl = Duration::from_secs(ttl_s);
        let t0 = Instant::now();
        let mut budget = RetryBudget::new(settings(ttl, min_per_second, percent), t0);
        let mut model = Model::new(ttl, min_per_second, deposit, cost, t0);
        let mut now = t0;
        let mut first_deposit = None;
        for op in ops {
            match op {
                Op::Advance(step) => now += ms(step),
                Op::Deposit => {
                    budget.deposit(now);
                    model.record(now, model.deposit);
                    first_deposit.get_or_insert(now);
                }
                Op::Withdraw => {
                    let affordable = model.balance(now) >= model.cost;
                    prop_assert_eq!(budget.available(now) >= 1, affordable);
                    prop_assert_eq!(budget.try_withdraw(now), affordable);
                    if affordable {
                        model.record(now, -model.cost);
                        prop_assert!(budget.balance(now) >= 0, "a withdrawal overdrew");
                    }
                }
            }
            prop_assert_eq!(budget.balance(now), model.balance(now));
            // Debt needs expired credit: until the first deposit is ttl old, no negative balance.
            if first_deposit.is_none_or(|first| now - first < ttl) {
                prop_assert!(budget.balance(now) >= 0);
            }
        }
    }
}

// ===== BudgetTree =====

fn tight(t0: Instant, tree: &mut BudgetTree) -> BudgetId {
    tree.add_root(settings(ms(1000), 2, 0.0), t0)
}

fn generous() -> BudgetSettings {
    settings(ms(1000), 100, 1.0)
}

#[test]
fn tight_root_caps_a_generous_child() {
    let t0 = Instant::now();
    let mut tree = BudgetTree::new();
    let root = tight(t0, &mut tree);
    let child = tree.add_child(root, generous(), t0);
    assert_eq!(tree.available(child, t0), 2);
    let granted = (0..50).filter(|_| tree.try_withdraw(child, t0)).count();
    assert_eq!(granted, 2);
}

#[test]
fn siblings_share_their_roots_budget() {
    let t0 = Instant::now();
    let mut tree = BudgetTree::new();
    let root = tight(t0, &mut tree);
    let a = tree.add_child(root, generous(), t0);
    let b = tree.add_child(root, generous(), t0);
    assert!(tree.try_withdraw(a, t0));
    assert!(tree.try_withdraw(b, t0));
    assert!(!tree.try_withdraw(a, t0));
    assert!(!tree.try_withdraw(b, t0));
}

#[test]
fn callers_with_the_same_id_share_one_budget() {
    let t0 = Instant::now();
    let mut tree = BudgetTree::new();
    let shared = tree.add_root(settings(ms(1000), 3, 0.0), t0);
    let (first_supervisor, second_supervisor) = (shared, shared);
    assert!(tree.try_withdraw(first_supervisor, t0));
    assert!(tree.try_withdraw(second_supervisor, t0));
    assert!(tree.try_withdraw(first_supervisor, t0));
    assert!(!tree.try_withdraw(second_supervisor, t0));
}

fn balances(tree: &BudgetTree, ids: &[BudgetId], now: Instant) -> Vec<i64> {
    ids.iter().map(|&id| tree.budget(id).balance(now)).collect()
}

#[test]
fn refused_withdrawal_leaves_every_level_unchanged() {
    let t0 = Instant::now();
    let mut tree = BudgetTree::new();
    // Refused by the root: the child and middle could pay.
    let root = tight(t0, &mut tree);
    let middle = tree.add_child(root, generous(), t0);
    let leaf = tree.add_child(middle, generous(), t0);
    let ids = [root, middle, leaf];
    while tree.try_withdraw(leaf, t0) {}
    let before = balances(&tree, &ids, t0);
    assert!(!tree.try_withdraw(leaf, t0));
    assert_eq!(balances(&tree, &ids, t0), before);

    // Refused by the leaf: the ancestors could pay.
    let mut tree = BudgetTree::new();
    let root = tree.add_root(generous(), t0);
    let leaf = tree.add_child(root, settings(ms(1000), 0, 1.0), t0);
    let before = balances(&tree, &[root, leaf], t0);
    assert!(!tree.try_withdraw(leaf, t0));
    assert_eq!(balances(&tree, &[root, leaf], t0), before);
}

#[test]
fn deposits_reach_every_ancestor_but_no_descendant() {
    let t0 = Instant::now();
    let mut tree = BudgetTree::new();
    let root = tree.add_root(settings(ms(1000), 0, 1.0), t0);
    let middle = tree.add_child(root, settings(ms(1000), 0, 1.0), t0);
    let leaf = tree.add_child(middle, settings(ms(1000), 0, 1.0), t0);
    let sibling = tree.add_child(root, settings(ms(1000), 0, 1.0), t0);
    tree.deposit(leaf, t0);
    tree.deposit(middle, t0);
    let ids = [root, middle, leaf, sibling];
    let deposit = RetryBudget::SCALE;
    assert_eq!(
        balances(&tree, &ids, t0),
        [2 * deposit, 2 * deposit, deposit, 0]
    );
    assert_eq!(tree.available(sibling, t0), 0);
    assert!(tree.try_withdraw(leaf, t0));
    assert_eq!(balances(&tree, &ids, t0), [deposit, deposit, 0, 0]);
}

proptest! {
    #[test]
    fn tree_withdrawal_is_all_or_nothing(
        ops in prop::collection::vec((0usize..4, any::<bool>(), 0u64..400), 0..200),
        mins in prop::collection::vec(0u32..4, 4),
    ) {
        let t0 = Instant::now();
        let mut tree = BudgetTree::new();
        let root = tree.add_root(settings(ms(1000), mins[0], 0.5), t0);
        let left = tree.add_child(root, settings(ms(2000), mins[1], 1.0), t0);
        let right = tree.add_child(root, settings(ms(1000), mins[2], 0.25), t0);
        let leaf = tree.add_child(left, settings(ms(1000), mins[3], 2.0), t0);
        let ids = [root, left, right, leaf];
        let mut now = t0;
        for (node, deposit, step) in ops {
            now += ms(step);
            let id = ids[node];
            if deposit {
                tree.deposit(id, now);
                continue;
            }
            let path: Vec<usize> = std::iter::successors(Some(id), |&i| tree.parent(i))
                .map(|i| ids.iter().position(|&x| x == i).unwrap())
                .collect();
            let before = balances(&tree, &ids, now);
            let expected = tree.available(id, now) >= 1;
            prop_assert_eq!(tree.try_withdraw(id, now), expected);
            let after = balances(&tree, &ids, now);
            for (i, (b, a)) in before.iter().zip(&after).enumerate() {
                if expected && path.contains(&i) {
                    prop_assert!(a < b && *a >= 0, "level {} went {} -> {}", i, b, a);
                } else {
                    prop_assert_eq!(a, b, "level {} changed", i);
                }
            }
        }
    }
}

// ===== Finagle's vectors =====

/// Finagle's `RetryBudgetTest` ("percentCanRetry"): 10 000 deposits, no reserve, then withdraw
/// until refused. Every percent is scaled by 1000, so 0.75 allows 7500 retries, not 10 000.
#[test]
fn percent_can_retry_is_scaled_not_rounded_to_a_whole_cost() {
    const DEPOSITS: u32 = 10_000;
    for (percent, expected) in [(0.75, 7500u32), (0.99, 9900), (0.999, 9990), (0.1, 1000)] {
        let t0 = Instant::now();
        let mut budget = RetryBudget::new(settings(ms(1000), 0, percent), t0);
        for _ in 0..DEPOSITS {
            budget.deposit(t0);
        }
        let available = budget.available(t0);
        let mut withdrawn = 0u32;
        while budget.try_withdraw(t0) {
            withdrawn += 1;
        }
        assert!(
            withdrawn.abs_diff(expected) <= 1,
            "retry_percent {percent}: {withdrawn} withdrawals, expected {expected} ± 1"
        );
        assert_eq!(available, u64::from(withdrawn), "retry_percent {percent}");
    }
}

/// A percent above 1 lets each request pay for several retries (`2.0`: two per request).
#[test]
fn percent_above_one_allows_several_retries_per_request() {
    let t0 = Instant::now();
    for (percent, per_request) in [(2.0, 2u32), (3.0, 3), (1000.0, 1000)] {
        let mut budget = RetryBudget::new(settings(ms(1000), 0, percent), t0);
        for _ in 0..10 {
            budget.deposit(t0);
        }
        let withdrawn = std::iter::from_fn(|| budget.try_withdraw(t0).then_some(())).count();
        assert_eq!(
            withdrawn as u32,
            10 * per_request,
            "retry_percent {percent}"
        );
    }
}

/// The reserve is `min_per_second × ttl` retries whatever the percent (it is scaled like a
/// retry's cost, so a fractional percent does not shrink or grow it).
#[test]
fn reserve_is_whole_retries_at_any_percent() {
    let t0 = Instant::now();
    for percent in [0.0, 0.001, 0.2, 0.75, 1.0, 2.0, 1000.0] {
        let mut budget = RetryBudget::new(settings(ms(3000), 7, percent), t0);
        assert_eq!(budget.available(t0), 21, "retry_percent {percent}");
        let withdrawn = std::iter::from_fn(|| budget.try_withdraw(t0).then_some(())).count();
        assert_eq!(withdrawn, 21, "retry_percent {percent}");
    }
}
