#!/usr/bin/env python3
"""Regression-adjusted Shapley estimates (Witter, Liu & Musco 2025, "Regression-adjusted Monte Carlo
Estimators for Shapley Values and Probabilistic Values", arXiv 2506.11849) on the image problem of
`prism-bench shap --curves DIR`: does a surrogate fitted to the sampled coalitions, whose Shapley
values are exact, cut Kernel SHAP's error at equal budget on this game?

    prism-bench shap --curves DIR --model cnn.safetensors --budgets 9-9 --curve-seeds 1   (problems, references)
    python3 Benchmarks/peers/shap_regression_adjusted.py DIR [--budgets 512,2048] [--seeds 2]

Coalitions: paired leverage sampling (size uniform over 1…M − 1, then a uniform coalition of that
size and its complement), weight kernel(s) / q(s). Estimators on the same coalitions and values:
- kernel: the efficiency-constrained weighted least squares (Kernel / Leverage SHAP);
- adjusted: φ = φ(g) + kernel(v − g), g a surrogate of the game with exact Shapley values, fitted
  on the other folds' coalitions (cross-fitting, out-of-fold residuals) or on all of them (folds 1):
  - trees: gradient-boosted regression trees over the 0/1 coalition vector (depth, count, rate 0.1,
    all outputs at once); a leaf reached by z_A = 1, z_B = 0 adds c·(a−1)!b!/(a+b)! to each i in A
    and −c·a!(b−1)!/(a+b)! to each j in B (the leaf's unanimity-style game);
  - quadratic: v ≈ a + Σ b_i z_i + Σ c_ij z_i z_j over neighbouring superpixels (4- or 8-neighbours on
    the 7 × 7 grid), weighted ridge; φ_i = b_i + Σ_j c_ij / 2.
Error ‖φ − φ_ref‖ / ‖φ_ref‖ against the folder's 2^16-coalition reference, mean over instances × seeds.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shap_curves import load_model  # noqa: E402
from safetensors.numpy import load_file as load_numpy  # noqa: E402
from sklearn.tree import DecisionTreeRegressor  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--budgets", default="512,2048")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(os.path.join(args.folder, "image-model.safetensors"))
    data = load_numpy(os.path.join(args.folder, "image.safetensors"))
    inst, bg, ref = data["instances"], data["background"], data["reference"].astype(np.float64)
    width = int(np.prod(inst.shape[1:]))
    group = data["groups"].astype(np.int64)
    m = int(group.max()) + 1
    side = int(round(m ** 0.5))
    bgt = torch.from_numpy(bg.reshape(len(bg), width))

    def game(x, z):
        z = torch.from_numpy(np.asarray(z, dtype=np.float32))
        out = []
        with torch.no_grad():
            for i in range(0, len(z), 100):
                mask = z[i:i + 100][:, group].unsqueeze(1)
                rows = mask * x + (1 - mask) * bgt.unsqueeze(0)
                out.append(model(rows.reshape((-1,) + inst.shape[1:])).reshape(len(mask), len(bgt), -1).mean(1))
        return torch.cat(out).double().numpy()

    def sample(budget, rng):
        z = np.zeros((budget // 2 * 2, m), np.uint8)
        for p in range(budget // 2):
            z[2 * p, rng.permutation(m)[:rng.integers(1, m)]] = 1
            z[2 * p + 1] = 1 - z[2 * p]
        s = z.sum(1)
        return z, 1.0 / (s * (m - s))

    def kernel(z, w, y, v0, d):
        x = z[:, :-1].astype(float) - z[:, -1:].astype(float)
        t = y - v0 - z[:, -1:] * d
        beta = np.linalg.solve((x * w[:, None]).T @ x, (x * w[:, None]).T @ t)
        return np.vstack([beta, d - beta.sum(0)])

    class Trees:
        def __init__(self, depth, count):
            self.depth, self.count, self.rate = depth, count, 0.1

        def fit(self, z, y, w):
            self.base = y.mean(0)
            r = y - self.base
            self.trees = []
            for _ in range(self.count):
                t = DecisionTreeRegressor(max_depth=self.depth, min_samples_leaf=5).fit(z, r, sample_weight=w)
                self.trees.append(t)
                r = r - self.rate * t.predict(z).reshape(r.shape)
            return self

        def predict(self, z):
            return self.base + sum(self.rate * t.predict(z).reshape(len(z), -1) for t in self.trees)

        def shapley(self, outputs):
            phi = np.zeros((m, outputs))
            for tree in self.trees:
                t = tree.tree_

                def walk(node, a, b):
                    if t.children_left[node] < 0:
                        c = self.rate * t.value[node].reshape(-1)
                        if a or b:
                            for i in a:
                                phi[i] += c * math.factorial(len(a) - 1) * math.factorial(len(b)) / math.factorial(len(a) + len(b))
                            for j in b:
                                phi[j] -= c * math.factorial(len(a)) * math.factorial(len(b) - 1) / math.factorial(len(a) + len(b))
                        return
                    f = t.feature[node]  # left: z_f = 0
                    walk(t.children_left[node], a, b + [f])
                    walk(t.children_right[node], a + [f], b)
                walk(0, [], [])
            return phi

    class Quadratic:
        def __init__(self, diagonals, ridge):
            self.edges = []
            for r in range(side):
                for c in range(side):
                    for rr, cc in [(r, c + 1), (r + 1, c)] + ([(r + 1, c + 1), (r + 1, c - 1)] if diagonals else []):
                        if 0 <= rr < side and 0 <= cc < side:
                            self.edges.append((r * side + c, rr * side + cc))
            self.ridge = ridge

        def features(self, z):
            z = z.astype(float)
            return np.hstack([np.ones((len(z), 1)), z, np.stack([z[:, i] * z[:, j] for i, j in self.edges], 1)])

        def fit(self, z, y, w):
            f = self.features(z)
            a = (f * w[:, None]).T @ f
            a += self.ridge * np.trace(a) / len(a) * np.diag(np.r_[0, np.ones(len(a) - 1)])
            self.coef = np.linalg.solve(a, (f * w[:, None]).T @ y)
            return self

        def predict(self, z):
            return self.features(z) @ self.coef

        def shapley(self, outputs):
            phi = self.coef[1:m + 1].copy()
            for e, (i, j) in enumerate(self.edges):
                phi[i] += self.coef[m + 1 + e] / 2
                phi[j] += self.coef[m + 1 + e] / 2
            return phi

    def adjusted(z, w, y, v0, vall, d, rng, make, folds):
        ones, zeros = np.ones((1, m)), np.zeros((1, m))
        heavy = w.max() * 10  # the endpoints, fitted (nearly) exactly
        pairs = np.array_split(rng.permutation(len(z) // 2), folds)
        fitted, phis, f0, fall = np.zeros_like(y), [], [], []
        for k in range(folds):
            use = np.concatenate([np.r_[2 * p, 2 * p + 1] for p in pairs[k]])
            fit = use if folds == 1 else np.concatenate([np.r_[2 * p, 2 * p + 1] for j, part in enumerate(pairs) if j != k for p in part])
            g = make().fit(np.vstack([z[fit], ones, zeros]), np.vstack([y[fit], vall, v0]), np.r_[w[fit], heavy, heavy])
            fitted[use] = g.predict(z[use])
            phis.append(g.shapley(y.shape[1]))
            f0.append(g.predict(zeros)[0])
            fall.append(g.predict(ones)[0])
        f0, fall = np.mean(f0, 0), np.mean(fall, 0)
        return np.mean(phis, 0) + kernel(z, w, y - fitted, v0 - f0, d - (fall - f0))

    estimators = {
        "trees depth 3 × 50, all coalitions": (lambda: Trees(3, 50), 1),
        "trees depth 3 × 50, 2 folds": (lambda: Trees(3, 50), 2),
        "trees depth 3 × 50, 5 folds": (lambda: Trees(3, 50), 5),
        "trees depth 2 × 100, 10 folds": (lambda: Trees(2, 100), 10),
        "quadratic 4-neighbours, ridge 0.01, 5 folds": (lambda: Quadratic(False, 0.01), 5),
        "quadratic 8-neighbours, ridge 0.1, 5 folds": (lambda: Quadratic(True, 0.1), 5),
    }
    for budget in (int(b) for b in args.budgets.split(",")):
        errors = {"kernel": []}
        errors.update({name: [] for name in estimators})
        for i in range(len(inst)):
            x = torch.from_numpy(inst[i].reshape(1, width))
            r = ref[i].reshape(m, -1)
            v0, vall = game(x, np.zeros((1, m)))[0], game(x, np.ones((1, m)))[0]
            for seed in range(args.seeds):
                rng = np.random.default_rng(100 * seed + i)
                z, w = sample(budget, rng)
                y = game(x, z)
                error = lambda phi: np.linalg.norm(phi - r) / np.linalg.norm(r)  # noqa: E731
                errors["kernel"].append(error(kernel(z, w, y, v0, vall - v0)))
                for name, (make, folds) in estimators.items():
                    errors[name].append(error(adjusted(z, w, y, v0, vall, vall - v0, rng, make, folds)))
        for name, values in errors.items():
            print(f"budget {budget:6d}  {name:45s} {100 * np.mean(values):6.2f}%", flush=True)


if __name__ == "__main__":
    main()
