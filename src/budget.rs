//! Whether a retry is affordable: Finagle-style retry budgets over a sliding window.
//!
//! # Why budgets and not max retries?
//!
//! A fixed "retry up to 3 times" turns an outage into a load multiplier: when every request
//! fails, every request is sent three times, and a 5-deep stack that retries at each layer sends
//! `3⁵ = 243` requests to the bottom one. A *budget* instead ties retries to traffic: each
//! request [deposits](RetryBudget::deposit) a credit, and a retry must
//! [withdraw](RetryBudget::try_withdraw) one. Retries are then capped at a fixed share of recent
//! requests (`retry_percent`, 20% by default) plus a small floor (`min_per_second`) for clients
//! that send little traffic. When things are healthy, nearly every failure can be retried; during
//! an outage, the load is bounded at `1 + retry_percent` times the requests (plus the floor)
//! instead of `max_attempts` times.
//!
//! Credits expire after about `ttl`, so a budget earned during a healthy hour cannot be spent
//! all at once when the dependency falls over. The accounting follows Finagle's `RetryBudget`
//! and tower's `TpsBudget` (integer tokens, a window of ten `ttl/10` slots, a reserve for the
//! floor), with the time passed in as `now` instead of read from the clock.
//!
//! # Sharing and nesting
//!
//! One [`RetryBudget`] belongs to one owner. To cap retries across a *group* of callers, put the
//! budgets in a [`BudgetTree`]: callers that use the same [`BudgetId`] share that budget, and a
//! child budget can never spend more than its ancestors allow. A supervisor tree can then give
//! each worker pool its own budget under one root that bounds the whole subtree, so that no
//! part of the system can amplify load beyond what the root allows.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ractor_resilience_core::budget::{BudgetSettings, RetryBudget};
//!
//! // 50% of requests may be retried, no floor.
//! let settings = BudgetSettings::new(Duration::from_secs(10), 0, 0.5)?;
//! let t0 = Instant::now();
//! let mut budget = RetryBudget::new(settings, t0);
//!
//! budget.deposit(t0);
//! budget.deposit(t0);
//! assert!(budget.try_withdraw(t0)); // two requests pay for one retry
//! assert!(!budget.try_withdraw(t0));
//! # Ok::<(), ractor_resilience_core::InvalidSettings>(())
//! ```

mod retry_budget;
mod settings;
mod tree;

pub use retry_budget::RetryBudget;
pub use settings::BudgetSettings;
pub use tree::{BudgetId, BudgetTree};
