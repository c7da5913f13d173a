#!/usr/bin/env python3
"""PyTorch (CPU) training the reference CNN on Fashion-MNIST exactly as `prism train` does:
Conv(1->32, 3x3)+ReLU, MaxPool 2, Conv(32->64, 3x3)+ReLU, MaxPool 2, Flatten, Linear(1600->128)+ReLU,
Linear(128->10); Adam 1e-3, batch 64, cross-entropy, pixels scaled to [0, 1] and (with --normalize
dataset, the default, as `prism train`) normalized by the training set's mean and standard deviation,
reshuffled each epoch.
Prints, per epoch, train loss, test accuracy and training images/s, and writes the same figures as JSON.

    python3 Benchmarks/peers/torch_train.py [--epochs 5] [--limit N] [--threads N] [--normalize dataset|none] [--json torch_train.json]
"""
import argparse
import json
import time

import torch
import torch.nn as nn

from fashion_mnist import arrays


def load(split, limit=None):
    x, y = arrays(split, limit)
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--normalize", choices=["dataset", "none"], default="dataset")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    xtr, ytr = load("train", args.limit)
    xte, yte = load("t10k")
    if args.normalize == "dataset":
        # Population mean and standard deviation of the training pixels, in float64 (as prism train).
        pixels = xtr.double()
        mean, std = pixels.mean().item(), pixels.std(unbiased=False).item()
        xtr, xte = (xtr - mean) / std, (xte - mean) / std
        print(f"inputs normalized by mean {mean:.4f}, std {std:.4f}", flush=True)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(ytr))
        start = time.perf_counter()
        total = 0.0
        for i in range(0, len(ytr), args.batch):
            idx_ = order[i:i + args.batch]
            loss = nn.functional.cross_entropy(model(xtr[idx_]), ytr[idx_])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx_)
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            correct = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, len(yte), 1000))
        row = {"epoch": epoch, "train_loss": total / len(ytr), "test_accuracy": correct / len(yte),
               "examples_per_second": len(ytr) / seconds, "seconds": seconds}
        epochs.append(row)
        print(f"epoch {epoch}: train loss {row['train_loss']:.4f}  test acc {row['test_accuracy']:.4f}  "
              f"{row['examples_per_second']:.0f} img/s  {seconds:.1f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"library": f"torch {torch.__version__}", "threads": torch.get_num_threads(), "epochs": epochs}, f, indent=2)


if __name__ == "__main__":
    main()
