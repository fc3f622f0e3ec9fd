"""Appendix C (many GPUs): each process's share of the data, and a DDP checkpoint's keys."""

import torch
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from course_utils.exercises import Exercise, _short, call, expect
from course_utils.exercises.i18n import N_
from course_utils.models import Tudui

#: (items, world size) the checker tries every rank of
_CASES = [(10, 3), (8, 4), (12, 2), (3, 4), (1, 2), (7, 1), (50_000, 8)]


def _real(n: int, rank: int, world: int) -> list[int]:
    return list(DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False))


def _check_q1(fn):
    expect(callable(fn) and not isinstance(fn, type),
           f"`answer` should be your function shard_indices (no parentheses), got "
           f"{_short(fn)}.")
    for n, world in _CASES:
        shards = []
        for rank in range(world):
            what = f"shard_indices({n}, rank={rank}, world_size={world})"
            got = call(what, fn, n, rank, world)
            expect(isinstance(got, (list, tuple, range)) or hasattr(got, "tolist"),
                   f"{what} returned {_short(got)}; return a list of indices.")
            shards.append([int(i) for i in (got.tolist() if hasattr(got, "tolist") else got)])
        sizes = [len(s) for s in shards]
        expect(len(set(sizes)) == 1,
               f"with {n} items and {world} processes the shards hold {sizes} items: every "
               "process must get the same number (or the others wait for ever at the "
               "gradient all-reduce) — pad by repeating the first items, as DistributedSampler "
               "does.")
        for rank, got in enumerate(shards):
            want = _real(n, rank, world)
            block = len(got) > 1 and got == list(range(got[0], got[0] + len(got)))
            expect(got == want or world == 1 or not block,
                   f"shard_indices({n}, rank={rank}, world_size={world}) gave {got[:6]}…; "
                   f"DistributedSampler gives {want[:6]}…: rank r takes every "
                   "world_size-th item starting at r, not a block of its own.")
            expect(got == want,
                   f"shard_indices({n}, rank={rank}, world_size={world}) gave {got[:8]}, but "
                   f"DistributedSampler(shuffle=False) gives {want[:8]} — pad the list of "
                   "indices to a multiple of world_size with its first items, then take "
                   "indices[rank::world_size].")


def _blocks(n, rank, world):
    size = -(-n // world)
    return [min(i, n - 1) for i in range(rank * size, rank * size + size)]


def _no_padding(n, rank, world):
    return list(range(rank, n, world))


def _pad_with_zeros(n, rank, world):
    total = -(-n // world) * world
    indices = list(range(n)) + [0] * (total - n)
    return indices[rank::world]


q1 = Exercise(
    "C.1",
    "Each process's share: write `shard_indices(n_items, rank, world_size)` that returns the "
    "list of item indices the process `rank` reads — the same list as "
    "`list(DistributedSampler(range(n_items), num_replicas=world_size, rank=rank, "
    "shuffle=False))`, worked out without DistributedSampler: every process gets the same "
    "number of items, ⌈n_items / world_size⌉ (the list is padded with its first items), and "
    "rank r takes every world_size-th index starting at r. The checker compares your shards "
    "with DistributedSampler's for sizes of its own. Assign the function to `answer`.",
    _check_q1,
    hint_text="per = math.ceil(n_items / world_size); indices = list(range(n_items)); pad "
    "with indices[:per * world_size - n_items] (repeat it when n_items is tiny); return "
    "indices[rank::world_size].",
    solution_code="""
        import math

        def shard_indices(n_items, rank, world_size):
            per_process = math.ceil(n_items / world_size)
            indices = list(range(n_items))
            while len(indices) < per_process * world_size:  # pad with the first items
                indices += indices[:per_process * world_size - len(indices)]
            return indices[rank::world_size]

        answer = shard_indices
    """,
    wrong=[_blocks, _no_padding, _pad_with_zeros, [0, 3, 6, 9]],
)


# ----------------------------------------------------------------------------- C.2
class _HasModule(nn.Module):
    """A model with a submodule that is itself named ``module`` (its key must keep it)."""

    def __init__(self):
        super().__init__()
        self.module = nn.Linear(3, 2)
        self.head = nn.Linear(2, 1)


class _Wrapper(nn.Module):
    """Stands in for DistributedDataParallel: keeps the model as ``self.module``."""

    def __init__(self, model):
        super().__init__()
        self.module = model


def _check_q2(fn):
    expect(callable(fn) and not isinstance(fn, type),
           f"`answer` should be your function strip_module (no parentheses), got "
           f"{_short(fn)}.")
    for make in (Tudui, _HasModule):
        with torch.random.fork_rng():
            torch.manual_seed(15)
            model = make()
        wrapped = _Wrapper(model).state_dict()  # keys "module.…" as DDP saves them
        name = make.__name__.lstrip("_")
        what = N_(f"strip_module(the DDP state_dict of a {name})")
        got = call(what, fn, dict(wrapped))
        expect(isinstance(got, dict), f"{what} returned {type(got).__name__}; return a dict.")
        want = model.state_dict()
        keys = [str(k) for k in got]
        missing, extra = sorted(set(want) - set(keys)), sorted(set(keys) - set(want))
        expect(not (missing or extra),
               f"{what} gives the keys {extra[:3]} where the model has {missing[:3]}: remove "
               "only the first 'module.' of each key (key[len('module.'):] when "
               "key.startswith('module.')) — a model may have a part named module itself, "
               "and str.lstrip('module.') strips letters, not a prefix.")
        expect(all(torch.equal(got[k], want[k]) for k in want),
               f"{what}: the tensors changed; keep each value as it is.")
        fresh = make()
        fresh.load_state_dict(got)
    plain = Tudui().state_dict()
    got = call(N_("strip_module(a state_dict without the prefix)"), fn, dict(plain))
    expect(isinstance(got, dict) and set(got) == set(plain),
           "a state_dict saved without DDP has no 'module.' prefix: leave such keys as they "
           "are.")


def _strip_all(state):
    return {k.replace("module.", ""): v for k, v in state.items()}


def _lstrip(state):
    return {k.lstrip("module."): v for k, v in state.items()}


def _cut_seven(state):
    return {k[7:]: v for k, v in state.items()}


q2 = Exercise(
    "C.2",
    "A checkpoint saved from the DDP-wrapped model has keys like 'module.model.0.weight'; a "
    "plain model expects 'model.0.weight'. Write `strip_module(state_dict)` that returns a new "
    "dict with the leading 'module.' removed from every key that starts with it (other keys "
    "and every tensor unchanged), so that `model.load_state_dict(strip_module(state))` works. "
    "The checker tries it on state dicts of its own (one model has a part named `module` "
    "itself). Assign the function to `answer`.",
    _check_q2,
    hint_text="{(k[len('module.'):] if k.startswith('module.') else k): v for k, v in "
    "state_dict.items()} — str.removeprefix('module.') does the same.",
    solution_code="""
        def strip_module(state_dict):
            prefix = "module."
            return {(key[len(prefix):] if key.startswith(prefix) else key): value
                    for key, value in state_dict.items()}

        answer = strip_module
    """,
    wrong=[_strip_all, _lstrip, _cut_seven, "module."],
)
