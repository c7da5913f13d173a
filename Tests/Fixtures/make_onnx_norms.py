#!/usr/bin/env python3
"""Writes the normalization fixtures of the ONNX import: a CNN with InstanceNorm2d and GroupNorm
exported by both of PyTorch's exporters, onnxruntime's logits and PyTorch's input gradients.

onnx/norm_cnn_{torchscript,dynamo}.onnx — the eval-mode network below, input "input" [batch, 3, 9, 11]
  (dynamic batch), exported by torch.onnx.export(dynamo=False, opset 17) and (dynamo=True, opset 20):
    conv1 Conv2d(3, 8, 3, padding=1), inorm InstanceNorm2d(8, affine=True), ReLU,
    conv2 Conv2d(8, 8, 3, stride=2), gnorm GroupNorm(4, 8, eps=1e-3), ReLU,
    AdaptiveAvgPool2d(1), flatten, fc Linear(8, 5)
  with seeded weights and non-trivial affine parameters.
onnx/onnx_norms.safetensors — float32 "x" [3, 3, 9, 11] (seeded randn), "logits_torchscript",
  "logits_dynamo" [3, 5] (onnxruntime's), "w" [3, 5] (seeded) and "grad" [3, 3, 9, 11], PyTorch's
  d sum(w · logits) / dx.

    python3 Tests/Fixtures/make_onnx_norms.py     (torch 2.15.0, onnx 1.23.2, onnxscript 0.7.2, onnxruntime 1.32.0)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper
import onnxruntime as ort
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
sys.path.insert(0, HERE)
from make_graph_golden import save_safetensors  # noqa: E402


class NormCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.inorm = nn.InstanceNorm2d(8, affine=True)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2)
        self.gnorm = nn.GroupNorm(4, 8, eps=1e-3)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.inorm(self.conv1(x)))
        x = torch.relu(self.gnorm(self.conv2(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def export_both(net, x, stem, tensors):
    """Exports `net` as OUT/<stem>_torchscript.onnx (dynamo=False, opset 17) and <stem>_dynamo.onnx
    (dynamo=True, opset 20, weights inside, node metadata stripped: no local paths), both with a
    dynamic batch, and stores onnxruntime's logits for `x` in tensors["logits_<exporter>"]."""
    for exporter, dynamo, opset in (("torchscript", False, 17), ("dynamo", True, 20)):
        path = os.path.join(OUT, f"{stem}_{exporter}.onnx")
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


def group_normalization(tensors):
    """onnx/groupnorm_op.onnx (onnx.helper, opset 18): input [batch, 6, 5] → GroupNormalization(num_groups 3,
    epsilon 1e-3, scale and bias per group as opsets 18–20 define them) → Flatten → Gemm to 4 outputs;
    "gn_x" [3, 6, 5] and onnxruntime's "gn_logits" [3, 4] go into tensors."""
    rng = np.random.default_rng(20261203)
    init = [helper.make_tensor("scale", TensorProto.FLOAT, [3], rng.uniform(0.5, 1.5, 3).tolist()),
            helper.make_tensor("bias", TensorProto.FLOAT, [3], rng.uniform(-0.5, 0.5, 3).tolist()),
            helper.make_tensor("fc.weight", TensorProto.FLOAT, [4, 30], rng.normal(0, 0.3, 120).tolist()),
            helper.make_tensor("fc.bias", TensorProto.FLOAT, [4], rng.normal(0, 0.1, 4).tolist())]
    nodes = [helper.make_node("GroupNormalization", ["input", "scale", "bias"], ["g"], name="gn", num_groups=3, epsilon=1e-3),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten", axis=1),
             helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["logits"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "groupnorm", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 6, 5])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="make_onnx_norms.py")
    model.ir_version = 8
    path = os.path.join(OUT, "groupnorm_op.onnx")
    onnx.save(model, path)
    x = rng.standard_normal((3, 6, 5)).astype(np.float32)
    tensors["gn_x"] = torch.from_numpy(x)
    tensors["gn_logits"] = torch.from_numpy(ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0])


def main():
    torch.manual_seed(20261203)
    net = NormCNN().eval()
    with torch.no_grad():
        for norm in (net.inorm, net.gnorm):
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
    x = torch.randn(3, 3, 9, 11)
    w = torch.randn(3, 5)
    tensors = {"x": x, "w": w}
    export_both(net, x, "norm_cnn", tensors)
    xg = x.clone().requires_grad_(True)
    (net(xg) * w).sum().backward()
    tensors["grad"] = xg.grad
    group_normalization(tensors)
    save_safetensors(tensors, os.path.join(OUT, "onnx_norms.safetensors"), {"generator": "Tests/Fixtures/make_onnx_norms.py"})
    print("wrote norm_cnn_{torchscript,dynamo}.onnx and onnx_norms.safetensors")


if __name__ == "__main__":
    main()
