"""Byte-level safetensors interop with PyTorch, through python/fnn_torch.py (Debian has no safetensors package).

    torch_safetensors.py write PATH   builds tensors with torch and writes them with fnn_torch.save_state_dict
    torch_safetensors.py check PATH   reads a file written by fnn with fnn_torch.load_state_dict and compares

Both sides use the same literal values as test_torch_interop.cpp. Exit code 0 means the check passed. (fnn's
acceptance of unpadded headers, which this module never writes, is tested in test_safetensors.cpp.)
"""
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python"))
import fnn_torch  # noqa: E402


def expected():
    return {
        "w": torch.tensor([[0.1, -2.5, 3.25], [1e-38, -0.0, 65504.0]], dtype=torch.float32),
        "b": torch.arange(5, dtype=torch.float64) / 3,
        "idx": torch.tensor([-3, 0, 2**40], dtype=torch.int64),
        "scalar": torch.tensor(7.5, dtype=torch.float32),
        "h": torch.tensor([1.0, -2.0, 0.5], dtype=torch.bfloat16),
    }


def write(path):
    fnn_torch.save_state_dict(path, expected(), {"format": "pt", "source": "torch"})


def check(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    if n % 8 != 0:  # fnn pads, as the reference writer does, so that the data section is aligned
        print(f"header length {n} is not a multiple of 8")
        return 1
    got, metadata = fnn_torch.load_state_dict(path)
    if metadata != {"format": "pt", "source": "fnn"}:
        print(f"metadata differs: {metadata}")
        return 1
    want = expected()
    if sorted(got) != sorted(want):
        print(f"tensor names {sorted(got)} != {sorted(want)}")
        return 1
    for name, t in got.items():
        if t.dtype != want[name].dtype or not torch.equal(t, want[name]):
            print(f"tensor {name}: got {t}, expected {want[name]}")
            return 1
        if torch.is_floating_point(t) and not torch.equal(torch.signbit(t), torch.signbit(want[name])):
            print(f"tensor {name}: signs of zeros differ")
            return 1
    return 0


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "write":
        write(path)
        sys.exit(0)
    sys.exit(check(path))
