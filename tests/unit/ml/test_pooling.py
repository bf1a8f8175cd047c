import torch

from imgsearch_gui.ml import functional as LF
from imgsearch_gui.ml.pooling import GeM, make_pooling


def test_gem_p_is_learnable():
    pool = GeM(p=3.0)
    x = torch.rand(2, 8, 4, 4, requires_grad=True)
    pool(x).sum().backward()
    assert pool.p.grad is not None and pool.p.grad.abs().item() > 0


def test_module_matches_functional():
    x = torch.rand(2, 8, 5, 6)
    for name in LF.POOLINGS:
        module = make_pooling(name)
        assert torch.allclose(module(x), LF.pool(x, name, **LF.DEFAULT_PARAMS.get(name, {})), atol=1e-6)
