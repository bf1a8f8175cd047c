"""``imgsearch index --ray local`` (issue 19): a Ray cluster of 2 CPUs started by the command in a
subprocess gives the local path's vectors, into the same catalog; odd names and a corrupt file
go through the workers too; a second run embeds only what changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("ray")

from imgsearch_gui.cluster.ray_embed import ClusterPlan  # noqa: E402

TINY = ["--backbone", "tiny", "--size", "64", "--dba", "0"]
BASE = [sys.executable, "-m", "imgsearch_gui.cli"]


def index(folder, data, *extra) -> dict:
    res = subprocess.run([*BASE, "index", str(folder), "--data-dir", str(data), *TINY, "--json",
                          *extra], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


def vectors_by_path(data) -> dict[str, np.ndarray]:
    from imgsearch_gui.app.library import ImageLibrary
    from imgsearch_gui.base.config import EmbedderConfig
    from imgsearch_gui.ml.embedder import load_embedder

    emb = load_embedder(EmbedderConfig(backbone="tiny", size=64))
    with ImageLibrary(data, emb) as lib:
        cat = lib.catalog
        out = {}
        for root in [r.root for r in cat.libraries()]:
            for path, row in cat.files_of_library(cat.library_id(root)).items():
                if row.vector_id is not None:
                    out[path] = lib.store.get([row.vector_id])[0]
        return out


def test_ray_local_gives_the_local_vectors_and_resumes(tmp_path, photo_factory):
    folder = tmp_path / "photos"
    for i in range(10):
        photo_factory(f"photos/a/img{i:02d}.png", seed=i)
    odd = os.fsencode(str(folder)) + b"/caf\xe9 \xff.png"
    with open(odd, "wb") as f:
        f.write((folder / "a" / "img00.png").read_bytes()[:-3] + b"xyz")  # another content
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    local = index(folder, tmp_path / "local")
    ray = index(folder, tmp_path / "ray", "--ray", "local", "--ray-cpus", "2")
    assert ray["embedded"] == local["embedded"] >= 10
    assert [s["path"] for s in ray["skipped"]] == [s["path"] for s in local["skipped"]]
    mine, theirs = vectors_by_path(tmp_path / "local"), vectors_by_path(tmp_path / "ray")
    assert mine.keys() == theirs.keys() and os.fsdecode(odd) in theirs
    for path, v in mine.items():
        np.testing.assert_allclose(theirs[path], v, atol=1e-5)
    photo_factory("photos/b/new.png", seed=99)
    again = index(folder, tmp_path / "ray", "--ray", "local", "--ray-cpus", "2")
    assert again["embedded"] == 1 and again["unchanged"] >= 11


@pytest.mark.parametrize(("cpus", "gpus", "actors", "want"), [
    (2, 0, None, (1, 2.0, 0.0)), (16, 0, None, (4, 4.0, 0.0)), (16, 4, None, (4, 4.0, 1.0)),
    (64, 8, None, (8, 4.0, 1.0)), (2, 0, 2, (2, 1.0, 0.0))])
def test_the_plan_puts_one_actor_per_gpu_else_one_per_4_cpus(cpus, gpus, actors, want):
    plan = ClusterPlan.for_resources(cpus, gpus, actors)
    assert (plan.actors, plan.cpus_per_actor, plan.gpus_per_actor) == want
