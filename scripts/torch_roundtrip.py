"""Both directions between PyTorch's word_language_model and iq-tui, on PTB.

Called by scripts/torch-roundtrip.sh, which passes the iq-tui binary, the
PTB directory and a work directory. The model is the example's RNNModel
('LSTM'), trained here for a few hundred steps so that its perplexity means
something, saved as the example's state dict with safetensors and a
vocab.txt in the example's order (words of train, valid, test in order of
first appearance, <eos> at every line end).

1. PyTorch -> iq-tui: iq-tui starts from the file (`pretrained`), trains
   nothing and reports the full-precision test perplexity; PyTorch computes
   it for the same weights with iq-tui's evaluation (docs/method.md §6:
   eval.batch_size contiguous streams, the last padded, BPTT segments, the
   state carried, every prediction counted once).
2. iq-tui -> PyTorch: iq-tui quantizes that model to 1 bit with retraining,
   `export-model --format torch` writes the final model, PyTorch loads it
   with load_state_dict (strict) and evaluates it the same way.

Both are done twice: for the untied model, saved with `save_file`, and
for one with tied embeddings (the example's `--tied`), saved with
`safetensors.torch.save_model`, which keeps the shared matrix under one
name; iq-tui's export has it under both, as `load_state_dict` wants.

Each agreement must be within 0.1 %; the script exits 1 otherwise.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file, save_model

BPTT, EVAL_BATCH, HIDDEN, LAYERS = 35, 10, 200, 2


class RNNModel(nn.Module):
    """word_language_model's RNNModel, LSTM variant."""

    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.0, tie_weights=False):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        self.nlayers, self.nhid = nlayers, nhid
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        return self.decoder(self.drop(output)), hidden

    def init_hidden(self, bsz):
        z = torch.zeros(self.nlayers, bsz, self.nhid)
        return (z, z.clone())


def read_words(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield from line.split()
            yield "<eos>"


def dictionary(ptb):
    index = {}
    for split in ("train", "valid", "test"):
        for w in read_words(ptb / f"ptb.{split}.txt"):
            index.setdefault(w, len(index))
    return index


def ids(ptb, split, index):
    return torch.tensor([index[w] for w in read_words(ptb / f"ptb.{split}.txt")])


@torch.no_grad()
def perplexity(model, tokens, streams=EVAL_BATCH, bptt=BPTT):
    """iq-tui's evaluation: n - 1 predictions in `streams` contiguous
    streams of ceil((n - 1) / streams) steps, the last padded with ignored
    targets; segments of `bptt` steps; the state carried from zeros."""
    model.eval()
    n = len(tokens) - 1
    length = -(-n // streams)
    inputs = torch.zeros(length * streams, dtype=torch.long)
    targets = torch.full((length * streams,), -100, dtype=torch.long)
    inputs[:n], targets[:n] = tokens[:-1], tokens[1:]
    inputs = inputs.view(streams, length).t()
    targets = targets.view(streams, length).t()
    hidden = model.init_hidden(streams)
    loss = nn.CrossEntropyLoss(reduction="sum", ignore_index=-100)
    total, count = 0.0, 0
    for t in range(0, length, bptt):
        out, hidden = model(inputs[t : t + bptt], hidden)
        y = targets[t : t + bptt].reshape(-1)
        total += loss(out.double().view(-1, out.size(-1)), y).item()
        count += int((y != -100).sum())
    return math.exp(total / count)


def train(model, tokens, steps, batch=20, lr=1.0):
    model.train()
    length = len(tokens) // batch
    data = tokens[: length * batch].view(batch, length).t()
    hidden = model.init_hidden(batch)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(steps):
        t = (step * BPTT) % (length - BPTT - 1)
        x, y = data[t : t + BPTT], data[t + 1 : t + 1 + BPTT]
        hidden = tuple(h.detach() for h in hidden)
        out, hidden = model(x, hidden)
        loss = nn.functional.cross_entropy(out.view(-1, out.size(-1)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()


def experiment(name, pretrained, ptb, quantize, tied):
    quantization = (
        "Some((groups: [(matrices: All, bits: 1, method: Alternating(2))], iterations: 2,"
        " retrain: (length: Steps(200), lr: 0.5, decay: 0.7), baselines: [], loss_every: 50))"
        if quantize
        else "None"
    )
    return f"""Experiment(
    name: "{name}",
    seed: 1,
    data: Ptb(dir: Some("{ptb}")),
    pretrained: Some("{pretrained}"),
    model: (layers: {LAYERS}, hidden: {HIDDEN}, embed: None, dropout: 0.0, init_range: 0.1, tied: {str(tied).lower()}),
    training: (epochs: 0, batch_size: 20, bptt: {BPTT}, lr: 1.0, clip: Some(5.0), loss: SumOverTime),
    eval: (batch_size: {EVAL_BATCH}),
    quantization: {quantization},
)
"""


def run(binary, *args):
    result = subprocess.run([binary, *args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def agree(what, ours, theirs):
    rel = abs(ours / theirs - 1)
    print(f"{what}: iq-tui {ours:.4f}, PyTorch {theirs:.4f}, {100 * rel:.4f} % apart")
    return rel < 1e-3


def round_trip(binary, ptb, work, tied):
    """Both directions for one model; True when both agree."""
    kind = "tied" if tied else "untied"
    work = work / kind
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(1)
    index = dictionary(ptb)
    vocab = sorted(index, key=index.get)
    model = RNNModel(len(vocab), HIDDEN, HIDDEN, LAYERS, tie_weights=tied)
    train(model, ids(ptb, "train", index), steps=300)
    test = ids(ptb, "test", index)
    state_dict = work / "pytorch.safetensors"
    if tied:
        save_model(model, str(state_dict))
    else:
        save_file(model.state_dict(), str(state_dict))
    (work / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    theirs = perplexity(model, test)

    ok = True
    (work / "import.ron").write_text(experiment("import", state_dict, ptb, False, tied))
    run(binary, "run", str(work / "import.ron"), "--headless", "--out", str(work / "import"))
    summary = json.loads((work / "import" / "summary.json").read_text())
    ok &= agree(f"{kind}: PyTorch -> iq-tui, full precision, test", summary["fp"]["test_ppl"], theirs)

    (work / "quantize.ron").write_text(experiment("quantize", state_dict, ptb, True, tied))
    run(binary, "run", str(work / "quantize.ron"), "--headless", "--out", str(work / "quantize"))
    summary = json.loads((work / "quantize" / "summary.json").read_text())
    exported = work / "export" / "model.safetensors"
    exported.parent.mkdir(exist_ok=True)
    print(run(binary, "export-model", str(work / "quantize"), "--format", "torch", "--out", str(exported)).strip())
    back = RNNModel(len(vocab), HIDDEN, HIDDEN, LAYERS, tie_weights=tied)
    back.load_state_dict(load_file(str(exported)))
    exported_vocab = (exported.parent / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert exported_vocab == vocab, "the exported vocabulary is the imported one"
    if tied:
        assert back.decoder.weight is back.encoder.weight, "still tied after loading"
    ok &= agree(f"{kind}: iq-tui -> PyTorch, 1-bit final, test", summary["final"]["test_ppl"], perplexity(back, test))
    signs = {len(torch.unique(row.abs())) for row in back.rnn.weight_hh_l0}
    print(f"{kind}: distinct |w| per row of rnn.weight_hh_l0 after loading: {sorted(signs)}")
    print(f"{kind}: packed {summary['final']['packed_bytes']} bytes")
    return ok


def main():
    binary, ptb, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    ok = True
    for tied in (False, True):
        ok &= round_trip(binary, ptb, work, tied)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
