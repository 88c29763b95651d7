#!/usr/bin/env bash
# PyTorch's word_language_model and iq-tui, both directions, on PTB: a model
# trained in PyTorch is imported (`pretrained: Some("….safetensors")`) and
# evaluated by both; iq-tui quantizes it, `export-model --format torch`
# hands it back, and PyTorch loads and evaluates it. Each pair of test
# perplexities must agree within 0.1 % (scripts/torch_roundtrip.py). Both
# directions run for an untied model and one with tied embeddings.
#
# PyTorch and safetensors are installed from PyPI into VENV (default
# target/bench-venv, the benchmark's environment) when missing. PTB comes
# from IQ_TUI_PTB_DIR, else iq-tui's download cache (`iq-tui fetch-ptb`).
#
#   scripts/torch-roundtrip.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-target/bench-venv}
if ! "$VENV/bin/python" -c "import torch, safetensors" 2>/dev/null; then
    echo "installing PyTorch and safetensors from PyPI into $VENV…" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check torch numpy safetensors
fi
cargo build --release --locked --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/iq-tui
PTB=${IQ_TUI_PTB_DIR:-}
if [ -z "$PTB" ]; then
    "$BIN" fetch-ptb >&2
    PTB=${IQ_TUI_CACHE_DIR:-$HOME/.cache/iq-tui}/ptb
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$VENV/bin/python" scripts/torch_roundtrip.py "$BIN" "$(realpath "$PTB")" "$work"
