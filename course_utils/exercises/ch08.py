"""Chapter 8 (P23–P24): losses by hand, one training step."""

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.exercises import Exercise, as_number, call, close, expect


def _number(answer):
    return float(as_number(answer))


SCORES = [1.0, 2.0, 0.5]


def _check_q1(answer):
    value = _number(answer)
    x = torch.tensor([SCORES])
    expected = F.cross_entropy(x, torch.tensor([2])).item()
    expect(not math.isclose(value, F.cross_entropy(x, torch.tensor([1])).item(), abs_tol=1e-3),
           "that is the loss for class 1; the target class is 2 (counting from 0).")
    expect(value > 0, "a cross-entropy loss is never negative: −x[class] + log(Σ exp(x_j)).")
    expect(math.isclose(value, expected, abs_tol=1e-3),
           f"{value:.4f} is off: loss = −x[class] + log(exp(x0) + exp(x1) + exp(x2)).")


q1 = Exercise(
    "8.1",
    f"A network outputs the scores {SCORES} for three classes and the true class is 2. "
    "Compute nn.CrossEntropyLoss by hand (with math.exp / math.log, not torch) and assign it "
    "to `answer`.",
    _check_q1,
    hint_text="loss(x, class) = −x[class] + log(Σ_j exp(x[j])).",
    solution_code="""
        import math
        x = [1.0, 2.0, 0.5]
        answer = -x[2] + math.log(sum(math.exp(v) for v in x))
    """,
    wrong=[0.4644, -2.2413, 0.1064, "2.24"],
)

OUTPUTS = [2.0, 4.0, 1.0]
TARGETS = [1.0, 4.0, 4.0]


def _check_q2(answer):
    value = _number(answer)
    out, tgt = torch.tensor(OUTPUTS), torch.tensor(TARGETS)
    expected = nn.MSELoss(reduction="sum")(out, tgt).item()
    expect(not math.isclose(value, nn.MSELoss()(out, tgt).item(), abs_tol=1e-4),
           "that is the mean; reduction='sum' adds the squared differences up.")
    expect(not math.isclose(value, nn.L1Loss(reduction="sum")(out, tgt).item()),
           "that is the sum of absolute differences (L1); MSE squares them.")
    expect(math.isclose(value, expected, abs_tol=1e-4), f"{value} is off.")


q2 = Exercise(
    "8.2",
    f"What does nn.MSELoss(reduction='sum') give for outputs {OUTPUTS} and targets "
    f"{TARGETS}? Work it out, assign it to `answer`.",
    _check_q2,
    hint_text="Square each difference output − target, then add them up (no division).",
    solution_code="""
        answer = (2 - 1) ** 2 + (4 - 4) ** 2 + (1 - 4) ** 2
    """,
    wrong=[10 / 3, 4, 100],
)


def _check_q3(answer):
    expect(callable(answer), "`answer` should be a function train_step(model, optimizer, "
           "loss_fn, x, y).")
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    for step in range(2):
        before = copy.deepcopy(model)
        before.zero_grad(set_to_none=True)
        fresh = loss_fn(before(x), y)
        fresh.backward()
        result = call("train_step(model, optimizer, loss_fn, x, y)", answer, model, optimizer,
                      loss_fn, x, y)
        expect(isinstance(result, float),
               f"return the loss as a Python float (loss.item()), got {type(result).__name__}.")
        after = loss_fn(model(x), y).item()
        expect(close(result, fresh.item(), digits=4) or not close(result, after, digits=4),
               f"the returned loss {result:.6f} is the loss after the step ({after:.6f}); "
               f"return the loss of the forward pass before it ({fresh.item():.6f}).")
        expect(close(result, fresh.item(), digits=4),
               f"the returned loss {result:.6f} is not the loss before the step "
               f"({fresh.item():.6f}).")
        grad = model.weight.grad
        if grad is None or grad.abs().sum() == 0:
            unchanged = torch.equal(model.weight, before.weight)
            expect(not unchanged, "no gradient reached the weights and they did not move: "
                   "call loss.backward() between computing the loss and optimizer.step().")
            expect(False, "after the step the gradients should still be there: call "
                   "zero_grad() before backward(), not after step().")
        expect(torch.allclose(grad, before.weight.grad, atol=1e-6),
               f"in call {step + 1} the gradient is not this batch's gradient — it adds up "
               "over calls. Call optimizer.zero_grad() first.")
        moved = before.weight - 0.1 * before.weight.grad
        expect(torch.allclose(model.weight, moved, atol=1e-6),
               "the weights did not take one SGD step: call optimizer.step() after backward().")


def _no_zero_grad(model, optimizer, loss_fn, x, y):
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _returns_tensor(model, optimizer, loss_fn, x, y):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss


def _no_step(model, optimizer, loss_fn, x, y):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    return loss.item()


def _no_backward(model, optimizer, loss_fn, x, y):
    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    optimizer.step()
    return loss.item()


def _zero_grad_last(model, optimizer, loss_fn, x, y):
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def _loss_after_step(model, optimizer, loss_fn, x, y):
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()
    return loss_fn(model(x), y).item()


q3 = Exercise(
    "8.3",
    "Write a function train_step(model, optimizer, loss_fn, x, y) that does ONE optimisation "
    "step on the batch (x, y) and returns the loss as a Python float. Assign the function "
    "(not its result) to `answer`.",
    _check_q3,
    hint_text="Four lines: optimizer.zero_grad(); loss = loss_fn(model(x), y); loss.backward(); "
    "optimizer.step() — then return loss.item().",
    solution_code="""
        def train_step(model, optimizer, loss_fn, x, y):
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            return loss.item()

        answer = train_step
    """,
    wrong=[_no_zero_grad, _returns_tensor, _no_step, _no_backward, _zero_grad_last,
           _loss_after_step, "train_step"],
)
