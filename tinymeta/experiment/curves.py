"""Learning curves of one or more runs on one figure (``tinymeta plot LOGDIR...``)."""
from __future__ import annotations

from pathlib import Path

from ..algorithms.mann import TABLE1_INSTANCES, ordinal
from ..files import atomic_write, make_folder
from .runs import read_log


def _series(rows, split, key, post_index=-1):
    xs_it, xs_t, ys = [], [], []
    for r in rows:
        if r.get("split") != split or key not in r:
            continue
        v = r[key]
        if isinstance(v, list) and not -len(v) <= post_index < len(v):
            continue
        xs_it.append(r["iteration"])
        xs_t.append(r["time"])
        ys.append(v[post_index] if isinstance(v, list) else v)
    return xs_it, xs_t, ys


def default_out(logdirs) -> Path:
    """Where ``tinymeta plot`` writes without --out: one run's folder, or the current folder for several runs.

    (Not their common parent: for runs in unrelated folders that is the file system's root.)
    """
    folders = [Path(d) for d in logdirs]
    if len(folders) == 1:
        return folders[0] / "curves.png"
    return Path("curves.png")


def plot_runs(logdirs, out=None, labels=None) -> Path:
    """Meta-train and meta-val post-update loss (and accuracy) against iteration and wall-clock time.

    Solid lines are validation (held-out tasks, after the training number of
    inner steps), dashed lines the meta-training batches. Runs whose validation
    gives the accuracy at the k-th drawing of a class (MANN and its LSTM baseline)
    get a third row of panels, as the paper's Fig. 2: the 1st, 2nd, 3rd, 5th and
    10th instance, one colour per instance, one line style per run. Writes a PNG (``out``,
    default :func:`default_out`) and returns its path. Raises ValueError when
    ``labels`` does not give one label per run, or no run has a log row yet.
    """
    logdirs = list(logdirs)
    if labels is not None and len(labels) != len(logdirs):
        raise ValueError(f"{len(labels)} label(s) for {len(logdirs)} run(s): give one --labels entry per run, "
                         "or none to use the folder names")
    runs = [(Path(d), read_log(d)) for d in logdirs]
    if not any(rows for _, rows in runs):
        raise ValueError(f"nothing to plot: {', '.join(str(d) for d, _ in runs)} "
                         f"{'has' if len(runs) == 1 else 'have'} no log rows yet (the first is written after "
                         "--log-interval iterations)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    labels = labels or [d.name or str(d) for d, _ in runs]
    has_acc = any("query_accuracy" in r or "accuracy" in r for _, rows in runs for r in rows)
    has_instances = any("instance_accuracy" in r for _, rows in runs for r in rows if r.get("split") == "val")
    metrics = [("loss", "query_loss", "post-update loss")] + (
        [("accuracy", "query_accuracy", "post-update accuracy")] if has_acc else []) + (
        [("instance_accuracy", None, "accuracy at the k-th instance (meta-val)")] if has_instances else [])
    fig = Figure(figsize=(11, 3.6 * len(metrics)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(metrics), 2, squeeze=False)
    for row, (val_key, train_key, title) in enumerate(metrics):
        for col, (xname, xi) in enumerate((("iteration", 0), ("training time (s)", 1))):
            ax = axes[row][col]
            if train_key is None:
                _plot_instances(ax, runs, labels, xi)
            else:
                _plot_metric(ax, runs, labels, xi, val_key, train_key)
            ax.set_xlabel(xname)
            ax.set_ylabel(title)
            if val_key == "loss":
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(out) if out is not None else default_out(logdirs)
    make_folder(out.parent, "folder of the figure")
    with atomic_write(out, "wb") as f:
        fig.savefig(f, format="png", dpi=110)
    return out


def _plot_metric(ax, runs, labels, xi, val_key, train_key):
    """One metric of every run: meta-train dashed, meta-val solid, one colour per run."""
    for i, ((_, rows), label) in enumerate(zip(runs, labels)):
        color = f"C{i}"
        tr = _series(rows, "train", train_key)
        if not tr[2] and train_key == "query_loss":  # Reptile logs support losses
            tr = _series(rows, "train", "support_loss_post")
        va = _series(rows, "val", val_key)
        if tr[2]:
            ax.plot(tr[xi], tr[2], "--", color=color, alpha=0.6, lw=1, label=f"{label} (meta-train)")
        if va[2]:
            ax.plot(va[xi], va[2], "-o", color=color, lw=1.8, ms=3, label=f"{label} (meta-val)")


def _plot_instances(ax, runs, labels, xi):
    """Validation accuracy at the k-th drawing of a class (``instance_accuracy``): colour = k, style = run."""
    styles = ("-", "--", ":", "-.")
    for i, ((_, rows), label) in enumerate(zip(runs, labels)):
        for j, k in enumerate(TABLE1_INSTANCES):
            va = _series(rows, "val", "instance_accuracy", post_index=k - 1)
            if va[2]:
                ax.plot(va[xi], va[2], styles[i % len(styles)], color=f"C{j}", lw=1.5,
                        label=f"{label}, {ordinal(k)}")
    ax.legend(fontsize=7, ncol=2)
