#!/usr/bin/env python3
"""Writes Tests/Fixtures/fashion-mnist-subset: the first 600 training and 200 test images of
Fashion-MNIST (Debian's dataset-fashion-mnist) in the same MNIST format (gzip IDX), and iris.csv-like
tabular data (three Gaussian classes, four features, seeded) as tabular.csv. Tests read these files
and never need the full dataset or Python.

    python3 Tests/Fixtures/make_subset.py [/usr/share/datasets/fashion-mnist]
"""
import gzip
import os
import random
import struct
import sys

SOURCE = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fashion-mnist-subset")


def subset(name, count):
    with gzip.open(os.path.join(SOURCE, name + ".gz"), "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    rank = magic & 0xFF
    dims = list(struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank]))
    item = 1
    for d in dims[1:]:
        item *= d
    header = 4 + 4 * rank
    dims[0] = count
    body = data[header:header + count * item]
    out = struct.pack(">I", magic) + struct.pack(">" + "I" * rank, *dims) + body
    # mtime=0: the same bytes on every run.
    with open(os.path.join(OUT, name + ".gz"), "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(out)


os.makedirs(OUT, exist_ok=True)
for split, count in (("train", 600), ("t10k", 200)):
    subset(f"{split}-images-idx3-ubyte", count)
    subset(f"{split}-labels-idx1-ubyte", count)

rng = random.Random(20261124)
centers = [(5.0, 3.4, 1.5, 0.2), (5.9, 2.8, 4.3, 1.3), (6.6, 3.0, 5.6, 2.0)]
with open(os.path.join(HERE, "tabular.csv"), "w") as f:
    f.write("sepal_length,sepal_width,petal_length,petal_width,species\n")
    for i in range(150):
        label = i % 3
        values = [c + rng.gauss(0, 0.3) for c in centers[label]]
        f.write(",".join(f"{v:.2f}" for v in values) + f",{label}\n")
print(f"wrote {OUT} and tabular.csv")
