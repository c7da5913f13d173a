"""Fashion-MNIST from Debian's dataset-fashion-mnist as numpy arrays (pixels in [0, 1], shape [N, 1, 28, 28]),
for the peer scripts; no torch needed."""
import gzip
import os
import struct

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    rank = magic & 0xFF
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def arrays(split, limit=None):
    """Images [N, 1, 28, 28] float32 in [0, 1] and labels [N] int64 of 'train' or 't10k'."""
    x = idx(os.path.join(DATA, f"{split}-images-idx3-ubyte.gz"))
    y = idx(os.path.join(DATA, f"{split}-labels-idx1-ubyte.gz"))
    if limit:
        x, y = x[:limit], y[:limit]
    return (x.astype(np.float32) / 255)[:, None], y.astype(np.int64)
