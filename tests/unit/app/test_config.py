from imgsearch_gui.app.config import apply_overrides, load_config, save_config
from imgsearch_gui.base.config import EmbedderConfig


def test_roundtrip_and_defaults(tmp_path):
    assert load_config(tmp_path) == EmbedderConfig()
    cfg = EmbedderConfig(backbone="tiny", pooling="gem", size=64, whitening="/x/w.npz")
    save_config(tmp_path, cfg)
    assert load_config(tmp_path) == cfg
    (tmp_path / "embedder.json").write_text("{broken")
    assert load_config(tmp_path) == EmbedderConfig()


def test_overrides_drop_whitening_when_the_model_changes():
    saved = EmbedderConfig(pooling="gem", whitening="/x/w.npz")
    assert apply_overrides(saved, device="cpu", pooling=None).whitening == "/x/w.npz"
    assert apply_overrides(saved, pooling="gem").whitening == "/x/w.npz"
    changed = apply_overrides(saved, pooling="mac")
    assert changed.pooling == "mac" and changed.whitening is None


def test_a_new_checkpoint_brings_its_pooling_and_size(tmp_path):
    from imgsearch_gui.ml.backbones import load_backbone
    from imgsearch_gui.ml.checkpoint import Checkpoint, save_checkpoint

    state = load_backbone("tiny").model.state_dict()
    path = str(save_checkpoint(tmp_path / "m.pt", Checkpoint("tiny", state, "gem", {"p": 2.5}, 96)))
    saved = EmbedderConfig()
    chosen = apply_overrides(saved, weights=path)
    assert (chosen.backbone, chosen.pooling, chosen.size) == ("tiny", "gem", 96)
    assert apply_overrides(saved, weights=path, size=128).size == 128  # explicit flags win
    again = apply_overrides(chosen, pooling="mac")  # same checkpoint: nothing re-applied
    assert again.pooling == "mac" and again.size == 96


def test_a_checkpoint_with_supervised_whitening_is_used_whitened(tmp_path):
    import numpy as np
    import torch

    from imgsearch_gui.base.config import EmbedderConfig
    from imgsearch_gui.ml.backbones import load_backbone
    from imgsearch_gui.ml.checkpoint import Checkpoint, save_checkpoint
    from imgsearch_gui.ml.embedder import load_embedder
    from imgsearch_gui.ml.whitening import Whitening

    backbone = load_backbone("tiny")
    dim = backbone.spec.channels
    rng = np.random.default_rng(0)
    whitening = {"mean": torch.from_numpy(rng.normal(size=dim).astype(np.float32)),
                 "projection": torch.from_numpy(rng.normal(size=(dim // 2, dim)).astype(np.float32))}
    path = str(save_checkpoint(tmp_path / "w.pt", Checkpoint(
        "tiny", backbone.model.state_dict(), "gem", {"p": 3.0}, 64, whitening=whitening)))

    chosen = apply_overrides(EmbedderConfig(device="cpu"), weights=path)
    assert chosen.whitening == f"{path}#whitening"
    embedder = load_embedder(chosen)
    assert embedder.meta.dim == dim // 2 and embedder.meta.whitening_id.startswith(f"lw{dim // 2}-")
    plain = embedder.with_whitening(None)
    x = plain.embed_image(_gray())
    expected = Whitening(whitening["mean"].numpy(), whitening["projection"].numpy()).apply(x)
    assert np.allclose(embedder.embed_image(_gray()), expected[0], atol=1e-5)
    # saved and loaded again (embedder.json), it is still there; another pooling drops it
    save_config(tmp_path, chosen)
    assert load_config(tmp_path).whitening == chosen.whitening
    assert apply_overrides(EmbedderConfig(), weights=path, pooling="mac").whitening is None
    # a checkpoint without whitening brings none
    bare = str(save_checkpoint(tmp_path / "b.pt", Checkpoint(
        "tiny", backbone.model.state_dict(), "gem", {"p": 3.0}, 64)))
    assert apply_overrides(EmbedderConfig(), weights=bare).whitening is None


def _gray():
    from PIL import Image

    return Image.new("RGB", (80, 60), (120, 130, 140))


def test_a_config_that_is_not_a_json_object_counts_as_the_defaults(tmp_path):
    from imgsearch_gui.app.config import CONFIG_FILE, load_config
    from imgsearch_gui.base.config import EmbedderConfig

    (tmp_path / CONFIG_FILE).write_text("[1, 2, 3]")
    assert load_config(tmp_path) == EmbedderConfig()
