//! The simulated LLM provider: lognormal latency, random 500s and 429s (with `Retry-After`),
//! outage windows during which it fails fast, and latency spikes.
//!
//! Every random choice is a pure function of `(seed, task id, attempt)`, so a request's fate
//! does not depend on the order in which concurrent requests happen to be served: with the same
//! seed, `simulate` produces the same report byte for byte.

use std::time::Duration;

use ractor_resilience::task::TaskContext;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;

use super::{Completion, CompletionRequest, ProviderError};
use crate::settings::SimulatedSettings;

/// How long a request to a provider in an outage takes to fail (a refused connection).
const OUTAGE_LATENCY: Duration = Duration::from_millis(5);

/// The simulated provider.
#[derive(Debug, Clone)]
pub struct SimulatedProvider {
    settings: SimulatedSettings,
    seed: u64,
    /// Time zero of the outage and spike windows.
    start: Instant,
}

impl SimulatedProvider {
    /// A provider whose windows count from `start`.
    pub fn new(settings: SimulatedSettings, seed: u64, start: Instant) -> Self {
        SimulatedProvider {
            settings,
            seed,
            start,
        }
    }

    /// Serves one request: waits its latency (or until cancelled) and answers.
    pub async fn complete(
        &self,
        req: &CompletionRequest,
        ctx: &TaskContext,
    ) -> Result<Completion, ProviderError> {
        let elapsed = self.start.elapsed();
        let s = &self.settings;
        let mut rng = SmallRng::seed_from_u64(mix(self.seed, ctx.id.0, u64::from(ctx.attempt)));
        let model = req.model.as_deref();
        if s.outages.iter().any(|w| w.hits(elapsed, model)) {
            sleep_or_cancel(OUTAGE_LATENCY, ctx).await;
            return Err(ProviderError::Outage);
        }
        let spike = s
            .spikes
            .iter()
            .filter(|sp| elapsed >= sp.start && elapsed < sp.start + sp.length)
            .map(|sp| sp.factor)
            .fold(1.0, f64::max);
        let latency =
            s.median_latency.as_secs_f64() * (s.sigma * standard_normal(&mut rng)).exp() * spike;
        let latency = Duration::from_secs_f64(latency.min(3600.0));
        let roll: f64 = rng.random();
        sleep_or_cancel(latency, ctx).await;
        if roll < s.error_rate {
            Err(ProviderError::Server {
                status: 500,
                message: "simulated internal error".into(),
            })
        } else if roll < s.error_rate + s.rate_limit_rate {
            Err(ProviderError::RateLimited {
                retry_after: Some(s.rate_limit_retry_after),
            })
        } else {
            let tokens = req.max_tokens.min(16 + (rng.random::<u32>() % 64));
            Ok(Completion {
                text: format!("simulated answer to {} chars", req.prompt.len()),
                tokens,
            })
        }
    }
}

async fn sleep_or_cancel(d: Duration, ctx: &TaskContext) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = ctx.cancel().cancelled() => {}
    }
}

/// SplitMix64-style mixing of the three inputs into one seed.
fn mix(seed: u64, id: u64, attempt: u64) -> u64 {
    let mut z =
        seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ attempt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Box–Muller.
fn standard_normal(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Window;
    use ractor_resilience::task::{CancellationToken, TaskId};

    fn ctx(id: u64, attempt: u32) -> TaskContext {
        TaskContext::new(TaskId(id), attempt, None, CancellationToken::new(), true)
    }

    #[tokio::test(start_paused = true)]
    async fn fails_fast_during_an_outage_and_recovers_after() {
        let settings = SimulatedSettings {
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            outages: vec![Window {
                start: Duration::from_secs(1),
                length: Duration::from_secs(1),
                model: None,
            }],
            spikes: vec![],
            ..SimulatedSettings::default()
        };
        let p = SimulatedProvider::new(settings, 1, Instant::now());
        let req = CompletionRequest {
            prompt: "hi".into(),
            max_tokens: 8,
            model: None,
        };
        assert!(p.complete(&req, &ctx(1, 1)).await.is_ok());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = Instant::now();
        assert_eq!(
            p.complete(&req, &ctx(2, 1)).await,
            Err(ProviderError::Outage)
        );
        assert_eq!(t.elapsed(), OUTAGE_LATENCY);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(p.complete(&req, &ctx(3, 1)).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_of_one_model_leaves_the_others_serving() {
        let settings = SimulatedSettings {
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            outages: vec![Window {
                start: Duration::ZERO,
                length: Duration::from_secs(10),
                model: Some("model-b".into()),
            }],
            spikes: vec![],
            ..SimulatedSettings::default()
        };
        let p = SimulatedProvider::new(settings, 1, Instant::now());
        let req = |model: Option<&str>| CompletionRequest {
            prompt: "hi".into(),
            max_tokens: 8,
            model: model.map(Into::into),
        };
        assert_eq!(
            p.complete(&req(Some("model-b")), &ctx(1, 1)).await,
            Err(ProviderError::Outage)
        );
        assert!(p.complete(&req(Some("model-a")), &ctx(2, 1)).await.is_ok());
        assert!(p.complete(&req(None), &ctx(3, 1)).await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_seed_task_and_attempt_give_the_same_answer_and_latency() {
        let p = SimulatedProvider::new(
            SimulatedSettings {
                outages: vec![],
                spikes: vec![],
                ..SimulatedSettings::default()
            },
            9,
            Instant::now(),
        );
        let req = CompletionRequest {
            prompt: "hi".into(),
            max_tokens: 64,
            model: None,
        };
        let mut runs = Vec::new();
        for _ in 0..2 {
            let t = Instant::now();
            let r = p.complete(&req, &ctx(77, 2)).await;
            runs.push((r, t.elapsed()));
        }
        assert_eq!(runs[0], runs[1]);
    }

    #[tokio::test(start_paused = true)]
    async fn error_and_rate_limit_rates_are_respected() {
        let settings = SimulatedSettings {
            error_rate: 0.2,
            rate_limit_rate: 0.1,
            outages: vec![],
            spikes: vec![],
            ..SimulatedSettings::default()
        };
        let p = SimulatedProvider::new(settings, 3, Instant::now());
        let req = CompletionRequest {
            prompt: "x".into(),
            max_tokens: 8,
            model: None,
        };
        let (mut errors, mut limited) = (0, 0);
        let n = 4000;
        for id in 0..n {
            match p.complete(&req, &ctx(id, 1)).await {
                Err(ProviderError::Server { .. }) => errors += 1,
                Err(ProviderError::RateLimited { retry_after }) => {
                    assert_eq!(retry_after, Some(Duration::from_secs(1)));
                    limited += 1
                }
                _ => {}
            }
        }
        let (e, l) = (f64::from(errors) / n as f64, f64::from(limited) / n as f64);
        assert!((e - 0.2).abs() < 0.03, "{e}");
        assert!((l - 0.1).abs() < 0.03, "{l}");
    }
}
