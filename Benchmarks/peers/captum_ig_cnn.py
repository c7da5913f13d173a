#!/usr/bin/env python3
"""Captum's IntegratedGradients on the same problem as `prism explain --method ig`: a model file
written by `prism train` (loaded into PyTorch), the Fashion-MNIST test images Prism explained, their
predicted classes, a zero baseline, the same number of Gauss-Legendre steps. Prints images/s and the
largest difference from Prism's values (both are deterministic, so they should agree to rounding).

    prism explain --model m.safetensors --method ig --index $(seq -s, 0 99) --top 0 --json ig.json
    python3 Benchmarks/peers/captum_ig_cnn.py m.safetensors ig.json [--internal-batch-size 500] [--threads N]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from captum.attr import IntegratedGradients

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_load_model import build  # noqa: E402
from torch_train import load  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("explanation")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--internal-batch-size", type=int, default=500, help="model rows per forward/backward pass")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs (the median is printed)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with safe_open(args.model, "pt") as f:
        spec = json.loads(f.metadata()["prism.model"])
    model = build(spec)
    model.load_state_dict(load_file(args.model))
    model.eval()
    doc = json.load(open(args.explanation))
    method = next((m for m in doc["methods"] if m["method"] == "ig"), None)
    if method is None:
        sys.exit(f"{args.explanation}: no ig explanation")
    settings = method["settings"]
    indices = doc["inputs"]["indices"]
    steps = settings.get("steps", 50)
    rule = settings.get("rule", "gauss-legendre").replace("-", "")
    xte, _ = load("t10k")
    x = xte[indices]
    with torch.no_grad():
        targets = model(x).argmax(1)
    ig = IntegratedGradients(model)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        phi = ig.attribute(x, baselines=torch.zeros_like(x), target=targets, n_steps=steps, method=rule,
                           internal_batch_size=args.internal_batch_size)
        times.append(time.perf_counter() - start)
    seconds = sorted(times)[len(times) // 2]
    import captum
    print(f"captum {captum.__version__} IntegratedGradients: {len(indices)} images, {steps} steps ({rule}), "
          f"internal_batch_size {args.internal_batch_size}: median {seconds:.2f} s over {args.repeat} runs, "
          f"{len(indices) / seconds:.1f} images/s; torch {torch.__version__} with {torch.get_num_threads()} threads")
    prism = np.array(method["values"]["values"]).reshape(len(indices), -1)
    ours = phi.detach().numpy().reshape(len(indices), -1).astype(np.float64)
    scale = np.abs(prism).max()
    print(f"Prism: {len(indices) / method['seconds']:.1f} images/s in the JSON's run; "
          f"largest |captum - prism| / max|prism|: {np.abs(ours - prism).max() / scale:.2e}")


if __name__ == "__main__":
    main()
