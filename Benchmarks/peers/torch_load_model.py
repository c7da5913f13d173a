#!/usr/bin/env python3
"""Loads a model file written by `prism train` into the equivalent PyTorch nn.Sequential (built from
the architecture JSON in the file's metadata, with its input normalization in front when it has one), evaluates it on the Fashion-MNIST test set and prints
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


class PatchEmbedding(nn.Module):
    """Prism's patchEmbedding: a stride-p convolution, a class token in front, learned positions."""

    def __init__(self, channels, patch, dim, tokens):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, dim))

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        o = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(o.transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(nn.functional.gelu(self.fc1(x)))


class Block(nn.Module):
    """Prism's transformerBlock (pre-norm, timm's parameter names)."""

    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ClassToken(nn.Module):
    def forward(self, x):
        return x[:, 0]


class NormalizedSequential(nn.Sequential):
    """nn.Sequential that first applies the spec's inputNormalization, (x - mean[c]) / std[c] per
    channel (torchvision's Normalize), from constants that are not part of the state dict."""

    def __init__(self, mean, std, rank, *layers):
        super().__init__(*layers)
        shape = (1, len(mean)) + (1,) * (rank - 1)
        self.register_buffer("input_mean", torch.tensor(mean, dtype=torch.float32).reshape(shape), persistent=False)
        self.register_buffer("input_std", torch.tensor(std, dtype=torch.float32).reshape(shape), persistent=False)

    def forward(self, x):
        return super().forward((x - self.input_mean) / self.input_std)


def build_chain(spec):
    """A format-2 model file whose nodes form a chain (each reads the one before): nn.Sequential with
    the nodes' names, so the state dict's keys (`0.weight`, `fc.bias`) load as they are."""
    from collections import OrderedDict
    modules = OrderedDict()
    for node in spec["nodes"]:
        if node.get("inputs") not in (None, []) and len(node["inputs"]) != 1:
            sys.exit(f"node {node['name']}: not a chain (inputs {node['inputs']})")
        op = node["op"]
        size = lambda key, default=None: node.get(key, default)  # noqa: E731
        if op == "conv2d":
            module = nn.Conv2d(node["in_channels"], node["out_channels"], node["kernel_size"], size("stride", 1), size("padding", 0),
                               size("dilation", 1), size("groups", 1), size("bias", True))
        elif op == "linear":
            module = nn.Linear(node["in_features"], node["out_features"], size("bias", True))
        elif op == "maxpool2d":
            module = nn.MaxPool2d(node["kernel_size"], size("stride"), size("padding", 0), ceil_mode=size("ceil_mode", False))
        elif op == "avgpool2d":
            module = nn.AvgPool2d(node["kernel_size"], size("stride"), size("padding", 0))
        elif op in ("relu", "gelu", "sigmoid", "tanh", "flatten"):
            module = {"relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "flatten": nn.Flatten}[op]()
        elif op == "dropout":
            module = nn.Dropout(size("p", 0.5))
        elif op == "softmax":
            module = nn.Softmax(dim=size("dim", -1))
        else:
            sys.exit(f"node {node['name']}: op {op} is not supported here")
        modules[node["name"]] = module
    norm = spec.get("input_normalization")
    if norm:
        return NormalizedSequential(norm["mean"], norm["std"], len(spec["input_shape"]), *modules.values())
    return nn.Sequential(modules)


def build(spec):
    if spec.get("format") == 2:
        return build_chain(spec)
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
        elif kind == "patchEmbedding":
            p = args["patch"]
            tokens = (args["height"] // p) * (args["width"] // p) + 1
            layers.append(PatchEmbedding(args["channels"], p, args["dim"], tokens))
        elif kind == "transformerBlock":
            layers.append(Block(args["dim"], args["heads"], args["mlpDim"]))
        elif kind == "layerNorm":
            layers.append(nn.LayerNorm(args["dim"]))
        elif kind == "classToken":
            layers.append(ClassToken())
        else:
            sys.exit(f"unknown layer {kind}")
    norm = spec.get("inputNormalization")
    if norm:
        return NormalizedSequential(norm["mean"], norm["std"], len(spec["inputShape"]), *layers)
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
