"""Torch thread settings for the calling thread (the GUI's long-lived search worker)."""

from __future__ import annotations

import threading

import torch


def single_threaded_inference() -> None:
    """One intra-op thread for the calling thread's torch work, other threads unchanged.

    A query is one image: an intra-op team barely helps it, and a long-lived thread's OpenMP team
    degrades badly whenever the CPU is oversubscribed (measured on 2 cores while indexing or
    another program runs: one image took 1.1-2.4 s with 2 threads, 86-100 ms with 1).
    ``torch.set_num_threads`` also sets the default that threads starting later adopt, so a
    short helper thread puts the default back (its own per-thread setting dies with it).
    """
    default = torch.get_num_threads()
    if default <= 1:
        return
    torch.set_num_threads(1)
    helper = threading.Thread(target=torch.set_num_threads, args=(default,), daemon=True)
    helper.start()
    helper.join()
