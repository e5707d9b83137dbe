#!/usr/bin/python3
"""torch.nn.GroupNorm forward and backward on [N, C] inputs, and a frozen BatchNorm1d (eval() inside a training
model, requires_grad_(False)) between two Linear layers, for fnn's layer parity test.

Usage: /usr/bin/python3 gen_layers.py OUT.txt
Exits with 77 (CTest's skip code) when torch cannot be imported.

Format (whitespace separated, float64 printed with repr, i.e. exactly):
  group_norm NAME N C GROUPS
  x N*C values, gamma C, beta C, dy N*C (the output gradient), then torch's y N*C, dx N*C, dgamma C, dbeta C
  frozen_batch_norm NAME N IN HIDDEN OUT
  x, W0, b0, gamma, beta, running_mean, running_var, W3, b3, dy (inputs), then torch's y, dx, dW0, db0, dW3, db3,
  running_mean and running_var after the step, num_batches_tracked (before = after = 7)
"""
import sys

try:
    import torch
except Exception as e:  # noqa: BLE001
    print(f"torch not importable ({e}); parity data not generated", file=sys.stderr)
    sys.exit(77)

CASES = [
    ("g3_c12", 5, 12, 3),
    ("g1_c12", 4, 12, 1),        # one group: layer norm
    ("g6_c6", 3, 6, 6),          # groups of one feature: instance-norm case
    ("g4_c20_offset", 7, 20, 4),  # inputs far from zero: the variance must not cancel
]


def row(t):
    return " ".join(repr(v) for v in t.detach().reshape(-1).tolist())


def main():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(15)
    with open(sys.argv[1], "w") as out:
        for name, n, c, groups in CASES:
            scale, offset = (3.0, 100.0) if "offset" in name else (1.5, 0.0)
            x = (torch.randn(n, c, generator=gen, dtype=torch.float64) * scale + offset).requires_grad_(True)
            layer = torch.nn.GroupNorm(groups, c).double()
            with torch.no_grad():
                layer.weight.copy_(torch.randn(c, generator=gen, dtype=torch.float64))
                layer.bias.copy_(torch.randn(c, generator=gen, dtype=torch.float64))
            dy = torch.randn(n, c, generator=gen, dtype=torch.float64)
            y = layer(x)
            y.backward(dy)
            out.write(f"group_norm {name} {n} {c} {groups}\n")
            for t in (x, layer.weight, layer.bias, dy, y, x.grad, layer.weight.grad, layer.bias.grad):
                out.write(row(t) + "\n")
        frozen_batch_norm(out, gen)


def frozen_batch_norm(out, gen):
    """Linear, BatchNorm1d (frozen: eval() and no grad), GELU, Linear in train mode; the batch norm must normalize
    with its running statistics, leave them alone and pass the eval-mode gradient through."""
    n, d_in, hidden, d_out = 8, 6, 5, 3
    model = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.BatchNorm1d(hidden), torch.nn.GELU(),
                                torch.nn.Linear(hidden, d_out)).double()
    bn = model[1]
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
        bn.running_mean.copy_(torch.randn(hidden, generator=gen, dtype=torch.float64))
        bn.running_var.copy_(torch.rand(hidden, generator=gen, dtype=torch.float64) + 0.5)
        bn.num_batches_tracked.fill_(7)
    model.train()
    bn.eval()
    bn.weight.requires_grad_(False)
    bn.bias.requires_grad_(False)
    x = (torch.randn(n, d_in, generator=gen, dtype=torch.float64) * 1.5).requires_grad_(True)
    dy = torch.randn(n, d_out, generator=gen, dtype=torch.float64)
    inputs = [x, model[0].weight, model[0].bias, bn.weight, bn.bias, bn.running_mean.clone(), bn.running_var.clone(),
              model[3].weight, model[3].bias, dy]
    y = model(x)
    y.backward(dy)
    assert bn.weight.grad is None and bn.bias.grad is None
    out.write(f"frozen_batch_norm linear_bn_gelu_linear {n} {d_in} {hidden} {d_out}\n")
    for t in inputs + [y, x.grad, model[0].weight.grad, model[0].bias.grad, model[3].weight.grad, model[3].bias.grad,
                       bn.running_mean, bn.running_var]:
        out.write(row(t) + "\n")
    out.write(f"{int(bn.num_batches_tracked)}\n")


if __name__ == "__main__":
    main()
