#!/usr/bin/env python3
"""shap and Captum on Prism's tabular SHAP problem: the 30-feature MLP, one instance, 100 background
rows and a high-precision reference, as written by

    prism-bench shap --problem DIR              (Prism's own estimators on it, with their errors)
    python3 Benchmarks/peers/shap_tabular.py DIR [--seeds 5] [--threads N] [--json peers.json]

Runs, each over --seeds seeds: shap's KernelExplainer (nsamples 2048, l1_reg off), shap's
PermutationExplainer (max_evals 500, shap's default, and 2000) with an Independent masker over all
100 background rows, and Captum's KernelShap (2048 samples, perturbations_per_eval 2048, one
target class at a time) whose baseline is a single row: the background mean — Captum has no
background average, so its game differs for a non-linear model and its error says so. Prints the
median seconds per explanation (both classes) and the mean relative error ‖φ − φ_ref‖ / ‖φ_ref‖
over all features and classes against the reference, and writes prism-bench's JSON shape.
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
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_load_model import build  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("problem", help="folder written by prism-bench shap --problem")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import shap
    import captum
    from captum.attr import KernelShap

    path = os.path.join(args.problem, "mlp.safetensors")
    with safe_open(path, "pt") as f:
        spec = json.loads(f.metadata()["prism.model"])
    model = build(spec)
    model.load_state_dict(load_file(path))
    model.eval()
    with open(os.path.join(args.problem, "problem.json")) as f:
        problem = json.load(f)
    x = np.asarray(problem["instance"], dtype=np.float32)[None, :]
    background = np.asarray(problem["background"], dtype=np.float32)
    m, classes = problem["features"], problem["classes"]
    reference = np.asarray(problem["reference"]).reshape(m, classes)
    norm = np.linalg.norm(reference)

    def f(rows):
        with torch.no_grad():
            return model(torch.from_numpy(np.asarray(rows, dtype=np.float32))).double().numpy()

    def as_matrix(values):
        if isinstance(values, list):  # older shap: one [instances, features] array per output
            return np.stack([np.asarray(a)[0] for a in values], axis=-1).reshape(m, classes)
        v = np.asarray(values)  # [instances, features, outputs]
        return v[0].reshape(m, classes)

    def kernel(seed):
        np.random.seed(seed)
        explainer = shap.KernelExplainer(f, background)
        return as_matrix(explainer.shap_values(x, nsamples=2048, l1_reg=False, silent=True))

    def permutation(evals):
        def run(seed):
            explainer = shap.PermutationExplainer(f, shap.maskers.Independent(background, max_samples=len(background)), seed=seed)
            return as_matrix(explainer(x, max_evals=evals, silent=True).values)
        return run

    captum_baseline = torch.from_numpy(background.mean(axis=0, keepdims=True))
    xt = torch.from_numpy(x)

    def captum_kernel(seed):
        torch.manual_seed(seed)
        ks = KernelShap(model)
        return np.stack([ks.attribute(xt, baselines=captum_baseline, target=c, n_samples=2048,
                                      perturbations_per_eval=2048).detach().double().numpy()[0] for c in range(classes)], axis=-1)

    results = []
    cases = [
        ("shap_tabular_kernel", "M 30, N 100, budget 2048", f"shap {shap.__version__} KernelExplainer", kernel),
        ("shap_tabular_permutation", "M 30, N 100, 8 permutations (max_evals 500)", f"shap {shap.__version__} PermutationExplainer", permutation(500)),
        ("shap_tabular_permutation_32", "M 30, N 100, 32 permutations (max_evals 2000)", f"shap {shap.__version__} PermutationExplainer", permutation(2000)),
        ("shap_tabular_captum_kernel", "M 30, mean baseline, 2048 samples", f"captum {captum.__version__} KernelShap", captum_kernel),
    ]
    for name, shape, library, run in cases:
        run(0)  # warm-up
        seconds, errors = [], []
        for seed in range(1, args.seeds + 1):
            start = time.perf_counter()
            values = run(seed)
            seconds.append(time.perf_counter() - start)
            errors.append(float(np.linalg.norm(values - reference) / norm))
        ms = 1e3 * statistics.median(seconds)
        results.append({"name": name, "shape": shape, "library": library, "median_ms": ms, "min_ms": 1e3 * min(seconds),
                        "runs": len(seconds), "rel_error": statistics.fmean(errors)})
        print(f"{name:32s} {library:38s} {ms:9.1f} ms  error mean {100 * statistics.fmean(errors):.2f}% "
              f"max {100 * max(errors):.2f}%", flush=True)
    if args.json:
        doc = {"device": {"name": platform.processor() or platform.machine(), "library": f"torch {torch.__version__}",
                          "threads": torch.get_num_threads()},
               "date": datetime.date.today().isoformat(), "results": results}
        with open(args.json, "w") as out:
            json.dump(doc, out, indent=2)


if __name__ == "__main__":
    main()
