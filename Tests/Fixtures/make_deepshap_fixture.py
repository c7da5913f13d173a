#!/usr/bin/env python3
"""Writes the DeepSHAP parity fixture: two small PyTorch CNNs exported to ONNX, with shap's
DeepExplainer and Captum's DeepLiftShap values for them.

onnx/deepshap_cnn.onnx — nn.Sequential(Conv2d(1, 4, 3), ReLU(), MaxPool2d(2), Conv2d(4, 6, 3, padding=1),
  ReLU(), Flatten(), Linear(96, 3)) on [1, 10, 10], seeded weights, eval mode.
onnx/deepshap_twice.onnx — the same layers, but one ReLU module called after both convolutions (and
  AvgPool2d(2) in place of the max pooling): shap's DeepExplainer and Captum keep one input per
  module for their backward hooks, so a module used twice gets the wrong one (the fixture records
  what each does).
onnx/deepshap.safetensors — float32 "instances" [2, 1, 10, 10], "background" [20, 1, 10, 10];
  "cnn_shap" [2, 1, 10, 10, 3] (shap.DeepExplainer), "cnn_captum" (Captum's DeepLiftShap, the same
  layout), "cnn_expected" [3] (shap's expected_value), "cnn_logits" [2, 3]; "twice_logits" [2, 3] and
  "twice_expected" [3] (the mean logits over the background) of the second network. Metadata:
  "captum_cnn_gap", the largest |Σφ − (f(x) − E f(background))| of Captum's values on the first
  network, and "shap_twice", "captum_twice": what each peer does on the second (the exception it
  raises, or its additivity gap).

    python3 Tests/Fixtures/make_deepshap_fixture.py     (torch 2.15.0, shap 0.51.0, captum 0.9.0)
"""
import os
import sys

import numpy as np
import shap
import torch
import torch.nn as nn
from captum.attr import DeepLiftShap

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
sys.path.insert(0, HERE)
from make_graph_golden import save_safetensors  # noqa: E402


class Twice(nn.Module):
    """Conv, ReLU, AvgPool, Conv, the same ReLU module again, Flatten, Linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.relu = nn.ReLU()
        self.pool = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(96, 3)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.relu(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


torch.manual_seed(20261204)
cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                    nn.Flatten(), nn.Linear(96, 3)).eval()
twice = Twice().eval()
rng = np.random.default_rng(20261204)
instances = rng.uniform(0, 1, (2, 1, 10, 10)).astype(np.float32)
background = rng.uniform(0, 1, (20, 1, 10, 10)).astype(np.float32)
x, bg = torch.from_numpy(instances), torch.from_numpy(background)

for name, net in [("deepshap_cnn", cnn), ("deepshap_twice", twice)]:
    torch.onnx.export(net, (x,), os.path.join(OUT, name + ".onnx"), dynamo=False, opset_version=17, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})


def deep_shap(net, check):
    explainer = shap.DeepExplainer(net, bg)
    values = np.asarray(explainer.shap_values(x, check_additivity=check))
    if values.shape != (2, 1, 10, 10, 3):  # older shap returns one array per output
        values = np.stack(list(values), axis=-1)
    return values, np.asarray(explainer.expected_value, dtype=np.float64)


def logits(net, inputs):
    with torch.no_grad():
        return net(inputs).double().numpy()


cnn_shap, cnn_expected = deep_shap(cnn, True)
gap = cnn_shap.reshape(2, 100, 3).sum(axis=1) + cnn_expected - logits(cnn, x)
assert np.abs(gap).max() < 1e-4, gap
captum = np.stack([DeepLiftShap(cnn).attribute(x, baselines=bg, target=k).detach().numpy() for k in range(3)], axis=-1)
captum_gap = captum.reshape(2, 100, 3).sum(axis=1) + cnn_expected - logits(cnn, x)


def failure(run):
    """The exception a peer raises on the network whose ReLU module is used twice, or its additivity gap."""
    try:
        values, expected = run()
    except Exception as error:  # noqa: BLE001 - recorded, not handled
        return f"{type(error).__name__}: {error}"
    return f"additivity gap {np.abs(values.reshape(2, 100, 3).sum(axis=1) + expected - logits(twice, x)).max():.3g}"


shap_twice = failure(lambda: deep_shap(twice, False))
captum_twice = failure(lambda: (np.stack([DeepLiftShap(twice).attribute(x, baselines=bg, target=k).detach().numpy()
                                          for k in range(3)], axis=-1), logits(twice, bg).mean(axis=0)))

tensors = {"instances": instances, "background": background, "cnn_shap": cnn_shap, "cnn_captum": captum,
           "cnn_expected": cnn_expected, "cnn_logits": logits(cnn, x), "twice_logits": logits(twice, x),
           "twice_expected": logits(twice, bg).mean(axis=0)}
tensors = {k: torch.from_numpy(np.ascontiguousarray(np.asarray(v, dtype=np.float32))) for k, v in tensors.items()}
save_safetensors(tensors, os.path.join(OUT, "deepshap.safetensors"),
                 {"generator": "Tests/Fixtures/make_deepshap_fixture.py", "shap": shap.__version__,
                  "captum_cnn_gap": f"{np.abs(captum_gap).max():.3g}", "shap_twice": shap_twice, "captum_twice": captum_twice})
print(f"wrote deepshap_cnn.onnx, deepshap_twice.onnx, deepshap.safetensors: shap {shap.__version__}; on the cnn shap's "
      f"additivity gap {np.abs(gap).max():.2e}, Captum's {np.abs(captum_gap).max():.2e} (Captum − shap up to "
      f"{np.abs(captum - cnn_shap).max():.2e}, shap's values up to {np.abs(cnn_shap).max():.2e}); on the network with a "
      f"ReLU used twice: shap: {shap_twice}; Captum: {captum_twice}")
