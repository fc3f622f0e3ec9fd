"""Notebooks 09–15 — chapters 9–12 and appendices A–C (issue 12): the lesson's own PyTorch
code is written out in the notebooks, appendix A quotes the benchmark results files and
appendix B kills and resumes a real process (every question above its answer cell:
test_notebook_structure.py)."""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {int(p.name[:2]): p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))
             if 9 <= int(p.name[:2]) <= 15}


def _cells(number):
    return nbformat.read(NOTEBOOKS[number], as_version=4).cells


def _code(number):
    return "\n".join(c.source for c in _cells(number) if c.cell_type == "code")


def _words(text):
    return " ".join(text.split())


def test_chapter_9_writes_the_checkpoint_out_before_the_helper():
    code = _code(9)
    written = code.index("torch.save(checkpoint, ckpt_path)")
    assert 'torch.load(ckpt_path, map_location="cpu", weights_only=True)' in code
    assert 'fresh.load_state_dict(state["model_state"])' in code
    assert written < code.index("save_checkpoint(")  # the one-call version comes after
    assert "inspect.signature(torchvision.models.vgg16)" in code  # the progress argument
    assert "inspect.getsource(torchvision.models.VGG.forward)" in code  # read the official code


def test_chapter_11_writes_inference_out_and_loads_the_course_file_safely():
    code = _code(11)
    steps = ["model = Tudui()", 'torch.load(own_path, map_location="cpu", weights_only=True)',
             "model.load_state_dict(state_dict)", "model.eval()", "Resize((32, 32))",
             "with torch.no_grad():", "output.argmax(1)"]
    at = 0
    for step in steps:  # each step found after the previous one
        at = code.index(step, at)
    assert code.index("better.load_state_dict(") < code.index("load_trained()")
    assert "torch.serialization.safe_globals(allowed)" in code
    assert "weights_only=False" not in code  # never on a downloaded file
    assert "to_rgb(cutout)" in code and 'cutout.convert("RGB")' in code


def test_the_original_course_file_is_bundled_unchanged():
    import hashlib

    data = (ROOT / "data" / "original-course" / "tudui_29_gpu.pth").read_bytes()
    assert hashlib.sha256(data).hexdigest() == \
        "51808684c4069cde3df0d57af6ed60e0309bda9de1001d5fc5dea05b4a68f46e"
    assert "tudui_29_gpu.pth" in (ROOT / "data" / "README.md").read_text(encoding="utf-8")


def test_chapter_10_writes_the_loop_model_file_and_improved_recipe_out():
    cells = _cells(10)
    code = _code(10)
    text = "\n".join(c.source for c in cells)
    model_file = next(c.source for c in cells if c.source.startswith("%%writefile"))
    assert model_file.startswith("%%writefile work/ch10/model.py")
    assert 'if __name__ == "__main__":' in model_file
    assert "from model import Tudui" in code
    for n in (1, 2, 3, 4):
        assert f"# fix {n}" in code, f"fix {n} is not marked in the loop"
    assert "time.time()" in code and "torch.cuda.synchronize()" in code
    for piece in ("transforms.RandomCrop(32, padding=4)", "transforms.RandomHorizontalFlip()",
                  "transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)", "nesterov=recipe.nesterov",
                  "weight_decay=recipe.weight_decay", "lr_scheduler.OneCycleLR("):
        assert piece in code, piece
    improved = code.index("train_and_test(fast_cnn")
    assert improved < code.index("history_fit = fit(")  # the helper comes after
    assert "torch.bincount(" in code and '"green" if right else "red"' in code
    # the fixes of issue 12: no false collapse claim, no wall times side by side
    assert "without a non-linearity, Tudui's layers collapse" not in text
    assert "904 s" not in text and "283 s" not in text
    assert "whole batch" in text  # the batch-wide shift is not the per-image crop


def test_chapter_12_reads_the_course_cli_and_leaves_exit_codes_to_appendix_b():
    code = _code(12)
    assert "inspect.getsource(cli.build_parser)" in code and "inspect.getsource(cli.main)" in code
    text = "\n".join(c.source for c in _cells(12))
    for keyword in ("required=True", "default=", "action=\"store_true\"", "type=int", "--help"):
        assert keyword in text, keyword
    assert "appendix B" in text


def _results() -> dict[str, dict]:
    """Every results file in benchmarks/results/, by file name."""
    import json

    return {path.name: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted((ROOT / "benchmarks" / "results").glob("*.json"))}


def _quoted_figures(name: str, result: dict) -> list[str]:
    """The figures of one results file as BENCHMARKS.md must quote them."""
    if name.startswith("throughput-"):
        return [f"{v:,.0f}" for v in result["median_images_per_second"].values()]
    if name.startswith("time_to_accuracy-"):
        return [f"{p['test_accuracy']:.4f}" for p in result["points"]]
    if name.startswith("notebooks-"):
        return [f"{result['median_total_seconds']:.1f} s"]
    if name.startswith("precision-"):
        return [f"{v:,.1f}" for isa in result["results"].values()
                for v in isa["median_images_per_second"].values()]
    raise AssertionError(f"benchmarks/results/{name} is not written by a benchmark script")


def test_appendix_a_reads_the_figures_from_the_results_files():
    code = _code(13)
    assert 'json.loads(results_file.read_text(encoding="utf-8"))' in code
    assert 'latest("throughput")' in code
    assert 'RESULTS.glob("time_to_accuracy-*-2*.json")' in code  # every CPU type's runs
    results = _results()
    assert any(n.startswith("throughput-") for n in results)
    for recipe in ("original", "improved", "deep"):
        assert any(n.startswith(f"time_to_accuracy-{recipe}-") for n in results), recipe
    for name, result in results.items():
        for figure in _quoted_figures(name, result):  # figures come from the files only
            assert figure not in code, f"{figure} of {name} is typed into appendix A"


def test_the_results_files_were_written_by_the_scripts_and_benchmarks_md_quotes_them():
    benchmarks = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    for name, result in _results().items():
        assert result["benchmark"] == name.rsplit("-", 2)[0], name  # save_result's naming
        assert {"date", "cpu", "torch", "commit"} <= set(result["machine"]), name
        for figure in _quoted_figures(name, result):
            assert figure in benchmarks, (name, figure)


def test_time_to_accuracy_runs_stay_inside_their_budgets():
    for name, result in _results().items():
        if not name.startswith("time_to_accuracy-"):
            continue
        assert result["train_images"] == 50_000 and result["test_images"] == 10_000, name
        for point in result["points"]:
            # a run may finish the step it began: allow 2 % over the budget
            assert point["total_seconds"] <= point["budget_s"] * 1.02, (name, point)
            assert 0.1 < point["test_accuracy"] <= 1.0, (name, point)


def test_appendix_b_kills_a_real_process_and_resumes_it():
    code = _code(14)
    assert "subprocess.Popen(" in code and "process.kill()" in code
    assert code.index("process.kill()") < code.index('"--resume", str(run)')
    assert "os.replace(tmp, last)" in code and "atomic_save(" in code
