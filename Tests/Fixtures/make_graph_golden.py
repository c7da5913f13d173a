#!/usr/bin/env python3
"""Writes the graph-model fixtures under Tests/Fixtures/graph/: PyTorch networks described by format-2
model descriptions (JSON under the safetensors metadata key `prism.model`), and their answers.

residual_cnn.safetensors — a model file: every parameter and buffer of the eval-mode network below
  under its state_dict name (float32; the BatchNorm `num_batches_tracked` counters as I64 scalars,
  which a loader accepts and ignores), metadata `prism.model` = its format-2 graph (node names are
  the PyTorch module paths, so `<node>.<param>` is the state_dict key), `generator`, `torch`.
  Input [3, 12, 10]:
    stem.0 Conv2d(3, 8, 3, padding=1, bias=False), stem.1 BatchNorm2d(8), stem.2 ReLU
    block.conv1 Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=False), block.bn1 BatchNorm2d(8),
    block.relu1 ReLU, block.conv2 Conv2d(8, 8, (1, 3), padding=(0, 1)), block.bn2 BatchNorm2d(8, eps=1e-3),
    block.add = block.bn2 + stem.2, block.relu2 ReLU                                   -> [8, 12, 10]
    down.0 Conv2d(8, 8, 3, stride=2, padding=1, groups=8), down.1 LeakyReLU(0.1)       -> [8, 6, 5]
    pool MaxPool2d(2, ceil_mode=True), pool_act ELU(alpha=0.5)                          -> [8, 3, 3]
    avg AvgPool2d(3, stride=1, padding=1, count_include_pad=False) of pool_act, avg_act Tanh
    cat = cat([pool_act, avg_act], dim=1), mix_act Hardswish                            -> [16, 3, 3]
    gap AdaptiveAvgPool2d((2, 3)) (3 rows into 2 overlapping windows), flatten          -> [96]
    head.0 Linear(96, 20), head.1 SiLU, head.2 Dropout(0.25) (identity in eval), head.3 Linear(20, 7)
  PyTorch's default initialisation, with the weights of down.0, head.0 and head.3 scaled by 2, 3
  and 4 (logits of order 1); BatchNorm running statistics come from 8 train-mode forwards on
  shifted random batches, and their affine parameters are then set from seeded randoms.
residual_cnn_golden.safetensors — `x` [5, 3, 12, 10] (seeded randn), `logits` [5, 7] of the eval
  model, `targets` [5] (class indices stored as F32) and `input_grad` [5, 3, 12, 10] =
  d(sum_i logits[i, targets[i]])/dx, all float32.
residual_train.safetensors — a model file for a residual CNN without BatchNorm or Dropout
  (input [1, 8, 8]: conv1 Conv2d(1, 4, 3, padding=1), relu1, conv2 Conv2d(4, 4, 3, padding=1),
  add = conv2 + relu1, relu2, flatten, fc Linear(256, 5)) with its initial parameters under their
  state_dict names and its `prism.model` graph, plus `x` [16, 1, 8, 8], `y` [16] (class indices
  stored as F32) and `losses` [21]: the mean cross-entropy on (x, y) before each of 20 plain SGD
  steps (lr 0.1, no momentum, no weight decay, the whole batch each step), then after the last one.

The answers (logits, input_grad, losses) are computed in float64 from the stored float32 values
and stored as float32, so they are the exact answers of the stored network to float32 rounding.

`--check` rereads the files with an independent reader and rebuilds each network from its JSON
graph and tensors alone (torch.nn.functional, spec defaults), then compares its logits, input
gradient and SGD losses with the stored ones.

    python3 Tests/Fixtures/make_graph_golden.py            (written with torch 2.15.0; needs only torch)
    python3 Tests/Fixtures/make_graph_golden.py --check
"""
import json
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "graph")
GENERATOR = "Tests/Fixtures/make_graph_golden.py"
DTYPES = {torch.float32: "F32", torch.int64: "I64"}


def save_safetensors(tensors, path, metadata):
    """Writes `tensors` (name -> float32 or int64 tensor) as safetensors, atomically (temp + rename)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        data = t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# The networks and their graph descriptions


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, (1, 3), padding=(0, 1))
        self.bn2 = nn.BatchNorm2d(8, eps=1e-3)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + x)


class ResidualCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.block = Block()
        self.down = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), nn.LeakyReLU(0.1))
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.pool_act = nn.ELU(alpha=0.5)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.avg_act = nn.Tanh()
        self.mix_act = nn.Hardswish()
        self.gap = nn.AdaptiveAvgPool2d((2, 3))
        self.flatten = nn.Flatten()
        self.head = nn.Sequential(nn.Linear(96, 20), nn.SiLU(), nn.Dropout(0.25), nn.Linear(20, 7))

    def forward(self, x):
        p = self.pool_act(self.pool(self.down(self.block(self.stem(x)))))
        c = self.mix_act(torch.cat([p, self.avg_act(self.avg(p))], dim=1))
        return self.head(self.flatten(self.gap(c)))


RESIDUAL_CNN_GRAPH = {
    "format": 2,
    "architecture": "custom",
    "input_shape": [3, 12, 10],
    "outputs": 7,
    "task": {"classification": {"classes": ["c0", "c1", "c2", "c3", "c4", "c5", "c6"]}},
    "nodes": [
        {"name": "stem.0", "op": "conv2d", "inputs": ["input"], "in_channels": 3, "out_channels": 8,
         "kernel_size": 3, "padding": 1, "bias": False},
        {"name": "stem.1", "op": "batchnorm2d", "num_features": 8},
        {"name": "stem.2", "op": "relu"},
        {"name": "block.conv1", "op": "conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": 3,
         "padding": 2, "dilation": 2, "groups": 2, "bias": False},
        {"name": "block.bn1", "op": "batchnorm2d", "num_features": 8},
        {"name": "block.relu1", "op": "relu"},
        {"name": "block.conv2", "op": "conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": [1, 3],
         "padding": [0, 1]},
        {"name": "block.bn2", "op": "batchnorm2d", "num_features": 8, "eps": 1e-3},
        {"name": "block.add", "op": "add", "inputs": ["block.bn2", "stem.2"]},
        {"name": "block.relu2", "op": "relu"},
        {"name": "down.0", "op": "conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": 3, "stride": 2,
         "padding": 1, "groups": 8},
        {"name": "down.1", "op": "leakyrelu", "negative_slope": 0.1},
        {"name": "pool", "op": "maxpool2d", "kernel_size": 2, "ceil_mode": True},
        {"name": "pool_act", "op": "elu", "alpha": 0.5},
        {"name": "avg", "op": "avgpool2d", "kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": False},
        {"name": "avg_act", "op": "tanh"},
        {"name": "cat", "op": "cat", "inputs": ["pool_act", "avg_act"], "dim": 1},
        {"name": "mix_act", "op": "hardswish"},
        {"name": "gap", "op": "adaptiveavgpool2d", "output_size": [2, 3]},
        {"name": "flatten", "op": "flatten"},
        {"name": "head.0", "op": "linear", "in_features": 96, "out_features": 20},
        {"name": "head.1", "op": "silu"},
        {"name": "head.2", "op": "dropout", "p": 0.25},
        {"name": "head.3", "op": "linear", "in_features": 20, "out_features": 7, "bias": True},
    ],
    "output": "head.3",
}


class ResidualTrain(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(256, 5)

    def forward(self, x):
        h = self.relu1(self.conv1(x))
        return self.fc(self.flatten(self.relu2(self.conv2(h) + h)))


RESIDUAL_TRAIN_GRAPH = {
    "format": 2,
    "architecture": "custom",
    "input_shape": [1, 8, 8],
    "outputs": 5,
    "nodes": [
        {"name": "conv1", "op": "conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"name": "relu1", "op": "relu"},
        {"name": "conv2", "op": "conv2d", "in_channels": 4, "out_channels": 4, "kernel_size": 3, "padding": 1},
        {"name": "add", "op": "add", "inputs": ["conv2", "relu1"]},
        {"name": "relu2", "op": "relu"},
        {"name": "flatten", "op": "flatten"},
        {"name": "fc", "op": "linear", "in_features": 256, "out_features": 5},
    ],
}

SGD_STEPS, SGD_LR = 20, 0.1


def metadata(graph):
    return {"prism.model": json.dumps(graph, separators=(",", ":")), "generator": GENERATOR, "torch": torch.__version__}


def write():
    torch.set_num_threads(1)
    torch.manual_seed(20261130)
    os.makedirs(OUT, exist_ok=True)

    # residual_cnn: BatchNorm running statistics from train-mode forwards, then seeded affine parameters.
    model = ResidualCNN()
    model.train()
    with torch.no_grad():
        # Larger weights after the last BatchNorm, so logits are O(1) and the activations' bends are reached.
        for layer, gain in ((model.down[0], 2.0), (model.head[0], 3.0), (model.head[3], 4.0)):
            layer.weight.mul_(gain)
        for _ in range(8):
            model(torch.randn(16, 3, 12, 10) * 1.5 + 0.3)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features) + 0.5)
                m.bias.copy_(torch.randn(m.num_features) * 0.3)
    model.eval()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_safetensors(state, os.path.join(OUT, "residual_cnn.safetensors"), metadata(RESIDUAL_CNN_GRAPH))

    x = torch.randn(5, 3, 12, 10)
    targets = torch.randint(0, 7, (5,))
    reference = ResidualCNN().double().eval()
    reference.load_state_dict({k: (v.double() if v.is_floating_point() else v) for k, v in state.items()})
    xd = x.double().requires_grad_(True)
    logits = reference(xd)
    logits.gather(1, targets[:, None]).sum().backward()
    with torch.no_grad():  # the float32 eval model agrees with its float64 twin
        assert (model(x).double() - logits).abs().max() < 1e-5
    save_safetensors({"x": x, "logits": logits.detach().float(), "targets": targets.float(),
                      "input_grad": xd.grad.float()},
                     os.path.join(OUT, "residual_cnn_golden.safetensors"),
                     {"generator": GENERATOR, "torch": torch.__version__})

    # residual_train: initial parameters, one fixed batch, the losses of plain SGD.
    net = ResidualTrain()
    initial = {k: v.detach().clone() for k, v in net.state_dict().items()}
    tx = torch.randn(16, 1, 8, 8)
    ty = torch.randint(0, 5, (16,))
    twin = ResidualTrain().double()
    twin.load_state_dict({k: v.double() for k, v in initial.items()})
    optimizer = torch.optim.SGD(twin.parameters(), lr=SGD_LR)
    losses = []
    for _ in range(SGD_STEPS):
        optimizer.zero_grad()
        loss = F.cross_entropy(twin(tx.double()), ty)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        losses.append(F.cross_entropy(twin(tx.double()), ty).item())
    tensors = dict(initial)
    tensors.update({"x": tx, "y": ty.float(), "losses": torch.tensor(losses, dtype=torch.float32)})
    save_safetensors(tensors, os.path.join(OUT, "residual_train.safetensors"), metadata(RESIDUAL_TRAIN_GRAPH))

    for name in sorted(os.listdir(OUT)):
        print(f"wrote {os.path.join(OUT, name)}: {os.path.getsize(os.path.join(OUT, name))} bytes")
    print(f"residual_cnn logits[0] {[round(v, 4) for v in logits[0].tolist()]}")
    print(f"residual_train losses {losses[0]:.5f} -> {losses[-1]:.5f}")


# ---------------------------------------------------------------------------------------------
# --check: an independent reader and interpreter of the format-2 graph


def read_safetensors(path):
    """Returns ({name: float64 or int64 tensor}, metadata) from a safetensors file, checking its layout."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    kinds = {"F32": ("<f", 4, torch.float64), "I64": ("<q", 8, torch.int64)}
    tensors, covered = {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        fmt, size, dtype = kinds[e["dtype"]]
        begin, end = e["data_offsets"]
        count = 1
        for d in e["shape"]:
            count *= d
        assert begin == covered and end - begin == count * size, (path, name)
        covered = end
        values = struct.unpack(f"<{count}{fmt[1]}", data[begin:end])
        tensors[name] = torch.tensor(values, dtype=dtype).reshape(e["shape"])
    assert covered == len(data), path
    return tensors, meta


def pair(v):
    return (v, v) if isinstance(v, int) else (v[0], v[1])


# Per op: the attributes the spec allows with their defaults (None = required), and the parameters.
SPEC = {
    "linear": ({"in_features": None, "out_features": None, "bias": True}, None),
    "conv2d": ({"in_channels": None, "out_channels": None, "kernel_size": None, "stride": 1, "padding": 0,
                "dilation": 1, "groups": 1, "bias": True}, None),
    "maxpool2d": ({"kernel_size": None, "stride": "kernel_size", "padding": 0, "ceil_mode": False}, []),
    "avgpool2d": ({"kernel_size": None, "stride": "kernel_size", "padding": 0, "ceil_mode": False,
                   "count_include_pad": True}, []),
    "adaptiveavgpool2d": ({"output_size": None}, []),
    "batchnorm2d": ({"num_features": None, "eps": 1e-5, "momentum": 0.1},
                    ["weight", "bias", "running_mean", "running_var"]),
    "relu": ({}, []), "sigmoid": ({}, []), "tanh": ({}, []), "silu": ({}, []), "hardswish": ({}, []),
    "leakyrelu": ({"negative_slope": 0.01}, []), "elu": ({"alpha": 1.0}, []),
    "dropout": ({"p": 0.5}, []), "flatten": ({"start_dim": 1}, []),
    "add": ({}, []), "cat": ({"dim": 1}, []),
}


def adaptive_avg_pool(x, out_hw):
    """AdaptiveAvgPool2d written out: output cell i averages rows floor(i*H/oh) ..< ceil((i+1)*H/oh)."""
    (H, W), (oh, ow) = x.shape[-2:], out_hw
    rows = []
    for i in range(oh):
        h0, h1 = (i * H) // oh, -((-(i + 1) * H) // oh)
        cols = [x[..., h0:h1, (j * W) // ow:-((-(j + 1) * W) // ow)].mean(dim=(-2, -1)) for j in range(ow)]
        rows.append(torch.stack(cols, dim=-1))
    return torch.stack(rows, dim=-2)


class Graph:
    """A format-2 graph read from its JSON and a tensor dict, run with torch.nn.functional."""

    def __init__(self, text, tensors, extra=()):
        g = json.loads(text)
        assert g["format"] == 2 and isinstance(g["input_shape"], list), g
        self.input_shape, self.outputs = g["input_shape"], g["outputs"]
        self.nodes, seen, used = [], ["input"], set()
        for node in g["nodes"]:
            op, name = node["op"], node["name"]
            assert name not in seen, name
            allowed, params = SPEC[op]
            unknown = set(node) - set(allowed) - {"name", "op", "inputs"}
            assert not unknown, (name, unknown)
            a = {}
            for k, default in allowed.items():
                assert k in node or default is not None, (name, k)
                a[k] = node.get(k, default)
            if a.get("stride") == "kernel_size":
                a["stride"] = a["kernel_size"]
            inputs = node.get("inputs", [seen[-1]])
            assert all(i in seen for i in inputs), (name, inputs)
            if op == "add":
                assert len(inputs) == 2, name
            elif op == "cat":
                assert len(inputs) >= 2, name
            else:
                assert len(inputs) == 1, name
            if params is None:  # linear / conv2d: weight, and bias unless bias=false
                params = ["weight"] + (["bias"] if a["bias"] else [])
            p = {k: tensors[f"{name}.{k}"] for k in params}
            used.update(f"{name}.{k}" for k in params)
            self.check_shapes(op, name, a, p)
            self.nodes.append((name, op, inputs, a, p))
            seen.append(name)
        self.output = g.get("output", seen[-1])
        ignored = {k for k in tensors if k.endswith(".num_batches_tracked")}
        left = set(tensors) - used - ignored - set(extra)
        assert not left, f"tensors no node uses: {sorted(left)}"

    @staticmethod
    def check_shapes(op, name, a, p):
        if op == "linear":
            assert list(p["weight"].shape) == [a["out_features"], a["in_features"]], name
        elif op == "conv2d":
            kh, kw = pair(a["kernel_size"])
            assert list(p["weight"].shape) == [a["out_channels"], a["in_channels"] // a["groups"], kh, kw], name
        elif op == "batchnorm2d":
            assert all(list(t.shape) == [a["num_features"]] for t in p.values()), name
        if "bias" in p:
            assert list(p["bias"].shape) == [p["weight"].shape[0]], name

    def __call__(self, x, params=None):
        assert list(x.shape[1:]) == self.input_shape
        values = {"input": x}
        for name, op, inputs, a, p in self.nodes:
            if params is not None:
                p = {k: params.get(f"{name}.{k}", v) for k, v in p.items()}
            v = values[inputs[0]]
            if op == "linear":
                y = F.linear(v, p["weight"], p.get("bias"))
            elif op == "conv2d":
                y = F.conv2d(v, p["weight"], p.get("bias"), pair(a["stride"]), pair(a["padding"]),
                             pair(a["dilation"]), a["groups"])
            elif op == "maxpool2d":
                y = F.max_pool2d(v, pair(a["kernel_size"]), pair(a["stride"]), pair(a["padding"]),
                                 ceil_mode=a["ceil_mode"])
            elif op == "avgpool2d":
                y = F.avg_pool2d(v, pair(a["kernel_size"]), pair(a["stride"]), pair(a["padding"]),
                                 ceil_mode=a["ceil_mode"], count_include_pad=a["count_include_pad"])
            elif op == "adaptiveavgpool2d":
                y = adaptive_avg_pool(v, pair(a["output_size"]))
            elif op == "batchnorm2d":
                shape = (1, -1, 1, 1)
                y = ((v - p["running_mean"].view(shape)) / torch.sqrt(p["running_var"].view(shape) + a["eps"])
                     * p["weight"].view(shape) + p["bias"].view(shape))
            elif op == "relu":
                y = v.clamp_min(0)
            elif op == "sigmoid":
                y = 1 / (1 + torch.exp(-v))
            elif op == "tanh":
                y = torch.tanh(v)
            elif op == "silu":
                y = v / (1 + torch.exp(-v))
            elif op == "hardswish":
                y = v * (v + 3).clamp(0, 6) / 6
            elif op == "leakyrelu":
                y = torch.where(v >= 0, v, v * a["negative_slope"])
            elif op == "elu":
                y = torch.where(v > 0, v, a["alpha"] * (torch.exp(v.clamp_max(0)) - 1))
            elif op == "dropout":
                y = v  # evaluation: identity
            elif op == "flatten":
                y = v.flatten(a["start_dim"])
            elif op == "add":
                y = v + values[inputs[1]]
            elif op == "cat":
                y = torch.cat([values[i] for i in inputs], dim=a["dim"])
            values[name] = y
        return values[self.output]


def check():
    torch.set_num_threads(1)
    model, meta = read_safetensors(os.path.join(OUT, "residual_cnn.safetensors"))
    golden, _ = read_safetensors(os.path.join(OUT, "residual_cnn_golden.safetensors"))
    graph = Graph(meta["prism.model"], model)
    assert graph.outputs == 7
    x = golden["x"].clone().requires_grad_(True)
    logits = graph(x)
    targets = golden["targets"].long()
    assert (golden["targets"] == targets.double()).all() and targets.min() >= 0 and targets.max() < 7
    logits.gather(1, targets[:, None]).sum().backward()
    tracked = sorted(k for k, v in model.items() if k.endswith("num_batches_tracked"))
    assert all(model[k].dtype == torch.int64 and model[k].shape == () for k in tracked), tracked
    d_logits = (logits - golden["logits"]).abs().max().item()
    d_grad = (x.grad - golden["input_grad"]).abs().max().item()
    print(f"residual_cnn: {len(graph.nodes)} nodes, {len(tracked)} num_batches_tracked (I64) ignored; "
          f"logits max |diff| {d_logits:.2e} (|logits| max {golden['logits'].abs().max():.3f}), "
          f"input_grad max |diff| {d_grad:.2e} (|grad| max {golden['input_grad'].abs().max():.3f})")
    ok = d_logits <= 1e-5 and d_grad <= 1e-5

    train, meta = read_safetensors(os.path.join(OUT, "residual_train.safetensors"))
    graph = Graph(meta["prism.model"], train, extra=("x", "y", "losses"))
    params = {k: v.clone().requires_grad_(True) for k, v in train.items() if k not in ("x", "y", "losses")}
    y = train["y"].long()
    assert (train["y"] == y.double()).all()
    losses = []
    for step in range(SGD_STEPS + 1):
        loss = -torch.log_softmax(graph(train["x"], params), dim=1).gather(1, y[:, None]).mean()
        losses.append(loss.item())
        if step < SGD_STEPS:
            grads = torch.autograd.grad(loss, list(params.values()))
            params = {k: (v - SGD_LR * g).detach().requires_grad_(True) for (k, v), g in zip(params.items(), grads)}
    d_losses = (torch.tensor(losses, dtype=torch.float64) - train["losses"]).abs().max().item()
    print(f"residual_train: {len(graph.nodes)} nodes; losses {losses[0]:.5f} -> {losses[-1]:.5f}, "
          f"max |diff| {d_losses:.2e}")
    ok = ok and d_losses <= 1e-5
    print("check passed" if ok else "check FAILED")
    return ok


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if check() else 1)
    elif sys.argv[1:]:
        sys.exit("usage: make_graph_golden.py [--check]")
    write()
