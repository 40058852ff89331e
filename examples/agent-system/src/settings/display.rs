//! `[system]` printed back as TOML (what `check-config` shows).

use super::*;

impl std::fmt::Display for SystemSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "[system]")?;
        writeln!(
            f,
            "duration = \"{}\"",
            humantime::format_duration(self.duration)
        )?;
        writeln!(f, "seed = {}", self.seed)?;
        writeln!(
            f,
            "drain_deadline = \"{}\"",
            humantime::format_duration(self.drain_deadline)
        )?;
        writeln!(
            f,
            "progress_interval = \"{}\"",
            humantime::format_duration(self.progress_interval)
        )?;
        writeln!(f, "\n[system.workload]")?;
        writeln!(f, "rate = {:?}", self.workload.rate)?;
        writeln!(f, "agents = {:?}", self.workload.agents)?;
        writeln!(
            f,
            "task_deadline = \"{}\"",
            humantime::format_duration(self.workload.task_deadline)
        )?;
        writeln!(f, "max_tokens = {}", self.workload.max_tokens)?;
        writeln!(f, "models = {:?}", self.workload.models)?;
        writeln!(f, "\n[system.provider]")?;
        match &self.provider {
            ProviderSettings::Simulated(s) => {
                writeln!(f, "kind = \"simulated\"")?;
                writeln!(
                    f,
                    "median_latency = \"{}\"",
                    humantime::format_duration(s.median_latency)
                )?;
                writeln!(f, "sigma = {:?}", s.sigma)?;
                writeln!(f, "error_rate = {:?}", s.error_rate)?;
                writeln!(f, "rate_limit_rate = {:?}", s.rate_limit_rate)?;
                writeln!(
                    f,
                    "rate_limit_retry_after = \"{}\"",
                    humantime::format_duration(s.rate_limit_retry_after)
                )?;
                let outages: Vec<String> = s
                    .outages
                    .iter()
                    .map(|w| {
                        let model = w
                            .model
                            .as_ref()
                            .map(|m| format!(", model = {m:?}"))
                            .unwrap_or_default();
                        format!(
                            "{{ start = \"{}\", length = \"{}\"{model} }}",
                            humantime::format_duration(w.start),
                            humantime::format_duration(w.length)
                        )
                    })
                    .collect();
                writeln!(f, "outages = [{}]", outages.join(", "))?;
                let spikes: Vec<String> = s
                    .spikes
                    .iter()
                    .map(|sp| {
                        format!(
                            "{{ start = \"{}\", length = \"{}\", factor = {:?} }}",
                            humantime::format_duration(sp.start),
                            humantime::format_duration(sp.length),
                            sp.factor
                        )
                    })
                    .collect();
                writeln!(f, "spikes = [{}]", spikes.join(", "))?;
            }
            ProviderSettings::Http(h) => {
                writeln!(f, "kind = \"http\"")?;
                writeln!(f, "base_url = {:?}", h.base_url)?;
                writeln!(f, "model = {:?}", h.model)?;
                writeln!(f, "api_key_env = {:?}", h.api_key_env)?;
                writeln!(
                    f,
                    "request_timeout = \"{}\"",
                    humantime::format_duration(h.request_timeout)
                )?;
                writeln!(f, "max_body_bytes = {}", h.max_body_bytes)?;
            }
        }
        writeln!(f, "\n[system.exporter]")?;
        writeln!(f, "addr = \"{}\"", self.exporter.addr)?;
        writeln!(
            f,
            "allow_non_loopback = {}",
            self.exporter.allow_non_loopback
        )?;
        writeln!(
            f,
            "linger = \"{}\"",
            humantime::format_duration(self.exporter.linger)
        )
    }
}
