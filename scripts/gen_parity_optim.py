#!/usr/bin/python3
"""Writes tests/data/parity_optim.txt: PyTorch 1.13 reference values for sorix's losses,
optimizers and lr schedulers (read by tests/nn/test_parity_optim.cpp; torch is not needed at
test time). Run: /usr/bin/python3 scripts/gen_parity_optim.py

Format, one tensor per line:  <key> <dtype> <ndim> <dim0> ... <values...>   (values %.17g)
Configurations are named in the keys; the C++ test holds the same table of options.
"""
import math
import os

import torch

torch.set_num_threads(1)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "parity_optim.txt")
lines = []


def put(key, t):
    t = t.detach()
    dt = {torch.float64: "float64", torch.float32: "float32", torch.int64: "int64"}[t.dtype]
    vals = t.reshape(-1).tolist()
    fmt = (lambda v: "%d" % v) if t.dtype == torch.int64 else (lambda v: "%.17g" % v)
    lines.append(" ".join([key, dt, str(t.dim())] + [str(d) for d in t.shape] + [fmt(v) for v in vals]))


def det(shape, seed, scale=2.0, dtype=torch.float64):
    """Deterministic values (no RNG): the same formula as tests/support/gradcheck.hpp's randn_f64."""
    n = 1
    for d in shape:
        n *= d
    v = [scale * math.sin(1.3 * (i + 1) + 0.7 * seed) * math.cos(0.37 * i * seed + 0.1) for i in range(n)]
    return torch.tensor(v, dtype=torch.float64).reshape(shape).to(dtype)


RED = ["none", "mean", "sum"]


def loss_case(name, fn, inputs, grad_of):
    """fn(*inputs) for every reduction; writes inputs, outputs and grads of sum(out * gw)."""
    for k, t in inputs.items():
        put(f"{name}.{k}", t)
    for r in RED:
        ins = {k: (t.clone().requires_grad_(k in grad_of)) for k, t in inputs.items()}
        out = fn(ins, r)
        gw = det(out.shape, 5, 1.0, out.dtype) if out.dim() > 0 else torch.tensor(0.75, dtype=out.dtype)
        (out * gw).sum().backward()
        put(f"{name}.{r}.out", out)
        put(f"{name}.{r}.gw", gw)
        for k in grad_of:
            put(f"{name}.{r}.grad_{k}", ins[k].grad)


F = torch.nn.functional

# ---- losses -----------------------------------------------------------------------------------
x = det([4, 3], 1)
loss_case("mse", lambda a, r: F.mse_loss(a["input"], a["target"], reduction=r),
          {"input": x, "target": det([4, 3], 2)}, ["input", "target"])

xb = det([4, 3], 3, 3.0)
xb[0, 0], xb[0, 1], xb[1, 2] = 1000.0, -1000.0, 30.0
yb = torch.sigmoid(det([4, 3], 4))
yb[0, 0], yb[0, 1] = 1.0, 0.0
wb = det([3], 6).abs() + 0.5
pwb = det([3], 7).abs() + 0.25
loss_case("bce", lambda a, r: F.binary_cross_entropy_with_logits(a["input"], a["target"], reduction=r),
          {"input": xb, "target": yb}, ["input", "target"])
loss_case("bce_w", lambda a, r: F.binary_cross_entropy_with_logits(a["input"], a["target"], weight=a["weight"], reduction=r),
          {"input": xb, "target": yb, "weight": wb}, ["input", "target"])
loss_case("bce_pw", lambda a, r: F.binary_cross_entropy_with_logits(a["input"], a["target"], pos_weight=a["pos_weight"], reduction=r),
          {"input": xb, "target": yb, "pos_weight": pwb}, ["input", "target"])
loss_case("bce_w_pw", lambda a, r: F.binary_cross_entropy_with_logits(
    a["input"], a["target"], weight=a["weight"], pos_weight=a["pos_weight"], reduction=r),
    {"input": xb, "target": yb, "weight": wb, "pos_weight": pwb}, ["input", "target"])

xc = det([5, 4], 8, 3.0)
xc[4] = torch.tensor([1000.0, -1000.0, 0.5, 999.0])
tc = torch.tensor([1, 0, 3, 2, 1], dtype=torch.int64)
pc = torch.softmax(det([5, 4], 9), dim=1)
wc = det([4], 10).abs() + 0.5
loss_case("ce_idx", lambda a, r: F.cross_entropy(a["input"], a["target"], reduction=r),
          {"input": xc, "target": tc}, ["input"])
loss_case("ce_idx_w", lambda a, r: F.cross_entropy(a["input"], a["target"], weight=a["weight"], reduction=r),
          {"input": xc, "target": tc, "weight": wc}, ["input"])
loss_case("ce_prob", lambda a, r: F.cross_entropy(a["input"], a["target"], reduction=r),
          {"input": xc, "target": pc}, ["input", "target"])
loss_case("ce_prob_w", lambda a, r: F.cross_entropy(a["input"], a["target"], weight=a["weight"], reduction=r),
          {"input": xc, "target": pc, "weight": wc}, ["input", "target"])
loss_case("ce_idx_f32", lambda a, r: F.cross_entropy(a["input"], a["target"], weight=a["weight"], reduction=r),
          {"input": det([6, 5], 11, 3.0, torch.float32), "target": torch.tensor([4, 0, 1, 2, 3, 4]),
           "weight": (det([5], 12).abs() + 0.5).float()}, ["input"])

# ---- optimizers ---------------------------------------------------------------------------------
O = torch.optim
CONFIGS = {
    "sgd_plain": (lambda p: O.SGD(p, lr=0.1), torch.float64),
    "sgd_momentum": (lambda p: O.SGD(p, lr=0.1, momentum=0.9, dampening=0.1), torch.float64),
    "sgd_nesterov": (lambda p: O.SGD(p, lr=0.1, momentum=0.9, nesterov=True), torch.float64),
    "sgd_wd": (lambda p: O.SGD(p, lr=0.1, momentum=0.5, weight_decay=0.01), torch.float64),
    "adam": (lambda p: O.Adam(p, lr=0.01, foreach=False), torch.float64),
    "adam_wd": (lambda p: O.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, foreach=False), torch.float64),
    "adam_amsgrad": (lambda p: O.Adam(p, lr=0.01, amsgrad=True, foreach=False), torch.float64),
    "adamw": (lambda p: O.AdamW(p, lr=0.01, weight_decay=0.1, foreach=False), torch.float64),
    "adamw_amsgrad": (lambda p: O.AdamW(p, lr=0.01, amsgrad=True, foreach=False), torch.float64),
    "rmsprop": (lambda p: O.RMSprop(p, lr=0.01, foreach=False), torch.float64),
    "rmsprop_momentum": (lambda p: O.RMSprop(p, lr=0.01, momentum=0.9, weight_decay=0.01, foreach=False), torch.float64),
    "rmsprop_centered": (lambda p: O.RMSprop(p, lr=0.01, alpha=0.9, centered=True, foreach=False), torch.float64),
    "rmsprop_centered_momentum": (lambda p: O.RMSprop(p, lr=0.01, momentum=0.5, centered=True, foreach=False), torch.float64),
    "adam_f32": (lambda p: O.Adam(p, lr=0.01, amsgrad=True, weight_decay=0.01, foreach=False), torch.float32),
    "rmsprop_f32": (lambda p: O.RMSprop(p, lr=0.01, momentum=0.9, centered=True, foreach=False), torch.float32),
    "sgd_f32": (lambda p: O.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), torch.float32),
    "adagrad": (lambda p: O.Adagrad(p, lr=0.1, foreach=False), torch.float64),
    "adagrad_decay": (lambda p: O.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.5,
                                          eps=1e-6, foreach=False), torch.float64),
    "adagrad_f32": (lambda p: O.Adagrad(p, lr=0.05, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1,
                                        foreach=False), torch.float32),
    # Parameter groups: p0 with the defaults, p1 with its own options.
    "sgd_groups": (lambda p: O.SGD([{"params": [p[0]]}, {"params": [p[1]], "lr": 0.3, "momentum": 0.5}],
                                   lr=0.1, momentum=0.9), torch.float64),
    "adam_groups": (lambda p: O.Adam([{"params": [p[0]]}, {"params": [p[1]], "lr": 0.05, "weight_decay": 0.1,
                                                           "amsgrad": True}], lr=0.01, foreach=False), torch.float64),
    "adagrad_groups": (lambda p: O.Adagrad([{"params": [p[0]], "lr_decay": 0.1}, {"params": [p[1]], "lr": 0.2}],
                                           lr=0.05, foreach=False), torch.float32),
}
STEPS = 5
SHAPES = [[2, 3], [4]]
for name, (make, dtype) in CONFIGS.items():
    params = [det(s, 20 + k, 1.0, dtype).requires_grad_(True) for k, s in enumerate(SHAPES)]
    for k, p in enumerate(params):
        put(f"opt.{name}.p{k}.init", p)
    opt = make(params)
    for s in range(STEPS):
        for k, p in enumerate(params):
            # Magnitudes shrink over the steps so amsgrad's max matters.
            p.grad = det(SHAPES[k], 30 + 7 * s + k, 1.5 - 0.25 * s, dtype)
            put(f"opt.{name}.p{k}.grad{s}", p.grad)
        opt.step()
        for k, p in enumerate(params):
            put(f"opt.{name}.p{k}.step{s}", p)

# ---- schedulers ---------------------------------------------------------------------------------
S = O.lr_scheduler


def sched_case(name, make, steps, metrics=None, lr0=False):
    """lr0: also writes the lr after construction (schedules that change it at epoch 0)."""
    p = torch.zeros(1, requires_grad=True)
    opt = O.SGD([p], lr=0.1)
    sch = make(opt)
    if lr0:
        put(f"sched.{name}.lr0", torch.tensor([opt.param_groups[0]["lr"]], dtype=torch.float64))
    lrs = []
    for s in range(steps):
        opt.step()
        if metrics is None:
            sch.step()
        else:
            sch.step(metrics[s])
        lrs.append(opt.param_groups[0]["lr"])
    put(f"sched.{name}.lr", torch.tensor(lrs, dtype=torch.float64))


sched_case("step", lambda o: S.StepLR(o, step_size=3, gamma=0.5), 12)
sched_case("exp", lambda o: S.ExponentialLR(o, gamma=0.9), 12)
sched_case("cosine", lambda o: S.CosineAnnealingLR(o, T_max=5, eta_min=0.01), 17)
metrics = [1.0, 0.9, 0.95, 0.91, 0.92, 0.93, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
put("sched.plateau_min.metrics", torch.tensor(metrics, dtype=torch.float64))
sched_case("plateau_min", lambda o: S.ReduceLROnPlateau(o, mode="min", factor=0.5, patience=2, threshold=0.01,
                                                        cooldown=1, min_lr=0.02), len(metrics), metrics)
metrics_max = [0.1, 0.2, 0.25, 0.2, 0.1, 0.3, 0.3, 0.3, 0.3, 0.3, 0.31, 0.3, 0.3]
put("sched.plateau_max.metrics", torch.tensor(metrics_max, dtype=torch.float64))
sched_case("plateau_max", lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.1, patience=1, threshold=0.05,
                                                        threshold_mode="abs"), len(metrics_max), metrics_max)

# Exact-equality cases (tests/nn/test_parity_optim.cpp compares these bit for bit).
sched_case("lambda", lambda o: S.LambdaLR(o, lambda e: 1.0 / (1.0 + 0.5 * e)), 10, lr0=True)
sched_case("multistep", lambda o: S.MultiStepLR(o, milestones=[2, 5, 9], gamma=0.3), 12, lr0=True)
sched_case("linear_up", lambda o: S.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=4), 8, lr0=True)
sched_case("linear_down", lambda o: S.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=5), 8, lr0=True)
sched_case("onecycle_cos", lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=20, cycle_momentum=False), 20, lr0=True)
sched_case("onecycle_linear", lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=16, pct_start=0.25,
                                                     anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0,
                                                     cycle_momentum=False), 15, lr0=True)  # step 16: negative
sched_case("onecycle_three", lambda o: S.OneCycleLR(o, max_lr=2.0, total_steps=20, pct_start=0.3, three_phase=True,
                                                    cycle_momentum=False), 20, lr0=True)
sched_case("sequential", lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=3),
                                                      S.ExponentialLR(o, gamma=0.9)], milestones=[3]), 10, lr0=True)
sched_case("sequential3", lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=4),
                                                       S.CosineAnnealingLR(o, T_max=6, eta_min=0.001),
                                                       S.StepLR(o, step_size=2, gamma=0.5)], milestones=[4, 10]),
           16, lr0=True)

with open(OUT, "w") as f:
    f.write("# PyTorch %s reference values; generated by scripts/gen_parity_optim.py\n" % torch.__version__)
    f.write("\n".join(lines) + "\n")
print("wrote", OUT, os.path.getsize(OUT), "bytes,", len(lines), "tensors")
