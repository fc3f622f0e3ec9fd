"""Time to accuracy: how far a course recipe gets on the full CIFAR-10 in a fixed time budget
(1, 5 and 10 minutes by default) on this machine's CPU cores.

The clock starts when the decoded data set is in memory (decoding the JPEGs once is a cached
cost, recorded apart as ``load_seconds``) and stops when the accuracy on all 10,000 test
images is known. Everything in between counts: planning, training, the final evaluation.

* A recipe with a constant learning rate (``original``) is trained once: at each budget the
  clock pauses, the test set is evaluated, and that point is recorded — the model a run
  stopped at that budget would have. Its time is training + that evaluation.
* A one-cycle recipe must know where its schedule ends, so each budget is its own run. A probe
  (``--probe-steps`` steps on a throw-away copy of the model, and one evaluation) measures the
  speed; the run is planned for the whole epochs that fit. A hard stop guards the budget: a
  run that would overrun stops early and the result says so (``cut_short``).

Models, optimizers, schedules, losses and loaders are built by ``course_utils.recipes`` and
trained by ``engine.train_one_epoch`` / ``engine.evaluate`` (the code the CLI runs), in the
recipe's precision (``bfloat16``: forward passes under ``torch.autocast``).

    COURSE_DATA_DIR=../shared/data python benchmarks/time_to_accuracy.py --recipe deep \\
        --out benchmarks/results
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import time

import _common
import torch

from course_utils import devices, engine, models, recipes, training


def until(loader, deadline: float):
    """The loader's batches until ``time.perf_counter()`` passes ``deadline`` (at least one:
    a step that has begun is finished)."""
    for batch in loader:
        yield batch
        if time.perf_counter() >= deadline:
            return


def fresh(recipe, whiten_from=None):
    """``(model, optimizer, loss_fn)`` built new from ``recipe``; with ``whiten_from`` (a
    training loader) the network's 2×2 stem is set to whiten the images and frozen."""
    model = training.build_network(recipe)
    if whiten_from is not None:
        whiten_stem(model, whiten_from)
    return model, training.build_optimizer(recipe, model), training.build_loss(recipe)


def whiten_stem(model, loader, batches: int = 8, eps: float = 5e-4) -> None:
    """airbench's whitened first layer, for a network whose first layer is a 2×2 conv with
    24 = 2 × 12 output channels (``DeepCNN``): the eigenvectors of the covariance of the
    12-value patches (3 channels × 2 × 2) of ``batches`` training batches, scaled by
    1/sqrt(eigenvalue), and their negatives; not trained afterwards.

    Shapes: images ``(N, 3, 32, 32)`` → patches ``(N·31·31, 12)`` → weight ``(24, 3, 2, 2)``.
    """
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    if conv.weight.shape[1:] != (3, 2, 2) or conv.out_channels != 24:
        raise SystemExit(f"--whiten needs a first conv of 24 channels, 2×2; got "
                         f"{tuple(conv.weight.shape)}")
    images = torch.cat([x for x, _ in itertools.islice(loader, batches)]).float()
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1)           # N, 3, 31, 31, 2, 2
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
    eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
    weight = (eigenvectors.T / (eigenvalues + eps).sqrt()[:, None]).reshape(12, 3, 2, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.cat([weight, -weight]))
    conv.weight.requires_grad_(False)


def evaluate(model, loader, amp_dtype) -> dict:
    """Test loss (plain cross-entropy) and accuracy, plus ``flip_accuracy``: the accuracy of the
    logits averaged over each image and its mirror image (flip test-time augmentation, as
    airbench reports it), from the same pass over the test set."""
    model.eval()
    correct = flip_correct = seen = 0
    loss = 0.0
    with torch.inference_mode():
        for images, labels in loader:
            with torch.autocast("cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(images).float()
                mirrored = model(images.flip(3)).float()
            loss += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
            flip_correct += ((logits + mirrored).argmax(1) == labels).sum().item()
            seen += len(labels)
    model.train()
    return {"loss": loss / seen, "accuracy": correct / seen,
            "flip_accuracy": flip_correct / seen, "images": seen}


def probe(recipe, loader, test_loader, steps: int, amp_dtype, whiten: bool = False) -> dict:
    """Seconds per training step (after 3 warm-up steps) and seconds per evaluation of the
    test set, measured on a throw-away model."""
    model, optimizer, loss_fn = fresh(recipe, loader if whiten else None)
    options = dict(progress=False, amp_dtype=amp_dtype)
    engine.train_one_epoch(model, itertools.islice(loader, 3), loss_fn, optimizer, "cpu",
                           **options)
    t0 = time.perf_counter()
    engine.train_one_epoch(model, itertools.islice(loader, steps), loss_fn, optimizer, "cpu",
                           **options)
    t1 = time.perf_counter()
    evaluate(model, test_loader, amp_dtype)
    return {"seconds_per_step": (t1 - t0) / steps, "eval_seconds": time.perf_counter() - t1}


def one_cycle_run(recipe, budget: float, train_loader, test_loader, args, amp_dtype) -> dict:
    """One run planned for ``budget`` seconds (see the module docstring)."""
    start = time.perf_counter()
    speed = probe(recipe, train_loader, test_loader, args.probe_steps, amp_dtype, args.whiten)
    steps_per_epoch = len(train_loader)
    left = budget - (time.perf_counter() - start) - speed["eval_seconds"]
    epochs = max(1, int(left * args.safety / (speed["seconds_per_step"] * steps_per_epoch)))
    planned = dataclasses.replace(recipe, epochs=epochs)
    torch.manual_seed(args.seed)
    model, optimizer, loss_fn = fresh(planned, train_loader if args.whiten else None)
    scheduler = training.build_scheduler(planned, optimizer, steps_per_epoch)
    deadline = start + budget - speed["eval_seconds"]
    step, train_loss = 0, None
    for _ in range(epochs):
        if time.perf_counter() >= deadline:
            break
        train_loss, step = engine.train_one_epoch(
            model, until(train_loader, deadline), loss_fn, optimizer, "cpu",
            scheduler=scheduler, step=step, progress=False, amp_dtype=amp_dtype)
    trained = time.perf_counter()
    metrics = evaluate(model, test_loader, amp_dtype)
    end = time.perf_counter()
    return {"budget_s": budget, "epochs_planned": epochs, "steps_planned":
            epochs * steps_per_epoch, "steps_done": step,
            "cut_short": step < epochs * steps_per_epoch, "probe": speed,
            "train_seconds": trained - start, "eval_seconds": end - trained,
            "total_seconds": end - start, "train_loss": train_loss,
            "test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"],
            "flip_test_accuracy": metrics["flip_accuracy"]}


def constant_lr_run(recipe, budgets, train_loader, test_loader, args, amp_dtype) -> list[dict]:
    """One run, evaluated (with the clock paused) when its training time reaches each budget
    less the time an evaluation takes."""
    torch.manual_seed(args.seed)
    model, optimizer, loss_fn = fresh(recipe)
    t0 = time.perf_counter()
    evaluate(model, test_loader, amp_dtype)  # how long one takes
    eval_seconds = time.perf_counter() - t0
    trained, step, points, train_loss = 0.0, 0, [], None
    for budget in sorted(budgets):
        while trained < budget - eval_seconds:
            t0 = time.perf_counter()
            deadline = t0 + budget - eval_seconds - trained
            train_loss, step = engine.train_one_epoch(
                model, until(train_loader, deadline), loss_fn, optimizer, "cpu", step=step,
                progress=False, amp_dtype=amp_dtype)
            trained += time.perf_counter() - t0
        t0 = time.perf_counter()
        metrics = evaluate(model, test_loader, amp_dtype)
        eval_seconds = time.perf_counter() - t0
        points.append({"budget_s": budget, "steps_done": step,
                       "epochs_done": step / len(train_loader), "cut_short": False,
                       "train_seconds": trained, "eval_seconds": eval_seconds,
                       "total_seconds": trained + eval_seconds, "train_loss": train_loss,
                       "test_accuracy": metrics["accuracy"], "test_loss": metrics["loss"],
                       "flip_test_accuracy": metrics["flip_accuracy"]})
        print(f"  {budget:5.0f} s: test accuracy {metrics['accuracy']:.4f} after "
              f"{step / len(train_loader):.2f} epochs", flush=True)
    return points


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(recipes.RECIPES), default="improved")
    parser.add_argument("--budgets", type=float, nargs="+", default=[60, 300, 600],
                        help="seconds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe-steps", type=int, default=20)
    parser.add_argument("--safety", type=float, default=0.97,
                        help="plan for this share of the time left after the probe")
    parser.add_argument("--precision", choices=devices.PRECISION_CHOICES, default=None,
                        help="override the recipe's precision (default: the recipe's)")
    parser.add_argument("--whiten", action="store_true",
                        help="experiment: set the 2×2 stem to whiten the images (airbench), "
                             "frozen; needs the deep recipe's network")
    parser.add_argument("--limit", type=int, default=None, help="training images (tests)")
    parser.add_argument("--require-full", action="store_true")
    parser.add_argument("--out", default=None, help="folder for the JSON result")
    args = parser.parse_args(argv)
    threads = _common.set_threads(args.threads)
    recipe = recipes.RECIPES[args.recipe]
    if args.precision:
        recipe = dataclasses.replace(recipe, precision=args.precision)
    capability = devices.detect_cpu_capability()
    precision, why = devices.precision_choice(recipe.precision, "cpu")
    amp_dtype = devices.autocast_dtype(precision, torch.device("cpu"))
    load = {}
    with _common.measure(load):
        dataset, _ = _common.cifar10_split(True, allow_sample=not args.require_full)
        train_loader, test_loader, _ = training.build_loaders(recipe, limit=args.limit)
    params = models.count_parameters(training.build_network(recipe))
    print(f"recipe {args.recipe}: {recipe.model} ({params:,} parameters), precision "
          f"{precision} ({why}), {len(train_loader.dataset):,} training images, budgets "
          f"{args.budgets} s, {threads} threads", flush=True)
    total = {}
    with _common.measure(total):
        if recipe.schedule == "none":
            points = constant_lr_run(recipe, args.budgets, train_loader, test_loader, args,
                                     amp_dtype)
        else:
            points = []
            for budget in args.budgets:
                points.append(one_cycle_run(recipe, budget, train_loader, test_loader, args,
                                            amp_dtype))
                p = points[-1]
                print(f"  {budget:5.0f} s: test accuracy {p['test_accuracy']:.4f} (with flips "
                      f"{p['flip_test_accuracy']:.4f}) after "
                      f"{p['steps_done']} steps ({p['epochs_planned']} epoch(s) planned) in "
                      f"{p['total_seconds']:.1f} s", flush=True)
    result = {"recipe": args.recipe, "recipe_settings": dataclasses.asdict(recipe),
              "parameters": params, "precision": precision, "precision_why": why,
              "cpu_capability": capability, "whiten": args.whiten,
              "cpu_limits": {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY",
                                                            "ONEDNN_MAX_CPU_ISA")},
              "threads": threads, "seed": args.seed,
              "train_images": len(train_loader.dataset),
              "test_images": len(test_loader.dataset), "data": dataset.source,
              "load_seconds": load["seconds"], "load_before": total["load_before"],
              "load_after": total["load_after"], "points": points,
              "args": {k: str(v) for k, v in vars(args).items()}}
    name = f"time_to_accuracy-{args.recipe}-{capability.lower()}-{precision}"
    _common.save_result(name + ("-whiten" if args.whiten else ""), result, args.out)
    return result


if __name__ == "__main__":
    main()
