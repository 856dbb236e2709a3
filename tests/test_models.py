"""Model loading: diffusers folders, the local HF cache, the original DiT checkpoint, embedder tying, errors."""

import shutil

import pytest
import torch

from diver_lite.models.dit_checkpoint import diffusers_to_original
from diver_lite.errors import ModelError
from diver_lite.models.tiny import build_tiny_models
from diver_lite.models.load import load_models
from diver_lite.models.tying import tie_embedders


def _dit_out(models, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 4, 4, 4, generator=g)
    with torch.no_grad():
        return models.transformer(x, timestep=torch.tensor([0, 500, 999]),
                                  class_labels=torch.tensor([1, 999, models.null_class])).sample


def test_diffusers_folder_loads_with_sizes_from_the_configs(tiny_model_dir):
    models = load_models(tiny_model_dir)
    assert (models.image_size, models.latent_size, models.latent_channels) == (32, 4, 4)
    assert models.null_class == 1000 and models.scaling_factor == pytest.approx(0.18215)
    reference = build_tiny_models(seed=0)
    torch.testing.assert_close(_dit_out(models), _dit_out(reference), atol=0, rtol=0)


def test_tying_embedders_saves_parameters_and_changes_no_output():
    models = build_tiny_models(seed=0)
    before = _dit_out(models)
    n_before = sum(p.numel() for p in models.transformer.parameters())
    saved = tie_embedders(models.transformer)
    n_after = sum(p.numel() for p in models.transformer.parameters())
    per_block = sum(p.numel() for p in models.transformer.transformer_blocks[0].norm1.emb.parameters())
    assert saved == per_block * (len(models.transformer.transformer_blocks) - 1) == n_before - n_after > 0
    assert torch.equal(_dit_out(models), before)


def test_embedders_that_differ_are_left_alone():
    models = build_tiny_models(seed=0)
    with torch.no_grad():
        models.transformer.transformer_blocks[1].norm1.emb.class_embedder.embedding_table.weight.add_(1.0)
    assert tie_embedders(models.transformer) == 0


def test_original_dit_checkpoint_round_trip(tmp_path, tiny_model_dir):
    """diffusers -> DiT's own layout (fused qkv, shared embedders, pos_embed) -> converted back in memory."""
    reference = build_tiny_models(seed=0)
    t = reference.transformer
    sd = diffusers_to_original(t.state_dict(), len(t.transformer_blocks), t.pos_embed.pos_embed)
    assert "blocks.0.attn.qkv.weight" in sd and "y_embedder.embedding_table.weight" in sd
    ckpt = tmp_path / "DiT-tiny.pt"
    torch.save(sd, ckpt)
    # The key mapping is checked at the reference's (diffusers') frequencies; Meta's own are in test_dit_reference.
    models = load_models(ckpt, vae=tiny_model_dir / "vae", num_heads=2, timestep_embedding="diffusers")
    assert models.tied_parameters > 0
    torch.testing.assert_close(_dit_out(models), _dit_out(reference), atol=0, rtol=0)
    # A training checkpoint keeps the weights under "ema".
    torch.save({"ema": sd, "opt": {}}, tmp_path / "train.pt")
    torch.testing.assert_close(_dit_out(load_models(tmp_path / "train.pt", vae=tiny_model_dir / "vae",
                                                    num_heads=2, timestep_embedding="diffusers")),
                               _dit_out(reference), atol=0, rtol=0)


def test_checkpoint_with_wrong_keys_is_refused(tmp_path, tiny_model_dir):
    torch.save({"model.weight": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(ModelError, match="not an original DiT checkpoint"):
        load_models(tmp_path / "bad.pt", vae=tiny_model_dir / "vae")


def test_incomplete_folder_lists_what_is_missing(tmp_path, tiny_model_dir):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    shutil.rmtree(broken / "vae")
    (broken / "transformer" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelError, match="missing .*transformer/diffusion_pytorch_model.safetensors.*vae/config.json"):
        load_models(broken)


def test_repo_id_resolves_from_the_local_cache_offline(tmp_path, tiny_model_dir, monkeypatch):
    cache = tmp_path / "hub"
    repo = cache / "models--facebook--DiT-tiny"
    snap = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model_dir, snap)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    models = load_models("facebook/DiT-tiny")
    assert models.image_size == 32
    with pytest.raises(ModelError, match="nor in the local Hugging Face cache"):
        load_models("facebook/DiT-absent")


def test_no_model_and_missing_path_say_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.setattr("diver_lite.models.source.EMBEDDED_DEFAULT", tmp_path / "not-installed")
    with pytest.raises(ModelError, match="--model"):
        load_models(None)
    with pytest.raises(ModelError, match="does not exist"):
        load_models(tmp_path / "DiT-XL-2-256x256.pt")


def test_a_repo_is_downloaded_once_when_online_and_never_when_offline(tmp_path, tiny_model_dir, monkeypatch):
    """The network is faked: huggingface_hub's snapshot_download is replaced by a recorder."""
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    from diver_lite.models import hub
    calls = []

    def fake_snapshot_download(repo_id, local_files_only=False, **kwargs):
        calls.append((repo_id, local_files_only))
        if local_files_only:
            raise LocalEntryNotFoundError("not cached")
        return str(tiny_model_dir)                                   # "downloaded"

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        load_models("facebook/DiT-XL-2-256")
    assert calls == [("facebook/DiT-XL-2-256", True)]                 # the cache only
    calls.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    models = load_models("DiT-XL/2-256")                               # DiT's short name
    assert calls == [("facebook/DiT-XL-2-256", True), ("facebook/DiT-XL-2-256", False)]
    assert models.image_size == 32
    assert hub.DEFAULT_VAE == "stabilityai/sd-vae-ft-mse" and hub.SHORT_NAMES["DiT-XL/2-512"] == \
        "facebook/DiT-XL-2-512"


def test_an_original_checkpoint_takes_dits_default_vae(tmp_path, tiny_model_dir, monkeypatch):
    import huggingface_hub

    asked = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo_id, **kw: asked.append(repo_id) or str(tiny_model_dir / "vae"))
    reference = build_tiny_models(seed=0)
    t = reference.transformer
    torch.save(diffusers_to_original(t.state_dict(), len(t.transformer_blocks), t.pos_embed.pos_embed),
               tmp_path / "DiT.pt")
    models = load_models(tmp_path / "DiT.pt", num_heads=2)
    assert asked == ["stabilityai/sd-vae-ft-mse"] and models.vae.config.latent_channels == 4
