#!/usr/bin/env python3
"""Loads a model file written by `prism train` into the equivalent PyTorch nn.Sequential (built from
the architecture JSON in the file's metadata), evaluates it on the Fashion-MNIST test set and prints
its accuracy and the logits of the first test images, to compare with `prism eval` / `prism predict`.

    python3 Benchmarks/peers/torch_load_model.py out/cnn.safetensors [--count 3]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import load  # noqa: E402  (the same IDX reader as the training peer)


def build(spec):
    layers = []
    for layer in spec["layers"]:
        (kind, args), = layer.items() if isinstance(layer, dict) else ((layer, {}),)
        if kind == "conv2d":
            layers.append(nn.Conv2d(args["inChannels"], args["outChannels"], args["kernel"], args["stride"], args["padding"]))
        elif kind == "linear":
            layers.append(nn.Linear(args["inFeatures"], args["outFeatures"]))
        elif kind == "maxPool2d":
            layers.append(nn.MaxPool2d(args["kernel"], args["stride"]))
        elif kind == "avgPool2d":
            layers.append(nn.AvgPool2d(args["kernel"], args["stride"]))
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "gelu":
            layers.append(nn.GELU())
        elif kind == "flatten":
            layers.append(nn.Flatten())
        elif kind == "dropout":
            layers.append(nn.Dropout(args["probability"]))
        elif kind == "softmax":
            layers.append(nn.Softmax(dim=-1))
        else:
            sys.exit(f"unknown layer {kind}")
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--count", type=int, default=3)
    args = ap.parse_args()
    with safe_open(args.model, "pt") as f:
        spec = json.loads(f.metadata()["prism.model"])
    model = build(spec)
    model.load_state_dict(load_file(args.model), strict=True)
    model.eval()
    x, y = load("t10k")
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 1000]) for i in range(0, len(y), 1000)])
    accuracy = (logits.argmax(1) == y).float().mean().item()
    print(f"{args.model}: PyTorch {torch.__version__} accuracy {accuracy:.4f} over {len(y)} test images")
    probabilities = logits.softmax(1)
    for i in range(args.count):
        top = probabilities[i].topk(3)
        print(f"example {i}: true class {y[i].item()}; top " +
              ", ".join(f"{c.item()} {p.item():.4f}" for p, c in zip(top.values, top.indices)))


if __name__ == "__main__":
    main()
