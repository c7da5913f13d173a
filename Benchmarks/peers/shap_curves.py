#!/usr/bin/env python3
"""shap's KernelExplainer and PermutationExplainer on the problems of `prism-bench shap --curves DIR`:
error against model evaluations, for the curves Prism's estimators are drawn with.

    prism-bench shap --curves DIR --model cnn.safetensors      (Prism's points, the problems, the references)
    python3 Benchmarks/peers/shap_curves.py DIR [--budgets 9-12] [--seeds 2] [--threads 2]
    prism-bench shap --curves DIR --plot                        (the SVGs and the equal-error table)

Each problem is the same game as Prism's: the model (loaded into PyTorch from DIR/<problem>-model.safetensors)
on the instance where a feature is present and on each background row where it is hidden, averaged over
the background rows — passed to shap as a function of the 0/1 coalition vector, so shap samples and
solves while the model work is the same. Budgets 2^LO…2^HI coalitions (shap's nsamples / max_evals) and,
for KernelExplainer, its default 2M + 2048; every (problem, explainer, budget, instance, seed) point is
written to DIR/curves-peers.json as soon as it is done, and points already there are skipped (resumable).
Error: ‖φ − φ_ref‖ / ‖φ_ref‖ over all features and classes against DIR/<problem>.safetensors' reference.
"""
import argparse
import datetime
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_load_model import build  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.numpy import load_file as load_numpy  # noqa: E402
from safetensors.torch import load_file  # noqa: E402


def load_model(path):
    with safe_open(path, "pt") as f:
        spec = json.loads(f.metadata()["prism.model"])
    model = build(spec)
    model.load_state_dict(load_file(path))
    model.eval()
    return model


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", help="written by prism-bench shap --curves")
    ap.add_argument("--budgets", default="9-12", help="powers of two LO-HI")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--explainers", default="kernel,permutation")
    ap.add_argument("--rows", type=int, default=5000, help="model rows per forward pass")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    import shap

    lo, hi = (int(v) for v in args.budgets.split("-"))
    library = f"shap {shap.__version__}"
    out_path = os.path.join(args.folder, "curves-peers.json")
    with open(os.path.join(args.folder, "curves.json")) as f:
        prism = json.load(f)
    if os.path.exists(out_path):
        with open(out_path) as f:
            doc = json.load(f)
    else:
        doc = {"device": f"{cpu_name()}, torch {torch.__version__} with {args.threads} threads",
               "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "problems": prism["problems"], "points": []}
    done = {(p["problem"], p["library"], p["estimator"], p["instance"], p["seed"], p["budget"]) for p in doc["points"]}

    def save():
        tmp = out_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
        os.replace(tmp, out_path)

    for problem in prism["problems"]:
        name, m, classes = problem["name"], problem["features"], problem["classes"]
        model = load_model(os.path.join(args.folder, f"{name}-model.safetensors"))
        data = load_numpy(os.path.join(args.folder, f"{name}.safetensors"))
        instances, background, reference = data["instances"], data["background"], data["reference"].astype(np.float64)
        width = int(np.prod(instances.shape[1:]))
        group = data["groups"].astype(np.int64) if "groups" in data else np.arange(width)
        bg = torch.from_numpy(background.reshape(len(background), width))
        n = len(bg)

        for instance in range(problem["instances"]):
            x = torch.from_numpy(instances[instance].reshape(1, width))
            ref = reference[instance]
            counter = {"rows": 0}

            def game(z):
                # v(S) for each 0/1 row z: the model's mean output over the background with S from x.
                z = torch.from_numpy(np.asarray(z, dtype=np.float32))
                out = []
                per = max(1, args.rows // n)
                with torch.no_grad():
                    for i in range(0, len(z), per):
                        mask = z[i:i + per][:, group].unsqueeze(1)              # [s, 1, width]
                        rows = mask * x + (1 - mask) * bg.unsqueeze(0)         # [s, n, width]
                        y = model(rows.reshape((-1,) + instances.shape[1:]))
                        out.append(y.reshape(len(mask), n, -1).mean(1))
                        counter["rows"] += rows.shape[0] * rows.shape[1]
                return torch.cat(out).double().numpy()

            def kernel(budget, seed):
                np.random.seed(seed)
                explainer = shap.KernelExplainer(game, np.zeros((1, m)))
                values = explainer.shap_values(np.ones((1, m)), nsamples=budget, l1_reg=False, silent=True)
                return np.stack(values, -1)[0] if isinstance(values, list) else np.asarray(values)[0]

            def permutation(budget, seed):
                explainer = shap.PermutationExplainer(game, shap.maskers.Independent(np.zeros((1, m)), max_samples=1), seed=seed)
                return np.asarray(explainer(np.ones((1, m)), max_evals=budget, silent=True).values)[0]

            runs = {"kernel": kernel, "permutation": permutation}
            for explainer_name in args.explainers.split(","):
                budgets = [1 << k for k in range(lo, hi + 1)]
                if explainer_name == "kernel":
                    budgets = sorted(set(budgets + [2 * m + 2048]))
                for budget in budgets:
                    for seed in range(1, args.seeds + 1):
                        key = (name, library, explainer_name, instance, seed, budget)
                        if key in done:
                            continue
                        counter["rows"] = 0
                        start = time.perf_counter()
                        phi = runs[explainer_name](budget, seed).reshape(m, classes)
                        seconds = time.perf_counter() - start
                        error = float(np.linalg.norm(phi - ref) / np.linalg.norm(ref))
                        doc["points"].append({"problem": name, "library": library, "estimator": explainer_name, "instance": instance,
                                              "seed": seed, "budget": budget, "evaluations": counter["rows"], "seconds": seconds,
                                              "error": error})
                        save()
                        print(f"{name} {explainer_name} budget {budget} instance {instance} seed {seed}: {counter['rows']} evaluations, "
                              f"{seconds:.2f} s, error {100 * error:.2f}%", flush=True)


if __name__ == "__main__":
    main()
