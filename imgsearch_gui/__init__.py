"""imgsearch: find photos by their content with CNN descriptors and an HNSW index."""

__version__ = "0.1.0"
