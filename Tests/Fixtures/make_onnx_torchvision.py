#!/usr/bin/env python3
"""Writes held-out ONNX import fixtures under Tests/Fixtures/onnx/: two torchvision architectures,
and a graph of every element-wise ONNX op Prism maps, with onnxruntime's and PyTorch's answers.

mobilenet_v3_small_{torchscript,dynamo}.onnx — torchvision.models.mobilenet_v3_small(weights=None,
  num_classes=10, width_mult=0.5) (half width keeps the file near 1.6 MB; the full width is 6 MB):
  squeeze-excitation blocks (GlobalAveragePool, 1×1 convolutions, HardSigmoid, a Mul of [N, C, 1, 1]
  by [N, C, H, W] with the smaller operand first), Hardswish, depthwise convolutions, Dropout.
squeezenet1_1_{torchscript,dynamo}.onnx — torchvision.models.squeezenet1_1(weights=None,
  num_classes=10): Fire modules (Concat), MaxPool with ceil_mode, a 1×1 convolution classifier
  (its weights redrawn from N(0, 0.05²) instead of torchvision's N(0, 0.01²), for logits near 1).
  Both models in eval mode; every BatchNorm's running statistics come from six train-mode forwards
  of seeded noise (cumulative averages) and are then perturbed, and its affine parameters drawn, so
  that the exporters' folding of BatchNorm into the convolutions is not the identity. Input
  "input" [batch, 3, 64, 64] with a dynamic batch; exported by torch.onnx.export(dynamo=False,
  opset 17) and torch.onnx.export(dynamo=True, opset 20).
elementwise_ops.onnx — built with onnx.helper (opset 17), input [batch, 3, 4, 5]: Add, Sub, Mul, Div,
  Pow of two values (SE-style [N, C, 1, 1] operands, first or second) and of a value and a constant
  (scalars, [C, 1, 1], [W], [1, 1, H, 1], a [C, 1, W] constant over non-adjacent axes, on either
  side), Neg, Sqrt, Exp, Log, Erf, Reciprocal, HardSigmoid (PyTorch's and other alpha, beta), Clip
  (both bounds, min only, max only), PRelu (one slope, per channel), and constants computed from
  constants (Sqrt, Reciprocal, Neg, Exp, Mul, Div, Pow, Sub of initializers, folded at import); the
  branches concatenated on the channels and flattened. Refusals: sub_smaller_first.onnx (Sub of [N, 3, 1, 1] minus [N, 3, 4, 5]),
  constant_widens.onnx (Add of [N, 1, 4] and a [3, 1] constant, which would widen the value).
onnx_torchvision.safetensors — float32, for each model M: `M_x` [2, 3, 64, 64] (seeded randn), `M_w`
  [2, 10] (seeded randn), `M_torchscript_logits` and `M_dynamo_logits` (onnxruntime on each file),
  `M_grad` (PyTorch's d sum(M_w · logits) / d M_x in eval mode); `elementwise_x` [3, 3, 4, 5] and
  `elementwise_logits` [3, 1500] (onnxruntime).

    python3 Tests/Fixtures/make_onnx_torchvision.py
    (torch 2.15.0, torchvision 0.29.2, onnx 1.23.2, onnxscript 0.7.2, onnxruntime 1.32.0)
"""
import os

import numpy as np
import onnx
import onnxruntime
import torch
import torch.nn as nn
import torchvision
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx")

from make_graph_golden import save_safetensors  # noqa: E402  (the graph golden files' writer)
from make_onnx_golden import export  # noqa: E402  (both exporters, as the first fixtures)


def randomize_batchnorm(model, shape, generator):
    """Running statistics of seeded noise (cumulative averages over six batches), perturbed, and seeded
    affine parameters, so no BatchNorm is the identity."""
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    model.train()
    with torch.no_grad():
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        for i in range(6):
            model(torch.randn(8, *shape, generator=generator) * (1 + 0.1 * i))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
            c = m.num_features
            m.running_var.mul_(torch.empty(c).uniform_(0.7, 1.4, generator=generator))
            m.running_mean.add_(0.1 * torch.randn(c, generator=generator) * m.running_var.sqrt())
            m.weight.copy_(1 + 0.3 * torch.randn(c, generator=generator))
            m.bias.copy_(0.2 * torch.randn(c, generator=generator))
    model.eval()


def run(path, x):
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def save_model(model, path):
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path + ".tmp")
    os.replace(path + ".tmp", path)


def torchvision_models(generator, tensors):
    models = {
        "mobilenet_v3_small": torchvision.models.mobilenet_v3_small(weights=None, num_classes=10, width_mult=0.5),
        "squeezenet1_1": torchvision.models.squeezenet1_1(weights=None, num_classes=10),
    }
    with torch.no_grad():
        models["squeezenet1_1"].classifier[1].weight.normal_(0, 0.05, generator=generator)
    for name, model in models.items():
        randomize_batchnorm(model, (3, 64, 64), generator)
        x = torch.randn(2, 3, 64, 64, generator=generator)
        w = torch.randn(2, 10, generator=generator)
        files = dict(zip(["torchscript", "dynamo"], export(model, x, name)))
        xr = x.clone().requires_grad_(True)
        logits = model(xr)
        (w * logits).sum().backward()
        tensors[f"{name}_x"], tensors[f"{name}_w"], tensors[f"{name}_grad"] = x, w, xr.grad.detach()
        for exporter, path in files.items():
            got = run(path, x.numpy())
            err = np.abs(got - logits.detach().numpy()).max()
            print(f"{os.path.basename(path)}: {os.path.getsize(path) / 1e6:.2f} MB, onnxruntime vs PyTorch max |diff| {err:.2e}, "
                  f"|logits| up to {np.abs(got).max():.3f}, {(got == 0).sum()} of {got.size} zero, |grad| up to {xr.grad.abs().max():.3g}")
            assert err <= 1e-4, path
            tensors[f"{name}_{exporter}_logits"] = torch.from_numpy(got)


def elementwise_graph(generator):
    """The element-wise ops on [batch, 3, 4, 5]: each branch keeps that shape; concatenated and flattened."""
    nodes, inits, branches = [], [], []

    def const(name, shape, low=-1.0, high=1.0):
        values = torch.empty(*shape).uniform_(low, high, generator=generator).numpy().astype(np.float32)
        inits.append(numpy_helper.from_array(values, name))
        return name

    def scalar(name, value, shape=()):
        inits.append(numpy_helper.from_array(np.full(shape, value, dtype=np.float32), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    x = "input"
    g = node("GlobalAveragePool", [x], "gap")                                    # [N, 3, 1, 1]
    branches += [
        node("Sub", [const("c3", [3, 1, 1]), x], "sub_const_first"),
        node("Div", [x, scalar("s17", 1.7)], "div_scalar"),
        node("Mul", [const("cw", [5]), x], "mul_const_first"),
        node("Add", [x, const("ch", [1, 1, 4, 1])], "add_rows"),
        node("Mul", [x, const("cnc", [3, 1, 5])], "mul_non_adjacent"),
        node("Pow", [node("Sqrt", [node("Add", [node("Mul", [x, x], "square"), scalar("one", 1.0, (1,))], "square_1")], "norm"),
                     scalar("p15", 1.5)], "pow_scalar"),
        node("Pow", [const("cb", [1, 3, 1, 1], 0.5, 2.0), x], "pow_const_first"),
        node("Div", [scalar("two", 2.0), node("Add", [node("Exp", [x], "exp"), scalar("half", 0.5)], "exp_half")], "div_const_first"),
        node("Log", [node("Add", [node("Exp", [node("Neg", [x], "neg")], "exp_neg"), scalar("one_b", 1.0)], "softplus_in")], "softplus"),
        node("Erf", [x], "erf"),
        node("Reciprocal", [node("Add", [node("Exp", [x], "exp2"), scalar("one_c", 1.0)], "exp_1")], "reciprocal"),
        node("HardSigmoid", [x], "hardsigmoid_torch", alpha=1.0 / 6, beta=0.5),
        node("HardSigmoid", [x], "hardsigmoid_onnx", alpha=0.2, beta=0.4),
        node("Clip", [x, scalar("lo", -0.5), scalar("hi", 0.8)], "clip"),
        node("Clip", [x, scalar("zero", 0.0)], "clip_min"),
        node("Clip", [x, "", scalar("hi_b", 0.3)], "clip_max"),
        node("PRelu", [x, const("slopes", [3, 1, 1])], "prelu_channels"),
        node("PRelu", [x, scalar("slope", 0.2, (1,))], "prelu_one"),
        node("Mul", [g, x], "se_mul_smaller_first"),
        node("Add", [g, x], "se_add_smaller_first"),
        node("Sub", [x, g], "se_sub"),
        node("Div", [x, node("Add", [node("Mul", [g, g], "g2"), scalar("one_d", 1.0)], "g2_1")], "se_div"),
        node("Pow", [node("Add", [node("Mul", [x, x], "square_b"), scalar("one_e", 1.0)], "sq_1"),
                     node("Sigmoid", [g], "gate")], "pow_values"),
        # Constants computed from constants (folded at import): 1/√3 · e^(−c) per channel, and c − 0.5/c³.
        node("Mul", [x, node("Mul", [node("Reciprocal", [node("Sqrt", [scalar("three", 3.0)], "sqrt3")], "inv_sqrt3"),
                                     node("Exp", [node("Neg", [const("cf", [3, 1, 1])], "neg_cf")], "exp_neg_cf")], "folded_scale")],
             "mul_folded"),
        node("Sub", [x, node("Sub", [const("cg", [5], 0.5, 2.0),
                                     node("Div", [scalar("half_b", 0.5), node("Pow", [const("cg2", [5], 0.5, 2.0), scalar("three_b", 3.0)], "cube")],
                                          "half_over_cube")], "folded_shift")], "sub_folded"),
    ]
    cat = node("Concat", branches, "cat", axis=1)
    out = node("Flatten", [cat], "logits", axis=1)
    k = len(branches)
    graph = helper.make_graph(nodes, "elementwise", [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", 3, 4, 5])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", 3 * k * 20])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def refusals():
    opset = [helper.make_opsetid("", 17)]
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 4, 5])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, 4, 5])
    graph = helper.make_graph([helper.make_node("GlobalAveragePool", ["input"], ["gap"], name="gap"),
                               helper.make_node("Sub", ["gap", "input"], ["out"], name="sub")], "g", [x], [y])
    save_model(helper.make_model(graph, opset_imports=opset), os.path.join(OUT, "sub_smaller_first.onnx"))
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 4])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, 4])
    c = numpy_helper.from_array(np.ones((3, 1), dtype=np.float32), "c")
    graph = helper.make_graph([helper.make_node("Add", ["input", "c"], ["out"], name="add")], "g", [x], [y], [c])
    save_model(helper.make_model(graph, opset_imports=opset), os.path.join(OUT, "constant_widens.onnx"))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(2)
    tensors = {}
    torchvision_models(generator, tensors)
    path = os.path.join(OUT, "elementwise_ops.onnx")
    save_model(elementwise_graph(generator), path)
    x = torch.randn(3, 3, 4, 5, generator=generator)
    tensors["elementwise_x"], tensors["elementwise_logits"] = x, torch.from_numpy(run(path, x.numpy()))
    refusals()
    save_safetensors(tensors, os.path.join(OUT, "onnx_torchvision.safetensors"),
                     {"generator": "Tests/Fixtures/make_onnx_torchvision.py", "torch": torch.__version__,
                      "torchvision": torchvision.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__})


if __name__ == "__main__":
    main()
