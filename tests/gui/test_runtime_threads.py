"""Qt worker threads that ran OpenVINO exit cleanly (a per-thread cache of infer requests once
crashed the app when its first indexing thread ended). In a subprocess: a crash is a failed test,
not a dead test run."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = """
from PIL import Image
from PySide6.QtCore import QCoreApplication, QThread
from imgsearch_gui.base.config import EmbedderConfig
from imgsearch_gui.ml.embedder import load_embedder

app = QCoreApplication([])
emb = load_embedder(EmbedderConfig(backbone="tiny", size=64, pooling="gem"))
assert emb.runtime == "openvino", emb.runtime

class Job(QThread):
    def run(self):
        emb.embed_image(Image.new("RGB", (64, 48), "gray"))

for i in range(3):
    job = Job()
    job.start()
    assert job.wait(60000)

class Switch(QThread):  # the search service on a model switch: load, use, drop, exit
    def run(self):
        import gc
        other = load_embedder(EmbedderConfig(backbone="tiny", size=64, pooling="mac"))
        other.embed_image(Image.new("RGB", (48, 64), "gray"))
        del other
        gc.collect()

for i in range(2):
    job = Switch()
    job.start()
    assert job.wait(60000)
print("ok")
"""


def test_qthreads_that_ran_openvino_exit_cleanly(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", IMGSEARCH_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env,
                          timeout=180)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
