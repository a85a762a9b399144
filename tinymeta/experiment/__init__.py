"""The tooling around the engine: configs and presets, the training loop, run folders,
checkpoints, evaluation, reports, plots, benchmarks and the ``tinymeta`` command.

The names a notebook or script needs are here::

    from tinymeta.experiment import PRESETS, train, load_checkpoint
    result = train(PRESETS["maml-sine-10shot"].replace(iterations=2000), "runs/sine")
"""
from .checkpoint import load_checkpoint, save_checkpoint
from .config import Config
from .curves import plot_runs
from .evaluation import evaluate_run, evaluate_tasks, format_evaluation
from .factories import TaskSource, build_algorithm, build_model, make_optimizer
from .loop import train
from .presets import PRESETS, default_config
from .runs import read_log

__all__ = ["Config", "PRESETS", "default_config", "train", "evaluate_run", "evaluate_tasks", "format_evaluation",
           "read_log", "load_checkpoint", "save_checkpoint", "plot_runs", "TaskSource", "build_model",
           "build_algorithm", "make_optimizer"]
