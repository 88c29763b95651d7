"""PyTorch side of scripts/bench-vs-pytorch.sh: the same training step that
`iq-tui bench` times (embedding -> LSTM layers -> linear decoder, softmax
cross-entropy averaged over the segment's tokens, global gradient-norm
clipping, plain SGD, state carried and detached between segments, no
dropout), on random tokens, printed as one JSON line per configuration.

Also `--gemm-peak`: the best single-precision GEMM rate PyTorch reaches here.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn


class LstmLm(nn.Module):
    def __init__(self, vocab, hidden, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.lstm = nn.LSTM(hidden, hidden, layers)
        self.decoder = nn.Linear(hidden, vocab)
        for p in self.parameters():
            nn.init.uniform_(p, -0.1, 0.1)

    def forward(self, tokens, state):
        out, state = self.lstm(self.embedding(tokens), state)
        return self.decoder(out), state


def training_throughput(layers, hidden, vocab, batch, bptt, steps, lr=0.1, clip=0.25):
    torch.manual_seed(0)
    model = LstmLm(vocab, hidden, layers)
    loss_fn = nn.CrossEntropyLoss()
    zeros = torch.zeros(layers, batch, hidden)
    state = (zeros, zeros.clone())

    def step(state):
        tokens = torch.randint(0, vocab, (bptt, batch))
        targets = torch.randint(0, vocab, (bptt * batch,))
        state = tuple(s.detach() for s in state)
        model.zero_grad(set_to_none=True)
        logits, state = model(tokens, state)
        loss = loss_fn(logits.view(-1, vocab), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(p.grad, alpha=-lr)
        return state

    state = step(state)  # warm-up
    times = []
    for _ in range(max(steps, 1)):
        start = time.perf_counter()
        state = step(state)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "framework": "pytorch",
        "version": torch.__version__,
        "layers": layers,
        "hidden": hidden,
        "vocab": vocab,
        "batch": batch,
        "bptt": bptt,
        "threads": torch.get_num_threads(),
        "tokens_per_sec": batch * bptt / median,
        "step_ms": median * 1e3,
    }


def gemm_peak(size=1024, repeats=20):
    a = torch.rand(size, size)
    b = torch.rand(size, size)
    c = a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=c)
        best = min(best, time.perf_counter() - start)
    return {
        "framework": "pytorch",
        "size": size,
        "threads": torch.get_num_threads(),
        "gflops": 2 * size**3 / best / 1e9,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1x300,2x200,2x650")
    parser.add_argument("--vocab", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--bptt", type=int, default=35)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gemm-peak", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.gemm_peak:
        print(json.dumps(gemm_peak()), flush=True)
        return
    for size in args.sizes.split(","):
        layers, hidden = (int(x) for x in size.split("x"))
        result = training_throughput(
            layers, hidden, args.vocab, args.batch, args.bptt, args.steps
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
