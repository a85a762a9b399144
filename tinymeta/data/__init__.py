"""Datasets on disk: find them, decode them once, cache compact uint8 arrays.

- :func:`load_omniglot` / :class:`OmniglotData`: Omniglot's 1623 characters x 20 drawings at 28x28.
- :func:`load_miniimagenet` / :class:`MiniImageNetData`: mini-ImageNet (Ravi & Larochelle csv splits) at 84x84.
- :func:`download_omniglot`: fetch the two official Omniglot zips (only when asked).

Modules: ``cache`` (locations, cache files), ``download``, ``omniglot`` and ``miniimagenet``
(finding and decoding each dataset).

Data folders come from an explicit argument, else ``$TINYMETA_DATA``, else ``./data/<dataset>``.
Caches go to ``$TINYMETA_CACHE``, else ``~/.cache/tinymeta`` (never into the data folder).
"""
from .cache import resolve_cache_dir
from .download import download_omniglot
from .miniimagenet import MiniImageNetData, find_miniimagenet, load_miniimagenet
from .omniglot import OmniglotData, find_omniglot, load_omniglot

__all__ = ["OmniglotData", "load_omniglot", "find_omniglot", "download_omniglot", "MiniImageNetData",
           "load_miniimagenet", "find_miniimagenet", "resolve_cache_dir"]
