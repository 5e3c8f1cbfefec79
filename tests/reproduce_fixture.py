"""Shared by tests/test_reproduce*.py."""

# Two folds of ~20 binary phantom images at 32², one epoch, the proposed model at tiny widths.
TINY = [
    "--set", "synthetic_n=24", "--set", "epochs=1", "--set", "batch_size=8",
    "--set", "mtl_resunet:model_kwargs.widths=(4,8,16,32,64)", "--quiet",
]  # fmt: skip
