"""mtl-bench: multi-task breast-ultrasound segmentation and classification, benchmarked in JAX."""

from mtl_bench.registry import count_params, create_model, list_models, register_model

__all__ = ["count_params", "create_model", "list_models", "register_model"]
__version__ = "0.1.0"
