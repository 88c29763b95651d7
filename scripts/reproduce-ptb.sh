#!/usr/bin/env bash
# Runs the Penn Treebank experiments of the README's "Reproducing the paper",
# headless, each into $RUNS/<name>, with a log per run in $RUNS/logs/.
# Pre-training happens once (ptb-small); every quantization run starts from
# its weights. Expect hours on a 2-core machine: run it in the background,
# e.g. `nohup scripts/reproduce-ptb.sh > runs/reproduce.log 2>&1 &`.
#
# A run whose summary.json exists is skipped; a run that was stopped or
# killed is resumed from its checkpoint, so the script can be restarted.
#
# Environment:
#   RUNS=runs          where the run directories go
#   JOBS=1             quantization runs at a time (each gets 2 threads when > 1)
#   QUICK=1            the short schedule (3 iterations of 300 retraining
#                      steps, fewer baselines): minutes per run instead of an hour
#   IQ_TUI_BIN=...     a built iq-tui to use instead of `cargo build --release`
#   ONLY="a b"         run only these variants (names as below)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
JOBS=${JOBS:-1}
QUICK=${QUICK:-0}
if [ -n "${IQ_TUI_BIN:-}" ]; then
    bin=$IQ_TUI_BIN
else
    cargo build --release --quiet
    bin=target/release/iq-tui
fi
mkdir -p "$RUNS/logs"

run() { # name file [--set …]
    local name=$1 file=$2
    shift 2
    local dir="$RUNS/$name" log="$RUNS/logs/$name.log"
    if [ -f "$dir/summary.json" ]; then
        echo "skip $name (done)"
        return
    fi
    echo "$(date -u +%FT%TZ) start $name"
    if [ -f "$dir/events.jsonl" ]; then
        "$bin" resume "$dir" --headless >> "$log" 2>&1 || true
    else
        rm -rf "$dir"
        "$bin" run "$file" --headless --out "$dir" "$@" > "$log" 2>&1 || true
    fi
    if [ -f "$dir/summary.json" ]; then
        echo "$(date -u +%FT%TZ) done $name"
    else
        echo "$(date -u +%FT%TZ) NOT finished $name (see $log)"
    fi
}

run ptb-small experiments/ptb-small.ron

g=quantization.groups.0
from_small=(--set "pretrained=$RUNS/ptb-small/weights/fp" --set training.epochs=0)
if [ "$QUICK" = 1 ]; then
    from_small+=(--set quantization.iterations=3
        --set 'quantization.retrain.length={"Steps":300}'
        --set quantization.loss_every=50)
    # (values are JSON, without spaces: each variant below is split into words)
    prune_quick=(--set 'pruning.retrain.length={"Steps":400}'
        --set 'pruning.schedule={"Gradual":{"initial":0.0,"every":40,"ramp":0.75}}')
    both=(--set 'quantization.baselines=["Greedy",{"Alternating":2}]')
    alt=(--set 'quantization.baselines=[{"Alternating":2}]')
    greedy=(--set 'quantization.baselines=["Greedy"]')
else
    prune_quick=()
    both=()
    alt=()
    greedy=()
fi

variants=(
    "ptb-1bit-all experiments/ptb.ron ${both[*]:-}"
    "ptb-2bit-all experiments/ptb.ron --set $g.bits=2 ${both[*]:-}"
    "ptb-3bit-all experiments/ptb.ron --set $g.bits=3 ${both[*]:-}"
    "ptb-1bit-lstm experiments/ptb.ron --set $g.matrices=Lstm ${alt[*]:-}"
    "ptb-2bit-all-greedy experiments/ptb.ron --set $g.bits=2 --set $g.method=Greedy ${greedy[*]:-}"
    "ptb-3bit-all-greedy experiments/ptb.ron --set $g.bits=3 --set $g.method=Greedy ${greedy[*]:-}"
    "ptb-prune-1bit experiments/ptb-prune.ron ${prune_quick[*]:-} ${both[*]:-}"
)
# Xu et al.'s table: every method, one-shot (no retraining), at 2, 3, 4 bits.
all_methods='quantization.baselines=["Greedy","Refined",{"Alternating":2},"Uniform"]'
for bits in 2 3 4; do
    variants+=("ptb-oneshot-${bits}bit experiments/ptb.ron --set $g.bits=$bits --set quantization.iterations=0 --set $all_methods")
done
set -f # no globbing: the JSON values hold brackets
for v in "${variants[@]}"; do
    # shellcheck disable=SC2086 # the variant's words are its arguments
    set -- $v
    name=$1 file=$2
    shift 2
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then
        continue
    fi
    if [ "$JOBS" -gt 1 ]; then
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 5; done
        RAYON_NUM_THREADS=2 run "$name" "$file" "${from_small[@]}" "$@" &
    else
        run "$name" "$file" "${from_small[@]}" "$@"
    fi
done
wait
echo "all done; compare with: $bin export $RUNS/ptb-*bit* --to $RUNS/comparison"
