"""The throughput figure: which panels and lines a CSV gives, its axes and its layout."""

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from benchmarks.throughput_io import write_csv
from mtl_bench import figure_throughput, figures

BASE = {"batch_size": 16, "status": "ok", "precision": "bf16", "image_size": 64, "devices": 1,
        "device_kind": "cpu", "host_cpu": "AMD EPYC, 2 cores"}  # fmt: skip


@pytest.fixture()
def drawn(tmp_path, monkeypatch):
    """draw(rows) → {png name: figure}, each laid out and saved by the real ``_save``."""
    seen = {}

    def keep(fig, path):
        seen[path.name] = fig
        return figures._save(fig, path)

    monkeypatch.setattr(figure_throughput, "_save", keep)

    def draw(rows):
        seen.clear()
        write_csv(tmp_path / "throughput" / "run.csv", rows)
        figure_throughput.throughput_figures(tmp_path / "throughput", tmp_path / "fig")
        return dict(seen)

    return draw


def _legends(fig):
    return [sorted(t.get_text() for t in ax.get_legend().get_texts()) for ax in fig.axes]


def test_strategies_and_models_share_one_panel(drawn):
    # 2 models × 2 strategies × 2 batch sizes at one precision and size: one panel, four lines
    # (before: one panel per model and strategy, four panels of one line each).
    rows = [
        {**BASE, "model": m, "strategy": s, "batch_size": b, "train_img_per_s": b * f}
        for m, f in (("mtl_resunet", 10.0), ("unet", 20.0))
        for s in ("none", "jit")
        for b in (4, 16)
    ]
    fig = drawn(rows)["throughput_cpu.png"]
    assert _legends(fig) == [
        ["mtl_resunet — jit", "mtl_resunet — none", "unet — jit", "unet — none"]
    ]
    assert "host CPU: AMD EPYC, 2 cores" in fig.axes[0].get_title()
    # Which of the bench's two rates is plotted: the blocked one (pipelined is a CSV column).
    assert fig.axes[0].get_ylabel() == "training images/s (median of blocked steps)"


def test_run_variants_fold_modes_and_commits_stay_apart(drawn):
    rows = [
        {**BASE, "model": "mtl_resunet", "strategy": "fold", "fold_conv": "grouped",
         "train_img_per_s": 60.0},
        {**BASE, "model": "mtl_resunet", "strategy": "fold", "fold_conv": "unrolled",
         "train_img_per_s": 160.0},
        {**BASE, "model": "mtl_resunet", "strategy": "none", "train_img_per_s": 150.0},
        {**BASE, "model": "mtl_resunet", "strategy": "none", "train_img_per_s": 155.0,
         "config_overrides": "optimizer_flatten=true"},
        {**BASE, "model": "unet", "strategy": "none", "train_img_per_s": 692.0,
         "device_kind": "H100", "git_commit": "02ccc44+dirty"},
        {**BASE, "model": "unet", "strategy": "none", "train_img_per_s": 924.0,
         "device_kind": "H100", "git_commit": "dc59781abc"},
    ]  # fmt: skip
    seen = drawn(rows)
    assert _legends(seen["throughput_cpu.png"]) == [
        [
            "mtl_resunet [optimizer_flatten=true] — none",
            "mtl_resunet — fold (grouped)",
            "mtl_resunet — fold (unrolled)",
            "mtl_resunet — none",
        ]
    ]
    # Two commits on one device: one line each, named by the commit.
    assert _legends(seen["throughput_h100.png"]) == [
        ["unet @02ccc44 — none", "unet @dc59781 — none"]
    ]


def test_both_peers_dashed_in_the_runs_colour(drawn):
    peers = {"torch_eager_train_img_per_s": 60.0, "torch_compile_train_img_per_s": 90.0}
    rows = [{**BASE, "model": "unet", "strategy": "none", "train_img_per_s": 100.0, **peers}]
    ax = drawn(rows)["throughput_cpu.png"].axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert sorted(lines) == [
        "unet — PyTorch peer, eager",
        "unet — PyTorch peer, torch.compile",
        "unet — none",
    ]
    own = lines.pop("unet — none")
    for peer in lines.values():
        assert peer.get_linestyle() == "--" and peer.get_color() == own.get_color()


def test_host_cpus_get_panels_wide_ranges_a_log_axis(drawn):
    rows = [
        {**BASE, "model": "mtl_resunet", "strategy": "none", "train_img_per_s": 300.0},
        {**BASE, "model": "daf", "strategy": "none", "train_img_per_s": 3.0},
        {**BASE, "model": "unet", "strategy": "none", "train_img_per_s": 50.0,
         "host_cpu": "Intel Xeon, 16 cores"},
        {**BASE, "model": "vgg16", "strategy": "none", "train_img_per_s": 60.0, "host_cpu": None},
    ]  # fmt: skip
    axes = drawn(rows)["throughput_cpu.png"].axes
    titles = [ax.get_title().split("\n")[0] for ax in axes]
    assert titles == [
        "host CPU: not recorded",
        "host CPU: AMD EPYC, 2 cores",
        "host CPU: Intel Xeon, 16 cores",
    ]
    # 3 to 300 img/s: log; 50 alone: linear from 0, so a difference keeps its size.
    assert [ax.get_yscale() for ax in axes] == ["linear", "log", "linear"]
    assert axes[0].get_ylim()[0] == 0


def test_too_many_runs_are_split_between_models(drawn, monkeypatch):
    monkeypatch.setattr(figure_throughput, "MAX_RUNS", 2)
    rows = [
        {**BASE, "model": m, "strategy": "none", "train_img_per_s": 10.0, "model_kwargs": kw}
        for m in ("a", "b", "c")
        for kw in ("", "x=1")
    ]
    axes = drawn(rows)["throughput_cpu.png"].axes
    assert [ax.get_title().split(" — ")[-1] for ax in axes] == ["a", "b", "c"]


def test_suptitle_and_legends_clear_of_the_panels(drawn):
    # Eight panels (four rows): tight_layout, as used before, let the suptitle overprint a title.
    rows = [
        {**BASE, "model": m, "strategy": "none", "precision": p, "image_size": s,
         "train_img_per_s": 100.0}
        for m in ("mtl_resunet", "unet") for p in ("bf16", "fp32") for s in (32, 64, 128, 256)
    ]  # fmt: skip
    fig = drawn(rows)["throughput_cpu.png"]
    assert len(fig.axes) == 8
    canvas = FigureCanvasAgg(fig)  # ``_save`` closed it: lay it out again as saved
    canvas.draw()
    r = canvas.get_renderer()
    sup = fig.findobj(lambda a: isinstance(a, Text) and a.get_text() == fig.get_suptitle())
    sup_box = sup[0].get_window_extent(r)
    for ax in fig.axes:
        assert not sup_box.overlaps(ax.title.get_window_extent(r)), ax.get_title()
        assert not sup_box.overlaps(ax.get_window_extent(r))
        assert not ax.get_legend().get_window_extent(r).overlaps(ax.get_window_extent(r))


@pytest.mark.parametrize(
    "damage, said",
    [
        (lambda text: "", "not a throughput CSV (No columns to parse from file)"),
        (lambda text: text[: text.index("\n") + 40] + '"x', "not a throughput CSV (Error tok"),
        (lambda text: text.replace(",123.5,", ",abc,"), "train_img_per_s 'abc' in row 2 is no"),
        (lambda text: text.replace(",123.5,", ",-5,"), "train_img_per_s '-5' in row 2 is no"),
    ],
)
def test_a_damaged_csv_is_named_in_one_line(damage, said, tmp_path):
    # pandas' own messages named no file ("No columns to parse from file", "dtype 'str' does not
    # support operation 'median'"); a header without rows was dropped as if absent.
    from mtl_bench.data.types import DataError

    path = tmp_path / "throughput" / "run.csv"
    write_csv(path, [{**BASE, "model": "unet", "train_img_per_s": 123.5}])
    path.write_text(damage(path.read_text()))
    with pytest.raises(DataError) as err:
        figure_throughput.throughput_figures(tmp_path / "throughput", tmp_path / "fig")
    assert str(err.value).startswith(f"{path}: ") and said in str(err.value)


def test_a_header_only_csv_is_passed_over_and_said(tmp_path, capsys):
    # A bench writes its CSV's header first: figures drawn while it runs (or after it was killed)
    # must draw the other files, not fail on that one (review).
    throughput = tmp_path / "throughput"
    write_csv(throughput / "done.csv", [{**BASE, "model": "unet", "train_img_per_s": 123.5}])
    running = throughput / "running.csv"
    running.write_text((throughput / "done.csv").read_text().splitlines()[0] + "\n")
    assert figure_throughput.throughput_figures(throughput, tmp_path / "fig")
    assert f"{running}: a header and no rows yet" in capsys.readouterr().err
