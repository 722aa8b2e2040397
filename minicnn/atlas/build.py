"""Building an atlas: plan the work, run it where asked, write every file here.

    path = build(net, layers=["conv3_1"], outdir="atlas")            # in this process
    path = build(net, workers=2)                                     # two local processes
    path = build(net, client=distributed.Client("tcp://host:8786"))  # an existing Dask cluster

The work is one ``analyze`` task (the layers' numbers) and one ``render`` task per batch of
``batch`` channels of a layer (minicnn.atlas.tasks). Tasks go to this process, to a pool of
local processes, or to a Dask cluster's workers; results come back as arrays and numbers, and
this process writes every file (atomically), then the manifest, then the pages the result
changes. Stopped at any point, the folder holds a site that opens, with what is missing marked.
"""
import os
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
import json

import numpy as np

from ..backend import to_numpy
from ..checks import SEED_MAX, whole
from ..errors import UsageError
from ..files import SAFE_PART, write_text
from ..images import hwc_uint8, save_jpeg, save_png
from ..progress import bar
from . import examples as ex, manifest as mf, site as pages
from .tasks import run_task

STEPS = 256          # optimization steps per render (the visualize command's default is 512)
BATCH = 8            # channels per render task (python -m minicnn.bench --atlas measures it)
DIVERSITY = 4        # diversity renders per unit
TOP = 6              # dataset examples per unit
HELD_OUT = 1000      # held-out world images for labels and examples (the hierarchy command's number)


class Site:
    """What the pages are made from: the network, the manifest and the layers' analyses."""

    def __init__(self, net, outdir, manifest):
        self.net, self.outdir, self.manifest = net, outdir, manifest
        self.class_names = net.class_names
        self.convs = conv_names(net)
        self.first_conv = self.convs[0]
        self._analysis = {}

    @property
    def model_name(self):
        return self.manifest["model"]["name"]

    @property
    def examples_source(self):
        return self.manifest["examples"]["source"]

    @property
    def layers(self):
        return self.manifest["layers"]

    @property
    def settings(self):
        return self.manifest["settings"]

    @property
    def checksum(self):
        return self.manifest["model"]["checksum"]

    def channels(self, layer):
        return self.net.output_shape(layer)[0]

    def done(self, layer, c):
        return str(c) in self.manifest["units"].get(layer, {})

    def activation(self, layer, c):
        entry = self.manifest["units"].get(layer, {}).get(str(c))
        return None if entry is None else entry["activation"]

    def analysis(self, layer):
        """The layer's analysis: this run's result, or read once from an earlier run's file
        (checked: a missing, damaged or foreign file counts as no analysis, and is redone)."""
        if layer not in self._analysis and layer in self.manifest["analyzed"]:
            self._analysis[layer] = self._read_analysis(layer)
        return self._analysis.get(layer)

    def _read_analysis(self, layer):
        path = os.path.join(self.outdir, layer, "analysis.json")
        try:
            if not os.path.isfile(path) or os.path.getsize(path) > mf.MAX_BYTES:
                return None
            with open(path, encoding="utf-8") as f:
                a = json.load(f)
        except (OSError, ValueError, UnicodeDecodeError, RecursionError):
            return None
        return a if mf.analysis_well_formed(a, self.channels(layer), len(self.class_names or [])) else None

    def label_shares(self, layer):
        a = self.analysis(layer)
        if a is None:
            return ""
        labels = [u["label"] for u in a["units"]]
        return ", ".join(f"{name} {labels.count(name) / len(labels):.0%}"
                         for name in sorted(set(labels), key=lambda n: -labels.count(n)))

    def previous_conv(self, layer):
        k = self.convs.index(layer)
        return self.convs[k - 1] if k > 0 else None

    def weights(self, layer):
        return to_numpy(self.net.layer(layer).w)

    # -- writing ---------------------------------------------------------------------------------

    def write_unit_pages(self, layer, channels):
        for c in channels:
            write_text(os.path.join(self.outdir, layer, f"{c}.html"), pages.unit_page(self, layer, c))

    def write_layer(self, layer, units=True):
        if units:
            self.write_unit_pages(layer, range(self.channels(layer)))
        write_text(os.path.join(self.outdir, f"{layer}.html"), pages.layer_page(self, layer))

    def write_index(self):
        write_text(os.path.join(self.outdir, "index.html"), pages.index_page(self))

    def write_all(self):
        pages.write_assets(self.outdir)
        for layer in self.layers:
            self.write_layer(layer)
        self.write_index()


def conv_names(net):
    """The names of ``net``'s conv layers, in order."""
    return [layer.name for layer in net.layers if layer.kind == "conv"]


def conv_layers_of(net, layers):
    """The conv layers to draw: all of them (None), or the names given (any accepted alias),
    in network order; anything else is refused with the list of conv layers."""
    from ..vgg19 import find_layer
    convs = conv_names(net)
    if layers is None:
        chosen = convs
    else:
        if isinstance(layers, str):
            layers = [part.strip() for part in layers.split(",") if part.strip()]
        if not layers:
            raise UsageError("--layers: give at least one layer, e.g. --layers conv3_1")
        chosen = []
        for name in layers:
            layer = find_layer(net, name)
            if layer not in convs:
                raise UsageError(f"{name}: the atlas draws conv layers ({', '.join(convs)}); {layer} is a "
                                 f"{net.layer(layer).kind} layer")
            chosen.append(layer)
        chosen = [c for c in convs if c in chosen]
    for layer in chosen:
        if not SAFE_PART.match(layer):
            raise UsageError(f"refusing to build a file name from the layer name {layer[:60]!r}")
    return chosen


def batch_seed(seed, layer, first):
    """The seed of the render of ``layer``'s batch starting at channel ``first``: fixed by the
    atlas's seed and the batch's place, so any worker, now or on a rerun, renders the same."""
    return int(np.random.SeedSequence([seed, zlib.crc32(layer.encode()), first]).generate_state(1)[0])


def render_task(layer, channels, steps, size, seed, diversity, device="cpu"):
    """The render task of ``channels`` of ``layer`` (a batch starting at ``channels[0]``), for
    an atlas made with ``seed``."""
    return {"kind": "render", "layer": layer, "channels": list(channels), "steps": steps, "size": size,
            "seed": batch_seed(seed, layer, channels[0]), "diversity": diversity, "device": device}


def prepare_outdir(outdir, force):
    """Refuse a folder that is not empty and holds no atlas (an atlas writes many files: it
    must not scatter them among somebody else's); return the manifest found there, or None."""
    from ..cli import check_outdir
    check_outdir(outdir)
    old = mf.load(outdir)
    if old is None and os.path.isdir(outdir) and any(not n.startswith(".") for n in os.listdir(outdir)):
        raise UsageError(f"--outdir {outdir}: not empty and holds no atlas ({mf.NAME}); give an empty or new folder")
    return old


def _remove_old(outdir, old):
    """--force: the files of an earlier atlas's layers go (names checked before any deletion)."""
    for layer in old.get("layers", []):
        if isinstance(layer, str) and SAFE_PART.match(layer):
            folder = os.path.join(outdir, layer)
            if os.path.isdir(folder) and not os.path.islink(folder):
                shutil.rmtree(folder)
            page = os.path.join(outdir, f"{layer}.html")
            if os.path.isfile(page):
                os.remove(page)


def build(net, layers=None, outdir="atlas", images=None, steps=STEPS, size=None, seed=0, batch=BATCH,
          diversity=DIVERSITY, top=TOP, held_out=HELD_OUT, device="cpu", workers=1, client=None, force=False,
          model_name=None, progress=False, log=None, on_result=None):
    """Build (or finish) the atlas of ``net``'s conv ``layers`` in ``outdir``; returns the
    path of its index.html. ``images``: a folder of images for the dataset examples (default:
    the model's held-out world); ``workers``: local processes; ``client``: a
    ``distributed.Client`` (the work goes to its cluster); ``force``: redo an atlas made with
    other settings or another model. ``on_result(task)`` is called after each task's files
    are written (tests use it to interrupt a build)."""
    from ..models import builtin_of
    chosen = conv_layers_of(net, layers)
    steps = whole("steps", steps, 1, 100_000)
    size = whole("size", size, 8, 1024, none_ok=True) or min(128, net.input_shape[1])
    seed = whole("seed", seed, 0, SEED_MAX)
    batch = whole("batch", batch, 1, 256)
    diversity = whole("diversity", diversity, 0, 16)
    top = whole("top", top, 1, 32)
    held_out = whole("held-out", held_out, 10, 10_000)
    workers = whole("workers", workers, 1, 256)
    if diversity == 1:
        raise UsageError("--diversity: 0 (none), or 2 or more renders to push apart")
    if client is not None and workers > 1:
        raise UsageError("give --workers or a Dask scheduler, not both")
    from ..visualize.job import MEMORY_BOUND, render_bytes
    needed = render_bytes(net, chosen[-1], size, batch * max(1, diversity))
    if needed > MEMORY_BOUND:
        raise UsageError(f"a batch of {batch} channels x {max(1, diversity)} images of {size} px would take about "
                         f"{needed / 2 ** 30:.1f} GiB; give a smaller --batch or --size")
    outdir = os.fspath(outdir)
    old = prepare_outdir(outdir, force)
    spec = builtin_of(net)
    user_images = names = digest = None
    photos = None
    if images is None and spec is None:
        photos = ex.sample_photos()                 # a model with no world: a package's photos, if any
    if images is not None or photos is not None:
        user_images, names, digest = ex.read_folder(images or photos, net.input_shape[1], skip_bad=images is None)
    settings = {"steps": steps, "size": size, "seed": seed, "batch": batch, "diversity": diversity, "top": top,
                "held_out": held_out if spec is not None else None, "images": digest}
    checksum = mf.model_checksum(net)
    model_name = model_name or net.meta.get("model") or "a minicnn network"
    if old is not None and not force:
        changed = mf.differences(old, checksum, settings)
        if changed:
            raise UsageError(f"--outdir {outdir}: {'; '.join(changed)}; use --force to rebuild it there, or "
                             "another --outdir")
        manifest = old
    else:
        if old is not None:
            _remove_old(outdir, old)
        manifest = mf.new(model_name, checksum, settings)
    manifest["layers"] = [c for c in conv_names(net) if c in chosen or c in manifest.get("layers", [])]
    manifest["model"]["name"] = model_name
    if photos is not None:
        source = "scikit-image's sample photos (skimage.data; CC0 or public domain, see its data README)"
    elif user_images is not None:
        source = f"from {os.path.basename(os.path.abspath(images))}/"
    elif spec is not None:
        source = f"held-out images of the model's own world, minicnn.{spec.world.__name__.split('.')[-1]}"
    else:
        source = None
    manifest["examples"] = {"source": source, "names": names}
    site = Site(net, outdir, manifest)

    tasks = _tasks(net, site, chosen, settings, device, user_images)
    total = sum(len(t["channels"]) for t in tasks if t["kind"] == "render")
    if log and tasks:
        log(f"atlas of {model_name}: {len(chosen)} layer(s), {total} unit(s) to render in "
            f"{sum(t['kind'] == 'render' for t in tasks)} batch(es)"
            + (", the layers' analysis" if any(t["kind"] == "analyze" for t in tasks) else "")
            + (f", on {workers} local processes" if workers > 1 else "")
            + (" on the Dask cluster" if client is not None else ""))
    site.write_all()                                    # the site opens from the start
    mf.save(outdir, manifest)
    try:
        with bar(total, "units", progress) as b:
            for task, result in _results(net, tasks, workers, client):
                if task["kind"] == "analyze":
                    _write_analysis(site, task, result, spec, settings, user_images)
                else:
                    _write_renders(site, task, result)
                    b.update(len(task["channels"]))
                mf.save(outdir, manifest)
                if on_result is not None:
                    on_result(task)
    finally:
        site.write_all()
    return os.path.join(outdir, "index.html")


def _tasks(net, site, chosen, settings, device, user_images):
    """What is missing: the analysis of layers without one, and every batch with a unit whose
    entry or file is missing (a batch is re-rendered whole: its channels share one render)."""
    m, out = site.manifest, []
    todo = [layer for layer in chosen if site.analysis(layer) is None]
    m["analyzed"] = [layer for layer in m["analyzed"] if layer not in todo]
    if todo:
        out.append({"kind": "analyze", "layers": todo, "seed": settings["seed"], "held_out": settings["held_out"],
                    "images": user_images, "top": settings["top"], "device": device})
    for layer in chosen:
        units = m["units"].setdefault(layer, {})
        count = net.output_shape(layer)[0]
        for first in range(0, count, settings["batch"]):
            channels = list(range(first, min(count, first + settings["batch"])))
            if all(str(c) in units and _unit_files_there(site, layer, c) for c in channels):
                continue
            for c in channels:
                units.pop(str(c), None)
            out.append(render_task(layer, channels, settings["steps"], settings["size"], settings["seed"],
                                   settings["diversity"], device))
    return out


def _unit_files_there(site, layer, c):
    names = [f"{c}.png"] + ([f"{c}_diversity.png"] if site.settings["diversity"] else [])
    return all(os.path.isfile(os.path.join(site.outdir, layer, n)) for n in names)


def _write_renders(site, task, result):
    layer, folder = task["layer"], os.path.join(site.outdir, task["layer"])
    for k, c in enumerate(task["channels"]):
        save_png(os.path.join(folder, f"{c}.png"), result["images"][k])
        if "diversity" in result:
            row = np.concatenate([np.pad(im, ((0, 0), (0, 2), (0, 0)), constant_values=255)
                                  for im in result["diversity"][k]], axis=1)[:, :-2]
            save_png(os.path.join(folder, f"{c}_diversity.png"), row)
    units = site.manifest["units"].setdefault(layer, {})
    for k, c in enumerate(task["channels"]):
        units[str(c)] = {"activation": float(result["activation"][k])}
    site.write_unit_pages(layer, task["channels"])
    site.write_layer(layer, units=False)
    site.write_index()


def _write_analysis(site, task, result, spec, settings, user_images):
    """The analysis's files: dataset examples (from the user's images, or the held-out world
    made again here, as the worker made it), first-layer filters, analysis.json, the pages."""
    pixels = user_images
    if pixels is None and any(result[layer]["examples"] is not None for layer in task["layers"]):
        from ..hierarchy import held_out_images
        pixels = hwc_uint8(held_out_images(spec, settings["held_out"], settings["seed"])[0])
    for layer in task["layers"]:
        a = result[layer]
        folder = os.path.join(site.outdir, layer)
        if a["examples"] is not None:
            rf = site.net.receptive_field(a["firing"])
            for c, top in enumerate(a["examples"]):
                save_jpeg(os.path.join(folder, f"{c}_examples.jpg"), ex.example_strip(pixels, top, rf))
        if layer == site.first_conv:
            order = (site.net.preprocessing or {}).get("channel_order", "RGB")
            for c, w in enumerate(site.weights(layer)):
                save_png(os.path.join(folder, f"{c}_filter.png"), ex.filter_image(w, order))
        write_text(os.path.join(folder, "analysis.json"), json.dumps(a))
        site.manifest["analyzed"].append(layer)
        site._analysis[layer] = a
        site.write_layer(layer)
        nxt = [n for n in site.layers if site.previous_conv(n) == layer]
        for n in nxt:
            site.write_unit_pages(n, range(site.channels(n)))
    site.write_index()


# ------------------------------------------------------------------------------------------------
# Where the tasks run


def _results(net, tasks, workers, client):
    """(task, result) for every task, in the order they finish."""
    if not tasks:
        return
    if client is not None:
        from distributed import as_completed as dask_completed
        shared = client.scatter(net, broadcast=True)
        futures = {client.submit(run_task, shared, task, pure=False, retries=2): k for k, task in enumerate(tasks)}
        try:
            for future in dask_completed(futures):
                yield tasks[futures[future]], future.result()
        finally:
            for future in futures:
                future.cancel()
    elif workers > 1:
        import multiprocessing
        import sys
        threads = max(1, (os.cpu_count() or 1) // workers)
        # Linux: fork, so that the workers start from this process as it is (a script run from
        # stdin, or one without an `if __name__ == "__main__":` guard, would make spawned workers
        # run it again, or fail to, and the pool would wait for them forever); spawn elsewhere
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                 initializer=_start_worker, initargs=(net, threads)) as pool:
            futures = {pool.submit(_worker_task, task): task for task in tasks}
            try:
                for future in as_completed(futures):
                    yield futures[future], future.result()
            finally:
                for future in futures:
                    future.cancel()
    else:
        for task in tasks:
            yield task, run_task(net, task)


_WORKER = {}


def _start_worker(net, threads):
    """A local worker process: its copy of the network, and its share of the cores."""
    from threadpoolctl import threadpool_limits
    _WORKER["net"] = net
    _WORKER["limits"] = threadpool_limits(threads)


def _worker_task(task):
    return run_task(_WORKER["net"], task)
