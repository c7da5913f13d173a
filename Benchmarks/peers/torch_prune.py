#!/usr/bin/env python3
"""The peer of `prism compress prune`: loads a model file written by `prism train` into PyTorch
(torch_load_model.build), prunes it with torch.nn.utils.prune — global_unstructured with
L1Unstructured over every Conv2d and Linear weight, or l1_unstructured per layer — optionally
fine-tunes it (Adam, the pruned weights kept at zero by prune's masks), and prints the Fashion-MNIST
test accuracy before, after pruning and after fine-tuning, the wall-clock seconds, and, given Prism's
pruned file, how many mask entries differ from Prism's.

    python3 Benchmarks/peers/torch_prune.py cnn.safetensors --amount 0.5 --scope global [--prism pruned.safetensors] [--finetune-epochs 1]
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file
from torch.nn.utils import prune

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_load_model import build  # noqa: E402
from torch_train import load  # noqa: E402


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 1000]) for i in range(0, len(y), 1000)])
    return (logits.argmax(1) == y).float().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--amount", type=float, default=0.5)
    ap.add_argument("--scope", choices=["global", "layer"], default="global")
    ap.add_argument("--prism", help="Prism's pruned file (NAME_orig, NAME_mask), to compare the masks")
    ap.add_argument("--finetune-epochs", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with safe_open(args.model, "pt") as f:
        spec = json.loads(f.metadata()["prism.model"])
    model = build(spec)
    model.load_state_dict(load_file(args.model), strict=True)
    x, y = load("t10k")
    print(f"{args.model}: PyTorch {torch.__version__}, {args.threads} threads; accuracy before {accuracy(model, x, y):.4f}")

    named = [(name, module) for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))]
    start = time.perf_counter()
    if args.scope == "global":
        prune.global_unstructured([(m, "weight") for _, m in named], pruning_method=prune.L1Unstructured, amount=args.amount)
    else:
        for _, m in named:
            prune.l1_unstructured(m, "weight", amount=args.amount)
    seconds = time.perf_counter() - start
    zeros = sum(int((m.weight_mask == 0).sum()) for _, m in named)
    total = sum(m.weight_mask.numel() for _, m in named)
    print(f"pruned {zeros} of {total} weights ({100 * zeros / total:.1f}%, {args.scope}) in {seconds * 1e3:.1f} ms; accuracy {accuracy(model, x, y):.4f}")
    for name, m in named:
        z = int((m.weight_mask == 0).sum())
        print(f"  {name}.weight: {z} of {m.weight_mask.numel()} pruned ({100 * z / m.weight_mask.numel():.1f}%)")
    if args.prism:
        theirs = load_file(args.prism)
        differ = sum(int((m.weight_mask != theirs[f"{name}.weight_mask"]).sum()) for name, m in named)
        print(f"mask entries that differ from Prism's ({args.prism}): {differ} of {total}")

    if args.finetune_epochs > 0:
        xt, yt = load("train")
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        loss_fn = nn.CrossEntropyLoss()
        start = time.perf_counter()
        for epoch in range(args.finetune_epochs):
            model.train()
            order = torch.randperm(len(yt))
            for i in range(0, len(yt), args.batch):
                rows = order[i:i + args.batch]
                optimizer.zero_grad()
                loss_fn(model(xt[rows]), yt[rows]).backward()
                optimizer.step()
        seconds = time.perf_counter() - start
        print(f"fine-tuned {args.finetune_epochs} epoch(s) in {seconds:.1f} s; accuracy {accuracy(model, x, y):.4f}; "
              f"pruned weights still zero: {all(bool((m.weight[m.weight_mask == 0] == 0).all()) for _, m in named)}")


if __name__ == "__main__":
    main()
