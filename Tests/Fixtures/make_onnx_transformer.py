#!/usr/bin/env python3
"""Writes the transformer ONNX import fixtures under Tests/Fixtures/onnx/: a small transformer
encoder classifier exported with both of PyTorch's exporters, onnxruntime's logits for each file and
PyTorch's input gradients.

transformer_{torchscript,dynamo,opset14}.onnx — the eval-mode network below, exported by
  torch.onnx.export(dynamo=False, opset 17), torch.onnx.export(dynamo=True, opset 20) and
  torch.onnx.export(dynamo=False, opset 14) (LayerNorm as ReduceMean/Sub/Pow/Sqrt/Div), input
  "input" [batch, 8, 6] with a dynamic batch:
    embed Linear(6, 16), + pos (a learned [1, 8, 16] parameter)
    encoder: 2 × TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32, dropout=0,
             activation="gelu", batch_first=True) (post-norm), LayerNorm eps 1e-5
    mean over the 8 positions, head Linear(16, 5)                                   -> [5]
  PyTorch's fused "fast path" of the encoder layer is turned off for the export, so both exporters
  write the layer's own ops (MatMul, Softmax, LayerNormalization, Gelu or Erf, …).
layout_{torchscript,dynamo}.onnx — the same two exports of `LayoutNet` below, input [batch, 4, 6]:
  fc Linear(6, 12); split [5, 7] on the last axis; the fc output transposed to [4, batch, 12],
  reshaped to [4, batch, 3, 4], permuted to [batch, 3, 4, 4]; its product with its own transpose,
  softmax over dim 2, summed over dim 2; a slice [1:3] of the first split part, its amax over dim 1;
  log_softmax of the second part over dim 1, mean over (1, 2) with keepdim; their concatenation,
  head Linear(18, 3).
shufflenet_{torchscript,dynamo}.onnx — torchvision's shufflenet_v2_x0_5(weights=None,
  num_classes=10) in eval mode with seeded random BatchNorm statistics and affine parameters, the
  same two exports, input [batch, 3, 32, 32] (channel shuffle: Reshape to rank 5, Transpose,
  Reshape; chunk: Split or Slice).
onnx_shufflenet.safetensors — `x` [3, 3, 32, 32], `w` [3, 10], `logits_torchscript`,
  `logits_dynamo`, `logits` [3, 10] and `grad` [3, 3, 32, 32], as below.
Refusals (built with onnx.helper, opset 17, input [batch, 4, 6]): batch_moved.onnx (a Transpose
  [1, 0, 2], then a ReduceSum over axis 2: the batch would have to stay on axis 1),
  strided_slice.onnx (a Slice of the input with step 2).
onnx_transformer.safetensors — float32:
  `x` [5, 8, 6] seeded randn; `w` [5, 5] seeded randn;
  `logits_torchscript`, `logits_dynamo`, `logits_opset14` [5, 5]: onnxruntime's outputs for each
  file on x;
  `logits` [5, 5]: PyTorch's; `grad` [5, 8, 6]: d sum(w · logits) / dx from PyTorch;
  `layout_x` [5, 4, 6], `layout_w` [5, 3], `layout_logits_torchscript`, `layout_logits_dynamo`,
  `layout_logits` [5, 3] and `layout_grad` [5, 4, 6] the same for the layout network.

    python3 Tests/Fixtures/make_onnx_transformer.py
      (torch 2.15.0, torchvision 0.29.2, onnx 1.23.2, onnxscript 0.7.2, onnxruntime 1.32.0)
"""
import os
import sys

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper
import torch
import torch.nn as nn
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")
sys.path.insert(0, HERE)

from make_graph_golden import save_safetensors  # noqa: E402


class EncoderClassifier(nn.Module):
    def __init__(self, features=6, tokens=8, width=16, classes=5):
        super().__init__()
        self.embed = nn.Linear(features, width)
        self.pos = nn.Parameter(0.1 * torch.randn(1, tokens, width))
        layer = nn.TransformerEncoderLayer(d_model=width, nhead=2, dim_feedforward=32, dropout=0.0,
                                           activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        h = self.encoder(self.embed(x) + self.pos)
        return self.head(h.mean(dim=1))


class LayoutNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 12)
        self.head = nn.Linear(18, 3)

    def forward(self, x):
        h = self.fc(x)                                                   # [N, 4, 12]
        a, b = h.split([5, 7], dim=-1)
        t = h.transpose(0, 1).reshape(4, -1, 3, 4).permute(1, 2, 0, 3)  # [N, 3, 4, 4]
        s = torch.matmul(t, t.transpose(-1, -2)).softmax(dim=2).sum(dim=2)  # [N, 3, 4]
        u = a[:, 1:3, :].amax(dim=1)                                     # [N, 5]
        v = torch.log_softmax(b, dim=1).mean(dim=(1, 2), keepdim=True)   # [N, 1, 1]
        return self.head(torch.cat([s.flatten(1), u, v.flatten(1)], dim=1))


def answers(model, paths, x, w, prefix):
    """PyTorch's logits and input gradient of sum(w · logits), and onnxruntime's logits per file."""
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    (logits * w).sum().backward()
    tensors = {f"{prefix}x": x, f"{prefix}w": w, f"{prefix}logits": logits.detach(), f"{prefix}grad": xg.grad.detach()}
    for kind, path in paths.items():
        onnx.checker.check_model(onnx.load(path))
        got = onnxruntime.InferenceSession(path).run(None, {"input": x.numpy()})[0]
        err = float(np.abs(got - logits.detach().numpy()).max())
        print(f"{os.path.basename(path)}: onnxruntime vs PyTorch max |diff| {err:.2e}")
        if err > 1e-4:
            sys.exit(f"{path}: onnxruntime disagrees with PyTorch ({err:.2e})")
        tensors[f"{prefix}logits_{kind}"] = torch.from_numpy(got)
    return tensors


def export(model, x, name, opset14=False):
    """Both exporters, dynamic batch on the input and the output (and with `opset14` the
    TorchScript-based one at opset 14 too, which writes LayerNorm as ReduceMean, Sub, Pow, Sqrt, Div)."""
    kw = dict(input_names=["input"], output_names=["logits"])
    paths = {}
    for kind, opset in [("torchscript", 17)] + ([("opset14", 14)] if opset14 else []):
        ts = os.path.join(OUT, f"{name}_{kind}.onnx")
        torch.onnx.export(model, (x,), ts + ".tmp", dynamo=False, opset_version=opset,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, **kw)
        os.replace(ts + ".tmp", ts)
        paths[kind] = ts
    dy = os.path.join(OUT, f"{name}_dynamo.onnx")
    program = torch.onnx.export(model, (x,), dynamo=True, opset_version=20, external_data=False,
                                dynamic_shapes={"x": {0: torch.export.Dim("batch")}}, **kw)
    program.save(dy + ".tmp", external_data=False)
    # The exporter's per-node metadata (Python stack traces with local paths) is dropped, so the
    # file depends on the network alone.
    exported = onnx.load(dy + ".tmp")
    for node in exported.graph.node:
        del node.metadata_props[:]
    onnx.save(exported, dy + ".tmp")
    os.replace(dy + ".tmp", dy)
    paths["dynamo"] = dy
    return paths


def refusals():
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4, 6])
    opset = [helper.make_opsetid("", 17)]
    ints = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [len(v)], v)
    cases = {
        "batch_moved": ([helper.make_node("Transpose", ["input"], ["t"], name="move", perm=[1, 0, 2]),
                         helper.make_node("ReduceSum", ["t", "axes"], ["out"], name="reduce", keepdims=0)],
                        [ints("axes", [2])], [4, "batch"]),
        "strided_slice": ([helper.make_node("Slice", ["input", "starts", "ends", "axes", "steps"], ["out"], name="every_other")],
                          [ints("starts", [0]), ints("ends", [6]), ints("axes", [2]), ints("steps", [2])], ["batch", 4, 3]),
    }
    for name, (nodes, initializers, shape) in cases.items():
        y = helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)
        model = helper.make_model(helper.make_graph(nodes, name, [x], [y], initializer=initializers), opset_imports=opset)
        onnx.checker.check_model(model)
        path = os.path.join(OUT, f"{name}.onnx")
        onnx.save(model, path + ".tmp")
        os.replace(path + ".tmp", path)


def main():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    torch.backends.mha.set_fastpath_enabled(False)
    model = EncoderClassifier().eval()
    with torch.no_grad():
        # Non-trivial LayerNorm parameters, so a wrong scale or shift shows.
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(1 + 0.3 * torch.randn(m.normalized_shape, generator=generator))
                m.bias.copy_(0.2 * torch.randn(m.normalized_shape, generator=generator))
    x = torch.randn(5, 8, 6, generator=generator)
    w = torch.randn(5, 5, generator=generator)
    os.makedirs(OUT, exist_ok=True)
    refusals()
    tensors = answers(model, export(model, x[:2].clone(), "transformer", opset14=True), x, w, "")
    layout = LayoutNet().eval()
    lx, lw = torch.randn(5, 4, 6, generator=generator), torch.randn(5, 3, generator=generator)
    tensors.update(answers(layout, export(layout, lx[:2].clone(), "layout"), lx, lw, "layout_"))
    save_safetensors(tensors, os.path.join(OUT, "onnx_transformer.safetensors"),
                     {"generator": "Tests/Fixtures/make_onnx_transformer.py"})

    # ShuffleNetV2 x0.5, untrained, with randomized BatchNorm statistics.
    net = torchvision.models.shufflenet_v2_x0_5(weights=None, num_classes=10)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=generator))
                m.weight.copy_(1 + 0.2 * torch.randn(m.num_features, generator=generator))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=generator))
    net.eval()
    sx, sw = torch.randn(3, 3, 32, 32, generator=generator), torch.randn(3, 10, generator=generator)
    shuffle = answers(net, export(net, sx[:2].clone(), "shufflenet"), sx, sw, "")
    save_safetensors(shuffle, os.path.join(OUT, "onnx_shufflenet.safetensors"),
                     {"generator": "Tests/Fixtures/make_onnx_transformer.py"})


if __name__ == "__main__":
    main()
