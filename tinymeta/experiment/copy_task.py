"""The copy task of the neural Turing machine paper (Graves, Wayne & Danihelka 2014, Sec. 4.1), and its training.

A sequence of random 8-bit vectors is shown, then a delimiter; the net must then
write the sequence back with no input. The loss is the binary cross-entropy of the
output bits during the answer phase.

``train_copy`` trains an :class:`tinymeta.memory.NTM` on it on the CPU for a number of
steps or seconds, checkpointing to ``logdir/checkpoint.npz`` (tinymeta's pickle-free,
checksummed format, written temp-then-rename) every ``checkpoint_every`` steps and at the
end, and logging to ``logdir/log.jsonl``; ``resume=True`` continues, to the same weights
bit for bit; SIGINT or SIGTERM ends a sitting cleanly after the current step.
``plot_copy_run`` evaluates a run at lengths up to 120 (``logdir/evaluation.json``) and
draws its figures. The command line is ``tinymeta copy-task`` and ``tinymeta copy-task-plot``
(:func:`add_subcommand`).

Protocol, and where it departs from the paper (each named):

- Sequences of length 1-20 at training (Sec. 4.1), 8 bits each, one delimiter channel,
  so 9 inputs and 8 outputs; every sequence of a batch has the same length
  (loudinthecloud/pytorch-ntm@3c64937 tasks/copytask.py:38, one length per batch).
- Gradients clipped elementwise to [-10, 10] (Sec. 4: "all gradient components
  clipped"; pytorch-ntm train.py:85-89).
- Optimiser: Adam (lr 1e-3), not the paper's RMSprop with momentum 0.9, lr 1e-4
  (Table 2; pytorch-ntm tasks/copytask.py:64-66): tinymeta has no RMSprop, and Adam
  is what Collier & Beel (arXiv:1807.08518; their run_tasks.py:29-30) train with. A deviation.
- Batch of 16 sequences (the paper and pytorch-ntm use 1; Collier & Beel 32).
- float64 by default; ``--dtype float32`` is about a fifth faster a step here (not a protocol change the
  paper names; the checkpoint records it and a resumed run keeps it).
- Controller: one LSTM layer of 100 units, memory 128 x 20 (pytorch-ntm
  tasks/copytask.py:54-61); the paper's LSTM-controlled NTM is 100 units, 128 x 20 too.
"""
from __future__ import annotations

import json
import math
import shlex
import signal
import time
from pathlib import Path

import numpy as np

from .. import ops
from ..autograd import grad, no_grad
from ..files import make_folder, write_text
from ..memory import NTM, binary_cross_entropy_with_logits
from ..optim import Adam
from ..tensor import tensor
from .checkpoint import load_checkpoint, restore_rng, save_checkpoint
from .loop import StopFlag

WIDTH = 8          # bits per vector (Sec. 4.1)
GRAD_CLIP = 10.0   # elementwise gradient clipping (Sec. 4)
DEFAULTS = {"hidden": 100, "memory_size": 128, "memory_width": 20, "batch": 16, "min_len": 1, "max_len": 20,
            "lr": 1e-3, "seed": 0, "dtype": "float64"}
DTYPES = ("float64", "float32")


def model_of(cfg: dict) -> NTM:
    """The NTM of a run's settings (``cfg``: a checkpoint's config or :data:`DEFAULTS`)."""
    return NTM(WIDTH + 1, WIDTH, hidden=cfg["hidden"], memory_size=cfg["memory_size"],
               memory_width=cfg["memory_width"])


def bit_errors(logits, y, mask) -> np.ndarray:
    """Wrong answer bits of each sequence (batch,): an output bit is 1 where its logit is > 0."""
    return (((np.asarray(logits) > 0) != (np.asarray(y) > 0.5)) * np.asarray(mask)[:, None]).sum(axis=(-2, -1))


def copy_batch(rng: np.random.Generator, batch: int, length: int, width: int = WIDTH, dtype="float64"):
    """(inputs, targets, mask) of one batch of copy sequences of ``length`` vectors.

    inputs (batch, 2 L + 1, width + 1): the L vectors (bits in the first ``width`` channels),
    then the delimiter (channel ``width`` alone set), then L empty steps during which the
    answer is due. targets (batch, 2 L + 1, width): the vectors again at steps L + 1 ... 2 L
    (zeros elsewhere); mask (2 L + 1,): 1 at the answer steps, which alone enter the loss.
    """
    if length < 1 or batch < 1:
        raise ValueError(f"copy_batch: length and batch must be >= 1, got {length}, {batch}")
    bits = rng.integers(0, 2, (batch, length, width)).astype(dtype)
    steps = 2 * length + 1
    x = np.zeros((batch, steps, width + 1), dtype=dtype)
    x[:, :length, :width] = bits
    x[:, length, width] = 1.0
    y = np.zeros((batch, steps, width), dtype=dtype)
    y[:, length + 1:] = bits
    mask = np.zeros(steps, dtype=dtype)
    mask[length + 1:] = 1.0
    return x, y, mask


def copy_loss(model: NTM, params: dict, x, y, mask):
    """(mean binary cross-entropy over the answer steps' bits, output logits, attention trace)."""
    logits, trace = model(params, tensor(x, dtype=params["r0"].dtype))
    per_bit = binary_cross_entropy_with_logits(logits, tensor(y, dtype=logits.dtype), reduction="none")
    m = tensor(mask[:, None], dtype=logits.dtype)
    loss = (per_bit * m).sum() / (float(mask.sum()) * x.shape[0] * y.shape[-1])
    return loss, logits, trace


def evaluate_copy(model: NTM, params: dict, length: int, batch: int = 32, seed: int = 1) -> dict:
    """Loss and wrong bits per sequence on ``batch`` fresh sequences of ``length`` (e.g. longer than trained)."""
    x, y, mask = copy_batch(np.random.default_rng(seed), batch, length, dtype=str(params["r0"].dtype))
    with no_grad():
        loss, logits, _ = copy_loss(model, params, x, y, mask)
    return {"length": length, "loss": float(loss.item()), "bit_errors": float(bit_errors(logits.numpy(), y, mask).mean())}


def _settings(logdir: Path, given: dict, resume: bool, overwrite: bool):
    """The run's settings and its checkpoint (or None), refusing a folder that does not fit."""
    ckpt_path = logdir / "checkpoint.npz"
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other: choose one")
    if resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}; train without --resume to start")
        ckpt = load_checkpoint(ckpt_path)
        saved = dict(ckpt.config or {})
        saved.setdefault("dtype", "float64")  # runs from before --dtype trained in float64
        # The rate may change at a resume (a step of a hand-made schedule, recorded by train_copy); the
        # network, the data and the dtype may not.
        clash = {k: (v, saved.get(k)) for k, v in given.items()
                 if v is not None and k != "lr" and saved.get(k) != v}
        if given.get("lr") is not None:
            _check_lr(given["lr"])
        if clash:
            raise ValueError("--resume continues the run with its own settings; these differ from it: "
                             + ", ".join(f"{k} {a!r} (run: {b!r})" for k, (a, b) in sorted(clash.items())))
        return saved, ckpt
    if ckpt_path.exists() and not overwrite:
        raise FileExistsError(f"{logdir} already holds a copy-task run: pass --resume to continue it, --overwrite "
                              "to replace it, or choose another --logdir")
    settings = {k: (DEFAULTS[k] if given.get(k) is None else given[k]) for k in DEFAULTS}
    for k in ("hidden", "memory_size", "memory_width", "batch", "min_len", "max_len"):
        if not isinstance(settings[k], int) or isinstance(settings[k], bool) or settings[k] < 1:
            raise ValueError(f"--{k.replace('_', '-')} must be an integer >= 1, got {settings[k]!r}")
    if settings["min_len"] > settings["max_len"]:
        raise ValueError(f"--min-len {settings['min_len']} is above --max-len {settings['max_len']}")
    if settings["dtype"] not in DTYPES:
        raise ValueError(f"--dtype must be one of {', '.join(DTYPES)}, got {settings['dtype']!r}")
    _check_lr(settings["lr"])
    return settings, None


def _check_lr(lr) -> None:
    if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"--lr must be a number > 0, got {lr!r}")


def _log_row(row) -> dict:
    """A log row as a dict; a run logged before rows were dicts stored [step, loss]."""
    if isinstance(row, dict):
        return dict(row)
    step, loss = row
    return {"step": int(step), "loss": float(loss)}


def resume_command(logdir, steps=None, seconds=None) -> str:
    """The command that continues the run in ``logdir`` (with this sitting's --steps / --time-limit)."""
    cmd = f"python -m tinymeta copy-task --resume --logdir {shlex.quote(str(logdir))}"
    if steps is not None:
        cmd += f" --steps {steps}"
    if seconds is not None:
        cmd += f" --time-limit {seconds:g}"
    return cmd


def train_copy(logdir, *, steps: int | None = None, seconds: float | None = None, resume: bool = False,
               overwrite: bool = False, log_every: int = 50, checkpoint_every: int | None = 500, echo=print,
               **settings) -> dict:
    """Train an NTM on the copy task in ``logdir`` until ``steps`` steps in all, or ``seconds`` of this sitting.

    ``settings`` (any of :data:`DEFAULTS`: hidden, memory_size, memory_width, batch, min_len,
    max_len, lr, seed, dtype) fix a new run; a resumed run keeps its own (a different value is refused),
    except ``lr``: given at a resume, it is the rate from this step on, and the change is recorded in the
    run's config (``lr_changes``: [[step, old rate, new rate], ...]) and in the log, so a hand-made schedule
    (say 1e-3, then 1e-4 once the loss stops falling) stays on the record and replays exactly.
    The checkpoint (``logdir/checkpoint.npz``, written temp-then-rename) holds the weights, Adam's
    state, the generator state, the log and the log interval in progress, so a resumed run
    draws the same sequences and reaches the same weights, bit for bit, as an uninterrupted one (as far as
    NumPy repeats itself: 1.24.1's ``exp`` has been seen to round an element of a strided array 1 ulp
    differently between two identical calls, once in about 150 forward passes).
    It is written every ``checkpoint_every`` steps (None: only at the end of the sitting) and at
    the end; SIGINT or SIGTERM ends the sitting after the current step, with a checkpoint.
    Every ``log_every`` steps a row {"step", "loss", "bit_errors", "seconds"} goes to the log:
    the interval's mean loss, mean wrong bits per training sequence, and the wall-clock seconds its
    steps took (so seconds / steps is the time per step); the sitting's last partial interval is logged too.
    Returns {"status" ("finished", "time limit" or "interrupted"), "step", "loss" (the last row's),
    "history" [(step, loss), ...], "log" (the rows), "model", "params"}.
    """
    if steps is None and seconds is None:
        raise ValueError("give --steps or --time-limit (or both): the copy task trains until one is reached")
    if steps is not None and (not isinstance(steps, int) or steps < 0):
        raise ValueError(f"--steps must be an integer >= 0, got {steps!r}")
    if seconds is not None and not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"--time-limit must be a number of seconds > 0, got {seconds!r}")
    for name, value in (("--log-every", log_every), ("--checkpoint-every", checkpoint_every)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"train_copy: unknown settings {unknown}; known: {sorted(DEFAULTS)}")
    logdir = Path(logdir)
    cfg, ckpt = _settings(logdir, settings, resume, overwrite)
    new_lr = settings.get("lr") if ckpt is not None and settings.get("lr") not in (None, cfg["lr"]) else None
    make_folder(logdir, "run folder (--logdir)")
    model = model_of(cfg)
    dtype = cfg.get("dtype", "float64")
    if ckpt is None:
        params = model.init_params(np.random.default_rng([cfg["seed"], 0]), dtype=dtype)
        opt, rng, step, rows = Adam(params, lr=cfg["lr"]), np.random.default_rng([cfg["seed"], 1]), 0, []
        interval = {"losses": [], "bit_errors": [], "seconds": 0.0}
    else:
        params = ckpt.params
        opt = Adam(params, lr=cfg["lr"])
        opt.load_state_dict(ckpt.optimizer_state)
        rng, step = restore_rng(ckpt.rng_state), int(ckpt.extra["step"])
        rows = [_log_row(r) for r in ckpt.extra.get("history", [])]
        interval = dict(ckpt.extra.get("interval") or {"losses": [], "bit_errors": [], "seconds": 0.0})
        echo(f"resuming {logdir} at step {step}")
        if new_lr is not None:  # Adam's moments carry over; only the step size changes
            cfg = {**cfg, "lr": float(new_lr),
                   "lr_changes": [*cfg.get("lr_changes", []), [step, float(cfg["lr"]), float(new_lr)]]}
            opt.lr = cfg["lr"]
            echo(f"learning rate {cfg['lr_changes'][-1][1]:g} -> {cfg['lr']:g} from step {step} on")

    def flush():
        nonlocal interval
        if interval["losses"]:
            rows.append({"step": step, "loss": float(np.mean(interval["losses"])),
                         "bit_errors": float(np.mean(interval["bit_errors"])), "seconds": interval["seconds"],
                         "lr": float(opt.lr)})
        interval = {"losses": [], "bit_errors": [], "seconds": 0.0}

    def save():
        save_checkpoint(logdir / "checkpoint.npz", params, optimizer=opt, rng=rng, config=cfg,
                        extra={"step": step, "history": rows, "interval": interval})
        write_text(logdir / "log.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    status, start = "finished", time.perf_counter()
    with StopFlag() as flag, np.errstate(over="ignore", invalid="ignore"):
        while steps is None or step < steps:
            if flag.stop or (seconds is not None and time.perf_counter() - start >= seconds):
                status = "interrupted" if flag.stop else "time limit"
                break
            t0 = time.perf_counter()
            length = int(rng.integers(cfg["min_len"], cfg["max_len"] + 1))
            x, y, mask = copy_batch(rng, cfg["batch"], length, dtype=dtype)
            loss, logits, _ = copy_loss(model, params, x, y, mask)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(f"the copy-task loss became {value} at step {step + 1}; try a smaller --lr")
            grads = grad(loss, params)
            with no_grad():
                grads = {k: ops.minimum(ops.maximum(g, -GRAD_CLIP), GRAD_CLIP) for k, g in grads.items()}
            opt.step(grads)
            step += 1
            interval["losses"].append(value)
            interval["bit_errors"].append(float(bit_errors(logits.numpy(), y, mask).mean()))
            interval["seconds"] += time.perf_counter() - t0
            if step % log_every == 0:
                flush()
                r = rows[-1]
                echo(f"step {step}  loss {r['loss']:.4f}  bits wrong {r['bit_errors']:.2f}  "
                     f"({r['seconds'] / log_every:.3f} s/step, {time.perf_counter() - start:.0f} s)")
            if checkpoint_every is not None and step % checkpoint_every == 0 and (steps is None or step < steps):
                save()
        flush()  # the sitting's last partial interval, so a short run still logs
        save()
    echo(f"checkpoint at step {step}: {logdir / 'checkpoint.npz'}")
    if status != "finished":
        echo(f"{status} at step {step}; continue with: {resume_command(logdir, steps, seconds)}")
    return {"status": status, "step": step, "loss": rows[-1]["loss"] if rows else None,
            "history": [(r["step"], r["loss"]) for r in rows], "log": rows, "model": model, "params": params}


# ---- what a run learned: evaluation and figures ---------------------------------------------------
EVAL_LENGTHS = (10, 20, 30, 40, 60, 80, 100, 120)
FIGURES = ("curve.png", "copy-trained.png", "heads-trained.png", "copy-longer.png", "heads-longer.png",
           "generalisation.png")
EVALUATION = "evaluation.json"


def load_copy_run(logdir):
    """(settings, model, params, step, log rows) of the copy-task run in ``logdir``, refusing any other folder."""
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise FileNotFoundError(f"{logdir}: no such run folder; train one with "
                                f"`python -m tinymeta copy-task --logdir {shlex.quote(str(logdir))} --steps N`")
    path = logdir / "checkpoint.npz"
    if not path.exists():
        raise FileNotFoundError(f"{logdir} holds no checkpoint.npz, so no copy-task run: give the --logdir of a "
                                "`tinymeta copy-task` run")
    ckpt = load_checkpoint(path)
    cfg = dict(ckpt.config or {})
    missing = sorted(k for k in DEFAULTS if k != "dtype" and k not in cfg)
    if missing:
        raise ValueError(f"{logdir} is not a copy-task run: its checkpoint's settings lack {', '.join(missing)} "
                         "(`tinymeta copy-task-plot` reads the folders of `tinymeta copy-task`)")
    cfg.setdefault("dtype", "float64")
    model = model_of(cfg)
    want = model.init_params(np.random.default_rng(0), dtype=cfg["dtype"])
    if {k: v.shape for k, v in ckpt.params.items()} != {k: v.shape for k, v in want.items()}:
        raise ValueError(f"{logdir} is not a copy-task run: its checkpoint's weights are not those of {model!r}")
    return cfg, model, ckpt.params, int(ckpt.extra.get("step", 0)), [_log_row(r) for r in ckpt.extra.get("history", [])]


def _copy_figures(x, y, logits, trace, length: int, title: str, paths):
    """One sequence: (input, target, output) as images, and the heads' weightings over memory against time."""
    from .viz import new_figure, save_png  # noqa: PLC0415 (matplotlib only when plotting)
    out = 1.0 / (1.0 + np.exp(-logits))
    fig = new_figure((max(6.0, 0.12 * x.shape[0] + 2), 5.4))
    axes = fig.subplots(3, 1, sharex=True)
    for ax, img, name in zip(axes, (x.T, y.T, out.T), ("input (row 8: the delimiter)", "target", "output P(bit = 1)")):
        ax.imshow(img, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set(ylabel="bit", title=name)
    axes[-1].set_xlabel("time step")
    axes[-1].xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, paths[0])
    fig = new_figure((10.0, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, name in zip(axes, ("write", "read")):
        im = ax.imshow(trace[name].T, cmap="viridis", vmin=0, vmax=1, aspect="auto", origin="lower",
                       interpolation="nearest")
        ax.axvline(length, color="w", lw=0.8, ls=":")  # the delimiter: input before it, answer after
        ax.set(title=f"{name} weighting", xlabel="time step")
        ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0].set_ylabel("memory location")
    fig.colorbar(im, ax=list(axes), shrink=0.8)
    fig.suptitle(title + " (dotted: the delimiter)")
    save_png(fig, paths[1])


def plot_copy_run(logdir, out=None, lengths=EVAL_LENGTHS, longer: int | None = None, batch: int = 32,
                  seed: int = 1, echo=print) -> dict:
    """Figures and ``evaluation.json`` of the copy-task run in ``logdir``; figures go to ``out`` (default ``logdir``).

    Writes (each atomically) ``curve.png`` (loss per step on a log scale, wrong bits per training
    sequence when logged), ``copy-trained.png`` / ``heads-trained.png`` (one sequence of the longest
    trained length: input, target, output; the write and read weightings over memory at every step),
    ``copy-longer.png`` / ``heads-longer.png`` (the same for ``longer``, default twice the longest
    trained length), ``generalisation.png`` (wrong bits per sequence against length, the trained
    range shaded), and ``logdir/evaluation.json``: for each of ``lengths``, the loss and wrong bits
    per sequence over ``batch`` fresh sequences drawn with ``seed``. Returns that evaluation.
    """
    from .viz import new_figure, save_png  # noqa: PLC0415
    cfg, model, params, step, rows = load_copy_run(logdir)
    lengths = [int(n) for n in lengths]
    longer = 2 * cfg["max_len"] if longer is None else int(longer)
    if not lengths or min(lengths) < 1 or longer < 1 or batch < 1:
        raise ValueError(f"--lengths, --longer and --batch must be >= 1, got {lengths}, {longer}, {batch}")
    logdir = Path(logdir)
    out = logdir if out is None else Path(out)
    make_folder(out, "figure folder (--out)")
    with np.errstate(over="ignore", invalid="ignore"):
        results = []
        for n in lengths:
            results.append({**evaluate_copy(model, params, n, batch=batch, seed=seed), "bits": n * WIDTH})
            echo(f"length {n:>3}: loss {results[-1]['loss']:.4f}, wrong bits per sequence "
                 f"{results[-1]['bit_errors']:.2f} (of {n * WIDTH})")
        evaluation = {"step": step, "batch": batch, "seed": seed, "trained_lengths": [cfg["min_len"], cfg["max_len"]],
                      "memory_size": cfg["memory_size"], "dtype": cfg["dtype"], "results": results}
        written = []
        for length, name in ((cfg["max_len"], "trained"), (longer, "longer")):
            x, y, mask = copy_batch(np.random.default_rng([seed, length]), 1, length, dtype=cfg["dtype"])
            with no_grad():
                loss, logits, trace = copy_loss(model, params, x, y, mask)
            wrong = int(bit_errors(logits.numpy(), y, mask)[0])
            paths = (out / f"copy-{name}.png", out / f"heads-{name}.png")
            _copy_figures(x[0], y[0], logits.numpy()[0], {k: v.numpy()[0] for k, v in trace.items()}, length,
                          f"length {length} ({'longest trained' if name == 'trained' else 'longer than trained'}),"
                          f" step {step}: {wrong} of {length * WIDTH} bits wrong", paths)
            written += paths
    fig = new_figure((10.0, 3.4))
    axes = fig.subplots(1, 2)
    if rows:
        axes[0].plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1)
        axes[0].set_yscale("log")
    axes[0].set(xlabel="step", ylabel="BCE per answer bit (log scale)", title="training loss")
    logged = [r for r in rows if "bit_errors" in r]
    if logged:
        axes[1].plot([r["step"] for r in logged], [r["bit_errors"] for r in logged], lw=1)
        axes[1].set(xlabel="step", ylabel="wrong bits per sequence", title="training sequences, wrong bits")
    else:
        axes[1].text(0.5, 0.5, "wrong bits were not logged by this run", ha="center", va="center",
                     transform=axes[1].transAxes)
        axes[1].set_axis_off()
    for at, old_lr, new_lr in cfg.get("lr_changes", []):  # where a resume changed the rate
        for ax in axes[:2 if logged else 1]:
            ax.axvline(at, color="grey", ls=":", lw=1)
        axes[0].annotate(f"lr {old_lr:g} -> {new_lr:g}", (at, 1), xycoords=("data", "axes fraction"),
                         xytext=(3, -12), textcoords="offset points", fontsize=8, color="grey")
    fig.tight_layout()
    written.append(save_png(fig, out / "curve.png"))
    fig = new_figure((6.0, 3.6))
    ax = fig.subplots()
    ax.axvspan(cfg["min_len"], cfg["max_len"], color="C2", alpha=0.15, label="trained lengths")
    ax.plot([r["length"] for r in results], [r["bit_errors"] for r in results], "o-", label="NTM")
    if cfg["memory_size"] <= max(lengths):
        ax.axvline(cfg["memory_size"], color="grey", ls=":", label=f"memory size {cfg['memory_size']}")
    ax.set(xlabel="sequence length", ylabel="wrong bits per sequence",
           title=f"generalisation, step {step} ({batch} sequences a length)")
    ax.legend()
    fig.tight_layout()
    written.append(save_png(fig, out / "generalisation.png"))
    write_text(logdir / EVALUATION, json.dumps(evaluation, indent=2) + "\n")
    echo("wrote " + ", ".join(str(p) for p in written) + f" and {logdir / EVALUATION}")
    return evaluation


def add_subcommand(subparsers) -> None:
    """Register ``copy-task`` on the ``tinymeta`` command line's subparsers."""
    p = subparsers.add_parser("copy-task", help="train a neural Turing machine on the copy task (CPU, resumable)",
                              description="Train an NTM (Graves et al. 2014) on the copy task for --steps steps "
                                          "or --time-limit seconds, checkpointing to LOGDIR; --resume continues. "
                                          "Then report loss and wrong bits per sequence at --eval-lengths.")
    p.add_argument("--logdir", default="runs/ntm-copy", help="run folder (default runs/ntm-copy)")
    p.add_argument("--steps", type=int, help="train until this many steps in all")
    p.add_argument("--time-limit", type=float, help="end this sitting after this many seconds")
    p.add_argument("--resume", action="store_true", help="continue the run in --logdir")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run in --logdir")
    for k in DEFAULTS:
        kind = {"lr": float, "dtype": str}.get(k, int)
        p.add_argument(f"--{k.replace('_', '-')}", type=kind, default=None,
                       help=f"default {DEFAULTS[k]}" + (" (with --resume: the rate from now on, recorded in the run)"
                                                         if k == "lr" else " (a resumed run keeps its own)"))
    p.add_argument("--log-every", type=int, default=50, help="steps per log row (default 50)")
    p.add_argument("--checkpoint-every", type=int, default=500,
                   help="write the checkpoint every this many steps as well as at the end (default 500)")
    p.add_argument("--eval-lengths", type=int, nargs="*", default=[10, 20, 40],
                   help="sequence lengths to evaluate at the end (default 10 20 40: 40 is longer than trained)")
    p.set_defaults(func=_main)

    q = subparsers.add_parser("copy-task-plot", help="figures and evaluation of a copy-task run",
                              description="Evaluate a `tinymeta copy-task` run on fresh sequences of --lengths "
                                          "(evaluation.json in the run folder) and draw its training curve, one "
                                          "copy at the longest trained length and one longer, the heads' "
                                          "attention over memory for each, and wrong bits against length.")
    q.add_argument("logdir", help="the run folder (the --logdir of `tinymeta copy-task`)")
    q.add_argument("--out", help="folder for the figures (default: the run folder)")
    q.add_argument("--lengths", type=int, nargs="+", default=list(EVAL_LENGTHS),
                   help="sequence lengths to evaluate (default " + " ".join(map(str, EVAL_LENGTHS)) + ")")
    q.add_argument("--longer", type=int, help="length of the longer-than-trained copy (default 2 x --max-len)")
    q.add_argument("--batch", type=int, default=32, help="sequences per length (default 32)")
    q.set_defaults(func=_plot_main)


def _main(args) -> int:
    given = {k: getattr(args, k) for k in DEFAULTS}
    if any(n < 1 for n in args.eval_lengths):
        raise ValueError(f"--eval-lengths must be >= 1, got {args.eval_lengths}")
    out = train_copy(args.logdir, steps=args.steps, seconds=args.time_limit, resume=args.resume,
                     overwrite=args.overwrite, log_every=args.log_every, checkpoint_every=args.checkpoint_every,
                     **given)
    if out["status"] == "interrupted":  # asked to stop: the evaluation can wait for the next sitting
        return 0
    for n in args.eval_lengths:
        ev = evaluate_copy(out["model"], out["params"], n)
        print(f"length {n:>3}: loss {ev['loss']:.4f}, wrong bits per sequence {ev['bit_errors']:.2f} "
              f"(of {n * WIDTH})")
    return 0


def _plot_main(args) -> int:
    plot_copy_run(args.logdir, args.out, args.lengths, args.longer, args.batch)
    return 0
