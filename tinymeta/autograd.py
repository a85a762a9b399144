"""Reverse-mode automatic differentiation.

A :class:`Function` computes its forward pass on raw arrays and its backward
pass on :class:`~tinymeta.tensor.Tensor` objects, using tinymeta's own ops.
That one rule is what makes gradients of gradients work: when ``grad`` runs
with ``create_graph=True`` the backward pass is recorded like any other
computation, so it can be differentiated again, to any order. With
``create_graph=False`` the same code runs with recording switched off and the
gradients are plain constants.
"""
from __future__ import annotations

import contextlib
import weakref

from .tensor import Tensor

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether new operations are being recorded for differentiation."""
    return _grad_enabled


class set_grad_enabled(contextlib.ContextDecorator):
    """Context manager (and decorator) that switches recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)

    def __enter__(self):
        global _grad_enabled
        self.prev, _grad_enabled = _grad_enabled, self.mode

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self.prev
        return False


def no_grad():
    """Record nothing inside this block (optimizer steps, evaluation)."""
    return set_grad_enabled(False)


def enable_grad():
    """Record inside this block even where an outer ``no_grad`` is active."""
    return set_grad_enabled(True)


class ModifiedAfterUseError(RuntimeError):
    """A tensor was changed through ``.data`` after an op that needs its values recorded it."""


class Function:
    """One differentiable primitive.

    Subclasses implement ``forward(*arrays) -> array`` and
    ``backward(grad) -> tuple of Tensors`` (one per input; ``None`` where an
    input needs no gradient). An op with parameters declares them in its own
    ``__init__``; :meth:`apply` passes its keyword arguments there.
    ``self.inputs`` are the input Tensors and ``self.out`` the output Tensor,
    both available to ``backward``.

    ``saves_inputs`` / ``saves_output``: set True when ``backward`` reads the
    inputs' / the output's values (not only their shapes). Then the versions
    of those tensors are checked before the gradient is computed, so a change
    through ``.data`` after recording raises :class:`ModifiedAfterUseError`
    instead of giving a wrong gradient.
    """

    saves_inputs = False
    saves_output = False

    @classmethod
    def apply(cls, *inputs, **params):
        fn = cls(**params)
        out = Tensor(fn.forward(*[t.array for t in inputs]))
        if _grad_enabled:
            needs = tuple([t.requires_grad for t in inputs])
            if True in needs:
                out.requires_grad = True
                out._ctx = fn
                fn.inputs = inputs
                fn.needs_input_grad = needs
                if cls.saves_inputs:
                    fn.versions = [t.version for t in inputs]
                # A weak reference: the output owns its Function, not the other way round,
                # so a graph is freed as soon as nothing refers to its result.
                fn._out = weakref.ref(out)
        return out

    @property
    def out(self):
        return self._out()

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def __repr__(self):
        return f"<{type(self).__name__}>"


def toposort(roots):
    """Nodes that require grad, every node after all of its inputs.

    Iterative depth-first search: second-order graphs of conv nets are tens of
    thousands of nodes deep, far past Python's recursion limit. Nodes are told
    apart by id(), never by ``==`` (which compares values elementwise).
    """
    order, seen = [], set()
    stack = [(r, False) for r in roots if r.requires_grad]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            stack.extend((p, False) for p in node._ctx.inputs
                         if p.requires_grad and id(p) not in seen)
    return order




def _describe(t, names):
    name = names.get(id(t))
    what = f"grad()'s input {name!r}" if name is not None else "a tensor"
    return f"{what} (shape {t.shape}, {t.dtype})"


def check_unchanged(fn, names=None):
    """Raise :class:`ModifiedAfterUseError` if a tensor ``fn`` saved has changed since it was recorded."""
    names = names or {}
    changed = None
    if fn.saves_inputs:
        for i, (t, v) in enumerate(zip(fn.inputs, fn.versions)):
            if t.version != v:
                changed = f"{_describe(t, names)}, which {type(fn).__name__} recorded as its input {i},"
                break
    if changed is None and fn.saves_output:
        out = fn.out
        if out is not None and out.version:
            changed = f"{_describe(out, names)}, which {type(fn).__name__} recorded as its output,"
    if changed is not None:
        raise ModifiedAfterUseError(
            f"{changed} was changed through .data after that, so the gradient "
            "would be computed from the new values. Do not write through .data into a tensor that a graph "
            "still needs: compute the gradient first and change the tensor afterwards (under tm.no_grad()), "
            "or make a new tensor (x = x - lr * g). To read values use .numpy(), .item() or .detach() "
            "(taking .data counts as a change).")


def _backprop(outputs, grad_outputs, targets, create_graph, names=None):
    """Propagate ``grad_outputs`` from ``outputs`` back to the ``targets``.

    Returns {id(target): gradient Tensor} for every target the outputs depend on.
    Only nodes that lie on a path to a target are visited.
    """
    order = toposort(outputs)
    wanted = {id(t) for t in targets}
    leads = set()  # nodes from which some target can be reached by going to inputs
    needs_of = {}  # id(node) -> for each input of its Function, whether it leads to a target
    for node in order:
        fn = node._ctx
        if fn is not None:
            needs = tuple([id(p) in leads for p in fn.inputs])
            if True in needs:  # its backward rule will run
                if fn.saves_inputs or fn.saves_output:
                    check_unchanged(fn, names)  # before any rule runs: nothing a rule will read may have changed
                needs_of[id(node)] = needs
                leads.add(id(node))
                continue
        if id(node) in wanted:
            leads.add(id(node))

    grads = {}
    for out, g in zip(outputs, grad_outputs):
        if id(out) in leads:
            grads[id(out)] = g if id(out) not in grads else grads[id(out)] + g
    found = {}
    with set_grad_enabled(create_graph):
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if id(node) in wanted:
                found[id(node)] = g
            needs = needs_of.get(id(node))
            if needs is None:  # a leaf, or no input leads to a target
                continue
            fn = node._ctx
            fn.needs_input_grad = needs
            in_grads = fn.backward(g)
            if not isinstance(in_grads, (tuple, list)) or len(in_grads) != len(fn.inputs):
                raise TypeError(f"{type(fn).__name__}.backward must return a tuple with one gradient (or None) "
                                f"per input ({len(fn.inputs)}), got {type(in_grads).__name__}")
            for p, need, pg in zip(fn.inputs, needs, in_grads):
                if not need or pg is None:
                    continue
                if not isinstance(pg, Tensor):  # raw arrays would silently cut second-order graphs
                    raise TypeError(f"{type(fn).__name__}.backward returned a {type(pg).__name__}; backward rules "
                                    "must return Tensors built with tinymeta ops, so that they can be differentiated")
                if pg.array.shape != p.array.shape:  # a backward rule broke its contract
                    raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of shape "
                                       f"{pg.shape} for an input of shape {p.shape}")
                prev = grads.get(id(p))
                grads[id(p)] = pg if prev is None else prev + pg
    return found


def _as_list(inputs):
    if isinstance(inputs, dict):
        return list(inputs.keys()), list(inputs.values())
    if isinstance(inputs, (list, tuple)):
        return None, list(inputs)
    return None, [inputs]


def grad(outputs, inputs, grad_outputs=None, create_graph=False, allow_unused=False):
    """Gradients of ``outputs`` with respect to ``inputs``.

    ``inputs`` may be one Tensor, a list/tuple, or a dict of Tensors; the result
    has the same form. For a scalar output the seed gradient is 1; a non-scalar
    output needs ``grad_outputs`` of its shape (the vector in the
    vector-Jacobian product ``v^T J``).

    With ``create_graph=True`` the returned gradients are themselves part of a
    graph and can be differentiated again (second-order MAML, Hessian-vector
    products). Otherwise they are constants and nothing is recorded.

    Example::

        x = tinymeta.tensor(3.0, requires_grad=True)
        (dy,) = tinymeta.grad([x ** 3], [x], create_graph=True)  # 3 x^2 = 27
        (d2y,) = tinymeta.grad([dy], [x])                          # 6 x   = 18
    """
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    keys, targets = _as_list(inputs)
    for t in outputs + targets:
        if not isinstance(t, Tensor):
            raise TypeError(f"grad() takes Tensors, got {type(t).__name__}")
    for i, t in enumerate(targets):
        if not t.requires_grad:
            name = keys[i] if keys else i
            raise ValueError(f"input {name!r} does not require grad: create it with "
                             "requires_grad=True (integer tensors cannot be differentiated)")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad_outputs has {len(grad_outputs)} entries for {len(outputs)} outputs")
    seeds = []
    for out, g in zip(outputs, grad_outputs):
        if g is None:
            if out.size != 1:
                raise RuntimeError(f"grad of an output of shape {out.shape} needs grad_outputs "
                                   "(only a scalar output has an implicit seed of 1); "
                                   "reduce it first, e.g. loss.sum()")
            g = Tensor(out.xp.ones(out.shape, dtype=out.dtype))
        elif not isinstance(g, Tensor):
            g = Tensor(out.xp.asarray(g, dtype=out.dtype))
        if g.shape != out.shape:
            raise ValueError(f"grad_outputs shape {g.shape} does not match output shape {out.shape}")
        seeds.append(g)

    names = {id(t): (keys[i] if keys else i) for i, t in enumerate(targets)}
    found = _backprop(outputs, seeds, targets, create_graph, names)
    result = []
    for i, t in enumerate(targets):
        g = found.get(id(t))
        if g is None:
            if not allow_unused:
                name = keys[i] if keys else i
                raise RuntimeError(f"input {name!r} is not part of the graph of the outputs; "
                                   "pass allow_unused=True to get None for it")
        elif not create_graph:
            g = g.detach()
        result.append(g)
    if keys is not None:
        return dict(zip(keys, result))
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(result) if isinstance(inputs, tuple) else result
    return result[0]


def backward(tensor, grad_output=None, create_graph=False):
    """Accumulate d tensor / d leaf into ``leaf.grad`` for every leaf that requires grad."""
    leaves = [n for n in toposort([tensor]) if n._ctx is None]
    if not leaves:
        raise RuntimeError("backward() on a tensor that does not require grad")
    grads = grad([tensor], leaves, None if grad_output is None else [grad_output],
                 create_graph=create_graph, allow_unused=True)
    for leaf, g in zip(leaves, grads):
        if g is not None:
            leaf.grad = g if leaf.grad is None else leaf.grad + g

