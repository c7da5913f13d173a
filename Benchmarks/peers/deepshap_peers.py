#!/usr/bin/env python3
"""shap's DeepExplainer and Captum's DeepLiftShap on the problem `prism-bench shap --deepshap DIR`
writes: the cnn (model.safetensors, loaded into PyTorch), 4 images explained for all 10 outputs
against 50 background images (problem.safetensors). Wall clock per explanation of the 4 (medians
after a warm-up), and each peer's largest difference from Prism's values, written as a peer result
file for `prism-bench shap --deepshap DIR --peer FILE`.

    prism-bench shap --deepshap /tmp/ds
    python3 Benchmarks/peers/deepshap_peers.py /tmp/ds --threads 2 --json deepshap.json [--repeat 5]
    prism-bench shap --deepshap /tmp/ds --peer deepshap.json
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import shap
import torch
from captum.attr import DeepLiftShap
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_load_model import build  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("directory")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    path = os.path.join(args.directory, "model.safetensors")
    with safe_open(path, "pt") as f:
        spec = json.loads(f.metadata()["prism.model"])
    model = build(spec)
    model.load_state_dict(load_file(path))
    model.eval()
    problem = load_file(os.path.join(args.directory, "problem.safetensors"))
    x, background, prism = problem["instances"], problem["background"], problem["values"].numpy()
    scale = np.abs(prism).max()

    def run_shap():
        explainer = shap.DeepExplainer(model, background)
        values = np.asarray(explainer.shap_values(x, check_additivity=False))
        if values.shape[-1] != 10:
            values = np.stack(list(values), axis=-1)
        return values.reshape(4, 784, 10)

    def run_captum():
        explainer = DeepLiftShap(model)
        return np.stack([explainer.attribute(x, baselines=background, target=k).detach().numpy() for k in range(10)],
                        axis=-1).reshape(4, 784, 10)

    results = []
    for library, run in [(f"shap {shap.__version__} DeepExplainer", run_shap), ("captum DeepLiftShap", run_captum)]:
        values = run()
        times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1e3)
        ms = statistics.median(times)
        difference = np.abs(values - prism).max()
        print(f"{library:32s} {ms:10.1f} ms  {4000 / ms:6.2f} explanations/s  max |φ − φ_prism| {difference:.2e} "
              f"({difference / scale:.1e} of max |φ_prism|)", flush=True)
        results.append({"name": "deepshap_cnn", "shape": "N 4, references 50, outputs 10", "median_ms": ms,
                        "min_ms": min(times), "library": library, "max_abs_difference": float(difference)})
    if args.json:
        fastest = min(results, key=lambda r: r["median_ms"])
        doc = {"device": {"name": platform.processor() or platform.machine(), "library": fastest["library"],
                          "threads": torch.get_num_threads()},
               "date": datetime.date.today().isoformat(), "results": [fastest], "all": results}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
