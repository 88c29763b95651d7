#!/usr/bin/env bash
# Records the run the dashboard's screen tests draw from
# (tests/fixtures/runs/smoke/): a real headless run of experiments/smoke.ron
# on the built-in kernels and two threads. Run it after a change to the event
# format, then review the snapshots (`cargo insta review`, or
# INSTA_UPDATE=always cargo test --test dashboard_screens and `git diff`).
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/smoke
rm -rf "$out"
IQ_TUI_GEMM=builtin RAYON_NUM_THREADS=2 cargo run --release --quiet -- \
    run experiments/smoke.ron --headless --out "$out" >/dev/null
mkdir -p tests/fixtures/runs/smoke
cp "$out"/events.jsonl "$out"/summary.json "$out"/experiment.ron tests/fixtures/runs/smoke/
echo "recorded tests/fixtures/runs/smoke from $out"
