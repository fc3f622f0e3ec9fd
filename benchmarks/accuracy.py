"""Test accuracy of the course's recipes on the full 10,000-image CIFAR-10 test set.

Trains a recipe of ``course_utils.recipes.RECIPES`` (``original``: the course's Tudui, SGD
lr 0.01, batch 64, ``ToTensor`` only; ``improved``: ``FastCNN`` and the improved
hyperparameters), built by the recipes module's own builders; trains it with
``course_utils.engine.fit`` and records test accuracy after every epoch, the wall time (data
loading, training and evaluation), epochs and parameter count.

    COURSE_DATA_DIR=../shared/data python benchmarks/accuracy.py --recipe original
    COURSE_DATA_DIR=../shared/data python benchmarks/accuracy.py --recipe improved \\
        --save course_utils/weights/cifar10_improved.pt

``--save`` writes the trained weights as a small checkpoint that
``course_utils.predict.load_trained`` reads (model name, normalisation, accuracy, command).
Both recipes read the decoded images through ``TensorLoader`` (the recipe, not the data
pipeline, decides the accuracy; ``throughput.py`` compares the pipelines).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import shlex
import sys
from pathlib import Path

import _common
import torch

from course_utils import checkpoints, engine, loaders, models, recipes, training
from course_utils.runs import new_run_dir


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", choices=sorted(recipes.RECIPES), default="improved")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None,
                        help="training images (spread over the classes); default: all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None, help="write the trained weights here")
    parser.add_argument("--require-full", action="store_true")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    parser.add_argument("--out", default=None, help="folder for the JSON result")
    args = parser.parse_args(argv)
    threads = _common.set_threads(args.threads)
    torch.manual_seed(args.seed)
    # both recipes read decoded tensors here: the recipe, not the pipeline, sets the accuracy
    recipe = dataclasses.replace(recipes.RECIPES[args.recipe], epochs=args.epochs,
                                 pipeline="tensors")
    batch_size = recipe.batch_size
    normalize = (loaders.CIFAR10_MEAN, loaders.CIFAR10_STD) if recipe.normalize else None

    total = {}
    with _common.measure(total):
        load = {}
        with _common.measure(load):
            xs, ys, xt, yt, source = _common.cifar10_tensors(require_full=args.require_full,
                                                     limit=args.limit)
            train_loader = loaders.TensorLoader(xs, ys, batch_size, shuffle=True,
                                                normalize=normalize, augment=recipe.augment,
                                                drop_last=recipe.drop_last)
            test_loader = loaders.TensorLoader(xt, yt, batch_size=1000, normalize=normalize)
        model = training.build_network(recipe)
        optimizer = training.build_optimizer(recipe, model)
        scheduler = training.build_scheduler(recipe, optimizer, len(train_loader))
        loss_fn = training.build_loss(recipe)
        params = models.count_parameters(model)
        print(f"recipe {args.recipe}: {recipe.model} ({params:,} parameters), batch "
              f"{batch_size}, {len(ys):,} training / {len(yt):,} test images, "
              f"{args.epochs} epochs, {threads} threads", flush=True)
        run_dir = new_run_dir(_common.REPO_ROOT / "runs" / "benchmarks",
                              f"accuracy-{args.recipe}")
        history = engine.fit(model, train_loader, test_loader, epochs=args.epochs,
                             optimizer=optimizer, scheduler=scheduler, loss_fn=loss_fn,
                             run_dir=run_dir, model_name=recipe.model, device="cpu",
                             progress=args.progress, verbose=True)
    final = history[-1]
    result = {
        "recipe": args.recipe, "recipe_settings": dataclasses.asdict(recipe),
        "model": recipe.model,
        "parameters": params, "epochs": args.epochs, "data": source,
        "train_images": len(ys), "test_images": len(yt),
        "test_accuracy": final["test_accuracy"], "test_loss": final["test_loss"],
        "wall_seconds": total["seconds"], "cpu_seconds": total["cpu_seconds"],
        "load_seconds": load["seconds"],
        "train_seconds": sum(h["seconds"] for h in history),
        "load_before": total["load_before"], "load_after": total["load_after"],
        "history": history, "run_dir": str(run_dir), "args": {k: str(v) for k, v in
                                                              vars(args).items()},
    }
    print(f"\n{args.recipe}: test accuracy {final['test_accuracy']:.4f} on {len(yt):,} "
          f"images after {args.epochs} epochs; {params:,} parameters; wall "
          f"{total['seconds']:.0f} s (training {result['train_seconds']:.0f} s); load "
          f"{total['load_before']} → {total['load_after']}")
    if args.save is not None:
        command = "python " + " ".join(shlex.quote(a) for a in
                                       ["benchmarks/accuracy.py", *(argv or sys.argv[1:])])
        model = model.to(memory_format=torch.contiguous_format)
        checkpoints.save_checkpoint(
            args.save, model, model_name=recipe.model, normalize=normalize,
            epoch=args.epochs, epochs=args.epochs, test_accuracy=final["test_accuracy"],
            test_images=len(yt), parameters=params, wall_seconds=total["seconds"],
            trained_on=dt.date.today().isoformat(), command=command, history=history)
        print(f"weights saved to {args.save}")
    _common.save_result(f"accuracy-{args.recipe}", result, args.out)
    return result


if __name__ == "__main__":
    main()
