"""Subprocess of test_library_kill.py: indexes a folder until it is SIGKILLed.

usage: kill_worker.py DATA_DIR ROOT EMBED_LOG DELAY_S
Every embedded path is appended to EMBED_LOG (flushed) so the test knows what this run redid.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    data, root, log_path, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    from imgsearch_gui.app.library import ImageLibrary
    from imgsearch_gui.base.config import EmbedderConfig
    from imgsearch_gui.ml.embedder import load_embedder

    inner = load_embedder(EmbedderConfig(backbone="tiny", size=64, batch_size=8, workers=1))
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - lives until the kill

    class LoggingEmbedder:
        config = inner.config
        meta = inner.meta

        def embed_files(self, paths, cancel=None):
            for res in inner.embed_files(paths, cancel=cancel):
                log.write(res.path + "\n")
                log.flush()
                time.sleep(delay)  # stretch the job so kills land everywhere
                yield res

    print("READY", flush=True)
    lib = ImageLibrary(data, LoggingEmbedder(), save_every=20, save_interval_s=0.1)
    for _ in lib.index_library(root):
        pass
    lib.close()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
