#!/usr/bin/env python3
"""Writes Tests/Fixtures/inputs/: small PNG and JPEG files and PIL's reading of them, for InputFilesTests.

Images (seeded random pixels, a few pixels wide so the expected values stay small):
  gray8.png (L), gray_alpha.png (LA), rgb8.png (RGB), rgba8.png (RGBA), palette.png (P),
  palette_trns.png (P with a transparent palette entry), gray1.png (1-bit), gray16.png (16-bit gray),
  rgb16.png and interlaced.png (written by hand below: PIL cannot save 16-bit RGB or Adam7),
  rgb.jpg and gray.jpg (quality 90), huge.png (an IHDR of 100000 x 100000 RGB and 16 bytes of data);
.npy files written by numpy: x_f4.npy [2, 1, 3, 4] float32 (also as format 2.0 and 3.0), x_f8.npy
  [3, 5] float64, x_u1.npy [2, 3] uint8, y_i8.npy [2] int64, y_u2.npy [3] uint16, fortran.npy
  (x_f8 in Fortran order) and big_endian.npy (x_f8 as >f8).
expected.json holds, per image, PIL's decode as integers, channels first (np.array of the image in
RGB, RGBA, L or LA as the file's mode maps; "scale" 255 or 65535), and:
  "luma": PIL's convert("L") of rgb8.png;
  "resize": PIL's Image.resize(size, Image.BILINEAR) of each channel of an image taken as floats in
  [0, 1] (mode "F", so no rounding to 8 bits), for a downscale and an upscale, and of the same
  channels in mode "L" (rounded to 8 bits);
  "npy": each array's shape and values.
Tests read these files and never need Python.

    python3 Tests/Fixtures/make_inputs.py      (needs numpy and Pillow)
"""
import json
import os
import struct
import zlib

import numpy as np
from PIL import Image

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "inputs")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20261203)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path, ihdr, raw):
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


expected = {}


def record(name, image):
    """PIL's decode of the file, channels first, as integers."""
    with Image.open(os.path.join(out, name)) as im:
        mode = im.mode
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif mode == "1":
            im = im.convert("L")
        a = np.array(im)
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    scale = 65535 if image == "16" else 255
    expected[name] = {"shape": list(a.shape), "pixels": a.astype(np.int64).ravel().tolist(), "scale": scale, "mode": mode}


# 8-bit images saved by PIL.
Image.fromarray(rng.integers(0, 256, (7, 5), dtype=np.uint8), "L").save(os.path.join(out, "gray8.png"))
Image.fromarray(rng.integers(0, 256, (6, 4, 2), dtype=np.uint8), "LA").save(os.path.join(out, "gray_alpha.png"))
rgb = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
Image.fromarray(rgb, "RGB").save(os.path.join(out, "rgb8.png"))
Image.fromarray(rng.integers(0, 256, (5, 6, 4), dtype=np.uint8), "RGBA").save(os.path.join(out, "rgba8.png"))
palette = Image.fromarray(rng.integers(0, 256, (6, 7, 3), dtype=np.uint8), "RGB").quantize(colors=5)
palette.save(os.path.join(out, "palette.png"))
palette.save(os.path.join(out, "palette_trns.png"), transparency=2)
Image.fromarray(rng.integers(0, 2, (5, 9), dtype=np.uint8) * 255, "L").convert("1").save(os.path.join(out, "gray1.png"))
gray16 = rng.integers(0, 65536, (4, 6), dtype=np.uint16)
Image.fromarray(gray16).save(os.path.join(out, "gray16.png"))  # mode I;16

# 16-bit RGB, written by hand (colour type 2, bit depth 16, big-endian samples, filter 0 per row).
rgb16 = rng.integers(0, 65536, (3, 5, 3), dtype=np.uint16)
raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(rgb16.shape[0]))
write_png(os.path.join(out, "rgb16.png"), struct.pack(">IIBBBBB", 5, 3, 16, 2, 0, 0, 0), raw)

# 8-bit RGB, Adam7-interlaced, written by hand: the seven passes' subimages, each row with filter 0.
inter = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
raw = b""
for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
    sub = inter[y0::dy, x0::dx]
    if sub.size:
        raw += b"".join(b"\x00" + sub[y].tobytes() for y in range(sub.shape[0]))
write_png(os.path.join(out, "interlaced.png"), struct.pack(">IIBBBBB", 11, 9, 8, 2, 0, 0, 1), raw)

# JPEGs: a smooth picture with some noise (so the coding is not trivial), quality 90, 4:2:0.
yy, xx = np.mgrid[0:12, 0:16]
photo = np.stack([xx * 15, yy * 20, (xx + yy) * 8], axis=2) + rng.integers(0, 30, (12, 16, 3))
Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8), "RGB").save(os.path.join(out, "rgb.jpg"), quality=90)
Image.fromarray(np.clip(photo[:, :, 0], 0, 255).astype(np.uint8), "L").save(os.path.join(out, "gray.jpg"), quality=90)

# A header that announces 100000 x 100000 RGB pixels, and a few bytes of pixel data.
with open(os.path.join(out, "huge.png"), "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(16))) + chunk(b"IEND", b""))

for name in ["gray8.png", "gray_alpha.png", "rgb8.png", "rgba8.png", "palette.png", "palette_trns.png", "gray1.png",
             "interlaced.png", "rgb.jpg", "gray.jpg"]:
    record(name, "8")
for name in ["gray16.png", "rgb16.png"]:
    record(name, "16")
assert expected["gray16.png"]["pixels"] == gray16.astype(np.int64).ravel().tolist()
expected["rgb16.png"]["pixels"] = rgb16.transpose(2, 0, 1).astype(np.int64).ravel().tolist()  # PIL reads it as 8-bit RGB
expected["rgb16.png"]["shape"] = [3, 3, 5]

with Image.open(os.path.join(out, "rgb8.png")) as im:
    expected["luma"] = {"file": "rgb8.png", "pixels": np.array(im.convert("L")).astype(np.int64).ravel().tolist()}

# Resizes of rgb8.png (10 x 12, height x width): down to 4 x 5 and up to 13 x 17.
resizes = []
for h, w in [(4, 5), (13, 17), (10, 7)]:
    floats, bytes8 = [], []
    for c in range(3):
        channel = rgb[:, :, c]
        f = Image.fromarray(channel.astype(np.float32) / 255, "F").resize((w, h), Image.BILINEAR)
        floats += np.array(f).astype(np.float64).ravel().tolist()
        b = Image.fromarray(channel, "L").resize((w, h), Image.BILINEAR)
        bytes8 += np.array(b).astype(np.int64).ravel().tolist()
    resizes.append({"file": "rgb8.png", "height": h, "width": w, "floats": floats, "uint8": bytes8})
expected["resize"] = resizes

# .npy files as numpy writes them, and their values (as float64 or integers) in C order.
arrays = {
    "x_f4.npy": rng.normal(0, 1, (2, 1, 3, 4)).astype(np.float32),
    "x_f8.npy": rng.normal(0, 1, (3, 5)),
    "x_u1.npy": rng.integers(0, 256, (2, 3), dtype=np.uint8),
    "y_i8.npy": np.array([1, 0], dtype=np.int64),
    "y_u2.npy": np.array([2, 0, 1], dtype=np.uint16),
}
for name, a in arrays.items():
    np.save(os.path.join(out, name), a)
with open(os.path.join(out, "x_f4_v2.npy"), "wb") as f:
    np.lib.format.write_array(f, arrays["x_f4.npy"], version=(2, 0))
with open(os.path.join(out, "x_f4_v3.npy"), "wb") as f:
    np.lib.format.write_array(f, arrays["x_f4.npy"], version=(3, 0))
np.save(os.path.join(out, "fortran.npy"), np.asfortranarray(arrays["x_f8.npy"]))
np.save(os.path.join(out, "big_endian.npy"), arrays["x_f8.npy"].astype(">f8"))
expected["npy"] = {name: {"shape": list(a.shape), "values": a.ravel().tolist()} for name, a in arrays.items()}

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f, separators=(",", ":"))
    f.write("\n")
