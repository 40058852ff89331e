//! Order statistics: per-call percentiles inside a repetition, median / min / max across them.

/// The nearest-rank `q`-quantile of `samples` (reordered in place). `q` in `[0, 1]`.
pub(crate) fn quantile(samples: &mut [u64], q: f64) -> f64 {
    assert!(!samples.is_empty(), "a quantile of no samples");
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    let (_, nth, _) = samples.select_nth_unstable(rank - 1);
    *nth as f64
}

/// What one figure reports: the median of its repetitions, and their range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    /// How many repetitions were summarised.
    pub(crate) reps: usize,
}

/// The median (the mean of the middle two for an even count), min and max of `samples`.
pub(crate) fn summarize(samples: &[f64]) -> Summary {
    assert!(!samples.is_empty(), "a summary of no repetitions");
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Summary {
        median,
        min: sorted[0],
        max: sorted[n - 1],
        reps: n,
    }
}

/// `a[i] / b[i]` for each paired repetition.
pub(crate) fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    assert_eq!(a.len(), b.len(), "paired repetitions");
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), 50.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert_eq!(quantile(&mut v, 1.0), 100.0);
    }

    #[test]
    fn median_min_max() {
        let s = summarize(&[3.0, 1.0, 2.0, 10.0, 5.0]);
        assert_eq!((s.median, s.min, s.max, s.reps), (3.0, 1.0, 10.0, 5));
        assert_eq!(summarize(&[1.0, 2.0, 3.0, 4.0]).median, 2.5);
    }
}
