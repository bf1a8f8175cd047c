"""Training-step and embedding throughput on the CPU: fp32 vs bf16 autocast, channels_last vs
contiguous, interleaved in one run (the machine is shared: compare ratios, not seconds).

    python bench/finetune_speed.py [--steps 6] [--batch 32] [--size 224] [--rounds 2]

The step is the fine-tuning loop's: EfficientNet-Lite0 (bundled weights) + GeM, a batch of
size x size crops, forward, cosine-softmax loss, backward, AdamW (BatchNorm frozen).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from imgsearch_gui.ml.backbones import load_backbone  # noqa: E402
from imgsearch_gui.ml.descriptor import RetrievalNet  # noqa: E402
from imgsearch_gui.ml.finetune.losses import CosineHead  # noqa: E402
from imgsearch_gui.ml.finetune.trainmode import freeze_batchnorm  # noqa: E402
from imgsearch_gui.ml.pooling import make_pooling  # noqa: E402


def make(channels_last: bool):
    torch.manual_seed(0)
    net = RetrievalNet(load_backbone("efficientnet_lite0"), make_pooling("gem"))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    head = CosineHead(net.probe_dim(), 10)
    opt = torch.optim.AdamW(list(net.parameters()) + list(head.parameters()), lr=1e-4)
    return net, head, opt


def train_rate(net, head, opt, x, y, steps: int, bf16: bool, channels_last: bool) -> float:
    net.train()
    freeze_batchnorm(net)
    if not channels_last:
        net.normalise = lambda t: ((t.float() - net.mean) / net.std).contiguous()  # type: ignore
    t0 = None
    for i in range(steps + 1):  # the first step warms up
        if i == 1:
            t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(head(net(x).float()), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * len(x) / (time.perf_counter() - t0)


def embed_rate(net, x, steps: int, bf16: bool) -> float:
    net.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        net(x)
        t0 = time.perf_counter()
        for _ in range(steps):
            net(x)
    return steps * len(x) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    x = torch.randint(0, 255, (args.batch, 3, args.size, args.size), dtype=torch.uint8)
    y = torch.randint(0, 10, (args.batch,))
    variants = [(False, True), (True, True), (False, False), (True, False)]
    rates: dict[tuple[bool, bool], list[tuple[float, float]]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for bf16, cl in variants:
            net, head, opt = make(cl)
            steps = max(1, args.steps // 3) if bf16 else args.steps  # bf16 is ~15x slower here
            tr = train_rate(net, head, opt, x, y, steps, bf16, cl)
            em = embed_rate(net, x, steps, bf16)
            rates[(bf16, cl)].append((tr, em))
            print(f"bf16={bf16!s:5} channels_last={cl!s:5}: train {tr:6.1f} img/s, "
                  f"embed {em:6.1f} img/s", flush=True)
    base = rates[(False, True)]
    print(f"\n{torch.get_num_threads()} threads, batch {args.batch}, {args.size} px; "
          "ratios to fp32 channels_last (the shipped setting), median over rounds")
    print("| autocast | memory format | train img/s | ratio | embed img/s | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    b_tr, b_em = med([r[0] for r in base]), med([r[1] for r in base])
    for bf16, cl in variants:
        tr = med([r[0] for r in rates[(bf16, cl)]])
        em = med([r[1] for r in rates[(bf16, cl)]])
        print(f"| {'bf16' if bf16 else 'fp32'} | {'channels_last' if cl else 'contiguous'} | "
              f"{tr:.1f} | {tr / b_tr:.2f} | {em:.1f} | {em / b_em:.2f} |")


if __name__ == "__main__":
    main()
