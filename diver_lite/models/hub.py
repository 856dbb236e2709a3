"""Model names -> local folders through the Hugging Face Hub, as diffusers users expect: the local cache first,
then a download on first use (huggingface_hub's progress bars), never a download when HF_HUB_OFFLINE is set.
DiT's short names (DiT-XL/2-256, DiT-XL/2-512) are the facebook/DiT-XL-2-* repos; an original DiT checkpoint runs
with DiT's own default VAE, stabilityai/sd-vae-ft-mse."""

import os
from pathlib import Path

from diver_lite.errors import ModelError, first_line

SHORT_NAMES = {"DiT-XL/2-256": "facebook/DiT-XL-2-256", "DiT-XL/2-512": "facebook/DiT-XL-2-512"}
DEFAULT_VAE = "stabilityai/sd-vae-ft-mse"              # DiT's sample.py default (--vae mse)
# What a DiT or VAE repo needs (not the duplicate .bin weights nor the original .pt).
PATTERNS = ["*.json", "*.safetensors", "*.md"]


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().upper() in ("1", "ON", "YES", "TRUE")


def looks_like_repo(name: str) -> bool:
    return name in SHORT_NAMES or (name.count("/") == 1 and not name.startswith((".", "/")))


def resolve_repo(name: str) -> Path:
    """A repo id (or a DiT short name) -> its local snapshot folder; downloaded once when not cached and not
    offline."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id = SHORT_NAMES.get(name, name)
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError) as e:
        if is_offline():
            raise ModelError(f"{repo_id} is neither a folder nor in the local Hugging Face cache "
                             f"({type(e).__name__}), and HF_HUB_OFFLINE is set",
                             f"download it once where a network is allowed (hf download {repo_id}), unset "
                             "HF_HUB_OFFLINE, or pass a local folder")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=PATTERNS))
    except Exception as e:  # noqa: BLE001 - network, auth and not-found errors of huggingface_hub alike
        raise ModelError(f"cannot download {repo_id}: {first_line(e)}",
                         "check the name and the network (or log in with `hf auth login` for a gated repo), "
                         "or pass a local folder")
