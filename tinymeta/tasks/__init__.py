"""Task families: each samples meta-batches with a leading task axis.

``TASK_FAMILIES`` maps a config's ``dataset`` to its family (a :class:`TaskFamily`);
a new family is one module here and one line below.
"""
from .base import TEST_SEED, VAL_SEED, MetaBatch, TaskFamily
from .miniimagenet import MiniImageNet
from .omniglot import Omniglot, omniglot_splits
from .omniglot_episodes import OmniglotEpisodes
from .sine import Sinusoid

TASK_FAMILIES: dict[str, type[TaskFamily]] = {"sine": Sinusoid, "omniglot": Omniglot, "miniimagenet": MiniImageNet,
                                                "omniglot-episodes": OmniglotEpisodes}

__all__ = ["MetaBatch", "TaskFamily", "TASK_FAMILIES", "Sinusoid", "Omniglot", "MiniImageNet", "OmniglotEpisodes", "omniglot_splits",
           "VAL_SEED", "TEST_SEED"]
