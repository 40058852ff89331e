#!/usr/bin/env bash
# Checks the agent system's exposition with the real Prometheus tools:
#  (a) `promtool check metrics` on a scrape of the running binary must exit 0;
#  (b) a real Prometheus server on loopback scrapes the binary, and its HTTP API must return
#      `resilience_tasks_total` series.
# Everything is bounded in time and runs on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

work=$(mktemp -d)
app_port=19464
prom_port=19090
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cargo build -q -p agent-system  # the debug build the tests already made
./target/debug/agent-system --log-level warn run --duration 40s \
  --metrics-addr "127.0.0.1:${app_port}" >"$work/app.out" 2>"$work/app.err" &
pids+=($!)

# Wait for the exporter (at most 20 s), then for traffic and the outage's transitions.
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${app_port}/health" >/dev/null 2>&1 && break
  sleep 0.2
done
sleep 12

echo "promtool check metrics:"
curl -fsS "http://127.0.0.1:${app_port}/metrics" >"$work/metrics.txt"
promtool check metrics <"$work/metrics.txt"
echo "promtool: ok ($(grep -c '^resilience_' "$work/metrics.txt") series)"

cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: agent-system
    static_configs:
      - targets: ["127.0.0.1:${app_port}"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:${prom_port}" >"$work/prom.log" 2>&1 &
pids+=($!)

found=""
for _ in $(seq 1 60); do
  sleep 0.5
  answer=$(curl -fsS "http://127.0.0.1:${prom_port}/api/v1/query?query=resilience_tasks_total" 2>/dev/null || true)
  if echo "$answer" | grep -q '"__name__":"resilience_tasks_total"'; then
    found="$answer"
    break
  fi
done
if [ -z "$found" ]; then
  echo "Prometheus did not return resilience_tasks_total; its log:" >&2
  tail -20 "$work/prom.log" >&2
  exit 1
fi
echo "prometheus query resilience_tasks_total: $(echo "$found" | grep -o '"outcome":"[a-z_]*"' | sort -u | tr '\n' ' ')"
