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

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
sys.path.insert(0, HERE)
from make_graph_golden import save_safetensors  # noqa: E402
from make_onnx_norms import export_both  # noqa: E402


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
export_both(net, x, "upsample_cnn", tensors)
xg = x.clone().requires_grad_(True)
(net(xg) * w).sum().backward()
tensors["grad"] = xg.grad
save_safetensors(tensors, os.path.join(OUT, "onnx_upsample.safetensors"), {"generator": "Tests/Fixtures/make_onnx_upsample.py"})
print("wrote upsample_cnn_{torchscript,dynamo}.onnx and onnx_upsample.safetensors")
