"""``python -m minicnn.bench --atlas``: how many units a minute the atlas renders.

Two measurements, each printed as units per minute at the bench's ``steps`` (the time of a
render grows with its steps, so the ratios carry over to the atlas's default of 256):

* **channels per render** (the atlas's ``--batch``): the same 32 channels of the world
  model's conv3_1, rendered 1, 4, 8, 16 and 32 at a time (each with its diversity renders),
  in this process: several channels share each forward/backward pass;
* **where it runs**: a whole atlas of conv3_1 (64 units, its analysis included) built in this
  process and with two local worker processes (each then gets half the cores); for VGG16, its
  render tasks alone, the same two ways.

Both again for VGG16's conv3_3 (HED's trunk, 128 px) when its converted weights are in the
cache (``python -m minicnn.weights download vgg16-hed`` fetches them): 8 channels, an eighth of
the steps, no diversity renders (a CPU takes about a second per image and step there).
"""
import os
import tempfile
import time

BATCHES = (1, 4, 8, 16, 32)


def _render_rate(net, layer, channels, batch, steps, size, diversity):
    from ..atlas.tasks import render_units
    start = time.perf_counter()
    for k in range(0, len(channels), batch):
        render_units(net, layer, channels[k:k + batch], steps, size, seed=k, diversity=diversity)
    return len(channels) * 60 / (time.perf_counter() - start)


def _build_rate(net, layer, steps, workers, held_out, batch):
    from ..atlas import build
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        build(net, layers=[layer], outdir=os.path.join(folder, "atlas"), steps=steps, workers=workers,
              held_out=held_out, batch=batch)
        seconds = time.perf_counter() - start
    return net.output_shape(layer)[0] * 60 / seconds, seconds


def _tasks_rate(net, layer, channels, steps, size, diversity, workers, batch):
    """The atlas's render tasks for ``channels``, run where ``build`` runs them."""
    from ..atlas.build import _results, render_task
    tasks = [render_task(layer, channels[k:k + batch], steps, size, 0, diversity) for k in range(0, len(channels), batch)]
    start = time.perf_counter()
    for _ in _results(net, tasks, workers, None):
        pass
    seconds = time.perf_counter() - start
    return len(channels) * 60 / seconds, seconds


def bench_model(name, net, layer, n_channels, steps, size, diversity=4, batches=BATCHES):
    print(f"\n{name} {layer} ({net.output_shape(layer)[0]} channels), {steps} steps at {size} px, "
          f"{diversity} diversity renders per unit; units per minute:")
    channels = list(range(n_channels))
    for batch in batches:
        if batch > n_channels:
            continue
        rate = _render_rate(net, layer, channels, batch, steps, size, diversity)
        print(f"  {batch:3d} channels per render: {rate:7.1f} units/min  ({n_channels} channels)")
    for workers in (1, 2):
        where = "in this process" if workers == 1 else f"{workers} local processes"
        if name == "world":
            rate, seconds = _build_rate(net, layer, steps, workers, held_out=200, batch=8)
            print(f"  whole atlas of {layer}, {where}: {rate:7.1f} units/min ({seconds:.0f} s, analysis of 200 "
                  "held-out images included)")
        else:
            rate, seconds = _tasks_rate(net, layer, channels, steps, size, diversity, workers, batch=max(batches) // 2)
            print(f"  render tasks of {max(batches) // 2} channels, {where}: {rate:7.1f} units/min ({seconds:.0f} s"
                  + (", starting the processes included)" if workers > 1 else ")"))


def bench_atlas(steps=64):
    import platform
    from ..weights import load_model
    from ..weights.hed import CACHED
    from ..weights.cache import cache_dir
    print(f"atlas rendering on {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    bench_model("world", load_model("world", quiet=True), "conv3_1", 32, steps, 64)
    cached = os.path.join(cache_dir(), CACHED)
    if os.path.exists(cached):
        from ..weights import load_network
        bench_model("vgg16-hed", load_network(cached), "conv3_3", 8, max(4, steps // 8), 128, diversity=0,
                    batches=(1, 4, 8))
    else:
        print("\nvgg16-hed conv3_3: not timed (its weights are not in the cache: "
              "python -m minicnn.weights download vgg16-hed fetches them)")
