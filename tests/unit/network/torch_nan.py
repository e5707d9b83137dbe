#!/usr/bin/python3
"""NaN through torch's activations, for fnn's nan.cpp (parity of NaN propagation).

Usage: /usr/bin/python3 torch_nan.py  (prints to stdout; float64 throughout)
  act NAME y0 y1 y2 dx0 dx1 dx2 dleft   y = f(x), dx = backward with dy = 1 at x = [nan, -1, 1.5];
                                        dleft = backward at x = -1 with dy = nan
  maxout y0 y1 y2 dx0 .. dx8            max over groups of 3 of [1, nan, 3, nan, 2, nan, 1, 5, 2], dy = [10, 20, 30]
  prelu y0 y1 y2 dx0 dx1 dx2 da         PReLU(a = 0.25) at x = [nan, -1, 1.5], dy = 1
"""
import torch
import torch.nn.functional as F

nan = float("nan")
ACTS = {
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "elu": F.elu,
    "selu": F.selu,
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "swish": F.silu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}


def row(*values):
    return " ".join(repr(float(v)) for v in values)


for name, f in ACTS.items():
    x = torch.tensor([nan, -1.0, 1.5], dtype=torch.float64, requires_grad=True)
    y = f(x)
    y.sum().backward()
    left = torch.tensor([-1.0], dtype=torch.float64, requires_grad=True)
    f(left).backward(torch.tensor([nan], dtype=torch.float64))
    print("act", name, row(*y.tolist(), *x.grad.tolist(), left.grad.item()))

x = torch.tensor([1, nan, 3, nan, 2, nan, 1, 5, 2], dtype=torch.float64, requires_grad=True)
values, _ = x.view(3, 3).max(dim=1)
values.backward(torch.tensor([10.0, 20.0, 30.0], dtype=torch.float64))
print("maxout", row(*values.tolist(), *x.grad.tolist()))

a = torch.tensor([0.25], dtype=torch.float64, requires_grad=True)
x = torch.tensor([nan, -1.0, 1.5], dtype=torch.float64, requires_grad=True)
y = F.prelu(x, a)
y.sum().backward()
print("prelu", row(*y.tolist(), *x.grad.tolist(), a.grad.item()))
