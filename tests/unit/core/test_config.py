from imgsearch_gui.core.config import apply_overrides, load_config, save_config
from imgsearch_gui.ml.embedder import EmbedderConfig


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
