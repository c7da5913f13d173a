#!/usr/bin/env python3
"""The PyTorch peer of `prism compress prune --structure filters` and `prism compress distill` on a
chain model written by `prism train` (the reference cnn), on Fashion-MNIST, same threads.

filters: L2-norm filter pruning by hand (torch has no structured pruning that removes channels): in
every Conv2d and hidden Linear layer the `amount` fraction of output channels whose weights and bias
have the smallest 2-norm in the original model is removed, with the next layer's input channels (a Linear after a flatten
loses each channel's block of H*W columns); then Adam fine-tuning. With --prism, Prism's pruned file
is compared tensor by tensor (the same channels kept gives identical tensors).

distill: Hinton's loss, alpha*T^2*kl_div(log_softmax(s/T), softmax(t/T), batchmean) +
(1 - alpha)*cross_entropy(s, y), the teacher's logits computed per batch under no_grad; the student
built from a Prism model file's architecture (e.g. the student `prism compress distill --width 0.5`
wrote) with PyTorch's default initialization; Adam.

    python3 Benchmarks/peers/torch_compress.py filters cnn.safetensors --amount 0.5 [--prism out/model.safetensors] [--finetune-epochs 1]
    python3 Benchmarks/peers/torch_compress.py distill cnn.safetensors --student out/model.safetensors [--epochs 5] [--alpha 0.7] [--temperature 4]
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_load_model import build  # noqa: E402
from torch_prune import accuracy  # noqa: E402
from torch_train import load  # noqa: E402


def spec_of(path):
    with safe_open(path, "pt") as f:
        return json.loads(f.metadata()["prism.model"])


def load_model(path):
    model = build(spec_of(path))
    model.load_state_dict(load_file(path), strict=True)
    return model


def layers(model):
    """(name, module) of the chain's Conv2d and Linear layers, in order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def prune_filters(model, amount):
    """Every layer's filters scored on the original weights first (Li et al.'s independent pruning, as
    Prism scores them), then removed."""
    named = layers(model)
    keeps = []
    for name, m in named[:-1]:
        w = m.weight.detach()
        squares = w.reshape(w.shape[0], -1).pow(2).sum(1) + (m.bias.detach().pow(2) if m.bias is not None else 0)
        n = w.shape[0]
        removed = min(round(amount * n), n - 1)  # Python's round: halves to even, as Prism
        order = sorted(range(n), key=lambda c: (squares[c].item(), c))
        keeps.append(torch.tensor(sorted(order[removed:])))
    for k, ((name, m), keep) in enumerate(zip(named[:-1], keeps)):
        n = m.weight.shape[0]
        with torch.no_grad():
            m.weight = nn.Parameter(m.weight[keep].clone())
            if m.bias is not None:
                m.bias = nn.Parameter(m.bias[keep].clone())
            if isinstance(m, nn.Conv2d):
                m.out_channels = len(keep)
            else:
                m.out_features = len(keep)
            _, nxt = named[k + 1]
            if isinstance(nxt, nn.Conv2d):
                nxt.weight = nn.Parameter(nxt.weight[:, keep].clone())
                nxt.in_channels = len(keep)
            else:
                block = nxt.weight.shape[1] // n  # H*W columns per channel after a flatten (1 after a Linear)
                columns = (keep[:, None] * block + torch.arange(block)[None, :]).reshape(-1)
                nxt.weight = nn.Parameter(nxt.weight[:, columns].clone())
                nxt.in_features = len(columns)
    return model


def train(model, xt, yt, x, y, epochs, lr, batch, loss_of, label):
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    total = 0.0
    for epoch in range(epochs):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(yt))
        for i in range(0, len(yt), batch):
            rows = order[i:i + batch]
            optimizer.zero_grad()
            loss_of(model, xt[rows], yt[rows]).backward()
            optimizer.step()
        seconds = time.perf_counter() - start
        total += seconds
        print(f"{label} epoch {epoch + 1}/{epochs}: {seconds:.1f} s, test accuracy {accuracy(model, x, y):.4f}", flush=True)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["filters", "distill"])
    ap.add_argument("model", help="the original (filters) or the teacher (distill): a prism model file")
    ap.add_argument("--amount", type=float, default=0.5)
    ap.add_argument("--prism", help="filters: Prism's pruned model file, compared tensor by tensor")
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--student", help="distill: a Prism model file whose architecture the student takes")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--temperature", type=float, default=4)
    ap.add_argument("--alpha", type=float, default=0.7)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, y = load("t10k")
    xt, yt = load("train")
    original = load_model(args.model)
    print(f"{args.model}: PyTorch {torch.__version__}, {args.threads} threads; test accuracy {accuracy(original, x, y):.4f}, "
          f"{sum(p.numel() for p in original.parameters())} parameters", flush=True)
    if args.command == "filters":
        start = time.perf_counter()
        pruned = prune_filters(original, args.amount)
        print(f"pruned {args.amount:.0%} of each layer's filters in {1e3 * (time.perf_counter() - start):.1f} ms: "
              f"{sum(p.numel() for p in pruned.parameters())} parameters; test accuracy {accuracy(pruned, x, y):.4f}", flush=True)
        if args.prism:
            theirs = load_file(args.prism)
            mine = pruned.state_dict()
            same = sorted(mine) == sorted(theirs) and all(mine[k].shape == theirs[k].shape and torch.equal(mine[k], theirs[k]) for k in mine)
            print(f"tensors identical to Prism's ({args.prism}): {same}", flush=True)
        seconds = train(pruned, xt, yt, x, y, args.finetune_epochs, args.lr or 1e-4, args.batch,
                        lambda m, a, b: F.cross_entropy(m(a), b), "fine-tune")
        print(f"fine-tuned {args.finetune_epochs} epoch(s) in {seconds:.1f} s; test accuracy {accuracy(pruned, x, y):.4f}")
    else:
        teacher = original.eval()
        student = build(spec_of(args.student))
        T, alpha = args.temperature, args.alpha

        def loss_of(m, a, b):
            s = m(a)
            if alpha == 0:
                return F.cross_entropy(s, b)
            with torch.no_grad():
                t = teacher(a)
            soft = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T
            return alpha * soft + (1 - alpha) * F.cross_entropy(s, b)

        print(f"student: {sum(p.numel() for p in student.parameters())} parameters; T {T}, alpha {alpha}", flush=True)
        seconds = train(student, xt, yt, x, y, args.epochs, args.lr or 1e-3, args.batch, loss_of, "student")
        print(f"trained the student {args.epochs} epoch(s) in {seconds:.1f} s; test accuracy {accuracy(student, x, y):.4f}")


if __name__ == "__main__":
    main()
