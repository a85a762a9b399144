"""Pictures of tasks: a grid of one image task, and a few sine tasks with their curves.

Figures are drawn with matplotlib's object-oriented API on an Agg canvas
(``matplotlib.figure.Figure``), not with ``pyplot``: nothing is registered globally, so
there is no window, no figure to close, and a notebook's backend is left alone. PNGs are
written atomically (a temporary file in the same folder, then renamed).
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..backend import to_numpy
from ..tasks.sine import Sinusoid

_PAD = 0.82  # light grey between images, so white backgrounds stay visible


def new_figure(figsize):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_png(fig, path) -> Path:
    """Save ``fig`` as a PNG at ``path`` atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    return path


def _as_rgb(images: np.ndarray) -> np.ndarray:
    """(S, C, H, W) in [0, 1] -> (S, H, W, 3) for display; 1-channel ink (1.0) becomes black."""
    images = np.clip(images.astype(np.float32), 0.0, 1.0)
    if images.shape[1] == 1:
        return np.repeat(1.0 - images.transpose(0, 2, 3, 1), 3, axis=3)
    if images.shape[1] == 3:
        return images.transpose(0, 2, 3, 1)
    raise ValueError(f"expected images with 1 or 3 channels, got shape {images.shape}")


def save_task_grid(batch, path, task: int = 0, max_query: int | None = None, title: str | None = None) -> Path:
    """Save one task of an image meta-batch as a PNG grid; return the path.

    One row per class (labelled with its label, and its class index and rotation
    when ``batch.info`` has them); the support images on the left, a gap and a red
    line, then the query images. ``max_query`` caps the query columns shown.
    """
    return save_png(task_grid_figure(batch, task, max_query, title), path)


def task_grid_figure(batch, task: int = 0, max_query: int | None = None, title: str | None = None):
    """The figure :func:`save_task_grid` saves (laid out in inches, so that the title and headers fit)."""
    xs, ys = to_numpy(batch.x_support.data), to_numpy(batch.y_support.data)
    xq, yq = to_numpy(batch.x_query.data), to_numpy(batch.y_query.data)
    if xs.ndim != 5:
        raise ValueError(f"save_task_grid needs image tasks with x of shape (T, S, C, H, W), got "
                         f"{xs.shape}; for sine tasks use plot_sine_tasks")
    if not 0 <= task < xs.shape[0]:
        raise ValueError(f"task={task} but the batch has {xs.shape[0]} tasks")
    xs, ys, xq, yq = xs[task], ys[task].astype(int), xq[task], yq[task].astype(int)
    labels = np.unique(np.concatenate([ys, yq]))
    support = [_as_rgb(xs[ys == c]) for c in labels]
    all_query = [_as_rgb(xq[yq == c]) for c in labels]
    query = [imgs[:max_query] for imgs in all_query]
    k, q = max(len(s) for s in support), max(len(s) for s in query)
    capped = q < max(len(s) for s in all_query)
    h, w = xs.shape[-2:]
    scale = 1.6 if h < 50 else 0.9  # inches per 100 px: small images are drawn bigger
    pad = max(1, h // 14)
    cell_h, cell_w = h + pad, w + pad
    # the gap between support and query columns leaves room for both headers (about 0.9 in between centres)
    gap = max(4, h // 2, int(np.ceil(90 / scale - (k + q) * cell_w / 2)))
    width = pad + k * cell_w + gap + q * cell_w
    canvas = np.full((pad + len(labels) * cell_h, width, 3), _PAD, np.float32)
    q0 = pad + k * cell_w + gap  # x where the query columns start
    for r, (s_imgs, q_imgs) in enumerate(zip(support, query)):
        y0 = pad + r * cell_h
        for j, img in enumerate(s_imgs):
            canvas[y0:y0 + h, pad + j * cell_w:pad + j * cell_w + w] = img
        for j, img in enumerate(q_imgs):
            canvas[y0:y0 + h, q0 + j * cell_w:q0 + j * cell_w + w] = img

    # layout in inches: row names on the left, the title (wrapped to the figure's width) and the
    # two-line column headers above the grid
    left, right, bottom, headers = 1.5, 0.15, 0.15, 0.45
    grid_w, grid_h = canvas.shape[1] * scale / 100, canvas.shape[0] * scale / 100
    fig_w = max(left + grid_w + right, 4.5)
    title = title or f"task {task}: {len(labels)}-way {k}-shot"
    title = textwrap.fill(title, width=max(24, int((fig_w - 0.2) * 13)))  # ~13 characters per inch at 10 pt
    top = 0.12 + 0.2 * (title.count("\n") + 1) + headers
    fig = new_figure((fig_w, bottom + grid_h + top))
    fig_h = fig.get_figheight()
    x0 = left + (fig_w - left - grid_w - right) / 2  # a wide title: centre the grid under it
    ax = fig.add_axes([x0 / fig_w, bottom / fig_h, grid_w / fig_w, grid_h / fig_h])
    ax.imshow(canvas, interpolation="nearest")
    ax.axvline(q0 - gap / 2 - 0.5, color="tab:red", linewidth=2)
    info = batch.info or {}
    row_names = []
    for c in labels:
        name = f"label {c}"
        if "classes" in info:
            name += f"\nclass {int(info['classes'][task][c])}"
        if "rotations" in info and batch_rotates(info):
            name += f", {90 * int(info['rotations'][task][c])}\N{DEGREE SIGN}"
        row_names.append(name)
    ax.set_yticks(pad + np.arange(len(labels)) * cell_h + h / 2 - 0.5, row_names, fontsize=8)
    ax.set_xticks([pad + k * cell_w / 2, q0 + q * cell_w / 2],
                  [f"support\n{k} per class", f"query\n{q} per class" + (" shown" if capped else "")], fontsize=9)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(title, fontsize=10, y=1 - 0.08 / fig_h, va="top")
    return fig


def batch_rotates(info: dict) -> bool:
    """True when a batch's ``info`` records any non-zero rotation (worth printing)."""
    return "rotations" in info and bool(np.any(np.asarray(info["rotations"]) != 0))


def plot_sine_tasks(source, path, num_tasks: int = 4, seed: int = 0, num_points: int = 200,
                    title: str | None = None) -> Path:
    """Plot a few sine tasks: each task's true curve, support points and query points.

    ``source`` is a :class:`~tinymeta.tasks.Sinusoid` (``num_tasks`` tasks are sampled
    with ``np.random.default_rng(seed)``) or a sine :class:`~tinymeta.tasks.MetaBatch`
    (its first ``num_tasks`` tasks; the curves need ``info['amplitude']`` and
    ``info['phase']``). Returns the path of the PNG.
    """
    if isinstance(source, Sinusoid):
        sine, batch = source, source.sample(num_tasks, np.random.default_rng(seed))
    else:
        sine, batch = Sinusoid(), source
    xs, ys = to_numpy(batch.x_support.data), to_numpy(batch.y_support.data)
    xq, yq = to_numpy(batch.x_query.data), to_numpy(batch.y_query.data)
    if xs.ndim != 3 or xs.shape[-1] != 1:
        raise ValueError(f"plot_sine_tasks needs regression tasks with x of shape (T, K, 1), got "
                         f"{xs.shape}; for image tasks use save_task_grid")
    n = min(num_tasks, xs.shape[0])
    info = batch.info or {}
    lo = min(sine.x_range[0], float(xs.min()), float(xq.min()))
    hi = max(sine.x_range[1], float(xs.max()), float(xq.max()))
    cols = min(n, 4)
    rows = -(-n // cols)
    fig = new_figure((3.6 * cols, 2.8 * rows + 0.4))
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)  # one scale: amplitudes compare
    for t, ax in enumerate(axes.flat):
        if t >= n:
            ax.set_visible(False)
            continue
        if "amplitude" in info and "phase" in info:
            a, p = np.asarray(info["amplitude"])[t:t + 1], np.asarray(info["phase"])[t:t + 1]
            grid = np.linspace(lo, hi, num_points)
            ax.plot(grid, Sinusoid.function(grid, a, p)[0], color="0.3", linewidth=1.5, label="true function")
            ax.set_title(f"A = {a[0]:.2f}, \N{GREEK SMALL LETTER PHI} = {p[0]:.2f}", fontsize=9)
        ax.scatter(xq[t, :, 0], yq[t, :, 0], s=18, facecolors="none", edgecolors="tab:orange",
                   label=f"query ({xq.shape[1]})")
        ax.scatter(xs[t, :, 0], ys[t, :, 0], s=22, color="tab:blue", zorder=3,
                   label=f"support (K = {xs.shape[1]})")
        ax.set_xlim(lo, hi)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title or f"{n} sine tasks  y = A sin(x - \N{GREEK SMALL LETTER PHI})", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


__all__ = ["save_task_grid", "task_grid_figure", "plot_sine_tasks"]
