#!/usr/bin/env python3
"""Writes the faithfulness-correlation parity fixture: a small PyTorch CNN exported to ONNX, fixed
attributions, and Quantus's FaithfulnessCorrelation of them with the random subsets it drew.

onnx/quantus_cnn.onnx — nn.Sequential(Conv2d(1, 4, 3), ReLU(), Flatten(), Linear(256, 3)) on [1, 10, 10].
quantus.safetensors — float32 "x" [2, 1, 10, 10], "a" [2, 1, 10, 10] (gradient × input of the
  targets), "y" [2] (the targets), "subsets" [20, 2, 30] (per run and instance, the 30 elements
  Quantus set to the instance's minimum), "scores" [2] (quantus 0.6's FaithfulnessCorrelation with
  nr_runs=20, subset_size=30, perturb_baseline="black", logits, seed 0); "noise" [10, 2, 100] and
  "max_sensitivity" [2] (quantus's MaxSensitivity with nr_samples=10, lower_bound=0.2, gradient ×
  input as explain_func, seed 1: the noise it drew, replayed from the seed, and its scores).

Quantus draws each run's subsets with np.random.choice, then draws (and ignores) uniform baseline
values for the batch; the script replays those draws from the seed to record the subsets, and checks
that its own computation from them equals Quantus's scores.

    python3 Tests/Fixtures/make_quantus_fixture.py     (torch 2.15.0, quantus 0.6.0)
"""
import os
import sys
import warnings

import numpy as np
import quantus
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_graph_golden import save_safetensors  # noqa: E402

warnings.filterwarnings("ignore")
torch.manual_seed(20261204)
net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3)).eval()
rng = np.random.default_rng(20261204)
x = rng.uniform(0, 1, (2, 1, 10, 10)).astype(np.float32)
y = np.array([0, 2])
xt = torch.from_numpy(x).requires_grad_(True)
net(xt)[torch.arange(2), torch.from_numpy(y)].sum().backward()
a = (xt.grad * xt).detach().numpy().astype(np.float32)
torch.onnx.export(net, (torch.from_numpy(x),), os.path.join(HERE, "onnx", "quantus_cnn.onnx"), dynamo=False, opset_version=17,
                  input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})

runs, size = 20, 30
np.random.seed(0)
subsets = []
for _ in range(runs):
    subsets.append(np.stack([np.random.choice(100, size, replace=False) for _ in range(2)]))
    np.random.uniform(0.0, 1.0, size=2)  # the "uniform" baseline Quantus computes and does not use
subsets = np.stack(subsets)
np.random.seed(0)
metric = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=size, perturb_baseline="black", return_aggregate=False,
                                        disable_warnings=True)
scores = np.array(metric(model=net, x_batch=x, y_batch=y, a_batch=a, device="cpu", softmax=False))

# The same from the recorded subsets.
with torch.no_grad():
    fx = net(torch.from_numpy(x)).numpy()[np.arange(2), y]
    mine = []
    for i in range(2):
        drops, sums = [], []
        for r in range(runs):
            xp = x[i].reshape(-1).copy()
            xp[subsets[r, i]] = x[i].min()
            drops.append(fx[i] - net(torch.from_numpy(xp.reshape(1, 1, 10, 10))).numpy()[0, y[i]])
            sums.append(a[i].reshape(-1)[subsets[r, i]].sum())
        mine.append(np.corrcoef(sums, drops)[0, 1])
assert np.abs(np.array(mine) - scores).max() < 1e-5, (mine, scores)

# Max-sensitivity with gradient × input as the explanation, 10 samples of uniform noise in [−0.2, 0.2].
def gradient_times_input(model, inputs, targets, **kwargs):
    xt = torch.tensor(np.asarray(inputs), dtype=torch.float32, requires_grad=True)
    model(xt)[torch.arange(len(xt)), torch.as_tensor(np.asarray(targets))].sum().backward()
    return (xt.grad * xt).detach().numpy()


samples = 10
np.random.seed(1)
noise = np.stack([np.random.uniform(-0.2, 0.2, size=(2, 100)) for _ in range(samples)]).astype(np.float32)
np.random.seed(1)
sensitivity = quantus.MaxSensitivity(nr_samples=samples, lower_bound=0.2, return_aggregate=False, disable_warnings=True)
max_sensitivity = np.array(sensitivity(model=net, x_batch=x, y_batch=y, a_batch=a, device="cpu", explain_func=gradient_times_input))
mine = []
for i in range(2):
    ratios = []
    for s in range(samples):
        xp = (x[i].reshape(-1).astype(np.float64) + noise[s, i].astype(np.float64)).astype(np.float32).reshape(1, 1, 10, 10)
        ap = gradient_times_input(net, xp, [y[i]]).reshape(-1)
        ratios.append(np.linalg.norm(a[i].reshape(-1) - ap) / np.linalg.norm(a[i].reshape(-1)))
    mine.append(max(ratios))
assert np.abs(np.array(mine) - max_sensitivity).max() < 1e-4, (mine, max_sensitivity)

tensors = {"x": x, "a": a, "y": y, "subsets": subsets, "scores": scores, "noise": noise, "max_sensitivity": max_sensitivity}
tensors = {k: torch.from_numpy(np.ascontiguousarray(np.asarray(v, dtype=np.float32))) for k, v in tensors.items()}
save_safetensors(tensors, os.path.join(HERE, "quantus.safetensors"), {"generator": "Tests/Fixtures/make_quantus_fixture.py",
                                                                        "quantus": quantus.__version__})
print(f"wrote quantus_cnn.onnx and quantus.safetensors: quantus {quantus.__version__}, faithfulness correlation {scores}, "
      f"max-sensitivity {max_sensitivity}")
