#!/usr/bin/env python3
"""Writes the upsampling fixtures of the ONNX import: a small encoder–decoder CNN with a transposed
convolution, nearest and bilinear interpolation and a pad, exported by both of PyTorch's exporters,
onnxruntime's logits and PyTorch's input gradients.

onnx/upsample_cnn_{torchscript,dynamo}.onnx — the eval-mode network below, input "input" [batch, 3, 12, 10]
  (dynamic batch), exported by torch.onnx.export(dynamo=False, opset 17) and (dynamo=True, opset 20):
    down Conv2d(3, 6, 3, stride=2, padding=1), ReLU,                        [6, 6, 5]
    up ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1),    [4, 12, 10]
    nearest F.interpolate(scale_factor=2, mode="nearest"),                  [4, 24, 20]
    and a bilinear branch F.interpolate(up, scale_factor=2, mode="bilinear", align_corners=False),
    added to it, then F.pad((1, 2, 0, 1), value=0.5),                       [4, 25, 23]
    AdaptiveAvgPool2d(1), flatten, fc Linear(4, 5)
  with seeded weights.
onnx/onnx_upsample.safetensors — float32 "x" [3, 3, 12, 10] (seeded randn), "logits_torchscript",
  "logits_dynamo" [3, 5] (onnxruntime's), "w" [3, 5] (seeded) and "grad" [3, 3, 12, 10], PyTorch's
  d sum(w · logits) / dx.

    python3 Tests/Fixtures/make_onnx_upsample.py     (torch 2.15.0, onnx 1.23.2, onnxscript 0.7.2, onnxruntime 1.32.0)
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
sys.path.insert(0, HERE)
from make_graph_golden import save_safetensors  # noqa: E402


class UpsampleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        u = self.up(torch.relu(self.down(x)))
        y = F.interpolate(u, scale_factor=2, mode="nearest") + F.interpolate(u, scale_factor=2, mode="bilinear", align_corners=False)
        y = F.pad(y, (1, 2, 0, 1), value=0.5)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


torch.manual_seed(20261204)
net = UpsampleCNN().eval()
x = torch.randn(3, 3, 12, 10)
w = torch.randn(3, 5)
tensors = {"x": x, "w": w}
for exporter, dynamo, opset in (("torchscript", False, 17), ("dynamo", True, 20)):
    path = os.path.join(OUT, f"upsample_cnn_{exporter}.onnx")
    if dynamo:
        program = torch.onnx.export(net, (x,), dynamo=True, opset_version=opset, input_names=["input"], output_names=["logits"],
                                    external_data=False, dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
        program.save(path + ".tmp", external_data=False)
        # Without the exporter's per-node stack traces (local paths): the file depends on the network alone.
        exported = onnx.load(path + ".tmp")
        for node in exported.graph.node:
            del node.metadata_props[:]
        onnx.save(exported, path + ".tmp")
    else:
        torch.onnx.export(net, (x,), path + ".tmp", dynamo=False, opset_version=opset, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    os.replace(path + ".tmp", path)
    logits = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    assert np.abs(logits - net(x).detach().numpy()).max() < 1e-5, exporter
    tensors[f"logits_{exporter}"] = torch.from_numpy(logits)
xg = x.clone().requires_grad_(True)
(net(xg) * w).sum().backward()
tensors["grad"] = xg.grad
save_safetensors(tensors, os.path.join(OUT, "onnx_upsample.safetensors"), {"generator": "Tests/Fixtures/make_onnx_upsample.py"})
print("wrote upsample_cnn_{torchscript,dynamo}.onnx and onnx_upsample.safetensors")
