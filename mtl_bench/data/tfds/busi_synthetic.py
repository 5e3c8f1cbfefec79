"""TFDS builder ``busi_synthetic``: the synthetic BUSI-like phantom, generated at build time.

Same features as ``busi`` (resized, not pre-processed) so every consumer can be tried on it
without the real data. The config name encodes size, count, seed and difficulty, e.g.
``256px_nall_seed0_d0p5``; each combination is its own folder under the data dir.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from mtl_bench.data.phantom import synth_phantom
from mtl_bench.data.tfds import _common


class BusiSynthetic(tfds.core.GeneratorBasedBuilder):
    """Synthetic ultrasound phantom with BUSI's layout and class proportions."""

    VERSION = _common.VERSION
    RELEASE_NOTES = _common.RELEASE_NOTES
    BUILDER_CONFIGS = [_common.synthetic_config(256)]

    def _info(self) -> tfds.core.DatasetInfo:
        return _common.info(self, "Synthetic BUSI-like phantom: image, lesion mask, class.")

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        cfg = self.builder_config
        dataset = synth_phantom(
            cfg.n,
            image_size=cfg.image_size,
            seed=cfg.seed,
            difficulty=cfg.difficulty,
            class_set="three_class",
        )
        _common.record_metadata(self, dataset)
        return {"train": self._generate_examples(dataset)}

    def _generate_examples(self, dataset):
        yield from _common.examples(dataset)
