#!/usr/bin/env bash
# Records the sweep the explorer's screen tests draw from
# (tests/fixtures/sweeps/recorded/): a real headless sweep of
# tests/fixtures/sweeps/seeds.ron on the built-in kernels, one cell at a
# time, killed once its last cell has started, so the fixture holds
# finished cells and a stopped one. To keep it small, each cell keeps the
# records the explorer reads (no weight snapshots, no histograms or density
# grids, and per-step progress only where the cell has not finished). Needs jq. Review the snapshots afterwards
# (`cargo insta review`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=runs/sweep-fixture
rm -rf "$out"
IQ_TUI_GEMM=builtin target/release/iq-tui sweep tests/fixtures/sweeps/seeds.ron \
    --headless --jobs 1 --threads 1 --out "$out" >/dev/null 2>&1 &
pid=$!
until [ -f "$out"/cells/c003-bits2-seed2/events.jsonl ]; do sleep 0.05; done
sleep 0.5
kill -KILL "$pid"
# the cell's process stops once it sees its parent gone, and lets go of its lock
until flock -n "$out"/cells/c003-bits2-seed2/lock true; do sleep 0.1; done
dest=tests/fixtures/sweeps/recorded
rm -rf "$dest"
mkdir -p "$dest"
cp "$out"/sweep.json "$dest"/
for unit in "$out"/cells/* "$out"/pretrain/*; do
    rel=${unit#"$out"/}
    mkdir -p "$dest/$rel"
    # an unfinished cell keeps its steps: its progress is counted from them
    steps=$([ -f "$unit"/summary.json ] && echo false || echo true)
    jq -c --argjson steps "$steps" \
        'select(.type != "weights" and .type != "pruned" and ($steps or .type != "train_progress"))
        | if .type == "quantized" then .matrices |= map(del(.histogram, .density, .grid, .levels)) else . end' \
        "$unit"/events.jsonl > "$dest/$rel"/events.jsonl
    [ -f "$unit"/summary.json ] && cp "$unit"/summary.json "$dest/$rel"/
done
echo "recorded $dest from $out ($(du -sh "$dest" | cut -f1))"
