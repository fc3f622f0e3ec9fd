"""Appendix A (training faster): one training step in bfloat16 mixed precision."""


import torch
from torch import nn

from course_utils.exercises import Exercise, _short, call, close, expect


def _model() -> nn.Module:
    with torch.random.fork_rng():  # the same weights every time; the caller's RNG untouched
        torch.manual_seed(13)
        return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))


def _reference_step(model, optimizer, loss_fn, x, y) -> float:
    optimizer.zero_grad()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _check_q1(fn):
    expect(callable(fn) and not isinstance(fn, type),
           f"`answer` should be your function train_step_bf16 (no parentheses), got "
           f"{_short(fn)}.")
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g))
               for _ in range(2)]
    model, twin = _model(), _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    twin_optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    seen = []
    model[0].register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    for step, (x, y) in enumerate(batches, start=1):
        seen.clear()
        result = call("train_step_bf16(model, optimizer, loss_fn, x, y)", fn, model, optimizer,
                      loss_fn, x.clone(), y.clone())
        want = _reference_step(twin, twin_optimizer, loss_fn, x, y)
        expect(seen, "train_step_bf16 never ran the model.")
        expect(all(p.dtype == torch.float32 for p in model.parameters()),
               "the weights are no longer float32: keep them float32 (no model.to(bfloat16) "
               "or model.half()) — autocast computes each operation in bfloat16 and the "
               "optimizer updates float32 weights.")
        expect(seen[0] != torch.float16, "the forward pass ran in float16; this appendix uses "
               "dtype=torch.bfloat16 (the same range as float32, no GradScaler needed).")
        expect(seen[0] == torch.bfloat16,
               f"the first Linear computed in {str(seen[0]).replace('torch.', '')}, not "
               "bfloat16: put model(x) and the loss inside `with torch.autocast("
               "device_type='cpu', dtype=torch.bfloat16):`.")
        expect(isinstance(result, float),
               f"return the loss as a Python float (loss.item()), got {type(result).__name__}.")
        expect(close(result, want, digits=2),
               f"the returned loss {result:.4f} is not the loss of this batch before the step "
               f"({want:.4f}).")
        moved = all(torch.allclose(a, b, atol=2e-3)
                    for a, b in zip(model.parameters(), twin.parameters(), strict=True))
        expect(moved or step > 1 or any(p.grad is not None for p in model.parameters()),
               "no gradient reached the weights: call loss.backward() (outside the autocast "
               "block is fine) before optimizer.step().")
        expect(moved, f"after call {step} the weights are not those of {step} SGD step(s): "
               "zero_grad(), forward under autocast, backward(), step() — once each.")


def _variant(*, autocast=True, dtype=torch.bfloat16, weights_bf16=False, zero_grad=True):
    def train_step_bf16(model, optimizer, loss_fn, x, y):
        if zero_grad:
            optimizer.zero_grad()
        if weights_bf16:
            model.to(torch.bfloat16)
            x = x.to(torch.bfloat16)
        with torch.autocast(device_type="cpu", dtype=dtype, enabled=autocast):
            loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()
    return train_step_bf16


q1 = Exercise(
    "A.1",
    "Mixed precision by hand: write `train_step_bf16(model, optimizer, loss_fn, x, y)` that "
    "does ONE training step with the forward pass and the loss under "
    "`torch.autocast(device_type='cpu', dtype=torch.bfloat16)` (the weights stay float32), "
    "then backward and the optimizer step, and returns the loss as a Python float. The "
    "checker runs it twice on a small model and batches of its own (on the CPU) and compares "
    "with the same steps done by hand. Assign the function to `answer`.",
    _check_q1,
    hint_text="optimizer.zero_grad(); with torch.autocast(device_type='cpu', "
    "dtype=torch.bfloat16): loss = loss_fn(model(x), y); then, after the block, "
    "loss.backward(); optimizer.step(); return loss.item().",
    solution_code="""
        import torch

        def train_step_bf16(model, optimizer, loss_fn, x, y):
            optimizer.zero_grad()
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                loss = loss_fn(model(x), y)  # each operation in bfloat16 where it is safe
            loss.backward()  # gradients reach the float32 weights
            optimizer.step()
            return loss.item()

        answer = train_step_bf16
    """,
    wrong=[_variant(autocast=False), _variant(dtype=torch.float16), _variant(weights_bf16=True),
           _variant(zero_grad=False), "torch.autocast"],
    time_limit=30.0,
)
