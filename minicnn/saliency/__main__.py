"""``python -m minicnn.saliency IMG [IMG ...]``: saliency maps, written as PNG and npz files.

    python -m minicnn.saliency examples/face.png                      # vanilla, world model
    python -m minicnn.saliency photo.jpg --model vgg19 --method all --class tabby
    python -m minicnn.saliency photo.jpg --model vgg19 --sanity       # Adebayo et al.'s test
    python -m minicnn.saliency examples/face.png --sanity data        # ... their second: shuffled labels
    python -m minicnn.saliency examples/*.png --evaluate              # deletion / insertion scores
    python -m minicnn.saliency photo.jpg --model vgg16-hed --unit conv5_3:12 --method smoothgrad
                                        # which pixels made channel 12 of conv5_3 fire (any model)
"""
import json
import os
import sys

import numpy as np

from ..backend import to_device, to_numpy
from ..classify import top_k
from ..cli import (ArgumentParser, UsageError, add_model_options, add_seed_option, float_range, int_range, check_outdir, load_model_from_args, main_wrapper,
                   note_model, print_top)
from ..files import atomic_write, check_names_fit, write_text
from ..images import load_image
from ..progress import bar, shown
from . import faithfulness, sanity
from .heatmaps import method_figure, panel_figure, settings
from .explain import RANGES, explain
from .methods import BASELINES, METHODS



def _outputs(stem, method, outdir):
    return os.path.join(outdir, f"{stem}_{method}.png"), os.path.join(outdir, f"{stem}_{method}.npz")


def unique_stems(paths, quiet=False):
    """Output stems from the inputs' file names, unique across the run: two inputs with one
    name (a/img.png, b/img.png) get img and img-2 (or img-3 when another input is itself
    called img-2), and a note says so, instead of one overwriting the other's outputs."""
    own = [os.path.splitext(os.path.basename(path))[0] for path in paths]
    names, taken = set(own), set()
    stems = []
    for path, stem in zip(paths, own):
        new, k = stem, 1
        while new in taken or (new != stem and new in names):
            k += 1
            new = f"{stem}-{k}"
        if new != stem and not quiet:
            print(f"note: {path} writes {new}_* (another input is also named {stem})", file=sys.stderr)
        taken.add(new)
        stems.append(new)
    return stems


def output_names(stems, methods, sanity, evaluate):
    """Every file this run will write, by name (the plan checked before any work)."""
    if evaluate:
        return []
    if sanity:
        suffix = "_sanity" if sanity == "model" else "_sanity_data"
        return [f"{stem}{suffix}{ext}" for stem in stems for ext in (".png", ".json")]
    names = [f"{stem}_{m}{ext}" for stem in stems for m in methods for ext in (".npz",) + ((".png",) if len(methods) == 1 else ())]
    return names + ([f"{stem}_all.png" for stem in stems] if len(methods) > 1 else [])


def _save_npz(path, **arrays):
    with atomic_write(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def _run_sanity(net, pixels, target, options, stem, outdir, quiet=False, methods=None):
    """The cascade for one image; writes <stem>_sanity.png and .json; prints the table."""
    with bar(len(net.params()) + 1, "randomizing layers", shown(quiet)) as b:
        result, maps = sanity.run(net, pixels, target, options, methods=methods, progress=b)
    png = os.path.join(outdir, f"{stem}_sanity.png")
    sanity.figure(result, maps, png)
    js = os.path.join(outdir, f"{stem}_sanity.json")
    write_text(js, json.dumps(result, indent=1))
    result["outputs"] = {"png": png, "json": js}
    if not quiet:
        order = result["randomized_from_the_top"]
        print(f"{stem}: rank correlation with the original map after randomizing down to each layer")
        print("  " + " " * 11 + "".join(f"{name:>9s}" for name in order))
        for m, scores in result["spearman"].items():
            print(f"  {m:11s}" + "".join(f"{s:9.2f}" for s in scores)
                  + f"   (floor: the image's edges {result['floor'][m]['edges']:.2f})")
        print("  (absolute maps; the last column is the fully random network's map)")
        print(f"  wrote {png}, {js}")
    return result


def _shuffled_twin(net, args):
    """--sanity data's twin: MODEL-shuffled from the cache, of the same architecture as ``net``."""
    from ..weights import load_model
    from ..weights.cache import trained_names
    from ..weights.validate import layer_spec
    if args.weights is not None:
        raise UsageError("--sanity data compares a built-in or retrained --model with its twin MODEL-shuffled; "
                         "it does not take --weights")
    name = f"{args.model}-shuffled"
    if name not in trained_names():
        raise UsageError(f"--sanity data needs {name}, the same architecture trained on permuted labels: make it with "
                         f"python -m minicnn.train --model {args.model} --shuffle-labels")
    twin = load_model(name, quiet=True)
    if layer_spec(twin) != layer_spec(net):
        raise UsageError(f"--sanity data: {name} is not the architecture of {args.model}")
    return twin.to(args.device)


def _run_data_sanity(net, twin, pixels, targets, options, stems, args):
    """The data randomization test for each image: <stem>_sanity_data.png and .json; a table."""
    methods = None if args.method == "all" else [args.method]
    quiet = args.quiet or args.json
    report = []
    for k, stem in enumerate(stems):
        result, maps = sanity.data_randomization(net, twin, pixels[k:k + 1], targets[k], options, methods)
        png, js = (os.path.join(args.outdir, f"{stem}_sanity_data{ext}") for ext in (".png", ".json"))
        sanity.data_figure(result, maps, png)
        write_text(js, json.dumps(result, indent=1))
        report.append(dict(result, outputs={"png": png, "json": js}))
        if not quiet:
            print(f"{stem}: rank correlation of each map with the shuffled-label twin's (absolute maps)")
            for m, r in result["spearman"].items():
                print(f"  {m:11s} {r:6.2f}   (floor: the image's edges {result['floor'][m]['edges']:.2f})")
            print(f"  wrote {png}, {js}")
    together = sanity.data_across_images(report) if len(report) > 1 else None
    if args.json:
        print(json.dumps({"images": report, "across_images": together} if together else report, indent=1))
    elif together:
        print(f"across {len(report)} images: mean (sd) rank correlation with the twin's map")
        for m, stats in together["spearman"].items():
            print(f"  {m:11s} {stats['mean']:6.2f} ({stats['sd']:.2f})")


def _main(argv=None):
    parser = ArgumentParser(prog="python -m minicnn.saliency", description=__doc__)
    parser.add_argument("images", nargs="+", metavar="IMG", help="image files (any format Pillow reads)")
    add_model_options(parser)
    parser.add_argument("--method", default=None, choices=METHODS + ("all",),
                        help="default: vanilla (with --sanity: all)")
    parser.add_argument("--class", dest="target", metavar="IDX|NAME",
                        help="explain this class (default: each image's top-1)")
    parser.add_argument("--unit", metavar="LAYER:CHANNEL[@Y,X]",
                        help="explain a unit instead of a class: a channel's mean activation (conv5_3:12) "
                             "or one neuron of its map (conv5_3:12@7,7); the only target of a model "
                             "without a classifier (vgg16-hed)")
    parser.add_argument("--layer", help="Grad-CAM layer (default: the last conv, after its ReLU)")
    parser.add_argument("--samples", type=int_range(*RANGES["samples"]), default=25, help="SmoothGrad: noisy copies (default 25)")
    parser.add_argument("--batch", type=int_range(*RANGES["batch"]), default=None,
                        help="copies per forward/backward pass for smoothgrad, integrated (default 5 on the CPU, 25 on a GPU) and "
                             "occlusion (default 64); memory grows with it (VGG19: about 70 MB a copy), and it "
                             "is capped to keep a batch under about 8 GB")
    parser.add_argument("--noise", type=float_range(*RANGES["noise"]), default=0.15,
                        help="SmoothGrad: noise std as a fraction of the pixel range (default 0.15)")
    parser.add_argument("--steps", type=int_range(*RANGES["steps"]), default=50, help="integrated gradients: steps (default 50)")
    parser.add_argument("--baseline", choices=BASELINES, default="black",
                        help="integrated gradients: the baseline image: black (default), white, grey, "
                             "blur (the image blurred) or noise (uniform, from --seed)")
    parser.add_argument("--patch", type=int_range(*RANGES["patch"]), default=None,
                        help="occlusion: the grey square's side in px (default: image side / 8)")
    parser.add_argument("--stride", type=int_range(*RANGES["stride"]), default=None,
                        help="occlusion: its step in px (default: half the patch)")
    parser.add_argument("--evaluate", action="store_true",
                        help="score the methods instead: deletion and insertion AUC (Petsiuk et al. 2018) "
                             "per image, with a random order as the baseline; writes no files")
    parser.add_argument("--sanity", nargs="?", const="model", choices=("model", "data"),
                        help="run Adebayo et al.'s tests instead: model (the default) randomizes the weights "
                             "layer by layer; data compares the maps with those of MODEL-shuffled, the same "
                             "architecture trained on permuted labels (python -m minicnn.train --shuffle-labels)")
    parser.add_argument("--outdir", default=".", help="where the .png and .npz go (default: here)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    add_seed_option(parser)
    args = parser.parse_args(argv)
    check_outdir(args.outdir)

    net = load_model_from_args(args)
    twin = _shuffled_twin(net, args) if args.sanity == "data" else None
    if args.unit is not None and (args.sanity or args.evaluate):
        raise UsageError("--unit explains a unit: it does not go with --sanity or --evaluate, "
                         "which are about class scores")
    options = {"samples": args.samples, "noise": args.noise, "seed": args.seed, "steps": args.steps,
               "layer": args.layer, "baseline_kind": args.baseline, "patch": args.patch, "stride": args.stride,
               "batch": args.batch}
    args.method = args.method or ("all" if args.sanity or args.evaluate else "vanilla")
    methods = list(METHODS) if args.method == "all" else [args.method]
    stems = unique_stems(args.images, quiet=args.quiet or args.json)
    check_names_fit(args.outdir, output_names(stems, methods, args.sanity, args.evaluate))
    pixels_host = np.stack([load_image(path, net.input_shape[1]) for path in args.images])   # all checked first
    plain = args.sanity or args.evaluate                     # the targets only: those jobs run methods themselves
    with bar(len(methods), f"saliency ({len(pixels_host)} image{'s' if len(pixels_host) > 1 else ''})",
             shown(args.quiet) and len(methods) > 1 and not plain) as b:
        job = explain(net, pixels_host, [] if plain else methods, target=args.target, unit=args.unit,
                      progress=b, **options)
    targets, logits, results = job.targets, job.scores, job.results
    unit = targets[0] if args.unit is not None else None
    pixels = to_device(pixels_host, args.device)
    if unit is None:
        note_model(net, args.images, quiet=args.quiet or args.json)
    report = []

    common = job.options                                     # checked, the Grad-CAM layer resolved
    if args.evaluate:
        return _evaluate(net, pixels_host, targets, args, common)

    if args.sanity == "data":
        return _run_data_sanity(net, twin, pixels, targets, common, stems, args)
    if args.sanity:
        methods = None if args.method == "all" else [args.method]
        for k, stem in enumerate(stems):
            report.append(_run_sanity(net, pixels[k:k + 1], targets[k], common, stem, args.outdir,
                                      quiet=args.quiet or args.json, methods=methods))
        together = sanity.across_images(report) if len(report) > 1 else None
        if args.json:
            print(json.dumps({"images": report, "across_images": together} if together else report, indent=1))
        elif together:
            print(f"across {len(report)} images: mean (sd) rank correlation after randomizing down to each layer")
            print("  " + " " * 11 + "".join(f"{name:>12s}" for name in together["randomized_from_the_top"]))
            for m, stats in together["spearman"].items():
                print(f"  {m:11s}" + "".join(f"{a:6.2f} ({b:.2f})" for a, b in zip(stats["mean"], stats["sd"])))
        return

    probs = job.probabilities
    written = []
    for k, stem in enumerate(stems):
        t = targets[k]
        if unit is None:
            label = f"{net.class_names[t]} ({t}), p = {probs[k, t]:.1%}"
            entry = {"image": args.images[k], "target": t, "target_name": net.class_names[t],
                     "probability": float(probs[k, t]),
                     "top": [{"class": c, "name": n, "probability": p} for c, n, p in top_k(net, logits[k], 5)],
                     "outputs": {}}
            fixed = {"logits": logits[k], "target": np.int64(t)}
        else:
            what = "activation" if unit.y is not None else "mean activation"
            label = f"unit {unit} ({what} {logits[k]:.3g})"
            entry = {"image": args.images[k], "target": str(unit), "target_name": f"unit {unit}",
                     "score": float(logits[k]), "outputs": {}}
            fixed = {"score": np.float32(logits[k]), "target": np.str_(str(unit))}
        for method, r in results.items():
            png, npz = _outputs(stem, method, args.outdir)
            arrays = {"saliency": to_numpy(r.saliency[k])} | fixed
            arrays |= {name: to_numpy(raw[k]) for name, raw in r.raw.items()}
            arrays["signed"] = to_numpy(r.signed[k])
            _save_npz(npz, **arrays)
            written.append(npz)
            if args.method != "all":
                method_figure(png, pixels_host[k], arrays["saliency"], method, label,
                              note=settings(r) or None, signed=arrays["signed"])
                written.append(png)
            entry["outputs"][method] = {"npz": npz} | ({"png": png} if args.method != "all" else {})
            if r.completeness is not None:
                entry["completeness"] = r.completeness[k]
        if args.method == "all":
            png = os.path.join(args.outdir, f"{stem}_all.png")
            panel_figure(png, pixels_host[k], {m: to_numpy(r.saliency[k]) for m, r in results.items()}, label,
                         signed={m: to_numpy(r.signed[k]) for m, r in results.items()},
                         notes={m: settings(r) for m, r in results.items()})
            entry["outputs"]["all"] = {"png": png}
        report.append(entry)

    if args.json:
        print(json.dumps(report, indent=1))
        return
    for entry in report:
        if "top" in entry:
            print_top(entry["image"], entry["top"])
            print(f"  explained: {entry['target_name']} ({entry['target']})")
        else:
            print(f"{entry['image']}\n  explained: {entry['target_name']}, score {entry['score']:.4g}")
        if "completeness" in entry:
            c = entry["completeness"]
            print(f"  integrated gradients completeness: sum of attributions {c['sum_of_attributions']:.4f}, "
                  f"score difference {c['score_difference']:.4f}")
        for method, files in entry["outputs"].items():
            print(f"  {method}: {', '.join(files.values())}")


def _evaluate(net, pixels, targets, args, options):
    """--evaluate: deletion and insertion AUC of each method on each image, and a random order."""
    methods = list(METHODS) if args.method == "all" else [args.method]
    with bar(len(targets), "deletion/insertion", shown(args.quiet or args.json)) as b:
        results = faithfulness.evaluate(net, pixels, targets, methods, options, seed=args.seed, progress=b)
    table = faithfulness.summary(results)
    if args.json:
        print(json.dumps({"images": args.images, "targets": [int(t) for t in targets], "scores": results,
                          "summary": table}, indent=1))
        return
    print(f"deletion AUC (lower is better) and insertion AUC (higher is better) of the class probability, "
          f"{len(targets)} image(s), mean (sd); ranked by insertion - deletion:")
    for m in table["ranking"]:
        t = table["methods"][m]
        print(f"  {m:11s} deletion {t['deletion']['mean']:.3f} ({t['deletion']['sd']:.3f})   insertion "
              f"{t['insertion']['mean']:.3f} ({t['insertion']['sd']:.3f})   difference "
              f"{t['insertion_minus_deletion']['mean']:.3f}")


main = main_wrapper(_main)

if __name__ == "__main__":
    main()
