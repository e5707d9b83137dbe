#!/usr/bin/python3
"""torch.nn.GroupNorm forward and backward on [N, C] inputs, for fnn's group_norm parity test.

Usage: /usr/bin/python3 gen_layers.py OUT.txt
Exits with 77 (CTest's skip code) when torch cannot be imported.

Format (whitespace separated, float64 printed with repr, i.e. exactly):
  group_norm NAME N C GROUPS
  x N*C values, gamma C, beta C, dy N*C (the output gradient), then torch's y N*C, dx N*C, dgamma C, dbeta C
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


if __name__ == "__main__":
    main()
