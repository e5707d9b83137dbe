"""PyTorch side of the fnn_train interop tests (run with Debian's /usr/bin/python3, torch 1.13), through
python/fnn_torch.py, the module users are pointed at.

  torch_interop.py make DIR    writes DIR/torch_model.safetensors (state_dict of a random
                               nn.Sequential(Linear(784,256), BatchNorm1d(256), GELU(), Linear(256,10)))
                               and DIR/torch_io.safetensors (inputs "x" and eval-mode logits "logits")
  torch_interop.py check DIR   loads DIR/fnn_model.safetensors into the same nn.Sequential (load_into, strict)
                               and compares its eval-mode logits on DIR/fnn_io.safetensors "x" with "logits"
  torch_interop.py main DIR    the fnn-train round trip: rebuilds the network of DIR/run/model.safetensors with
                               sequential_from_checkpoint and compares its logits on DIR/fnn_io.safetensors "x"
                               with fnn's; then trains it 3 SGD steps on "x" / "y" and writes
                               DIR/torch_tuned.safetensors (with the checkpoint's metadata) and
                               DIR/torch_io.safetensors ("x", the tuned model's eval-mode "logits")
Exit 0 when the logits agree within 1e-5 (relative to the largest logit, at least 1).
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python"))
import fnn_torch  # noqa: E402


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
    fnn_torch.save_state_dict(f"{d}/torch_model.safetensors", m.state_dict())
    fnn_torch.save_state_dict(f"{d}/torch_io.safetensors", {"x": x, "logits": y})
    return 0


def agree(what, y, expected):
    err = (y - expected).abs().max().item()
    tol = 1e-5 * max(1.0, expected.abs().max().item())
    print(f"{what}: max abs difference {err:.3g} (tolerance {tol:.3g})")
    return err <= tol


def check(d):
    m = model()
    fnn_torch.load_into(m, f"{d}/fnn_model.safetensors")
    m.eval()
    io, _ = fnn_torch.load_state_dict(f"{d}/fnn_io.safetensors")
    with torch.no_grad():
        y = m(io["x"])
    print(f"num_batches_tracked {int(m[1].num_batches_tracked)}")
    return 0 if agree("torch vs fnn logits", y, io["logits"]) else 1


def main_job(d):
    m, metadata = fnn_torch.sequential_from_checkpoint(f"{d}/run/model.safetensors")
    io, _ = fnn_torch.load_state_dict(f"{d}/fnn_io.safetensors")
    with torch.no_grad():
        y = m(io["x"])
    if not agree("fnn-train checkpoint, torch vs fnn logits", y, io["logits"]):
        return 1
    # Fine-tune in torch: train mode moves the weights, the running statistics and the batch counters.
    torch.manual_seed(5)
    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(m(io["x"]), io["y"]).backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        y = m(io["x"])
    fnn_torch.save_state_dict(f"{d}/torch_tuned.safetensors", m.state_dict(), metadata)
    fnn_torch.save_state_dict(f"{d}/torch_io.safetensors", {"x": io["x"], "logits": y})
    return 0


if __name__ == "__main__":
    mode, d = sys.argv[1], sys.argv[2]
    sys.exit({"make": make, "check": check, "main": main_job}[mode](d))
