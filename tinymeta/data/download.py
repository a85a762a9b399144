"""Download Omniglot's two official zips: only when asked (``tinymeta download omniglot``).

Nothing else in tinymeta touches the network. mini-ImageNet has no official download
(its images come from ImageNet, under ImageNet's terms).
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .cache import say
from .omniglot import HOME_URL, SPLITS

DOWNLOAD_BASE_URL = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python/"
# md5 of the official zips (the same ones torchvision checks); a download must match.
OFFICIAL_MD5 = {"images_background.zip": "68d2efa1b9178cc56df9314c21c6e718",
                "images_evaluation.zip": "6b91aef0f799c5bb55b94e3f2daec811"}


def download_omniglot(dest, *, base_url: str = DOWNLOAD_BASE_URL, timeout: float = 60.0,
             verify: bool = True, overwrite: bool = False, verbose: bool = True) -> list[Path]:
    """Fetch the two official zips into ``dest`` (created if needed); return their paths.

    Each file is streamed to a temporary name in ``dest`` and renamed only when
    complete (and, with ``verify``, only if its md5 matches the official file). Files
    already present are kept unless ``overwrite``. Raises RuntimeError with manual
    instructions when the server cannot be reached (e.g. offline).
    """
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SPLITS:
        fname = f"{name}.zip"
        target = dest / fname
        paths.append(target)
        if target.exists() and not overwrite:
            say(verbose, f"{target} already exists; keeping it")
            continue
        url = base_url.rstrip("/") + "/" + fname
        say(verbose, f"downloading {url}")
        fd, tmp = tempfile.mkstemp(prefix=fname + ".", suffix=".part", dir=dest)
        try:
            md5 = hashlib.md5()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    md5.update(chunk)
            if verify and md5.hexdigest() != OFFICIAL_MD5[fname]:
                raise RuntimeError(f"{url} gave a file with md5 {md5.hexdigest()}, but the official "
                                   f"{fname} has md5 {OFFICIAL_MD5[fname]}; not saved")
            os.replace(tmp, target)
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            _unlink(tmp)
            raise RuntimeError(
                f"could not download {url} ({exc}). Check the connection (are you offline?) and the "
                f"URL, or download python/{fname} by hand from {HOME_URL} and put it in {dest}") from None
        except BaseException:
            _unlink(tmp)
            raise
    return paths


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


__all__ = ["download_omniglot", "DOWNLOAD_BASE_URL", "OFFICIAL_MD5"]
