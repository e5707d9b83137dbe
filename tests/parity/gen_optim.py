#!/usr/bin/python3
"""Trajectories of torch.optim optimizers and lr schedulers, for fnn's parity tests.

Usage: /usr/bin/python3 gen_optim.py OUT.txt
Exits with 77 (CTest's skip code used by fnn_parity_tests) when torch cannot be imported.

Format (whitespace separated text, floats printed with 9 significant digits = exact float32):
  optim NAME TYPE N STEPS NOPTS  then NOPTS pairs "key value"
  p N values (initial parameters)
  STEPS times: g N values (gradient fed to both), p N values (parameters after torch's step)
  sched NAME COUNT  then COUNT values (lr after t scheduler steps, t = 0..COUNT-1)
  plateau NAME COUNT NOPTS  then NOPTS pairs "key value", COUNT metrics, COUNT lrs (17 digits; the lr
      after each ReduceLROnPlateau.step(metric), starting from lr 0.1)
  lbfgs NAME PROBLEM N CALLS NOPTS  then NOPTS pairs "key value"; for PROBLEM quad: "A" N*N values and
      "b" N values (f = x'Ax/2 - b'x); "x" N values (start); CALLS times: "r LOSS EVALS ITERS" (the loss
      step(closure) returned, torch's func_evals and n_iter after it) and "x" N values. float64, 17 digits.
"""
import sys

try:
    import torch
except Exception as e:  # noqa: BLE001
    print(f"torch not importable ({e}); parity data not generated", file=sys.stderr)
    sys.exit(77)
import numpy as np


def f32(x):
    # Hyper-parameters as float32 values, so both sides start from the same numbers.
    return float(np.float32(x))


N = 67          # not a multiple of the register width: the scalar tail is exercised too
STEPS = 50

OPTIMS = [
    ("sgd_plain", "sgd", dict(lr=0.1)),
    ("sgd_momentum", "sgd", dict(lr=0.05, momentum=0.9)),
    ("sgd_dampening_wd", "sgd", dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("sgd_nesterov_wd", "sgd", dict(lr=0.05, momentum=0.8, nesterov=1, weight_decay=0.05)),
    ("adagrad", "adagrad", dict(lr=0.1)),
    ("adagrad_decay_init_wd", "adagrad", dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1,
                                              weight_decay=0.02)),
    ("rmsprop", "rmsprop", dict(lr=0.01)),
    ("rmsprop_centered_momentum", "rmsprop", dict(lr=0.01, alpha=0.9, centered=1, momentum=0.8)),
    ("rmsprop_centered_momentum_wd", "rmsprop", dict(lr=0.005, centered=1, momentum=0.5, weight_decay=0.1)),
    ("adam", "adam", dict(lr=0.01)),
    ("adam_wd", "adam", dict(lr=0.01, weight_decay=0.1, betas0=0.8, betas1=0.99)),
    ("adam_amsgrad", "adam", dict(lr=0.01, amsgrad=1)),
    ("adamw", "adamw", dict(lr=0.01)),
    ("adamw_amsgrad_wd", "adamw", dict(lr=0.01, weight_decay=0.1, amsgrad=1, eps=1e-6)),
    ("adamw_clip_norm", "adamw", dict(lr=0.01, max_grad_norm=1.0)),
    ("sgd_clip_value", "sgd", dict(lr=0.05, momentum=0.9, clip_value=0.5)),
    ("adadelta", "adadelta", dict(lr=1.0)),
    ("adadelta_rho_eps_wd", "adadelta", dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.05)),
]


def make_optimizer(kind, params, o):
    o = {k: f32(v) for k, v in o.items()}
    common = {k: o[k] for k in ("lr", "weight_decay") if k in o}
    if kind == "sgd":
        return torch.optim.SGD(params, momentum=o.get("momentum", 0.0), dampening=o.get("dampening", 0.0),
                               nesterov=bool(o.get("nesterov", 0)), **common)
    if kind == "adagrad":
        return torch.optim.Adagrad(params, lr_decay=o.get("lr_decay", 0.0),
                                   initial_accumulator_value=o.get("initial_accumulator_value", 0.0), **common)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, alpha=o.get("alpha", f32(0.99)), momentum=o.get("momentum", 0.0),
                                   centered=bool(o.get("centered", 0)), **common)
    if kind == "adadelta":
        return torch.optim.Adadelta(params, rho=o.get("rho", f32(0.9)), eps=o.get("eps", f32(1e-6)), **common)
    betas = (o.get("betas0", f32(0.9)), o.get("betas1", f32(0.999)))
    eps = o.get("eps", f32(1e-8))
    cls = torch.optim.Adam if kind == "adam" else torch.optim.AdamW
    return cls(params, betas=betas, eps=eps, amsgrad=bool(o.get("amsgrad", 0)), **common)


def fmt(t):
    return " ".join(f"{v:.9g}" for v in t.detach().numpy().ravel().tolist())


def write_optims(out):
    gen = torch.Generator().manual_seed(2024)
    for name, kind, o in OPTIMS:
        p = torch.randn(N, generator=gen, dtype=torch.float32).requires_grad_(True)
        opt = make_optimizer(kind, [p], o)
        out.write(f"optim {name} {kind} {N} {STEPS} {len(o)}\n")
        out.write(" ".join(f"{k} {f32(v):.9g}" for k, v in o.items()) + "\n")
        out.write("p " + fmt(p) + "\n")
        for s in range(STEPS):
            scale = 3.0 if "clip" in name else 1.0
            g = torch.randn(N, generator=gen, dtype=torch.float32) * scale
            out.write("g " + fmt(g) + "\n")
            p.grad = g.clone()
            if "max_grad_norm" in o:
                torch.nn.utils.clip_grad_norm_([p], f32(o["max_grad_norm"]))
            if "clip_value" in o:
                torch.nn.utils.clip_grad_value_([p], f32(o["clip_value"]))
            opt.step()
            out.write("p " + fmt(p) + "\n")


SCHED_STEPS = 1000
SCHEDS = [
    ("step", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=30, gamma=0.5)),
    ("multistep", lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[100, 300, 700], gamma=0.1)),
    ("exponential", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.995)),
    ("inverse_time", lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1.0 / (1.0 + 0.01 * t))),
    ("cosine", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=300, eta_min=1e-4)),
    ("restarts", lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=50, T_mult=2, eta_min=1e-5)),
    ("restarts_mult1", lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=70)),
    ("warmup_cosine", lambda o: torch.optim.lr_scheduler.SequentialLR(
        o, [torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=100),
            torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=900)], milestones=[100])),
    ("warmup_step", lambda o: torch.optim.lr_scheduler.SequentialLR(
        o, [torch.optim.lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=40),
            torch.optim.lr_scheduler.StepLR(o, step_size=100, gamma=0.5)], milestones=[40])),
]


def write_scheds(out):
    import warnings
    warnings.simplefilter("ignore")
    for name, make in SCHEDS:
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)
        sched = make(opt)
        values = []
        for _ in range(SCHED_STEPS):
            values.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        out.write(f"sched {name} {SCHED_STEPS}\n" + " ".join(f"{v:.17g}" for v in values) + "\n")


# ReduceLROnPlateau: metrics that improve, stall, wobble within the threshold and turn NaN.
PLATEAU_STEPS = 120
PLATEAUS = [
    ("min_rel", dict(patience=3)),
    ("min_abs_cooldown", dict(patience=2, threshold=0.05, threshold_mode=1, cooldown=4)),
    ("max_rel_min_lr", dict(mode=1, factor=0.5, patience=1, threshold=0.01, min_lr=0.004)),
    ("max_abs_eps", dict(mode=1, factor=0.3, patience=0, threshold=0.0, threshold_mode=1, eps=0.02)),
    ("defaults", dict()),
]


def plateau_metrics(gen, maximize):
    values = []
    level = 1.0
    for t in range(PLATEAU_STEPS):
        if t % 25 < 8:
            level *= 0.9  # improving
        noise = float(torch.rand(1, generator=gen)) * 0.02 - 0.01
        v = level * (1 + noise)
        if t in (60, 61):
            v = float("nan")
        values.append(-v if maximize else v)
    return values


def write_plateaus(out):
    gen = torch.Generator().manual_seed(7)
    for name, o in PLATEAUS:
        metrics = plateau_metrics(gen, o.get("mode", 0) == 1)
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([p], lr=0.1)
        kw = dict(o)
        kw["mode"] = "max" if kw.pop("mode", 0) == 1 else "min"
        kw["threshold_mode"] = "abs" if kw.pop("threshold_mode", 0) == 1 else "rel"
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
        lrs = []
        for m in metrics:
            sched.step(m)
            lrs.append(opt.param_groups[0]["lr"])
        out.write(f"plateau {name} {len(metrics)} {len(o)}\n")
        out.write(" ".join(f"{k} {v!r}" for k, v in o.items()) + "\n")
        out.write(" ".join(repr(v) for v in metrics) + "\n")
        out.write(" ".join(repr(v) for v in lrs) + "\n")


# L-BFGS in float64 on a convex quadratic and on the Rosenbrock function; several step(closure) calls each,
# so the history carries over between calls as it does in torch.
LBFGS_N = 12
LBFGS = [
    ("quad_default", "quad", 3, dict()),
    ("quad_history3_lr", "quad", 4, dict(lr=0.5, max_iter=7, history_size=3)),
    ("quad_wolfe", "quad", 2, dict(line_search=1)),
    ("rosenbrock_wolfe", "rosenbrock", 3, dict(line_search=1)),
    ("rosenbrock_wolfe_max_eval", "rosenbrock", 5, dict(line_search=1, max_iter=10, max_eval=12, history_size=5)),
    ("rosenbrock_plain_small_lr", "rosenbrock", 4, dict(lr=0.05, max_iter=15)),
    ("rosenbrock_tolerances", "rosenbrock", 4, dict(line_search=1, tolerance_grad=1e-3, tolerance_change=1e-4)),
]


def rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def dfmt(t):
    return " ".join(repr(v) for v in t.detach().numpy().ravel().tolist())


def write_lbfgs(out):
    gen = torch.Generator().manual_seed(99)
    n = LBFGS_N
    for name, problem, calls, o in LBFGS:
        if problem == "quad":
            m = torch.randn(n, n, generator=gen, dtype=torch.float64)
            a = m @ m.T / n + 0.1 * torch.eye(n, dtype=torch.float64)
            b = torch.randn(n, generator=gen, dtype=torch.float64)
            x = torch.randn(n, generator=gen, dtype=torch.float64).requires_grad_(True)
            f = lambda v: 0.5 * v @ (a @ v) - b @ v  # noqa: E731
        else:
            x = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1.2).requires_grad_(True)
            f = rosenbrock
        kw = {k: v for k, v in o.items() if k != "line_search"}
        if o.get("line_search", 0) == 1:
            kw["line_search_fn"] = "strong_wolfe"
        opt = torch.optim.LBFGS([x], **kw)
        out.write(f"lbfgs {name} {problem} {n} {calls} {len(o)}\n")
        out.write(" ".join(f"{k} {v!r}" for k, v in o.items()) + "\n")
        if problem == "quad":
            out.write("A " + dfmt(a) + "\n" + "b " + dfmt(b) + "\n")
        out.write("x " + dfmt(x) + "\n")

        def closure():
            opt.zero_grad()
            loss = f(x)
            loss.backward()
            return loss

        for _ in range(calls):
            loss = opt.step(closure)
            st = opt.state[x]
            out.write(f"r {float(loss)!r} {st['func_evals']} {st['n_iter']}\n")
            out.write("x " + dfmt(x) + "\n")


def main():
    torch.set_num_threads(1)
    with open(sys.argv[1], "w") as out:
        write_optims(out)
        write_scheds(out)
        write_plateaus(out)
        write_lbfgs(out)


if __name__ == "__main__":
    main()
