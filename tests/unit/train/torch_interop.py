"""PyTorch side of the fnn_train interop tests (run with Debian's /usr/bin/python3, torch 1.13).

  torch_interop.py make DIR    writes DIR/torch_model.safetensors (state_dict of a random
                               nn.Sequential(Linear(784,256), BatchNorm1d(256), GELU(), Linear(256,10)))
                               and DIR/torch_io.safetensors (inputs "x" and eval-mode logits "logits")
  torch_interop.py check DIR   loads DIR/fnn_model.safetensors into the same nn.Sequential (strict) and
                               compares its eval-mode logits on DIR/fnn_io.safetensors "x" with "logits";
                               exit 0 when they agree within 1e-5

There is no safetensors package on Debian, so the format (8-byte little-endian header length, JSON
header, raw little-endian data) is written and read by hand here.
"""
import json
import struct
import sys

import numpy as np
import torch
from torch import nn

DTYPES = {"F32": np.float32, "I64": np.int64, "F64": np.float64}


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        a = np.frombuffer(body[b:e], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(a.reshape(info["shape"]).astype(DTYPES[info["dtype"]]))
    return out


def model():
    return nn.Sequential(nn.Linear(784, 256), nn.BatchNorm1d(256), nn.GELU(), nn.Linear(256, 10))


def make(d):
    torch.manual_seed(1234)
    m = model()
    with torch.no_grad():  # non-trivial batch-norm state, so eval mode really uses it
        m[1].weight.uniform_(0.5, 1.5)
        m[1].bias.uniform_(-0.5, 0.5)
        m[1].running_mean.uniform_(-0.3, 0.3)
        m[1].running_var.uniform_(0.2, 2.0)
        m[1].num_batches_tracked.fill_(17)
    m.eval()
    x = torch.rand(7, 784)
    with torch.no_grad():
        y = m(x)
    write_safetensors(f"{d}/torch_model.safetensors", m.state_dict())
    write_safetensors(f"{d}/torch_io.safetensors", {"x": x, "logits": y})


def check(d):
    m = model()
    sd = read_safetensors(f"{d}/fnn_model.safetensors")
    m.load_state_dict(sd, strict=True)
    m.eval()
    io = read_safetensors(f"{d}/fnn_io.safetensors")
    with torch.no_grad():
        y = m(io["x"])
    err = (y - io["logits"]).abs().max().item()
    tol = 1e-5 * max(1.0, io["logits"].abs().max().item())
    print(f"torch vs fnn logits: max abs difference {err:.3g} (tolerance {tol:.3g}); "
          f"num_batches_tracked {int(m[1].num_batches_tracked)}")
    return 0 if err <= tol else 1


if __name__ == "__main__":
    mode, d = sys.argv[1], sys.argv[2]
    if mode == "make":
        make(d)
        sys.exit(0)
    sys.exit(check(d))
