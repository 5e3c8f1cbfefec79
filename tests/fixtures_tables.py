"""Table specs and helpers shared by the table tests (the result files: ``fixtures_results``)."""

import numpy as np

from mtl_bench.tables import TableSpec

SEG = ("JSI", "DC", "ACC", "PRE", "REC", "SPE")
CLS = ("ACC", "PRE", "REC", "SPE", "F1", "AUC")
REASON = "not reproducible: needs RF time series"


def seg_spec(**kw):
    kw.setdefault("methods", ("mtl_resunet", "unet", "fpn"))
    return TableSpec("table4", "Table 4: segmentation", "comparison", **kw)


def cls_spec(**kw):
    kw.setdefault("methods", ("mtl_resunet", "resnet50", "uniyal"))
    kw.setdefault("fixed_rows", {"uniyal": REASON})
    return TableSpec("table6", "Table 6: classification", "comparison", task="classification", **kw)


def fold_numbers(written, method, task, metric):
    return np.array([written[method][f]["metrics"][task][metric] for f in sorted(written[method])])
