"""Pictures (extra [plot]): the data behind them on both backends, and real PNG/SVG files."""

import subprocess
import sys

import pytest

import pyalloc
from pyalloc import plot
from pyalloc.tools import serve, workload


def test_pageblock_map_counts_every_free_page(backend):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        workload.run_pages(m)
        mts, free = plot.pageblock_map(m)
        assert len(mts) == len(free) == m.nr_pages // 512
        # free pages: the buddy's and those waiting on the per-cpu lists
        assert sum(free) == sum(z["nr_free_pages"] + sum(p["count"] for p in z.get("pagesets", ()))
                                for z in m.snapshot()["zones"])
        assert all(0 <= f <= 512 for f in free)
        counts = [0] * 5
        for t in mts:
            counts[t] += 1
        assert counts == [sum(z["pageblocks"][t] for z in m.snapshot()["zones"]) for t in range(5)]


def test_time_series_samples_follow_the_machine(backend):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        points = plot.record(m, serve.churn(m, ops=300), 5)
        assert [p["step"] for p in points] == list(range(6))
        assert len({p["free"] for p in points}) > 1                  # the workload moved it
        last = m.snapshot()["zones"]
        assert points[-1]["free"] == sum(z["nr_free_pages"] for z in last)
        assert points[-1]["min"] == sum(z["wmark"][0] for z in last if z["present"])
        assert set(points[-1]["unusable"]) == {"DMA", "DMA32"}


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _not_blank(path):
    """More than one colour, and a good share of pixels that are not the background."""
    import matplotlib.image as mpimg
    img = mpimg.imread(str(path))
    flat = img.reshape(-1, img.shape[-1])[:, :3]
    colours = {tuple((px * 255).astype(int)) for px in flat[:: max(1, len(flat) // 20000)]}
    assert len(colours) > 20
    non_white = (flat < 0.95).any(axis=1).mean()
    assert non_white > 0.05


def test_png_and_svg(backend, tmp_path):
    pytest.importorskip("matplotlib", reason="pyalloc[plot] (matplotlib) is not installed")
    with pyalloc.Machine(mem="128M", backend=backend) as m:
        samples = plot.record(m, serve.demo(m), 4)
        before = m.proc("buddyinfo")
        out = plot.plot(m, tmp_path / "m.png", samples)
        assert m.proc("buddyinfo") == before                # drawing changes nothing
        w, hgt = _png_size(out)
        assert (w, hgt) == (1350, 900)
        _not_blank(out)
        svg = plot.plot(m, tmp_path / "m.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "buddyinfo" in svg
        with pytest.raises(pyalloc.InvalidArgument, match=".png or .svg"):
            plot.plot(m, tmp_path / "m.gif")


def test_demo_plot_and_plot_command(tmp_path):
    pytest.importorskip("matplotlib", reason="pyalloc[plot] (matplotlib) is not installed")
    out = tmp_path / "demo.png"
    r = subprocess.run([sys.executable, "-m", "pyalloc", "demo", "--mem", "64M", "--backend", "model",
                        "--plot", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stderr                  # it says where the picture went
    assert _png_size(out)[0] > 1000
    _not_blank(out)
    out2 = tmp_path / "series.png"
    r = subprocess.run([sys.executable, "-m", "pyalloc", "plot", "-o", str(out2), "--mem", "64M",
                        "--ticks", "5", "--backend", "model"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stderr
    _not_blank(out2)


def test_panels_can_be_read(tmp_path):
    """The picture's parts a reader needs: a pfn axis and zone marks on the pageblock map,
    watermarks on a scale where they are visible, a legend that covers no data, the title."""
    pytest.importorskip("matplotlib", reason="pyalloc[plot] is not installed")
    with pyalloc.Machine(mem="64M", backend="model", slub_debug="FZ") as m:
        samples = plot.record(m, serve.churn(m, ops=200), 4)
        fig = plot.draw(m, samples)
        try:
            assert "slub_debug=FZ" in fig._suptitle.get_text()
            pageblocks, series = fig.axes[1], fig.axes[3]
            labels = [t.get_text() for t in pageblocks.get_yticklabels()]
            assert labels[0] == "0x0" and all(lab.startswith("0x") for lab in labels)
            assert {"DMA", "DMA32"} <= {t.get_text() for t in pageblocks.texts}
            assert series.get_yscale() == "log"
            lo, hi = series.get_ylim()
            assert lo <= min(p["min"] for p in samples) * 4 / 1024 and hi >= max(p["free"] for p in samples) * 4 / 1024
            legend = series.get_legend()
            fig.canvas.draw()
            box = legend.get_window_extent().transformed(series.transAxes.inverted())
            assert box.y1 <= 0.0                      # wholly below the axes
        finally:
            import matplotlib.pyplot as plt
            plt.close(fig)

