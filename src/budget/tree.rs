//! [`BudgetTree`]: shared and nested retry budgets.

use std::time::Instant;

use super::{BudgetSettings, RetryBudget};

/// A handle to one budget in a [`BudgetTree`].
///
/// Only meaningful for the tree that returned it. Callers holding the same id share one budget.
///
/// ```
/// use std::time::Instant;
/// use ractor_resilience_core::budget::{BudgetSettings, BudgetTree};
///
/// let t0 = Instant::now();
/// let mut tree = BudgetTree::new();
/// let root = tree.add_root(BudgetSettings::default(), t0);
/// let child = tree.add_child(root, BudgetSettings::default(), t0);
/// assert_ne!(root, child);
/// assert_eq!(tree.parent(child), Some(root));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BudgetId(usize);

/// An arena of [`RetryBudget`]s linked child → parent.
///
/// A [`deposit`](Self::deposit) at a node is a request seen by the node and every ancestor, so
/// it credits all of them. A [`try_withdraw`](Self::try_withdraw) at a node succeeds only if the
/// node *and every ancestor* can afford one retry, and then takes it from all of them; if any
/// of them refuses, none is charged. A child's generous budget is therefore capped by a tight
/// root, and a root bounds the retries of its whole subtree.
///
/// ```
/// use std::time::{Duration, Instant};
/// use ractor_resilience_core::budget::{BudgetSettings, BudgetTree};
///
/// let t0 = Instant::now();
/// let mut tree = BudgetTree::new();
/// // The root allows 2 retries per second, the child 100.
/// let root = tree.add_root(BudgetSettings::new(Duration::from_secs(1), 2, 0.0)?, t0);
/// let child = tree.add_child(root, BudgetSettings::new(Duration::from_secs(1), 100, 0.0)?, t0);
///
/// assert!(tree.try_withdraw(child, t0));
/// assert!(tree.try_withdraw(child, t0));
/// assert!(!tree.try_withdraw(child, t0), "the root is exhausted");
/// assert_eq!(tree.budget(child).available(t0), 98, "the refusal charged nobody");
/// # Ok::<(), ractor_resilience_core::InvalidSettings>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct BudgetTree {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
struct Node {
    budget: RetryBudget,
    parent: Option<BudgetId>,
}

// ===== impl BudgetTree =====

impl BudgetTree {
    /// An empty tree.
    pub const fn new() -> Self {
        Self { nodes: Vec::new() }
    }

    /// Adds a budget with no parent; its window starts at `now`.
    pub fn add_root(&mut self, settings: BudgetSettings, now: Instant) -> BudgetId {
        self.push(settings, None, now)
    }

    /// Adds a budget under `parent`; its window starts at `now`.
    ///
    /// # Panics
    ///
    /// If `parent` does not belong to this tree.
    pub fn add_child(
        &mut self,
        parent: BudgetId,
        settings: BudgetSettings,
        now: Instant,
    ) -> BudgetId {
        assert!(
            parent.0 < self.nodes.len(),
            "{parent:?} is not in this tree"
        );
        self.push(settings, Some(parent), now)
    }

    /// Records a request at `id`: deposits into `id` and every ancestor.
    ///
    /// # Panics
    ///
    /// If `id` does not belong to this tree.
    pub fn deposit(&mut self, id: BudgetId, now: Instant) {
        let mut next = Some(id);
        while let Some(current) = next {
            let node = &mut self.nodes[current.0];
            node.budget.deposit(now);
            next = node.parent;
        }
    }

    /// Takes one retry from `id` and every ancestor if all of them can afford it; otherwise
    /// `false`, and no budget changes.
    ///
    /// # Panics
    ///
    /// If `id` does not belong to this tree.
    pub fn try_withdraw(&mut self, id: BudgetId, now: Instant) -> bool {
        if !self.path(id).all(|node| node.budget.can_withdraw(now)) {
            return false;
        }
        let mut next = Some(id);
        while let Some(current) = next {
            let node = &mut self.nodes[current.0];
            node.budget.withdraw(now);
            next = node.parent;
        }
        true
    }

    /// How many retries in a row `try_withdraw(id, now)` would allow: the smallest
    /// [`available`](RetryBudget::available) on the path from `id` to its root.
    ///
    /// # Panics
    ///
    /// If `id` does not belong to this tree.
    pub fn available(&self, id: BudgetId, now: Instant) -> u64 {
        self.path(id)
            .map(|node| node.budget.available(now))
            .min()
            .unwrap_or(0)
    }

    /// Applies new settings to the budget at `id` at `now`, keeping its balance (see
    /// [`RetryBudget::reconfigure`]); its place in the tree does not change.
    ///
    /// # Panics
    ///
    /// If `id` does not belong to this tree.
    pub fn reconfigure(&mut self, id: BudgetId, settings: BudgetSettings, now: Instant) -> bool {
        self.nodes[id.0].budget.reconfigure(settings, now)
    }

    /// The budget at `id` alone (for gauges and settings), ignoring its ancestors.
    ///
    /// # Panics
    ///
    /// If `id` does not belong to this tree.
    pub fn budget(&self, id: BudgetId) -> &RetryBudget {
        &self.nodes[id.0].budget
    }

    /// The parent of `id`, or `None` for a root.
    ///
    /// # Panics
    ///
    /// If `id` does not belong to this tree.
    pub fn parent(&self, id: BudgetId) -> Option<BudgetId> {
        self.nodes[id.0].parent
    }

    /// The number of budgets in the tree.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree has no budget.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn push(
        &mut self,
        settings: BudgetSettings,
        parent: Option<BudgetId>,
        now: Instant,
    ) -> BudgetId {
        let id = BudgetId(self.nodes.len());
        self.nodes.push(Node {
            budget: RetryBudget::new(settings, now),
            parent,
        });
        id
    }

    /// `id`'s node, then its parent's, up to the root. Parents are always added before their
    /// children, so the walk ends.
    fn path(&self, id: BudgetId) -> impl Iterator<Item = &Node> {
        let mut next = Some(id);
        std::iter::from_fn(move || {
            let node = &self.nodes[next?.0];
            next = node.parent;
            Some(node)
        })
    }
}
