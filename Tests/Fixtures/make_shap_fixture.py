#!/usr/bin/env python3
"""Writes shap_kernel_mlp.safetensors: shap.KernelExplainer's values for a tiny MLP, for the parity test.

The network is Prism's `mlp` with input [6], one hidden layer of 8 (ReLU) and 3 outputs, i.e.
nn.Sequential(Flatten(), Linear(6, 8), ReLU(), Linear(8, 3)), with seeded weights. shap's
KernelExplainer explains 2 instances against 10 background rows with l1_reg=False and
nsamples = 2^6 - 2 = 62, so every coalition is enumerated and the answer is deterministic.
The file holds the weights under the state-dict names (1.weight, 1.bias, 3.weight, 3.bias),
"instances" [2, 6], "background" [10, 6], "shap_values" [2, 6, 3], "shap_values_num_features_3" [2, 6, 3]
(l1_reg="num_features(3)", same budget) and "expected_value" [3]
(float32; the model runs in float64 on the float32 values). Tests read this file and never need Python.

    python3 Tests/Fixtures/make_shap_fixture.py      (needs numpy, shap and safetensors)
"""
import os

import numpy as np
import shap
from safetensors.numpy import save_file

rng = np.random.default_rng(20261124)
w1 = rng.normal(0, 0.6, (8, 6)).astype(np.float32)
b1 = rng.normal(0, 0.3, 8).astype(np.float32)
w2 = rng.normal(0, 0.6, (3, 8)).astype(np.float32)
b2 = rng.normal(0, 0.3, 3).astype(np.float32)
instances = rng.uniform(-2, 2, (2, 6)).astype(np.float32)
background = rng.uniform(-2, 2, (10, 6)).astype(np.float32)


def model(x):
    h = np.maximum(0, x.astype(np.float64) @ w1.T.astype(np.float64) + b1)
    return h @ w2.T.astype(np.float64) + b2


def explain(l1_reg):
    v = np.asarray(explainer.shap_values(instances, nsamples=2**6 - 2, l1_reg=l1_reg, silent=True))
    if v.shape != (2, 6, 3):  # older shap returns one [instances, features] array per output
        v = np.stack(list(v), axis=-1)
    return v


explainer = shap.KernelExplainer(model, background)
values = explain(False)
# Feature selection: per output, LARS picks 3 features on shap's augmented problem, the rest get 0.
selected = explain("num_features(3)")
assert (np.count_nonzero(selected, axis=1) == 3).all(), selected
expected = np.asarray(explainer.expected_value, dtype=np.float64)
gap = values.sum(axis=1) + expected - model(instances)
assert np.abs(gap).max() < 1e-9, gap

tensors = {"1.weight": w1, "1.bias": b1, "3.weight": w2, "3.bias": b2, "instances": instances,
           "background": background, "shap_values": values.astype(np.float32),
           "shap_values_num_features_3": selected.astype(np.float32),
           "expected_value": expected.astype(np.float32)}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shap_kernel_mlp.safetensors")
save_file(tensors, out, metadata={"generator": "Tests/Fixtures/make_shap_fixture.py", "shap": shap.__version__})
print(f"wrote {out}: shap {shap.__version__}, values {values.reshape(2, -1)[0, :6]}")
