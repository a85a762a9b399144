"""Task families: each samples meta-batches with a leading task axis."""
from .base import MetaBatch
from .miniimagenet import MiniImageNet
from .omniglot import Omniglot, omniglot_splits
from .sine import Sinusoid

__all__ = ["MetaBatch", "Sinusoid", "Omniglot", "MiniImageNet", "omniglot_splits"]
