"""An atlas of a network: every unit of its conv layers in the browser, as a static site.

For each unit: its feature visualization and diversity renders, its top dataset examples,
its numbers (hierarchy label, curve score and tuning curve, class selectivity) and its
circuit, the units of the layer below with the strongest weights into it. Open Microscope's
way of browsing a network, for any minicnn model, offline.

    tasks.py      the units of work (a batch of channels rendered; the layers analysed): arrays out
    build.py      plan, run here / in local processes / on a Dask cluster, write every file, resume
    manifest.py   atlas.json: model checksum, settings, what is done
    site.py       the HTML pages                 examples.py   dataset examples, filters, --images
    __main__.py   python -m minicnn.atlas

    from minicnn.atlas import build
    build(net, layers=["conv3_1"], outdir="atlas")
"""
from .build import BATCH, DIVERSITY, HELD_OUT, STEPS, TOP, batch_seed, build, conv_layers_of
from .manifest import model_checksum
from .tasks import analyze_layers, render_units, run_task

__all__ = ["BATCH", "DIVERSITY", "HELD_OUT", "STEPS", "TOP", "analyze_layers", "batch_seed", "build",
           "conv_layers_of", "model_checksum", "render_units", "run_task"]
