//! Which exporter addresses count as loopback: `127.0.0.0/8`, `::1` and the IPv4-mapped
//! loopback `::ffff:127.x.y.z` are served without `allow_non_loopback`; anything else is
//! refused by the configuration and by the exporter, with a message naming the full key.
//!
//! In-process, loopback only: the exporter binds port 0 and is stopped with the test's runtime.

use std::net::SocketAddr;

use agent_system::SystemConfig;
use agent_system::exporter::{self, ExporterError};
use metrics_exporter_prometheus::PrometheusBuilder;
use ractor_resilience::config::EnvOverrides;

fn config_with_addr(addr: &str) -> Result<SystemConfig, String> {
    let text = format!(
        r#"
[breakers.llm]
[retry_policies.llm]
[timeouts.llm]
kind = "fixed"
duration = "1s"
[agents.llm_worker]
breaker = "llm"
retry = "llm"
timeout = "llm"
[system.exporter]
addr = "{addr}"
"#
    );
    SystemConfig::from_toml_str_with_env(&text, "addr.toml", &EnvOverrides::none())
        .map_err(|e| e.to_string())
}

#[test]
fn ipv4_mapped_loopback_is_loopback_in_the_configuration() {
    for addr in ["127.0.0.1:9464", "[::1]:9464", "[::ffff:127.0.0.1]:9464"] {
        if let Err(e) = config_with_addr(addr) {
            panic!("{addr} refused: {e}");
        }
    }
    let refused = config_with_addr("[::ffff:10.0.0.1]:9464").unwrap_err();
    assert!(refused.contains("not a loopback address"), "{refused}");
    assert!(
        refused.contains("set system.exporter.allow_non_loopback = true"),
        "the message must name the full key: {refused}"
    );
}

#[tokio::test]
async fn the_exporter_serves_on_ipv4_mapped_loopback_and_refuses_the_rest() {
    let handle = PrometheusBuilder::new().build_recorder().handle();
    let addr: SocketAddr = "[::ffff:127.0.0.1]:0".parse().unwrap();
    let bound = exporter::serve(addr, false, handle.clone(), Vec::new())
        .await
        .unwrap_or_else(|e| panic!("{addr} refused: {e}"));
    assert_ne!(bound.port(), 0);

    let outside: SocketAddr = "[::ffff:10.0.0.1]:0".parse().unwrap();
    match exporter::serve(outside, false, handle, Vec::new()).await {
        Err(e @ ExporterError::NotLoopback(_)) => {
            assert!(
                e.to_string().contains("system.exporter.allow_non_loopback"),
                "{e}"
            );
        }
        other => panic!("expected NotLoopback, got {other:?}"),
    }
}
