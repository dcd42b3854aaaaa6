"""Downloads from the Hugging Face Hub, through huggingface_hub.

The environment is read at call time: HF_ENDPOINT (mirrors), HF_TOKEN, HF_HOME /
HF_HUB_CACHE (the download cache). Interrupted downloads resume from the cache's
`.incomplete` files. Failures become one-line UserErrors that say what to do.
"""

from __future__ import annotations

import contextlib
import os
import socket
from urllib.parse import urlparse
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # the LFS object id: the sha256 of the content


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache",
                                                     "huggingface")
    return Path(home) / "hub"


def _token():
    return os.environ.get("HF_TOKEN") or None


def _quiet() -> None:
    """Our own progress bar and one-line errors: silence the library's retries and bars."""
    from huggingface_hub.utils import disable_progress_bars, logging

    logging.set_verbosity_error()
    disable_progress_bars()


def check_reachable(timeout: float = 5.0) -> None:
    """Fail in seconds, not after the client's minute of retries, when the endpoint is down."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return
    url = urlparse(endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError as e:
        raise UserError(f"cannot reach {endpoint()} ({e.strerror or e.__class__.__name__}): offline? Check the "
                        "network, or set HF_ENDPOINT to a mirror you can reach") from None


@contextlib.contextmanager
def hub_errors(repo: str, what: str = ""):
    """Map huggingface_hub / network failures to one clear line."""
    from huggingface_hub import errors

    _quiet()
    what = f" {what}" if what else ""
    try:
        yield
    except errors.RepositoryNotFoundError:
        raise UserError(f"{repo}: no such dataset on {endpoint()} (if it is private or gated, set HF_TOKEN)") from None
    except errors.RevisionNotFoundError:
        raise UserError(f"{repo}: revision not found on {endpoint()}") from None
    except (errors.RemoteEntryNotFoundError, errors.EntryNotFoundError):
        raise UserError(f"{repo}: file{what or ' ?'} is not in the repository on {endpoint()}") from None
    except errors.OfflineModeIsEnabled:
        raise UserError(f"HF_HUB_OFFLINE is set and {repo}{what} is not in the cache {cache_dir()}: "
                        "unset it to download") from None
    except errors.LocalEntryNotFoundError:
        raise UserError(f"cannot reach {endpoint()} to fetch {repo}{what}: offline? Check the network, or set "
                        "HF_ENDPOINT to a mirror you can reach") from None
    except errors.HfHubHTTPError as e:
        code = getattr(getattr(e, "response", None), "status_code", "?")
        raise UserError(f"{repo}: {endpoint()} answered HTTP {code} for{what or ' the listing'}; try again later") from None
    except OSError as e:
        if getattr(e, "errno", None) == 28:
            raise UserError(f"disk full while downloading {repo}{what} into {cache_dir()}: free space and run "
                            "again (the download resumes)") from None
        raise
    except Exception as e:  # httpx connection errors and the like: the network, not a bug
        name = e.__class__.__name__
        if any(k in name for k in ("Connect", "Timeout", "Network", "Protocol", "RemoteProtocol", "ReadError")):
            raise UserError(f"cannot reach {endpoint()} ({name}) while fetching {repo}{what}: offline? Check the "
                            "network, or set HF_ENDPOINT to a mirror; running again resumes") from None
        raise


def list_files(repo: str, prefix: str | None = None, repo_type: str = "dataset",
               revision: str | None = None) -> dict[str, RemoteFile]:
    from huggingface_hub import HfApi

    check_reachable()
    with hub_errors(repo):
        api = HfApi(endpoint=endpoint(), token=_token())
        items = api.list_repo_tree(repo, path_in_repo=prefix, repo_type=repo_type, recursive=True, revision=revision)
        out = {}
        for item in items:
            if getattr(item, "size", None) is None:
                continue  # a folder
            lfs = getattr(item, "lfs", None)
            sha = (lfs.get("sha256") or lfs.get("oid")) if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
            out[item.path] = RemoteFile(item.path, int(item.size), sha)
        return out


def fetch(repo: str, filename: str, repo_type: str = "dataset", revision: str | None = None) -> Path:
    """Download one file into the hub cache (resuming a partial one); returns its cached path."""
    from huggingface_hub import hf_hub_download

    with hub_errors(repo, filename):
        return Path(hf_hub_download(repo, filename, repo_type=repo_type, revision=revision, cache_dir=cache_dir(),
                                    endpoint=endpoint(), token=_token()))


def bytes_in_progress(repo: str, repo_type: str = "dataset") -> int:
    """Bytes in the cache's partial downloads of a repo: for a live progress bar."""
    blobs = cache_dir() / f"{repo_type}s--{repo.replace('/', '--')}" / "blobs"
    total = 0
    for p in blobs.glob("*.incomplete") if blobs.is_dir() else []:
        with contextlib.suppress(OSError):
            total += p.stat().st_size
    return total
