#!/usr/bin/env python3
"""Writes the Kernel SHAP parity fixture of an imported ONNX model: a PyTorch MLP with Tanh and
Sigmoid exported to ONNX, and shap.KernelExplainer's values for it at full enumeration.

onnx/shap_mlp.onnx — nn.Sequential(Linear(12, 16), Tanh(), Linear(16, 8), Sigmoid(), Linear(8, 3)),
  seeded weights, eval mode, exported by torch.onnx.export(dynamo=False, opset 17) with input
  "input" [batch, 12] (dynamic batch) and output "logits".
onnx/onnx_shap.safetensors — float32 "instances" [2, 12], "background" [10, 12], "shap_values"
  [2, 12, 3] and "expected_value" [3]: shap's KernelExplainer on the same network evaluated in
  float64 on the float32 values, l1_reg=False, nsamples = 2^12 − 2 = 4094 so every coalition is
  enumerated and the answer is deterministic; "logits" [2, 3], onnxruntime's outputs for the
  instances (checked against PyTorch's here).

    python3 Tests/Fixtures/make_onnx_shap.py     (torch 2.15.0, shap 0.51.0, onnxruntime 1.32.0)
"""
import os
import sys

import numpy as np
import onnxruntime as ort
import shap
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
sys.path.insert(0, HERE)
from make_graph_golden import save_safetensors  # noqa: E402

torch.manual_seed(20261203)
net = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 3)).eval()
rng = np.random.default_rng(20261203)
instances = rng.uniform(-2, 2, (2, 12)).astype(np.float32)
background = rng.uniform(-2, 2, (10, 12)).astype(np.float32)

path = os.path.join(OUT, "shap_mlp.onnx")
torch.onnx.export(net, (torch.from_numpy(instances),), path, dynamo=False, opset_version=17, input_names=["input"],
                  output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})

net64 = net.double()


def model(x):
    with torch.no_grad():
        return net64(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


explainer = shap.KernelExplainer(model, background)
values = np.asarray(explainer.shap_values(instances, nsamples=2**12 - 2, l1_reg=False, silent=True))
if values.shape != (2, 12, 3):  # older shap returns one [instances, features] array per output
    values = np.stack(list(values), axis=-1)
expected = np.asarray(explainer.expected_value, dtype=np.float64)
gap = values.sum(axis=1) + expected - model(instances)
assert np.abs(gap).max() < 1e-9, gap

logits = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": instances})[0]
assert np.abs(logits - model(instances)).max() < 1e-5, logits

tensors = {"instances": instances, "background": background, "shap_values": values.astype(np.float32),
           "expected_value": expected.astype(np.float32), "logits": logits.astype(np.float32)}
tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()}
save_safetensors(tensors, os.path.join(OUT, "onnx_shap.safetensors"),
                 {"generator": "Tests/Fixtures/make_onnx_shap.py", "shap": shap.__version__})
print(f"wrote {path} and onnx_shap.safetensors: shap {shap.__version__}, values {values[0, :4, 0]}")
