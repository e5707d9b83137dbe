"""Byte-level safetensors interop with PyTorch, without the safetensors package (Debian has none).

    torch_safetensors.py write PATH   builds tensors with torch and writes them by hand (struct + json)
    torch_safetensors.py check PATH   reads a file written by fnn by hand (torch.frombuffer) and compares

Both sides use the same literal values as test_torch_interop.cpp. Exit code 0 means the check passed.
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32, "BF16": torch.bfloat16}


def expected():
    return {
        "w": torch.tensor([[0.1, -2.5, 3.25], [1e-38, -0.0, 65504.0]], dtype=torch.float32),
        "b": torch.arange(5, dtype=torch.float64) / 3,
        "idx": torch.tensor([-3, 0, 2**40], dtype=torch.int64),
        "scalar": torch.tensor(7.5, dtype=torch.float32),
        "h": torch.tensor([1.0, -2.0, 0.5], dtype=torch.bfloat16),
    }


def raw_bytes(t):
    return bytes(t.contiguous().reshape(-1).view(torch.uint8).tolist())


def write(path):
    header, data = {"__metadata__": {"format": "pt", "source": "torch"}}, b""
    names = {v: k for k, v in DTYPES.items()}
    for name, t in expected().items():
        blob = raw_bytes(t)
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header).encode("utf-8")  # deliberately not padded: readers must not require it
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def check(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    if n % 8 != 0:
        print(f"header length {n} is not a multiple of 8")
        return 1
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    if header.pop("__metadata__", None) != {"format": "pt", "source": "fnn"}:
        print("metadata differs")
        return 1
    want = expected()
    if sorted(header) != sorted(want):
        print(f"tensor names {sorted(header)} != {sorted(want)}")
        return 1
    for name, info in header.items():
        begin, end = info["data_offsets"]
        got = torch.frombuffer(bytearray(data[begin:end]), dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        if got.dtype != want[name].dtype or not torch.equal(got, want[name]):
            print(f"tensor {name}: got {got}, expected {want[name]}")
            return 1
        if torch.is_floating_point(got) and not torch.equal(torch.signbit(got), torch.signbit(want[name])):
            print(f"tensor {name}: signs of zeros differ")
            return 1
    return 0


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "write":
        write(path)
        sys.exit(0)
    sys.exit(check(path))
