"""Keep nutpie's compiled PyMC model across processes, so a second run of a spec compiles nothing.

Most of `nutpie.compile_pymc_model` is PyTensor rewriting the model's log density,
gradient and expansion graphs (4-10 s for the rainfall marginal model), done again in
every process even when PyTensor's Numba cache and `compile_cache` keep the machine
code. Here what that step returns (nutpie's `_make_functions`: the rewritten PyTensor
functions, the initial-point function and the shapes) is pickled in cache_dir("pymc"),
keyed by a description of the PyMC model by value: every op of its graph with its
parameters, every constant and data array, the transforms, initial values and
variables kept, with the library versions and PyTensor's flags. A second process
unpickles it (PyTensor then links the functions from its Numba cache) and nutpie
does the rest as usual (the two functions are swapped only during the call; the backend
compiles one model at a time). Only for the nutpie versions this was written against;
any other version, a model that cannot be described, or an entry that does not
load, compiles as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import threading
import types
from contextlib import contextmanager
from importlib.metadata import version

from framework import cache_dir

# nutpie's `_make_functions(model, **kwargs)` as in these releases
NUTPIE_VERSIONS = ("0.16.",)
LIBRARIES = ("nutpie", "pymc", "pytensor", "numba", "numpy", "cloudpickle")
_log = logging.getLogger(__name__)


def compile_model(model, var_names: list[str], cache: bool = True) -> tuple[object, bool]:
    """nutpie's CompiledPyMCModel of `model`, and whether its functions came from the cache.

    `cache`: whether compile_cache keys nutpie's callbacks (else nothing is cached).
    """
    import nutpie

    key = model_key(model, var_names) if cache and supported() else None
    if key is None:
        return nutpie.compile_pymc_model(model, var_names=var_names, cache=cache), False
    path = cache_dir("pymc") / f"{key}.pkl"
    functions = _load(path)
    if functions is not None:
        try:
            with _graph_step(model, lambda original, model, **kwargs: functions, cached=True):
                return nutpie.compile_pymc_model(model, var_names=var_names, cache=True), True
        except Exception as exc:  # noqa: BLE001 - an entry that does not work: compile anew
            _log.debug("pymc model cache: %s not used (%s)", path, exc)

    def make_and_store(original, model, **kwargs):
        made = original(model, **kwargs)
        _save(path, made)
        # Go on with the stored copy: PyTensor numbers an unpickled graph in another order,
        # and the callbacks are keyed by it, so only then will a later process find them.
        return _load(path) or made

    with _graph_step(model, make_and_store, cached=False):
        return nutpie.compile_pymc_model(model, var_names=var_names, cache=True), False


def supported() -> bool:
    """Whether this nutpie and PyMC have the two functions the cache stands in for."""
    try:
        import nutpie.compile_pymc as ncp
        import pymc.initial_point as ip
    except ImportError:
        return False
    return (
        version("nutpie").startswith(NUTPIE_VERSIONS)
        and callable(getattr(ncp, "_make_functions", None))
        and callable(getattr(ip, "make_initial_point_fn", None))
    )


def model_key(model, var_names: list[str]) -> str | None:
    """A sha256 of everything nutpie compiles from `model`; None when part of it cannot be named."""
    import pytensor

    free, observed = list(model.free_RVs), list(model.observed_RVs)
    named = [*free, *observed, *model.potentials, *model.deterministics]
    named += [model.rvs_to_values[v] for v in free + observed]
    named += list(model.dim_lengths.values())
    graph = _Graph()
    try:
        parts = {
            "libraries": [version(name) for name in LIBRARIES],
            "flags": (os.environ.get("PYTENSOR_FLAGS", ""), pytensor.config.floatX),
            "nodes": graph.add(named),
            "free": [graph.ids[v] for v in free],
            "observed": [graph.ids[v] for v in observed],
            "potentials": [graph.ids[v] for v in model.potentials],
            "deterministics": [graph.ids[v] for v in model.deterministics],
            "values": [graph.ids[model.rvs_to_values[v]] for v in free + observed],
            "transforms": [graph.describe(model.rvs_to_transforms.get(v)) for v in free],
            "initial": [graph.describe(model.rvs_to_initial_values.get(v)) for v in free],
            "dims": graph.describe(dict(model.named_vars_to_dims)),
            "coords": graph.describe(dict(model.coords)),
            "dim_lengths": graph.describe(dict(model.dim_lengths)),
            "check_bounds": bool(model.check_bounds),
            "var_names": list(var_names),
        }
    except _Unnamed:
        return None
    return hashlib.sha256(repr(parts).encode()).hexdigest()


class _Unnamed(Exception):
    """Part of the model has no description known to be stable across processes."""


class _Graph:
    """Numbers a PyTensor graph's variables and describes each by value."""

    def __init__(self):
        self.ids: dict = {}
        self.lines: list[str] = []

    def add(self, outputs) -> list[str]:
        for out in outputs:
            stack = [(out, False)]
            while stack:  # depth first, inputs before the node: the same order every process
                var, expanded = stack.pop()
                if var in self.ids:
                    continue
                if var.owner is None or expanded:
                    self._number(var)
                    continue
                stack.append((var, True))
                stack.extend((inp, False) for inp in reversed(var.owner.inputs))
        return self.lines

    def _number(self, var) -> None:
        from pytensor.compile.sharedvalue import SharedVariable
        from pytensor.graph.basic import Constant

        node = var.owner
        if node is not None:
            for out in node.outputs:  # a node's outputs are numbered together
                self.ids[out] = len(self.ids)
            inputs = [self.ids[inp] for inp in node.inputs]
            outputs = [(self.describe(o.type), o.name) for o in node.outputs]
            self.lines.append(f"{self.describe(node.op)}{inputs}->{outputs}")
            return
        self.ids[var] = len(self.ids)
        if isinstance(var, Constant):
            value = self.describe(var.data)
        elif isinstance(var, SharedVariable):
            value = self.describe(var.get_value(borrow=True))
        else:
            value = "input"
        self.lines.append(f"{self.describe(var.type)} {var.name!r} {value}")

    def describe(self, obj, depth: int = 0) -> str:
        """A text naming `obj` by value; _Unnamed for anything not known to be stable."""
        import numpy as np
        from pytensor.graph.basic import Variable

        if depth > 8:
            raise _Unnamed(obj)
        if obj is None or isinstance(obj, bool | int | float | complex | str | bytes):
            return repr(obj)
        if isinstance(obj, Variable):  # by its number in the graph described
            if obj not in self.ids:
                raise _Unnamed(obj)
            return f"%{self.ids[obj]}"
        if isinstance(obj, slice):
            return f"slice{self.describe((obj.start, obj.stop, obj.step), depth + 1)}"
        if isinstance(obj, tuple | list):
            return f"({', '.join(self.describe(x, depth + 1) for x in obj)})"
        if isinstance(obj, set | frozenset):  # sorted: set order varies with the hash seed
            return f"{{{', '.join(sorted(self.describe(x, depth + 1) for x in obj))}}}"
        if isinstance(obj, dict):
            items = sorted(
                (self.describe(k, depth + 1), self.describe(v, depth + 1)) for k, v in obj.items()
            )
            return f"dict{items}"
        if isinstance(obj, np.ndarray):
            digest = hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest()
            return f"array({obj.dtype.str}, {obj.shape}, {obj.flags.c_contiguous}, {digest})"
        if isinstance(obj, np.generic | np.dtype):
            return f"{type(obj).__name__}({obj!r})"
        if isinstance(obj, np.random.Generator):
            # a model's random streams: reseeded on every call of the initial-point
            # function and unused by the log density, so their state changes nothing compiled
            return f"rng({type(obj.bit_generator).__name__})"
        if isinstance(obj, type | types.ModuleType | types.BuiltinFunctionType):
            return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj.__name__)}"
        if isinstance(obj, types.FunctionType):
            return self._function(obj, depth)
        props = getattr(type(obj), "__props__", None)
        if props is not None:  # PyTensor ops and types: equal when their props are
            values = [self.describe(getattr(obj, p), depth + 1) for p in props]
            return f"{self.describe(type(obj))}{values}"
        state = getattr(obj, "__dict__", None)
        if state == {}:  # e.g. RandomGeneratorType(): nothing but its class
            return self.describe(type(obj))
        if state is not None and type(obj).__module__.split(".")[0] in ("pymc", "pytensor"):
            # e.g. scalar ops and transforms: equal when their class and attributes are
            return f"{self.describe(type(obj))}{self.describe(state, depth + 1)}"
        raise _Unnamed(obj)

    def _function(self, func, depth: int) -> str:
        code = func.__code__
        cells = [self.describe(c.cell_contents, depth + 1) for c in func.__closure__ or ()]
        consts = [
            hashlib.sha256(c.co_code).hexdigest() if isinstance(c, types.CodeType) else repr(c)
            for c in code.co_consts
        ]
        digest = hashlib.sha256(code.co_code + repr(consts).encode()).hexdigest()
        return f"{func.__module__}.{func.__qualname__}:{digest}:{cells}"


@contextmanager
def _graph_step(ours, step, cached: bool):
    """Within: nutpie's `_make_functions(ours, **kwargs)` is `step(original, ours, **kwargs)`.

    `cached`: `step` returns a stored result, which holds its own initial-point function, so
    the one `compile_pymc_model` compiles before (and passes to) that step is not made.
    Calls for any other model (another thread's) go to the originals; two of ours take turns.
    """
    import nutpie.compile_pymc as ncp
    import pymc.initial_point as ip

    def make_functions(model, **kwargs):
        return step(original, model, **kwargs) if model is ours else original(model, **kwargs)

    def make_initial_point_fn(**kwargs):
        return _not_made if cached and kwargs.get("model") is ours else initial(**kwargs)

    with _SWAPPING:
        original, initial = ncp._make_functions, ip.make_initial_point_fn
        ncp._make_functions, ip.make_initial_point_fn = make_functions, make_initial_point_fn
        try:
            yield
        finally:
            ncp._make_functions, ip.make_initial_point_fn = original, initial


def _not_made(seed=None):
    raise RuntimeError("the initial-point function comes with the cached entry")


def _save(path, functions) -> None:
    """Write the entry atomically; a result that does not pickle is simply not cached."""
    import cloudpickle

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, _LOCK):  # nutpie's initial-point function holds a lock
                return threading.Lock, ()
            return super().reducer_override(obj)

    fd, scratch = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(functions)
        os.replace(scratch, path)  # whole or absent, also with two processes writing
    except Exception as exc:  # noqa: BLE001 - a cache that cannot be written is no cache
        _log.debug("pymc model cache: not written (%s)", exc)
        os.unlink(scratch)


def _load(path):
    """The entry at `path`, or None when absent or unreadable (then it is compiled again)."""
    try:
        with open(path, "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - e.g. written by another library version
        _log.debug("pymc model cache: %s not read (%s)", path, exc)
        return None


_LOCK = type(threading.Lock())
_SWAPPING = threading.RLock()
