#!/usr/bin/env bash
# Runs the Penn Treebank experiments of the README's "Reproducing the paper"
# one after another, headless, each into runs/<name>, with a log per run in
# runs/logs/. Pre-training happens once (ptb-small); every quantization run
# starts from its weights. Expect hours on a 2-core machine: run it in the
# background, e.g. `nohup scripts/reproduce-ptb.sh > runs/reproduce.log 2>&1 &`.
# A run whose summary.json exists is skipped, so the script can be restarted.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/iq-tui
mkdir -p runs/logs

run() { # name file [--set …]
    local name=$1 file=$2
    shift 2
    if [ -f "runs/$name/summary.json" ]; then
        echo "skip $name (done)"
        return
    fi
    rm -rf "runs/$name"
    echo "$(date -u +%FT%TZ) start $name"
    "$bin" run "$file" --headless --out "runs/$name" "$@" > "runs/logs/$name.log" 2>&1
    echo "$(date -u +%FT%TZ) done $name"
}

from_small=(--set pretrained=runs/ptb-small --set training.epochs=0)
g=quantization.groups.0

run ptb-small experiments/ptb-small.ron
run ptb-1bit-all experiments/ptb.ron "${from_small[@]}"
run ptb-2bit-all experiments/ptb.ron "${from_small[@]}" --set $g.bits=2
run ptb-3bit-all experiments/ptb.ron "${from_small[@]}" --set $g.bits=3
run ptb-1bit-lstm experiments/ptb.ron "${from_small[@]}" --set $g.matrices=Lstm
run ptb-2bit-all-greedy experiments/ptb.ron "${from_small[@]}" --set $g.bits=2 --set $g.method=Greedy
run ptb-prune-1bit experiments/ptb-prune.ron "${from_small[@]}"
echo "all done; compare runs/*/summary.json"
