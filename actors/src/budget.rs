//! [`SharedBudget`]: a retry budget that several supervisors share, and that nests.
//!
//! The core's [`BudgetTree`] holds the token buckets; a `SharedBudget` is one node of a tree
//! behind a mutex held for a few arithmetic operations (a deposit per task, a withdrawal per
//! retry). A withdrawal succeeds only if the node **and every ancestor** can afford it, so a
//! flaky subtree cannot spend the whole process's retries and the process-wide cap holds.

use std::sync::{Arc, Mutex};

use ractor_resilience_core::budget::{BudgetId, BudgetSettings, BudgetTree};

use crate::clock;

/// One node of a shared retry-budget tree. Clones share the node.
///
/// ```
/// use std::time::Duration;
/// use ractor_resilience::budget::SharedBudget;
/// use ractor_resilience::core::budget::BudgetSettings;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let root = SharedBudget::new(BudgetSettings::new(Duration::from_secs(1), 0, 1.0).unwrap());
/// let child = root.child(BudgetSettings::default());
/// assert!(!child.try_withdraw(), "the root has nothing yet");
/// child.deposit();
/// assert!(child.try_withdraw(), "the deposit reached the root too");
/// # });
/// ```
#[derive(Clone)]
pub struct SharedBudget {
    tree: Arc<Mutex<BudgetTree>>,
    id: BudgetId,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("id", &self.id)
            .field("available", &self.available())
            .finish()
    }
}

impl SharedBudget {
    /// A new root budget.
    pub fn new(settings: BudgetSettings) -> Self {
        let mut tree = BudgetTree::new();
        let id = tree.add_root(settings, clock::now());
        SharedBudget {
            tree: Arc::new(Mutex::new(tree)),
            id,
        }
    }

    /// A child of this budget: its withdrawals also need this budget (and its ancestors).
    pub fn child(&self, settings: BudgetSettings) -> Self {
        let id = self.lock().add_child(self.id, settings, clock::now());
        SharedBudget {
            tree: self.tree.clone(),
            id,
        }
    }

    /// Credits one task (into this node and every ancestor).
    pub fn deposit(&self) {
        self.lock().deposit(self.id, clock::now());
    }

    /// Spends one retry, if this node and every ancestor can afford it.
    pub fn try_withdraw(&self) -> bool {
        self.lock().try_withdraw(self.id, clock::now())
    }

    /// Retries affordable now (the minimum along the path to the root).
    pub fn available(&self) -> u64 {
        self.lock().available(self.id, clock::now())
    }

    /// The settings of this node.
    pub fn settings(&self) -> BudgetSettings {
        *self.lock().budget(self.id).settings()
    }

    /// Applies new settings to this node in place, keeping its balance (see
    /// [`RetryBudget::reconfigure`](ractor_resilience_core::budget::RetryBudget::reconfigure));
    /// returns whether the balance was kept. Every clone sees the new settings at once; a
    /// withdrawal is judged wholly under the old settings or wholly under the new ones (one
    /// lock).
    ///
    /// ```
    /// use std::time::Duration;
    /// use ractor_resilience::budget::SharedBudget;
    /// use ractor_resilience::core::budget::BudgetSettings;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let budget = SharedBudget::new(BudgetSettings::new(Duration::from_secs(10), 0, 0.5).unwrap());
    /// for _ in 0..10 {
    ///     budget.deposit();
    /// }
    /// assert_eq!(budget.available(), 5);
    /// assert!(budget.reconfigure(BudgetSettings::new(Duration::from_secs(10), 0, 1.0).unwrap()));
    /// assert_eq!(budget.available(), 10, "the deposits are kept, retries got cheaper");
    /// # });
    /// ```
    pub fn reconfigure(&self, settings: BudgetSettings) -> bool {
        self.lock().reconfigure(self.id, settings, clock::now())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetTree> {
        // The tree is consistent after every call (no partial updates), so a poisoned lock is safe to reuse.
        self.tree.lock().unwrap_or_else(|e| e.into_inner())
    }
}
