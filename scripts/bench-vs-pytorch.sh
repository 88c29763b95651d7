#!/usr/bin/env bash
# Training throughput of iq-tui and PyTorch side by side, on this machine.
#
# Both train the same model (vocabulary 10k, embedding = hidden, LSTM layers,
# linear decoder; batch 20, BPTT 35; softmax cross-entropy averaged over the
# segment; global gradient-norm clipping at 0.25; plain SGD; no dropout) on
# random tokens with the same number of threads. Runs alternate between the
# two, configuration by configuration, for ROUNDS rounds; the table gives the
# median over rounds of each run's median step, the ratio (and each round's
# ratio of its back-to-back pair), the matrix-product rate each reaches and
# the best GEMM rate each library reaches on this machine, and the peak
# resident memory of a 2×650 run.
#
# iq-tui runs its products on the backend it measured fastest here (the
# built-in `gemm` crate, OpenBLAS when installed, a CBLAS named by
# IQ_TUI_CBLAS); IQ_TUI_GEMM forces one. The table names the CPU, its vector
# features, the backend chosen, every candidate's GEMM rate and the vector
# kernels that ran, and gives each ratio as a mean with its 95 % interval
# over the rounds (at least five rounds for a claim).
#
# PyTorch is a benchmark dependency only: when missing it is installed from
# PyPI into a virtual environment (VENV, default target/bench-venv; the PyPI
# wheel for Linux pulls CUDA libraries too, about 5 GB, though only the CPU is
# used).
#
#   scripts/bench-vs-pytorch.sh
#   SIZES=2x200 ROUNDS=5 STEPS=20 THREADS=2 scripts/bench-vs-pytorch.sh
#   IQ_TUI_GEMM=builtin scripts/bench-vs-pytorch.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-1x300,2x200,2x650}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-10}
THREADS=${THREADS:-$(nproc)}
VENV=${VENV:-target/bench-venv}

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "installing PyTorch from PyPI into $VENV (benchmark only)…" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check torch numpy
fi
BIN=${IQ_TUI_BIN:-}
if [ -z "$BIN" ]; then
    cargo build --release --locked --quiet
    BIN=${CARGO_TARGET_DIR:-target}/release/iq-tui
fi
export RAYON_NUM_THREADS=$THREADS OMP_NUM_THREADS=$THREADS MKL_NUM_THREADS=$THREADS

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
iq() { "$BIN" bench --steps "$STEPS" --json "$@"; }
torch() { "$VENV/bin/python" scripts/bench_pytorch.py --steps "$STEPS" --threads "$THREADS" "$@"; }
# peak resident set size (kB) of a command, its stdout discarded
peak_kb() {
    python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"
}

echo "$("$VENV/bin/python" -c 'import torch; print("PyTorch", torch.__version__)'), iq-tui $("$BIN" --version | cut -d' ' -f2), $THREADS threads, $ROUNDS rounds of $STEPS steps" >&2
for round in $(seq "$ROUNDS"); do
    for size in ${SIZES//,/ }; do
        # the one that goes first alternates from round to round
        if (( round % 2 )); then
            iq --sizes "$size" >>"$out/iq.jsonl"
            torch --sizes "$size" >>"$out/torch.jsonl"
        else
            torch --sizes "$size" >>"$out/torch.jsonl"
            iq --sizes "$size" >>"$out/iq.jsonl"
        fi
        echo "round $round/$ROUNDS: $size done" >&2
    done
done
iq --gemm-peak >"$out/iq-gemm.json"
torch --gemm-peak >"$out/torch-gemm.json"
mem_iq=$(peak_kb "$BIN" bench --sizes 2x650 --steps 3)
mem_torch=$(peak_kb "$VENV/bin/python" scripts/bench_pytorch.py --sizes 2x650 --steps 3 --threads "$THREADS")

python3 - "$out" "$mem_iq" "$mem_torch" <<'PY'
import json, statistics, sys
out, mem_iq, mem_torch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def load(name):
    runs = {}
    for line in open(f"{out}/{name}.jsonl"):
        r = json.loads(line)
        runs.setdefault((r["layers"], r["hidden"]), []).append(r)
    return runs
iq, torch = load("iq"), load("torch")
cpu = open("/proc/cpuinfo").read()
model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines() if l.startswith("model name")), "?")
flags = next((l.split(":", 1)[1].split() for l in cpu.splitlines() if l.startswith("flags")), [])
vector = [f for f in flags if f.startswith(("avx", "amx")) or f == "fma"]
print(f"CPU: {model}; vector features: {' '.join(vector) or 'none'}")
rates = {}
for line in open(f"{out}/iq-gemm.json"):
    r = json.loads(line)
    rates[r["backend"]] = r["gflops"]
first = next(iter(iq.values()))[0]
backend, kernels = first["backend"], first["kernels"]
peak_iq = rates.get(backend, max(rates.values()))
print("iq-tui GEMM candidates, 1024³: " + ", ".join(
    f"{b} {g:.0f} GFLOP/s{' (chosen)' if b == backend else ''}" for b, g in rates.items()))
print(f"iq-tui vector kernels: {kernels}")
peak_torch = json.load(open(f"{out}/torch-gemm.json"))["gflops"]
def interval(xs):
    # mean and the half-width of its 95 % t-interval
    t = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
    m = statistics.mean(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, t.get(len(xs) - 1, 2.0) * statistics.stdev(xs) / len(xs) ** 0.5
def flops(layers, hidden, vocab=10_000):
    # matrix products of a training step per token: 3 × forward
    return 3 * (2 * 4 * hidden * 2 * hidden * layers + 2 * hidden * vocab)
print(f"GEMM peak, 1024³ single precision: iq-tui ({backend}) {peak_iq:.0f} GFLOP/s, "
      f"PyTorch {peak_torch:.0f} GFLOP/s")
print(f"{'model':>6} {'MFLOP/tok':>9} {'iq-tui tok/s':>13} {'PyTorch tok/s':>14} {'ratio':>6} "
      f"{'iq-tui GFLOP/s (% peak)':>24} {'PyTorch GFLOP/s (% peak)':>25}")
for key in iq:
    a = statistics.median(r["tokens_per_sec"] for r in iq[key])
    b = statistics.median(r["tokens_per_sec"] for r in torch[key])
    f = flops(*key)
    ga, gb = a * f / 1e9, b * f / 1e9
    print(f"{key[0]}x{key[1]:<4} {f / 1e6:>9.1f} {a:>13,.0f} {b:>14,.0f} {a / b:>5.2f}x "
          f"{ga:>14.0f} ({ga / peak_iq:>4.0%})   {gb:>15.0f} ({gb / peak_torch:>4.0%})")
    spread = lambda rs: ", ".join(f"{r['tokens_per_sec']:,.0f}" for r in rs)
    print(f"{'':>6} rounds: iq-tui {spread(iq[key])}; PyTorch {spread(torch[key])}")
    # each round's pair ran back to back, so its ratio is the least
    # disturbed by the machine's drift from minute to minute
    paired = [x["tokens_per_sec"] / y["tokens_per_sec"] for x, y in zip(iq[key], torch[key])]
    mean, half = interval(paired)
    print(f"{'':>6} ratio per round: {', '.join(f'{r:.2f}' for r in paired)} "
          f"(mean {mean:.2f}x ± {half:.2f}, 95 % interval over {len(paired)} rounds)")
print(f"peak resident memory, 2x650 training: iq-tui {mem_iq / 1024:.0f} MB, PyTorch {mem_torch / 1024:.0f} MB")
PY
