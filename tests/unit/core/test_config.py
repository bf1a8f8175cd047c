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
