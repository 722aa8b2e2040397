"""The atlas's pages: plain HTML, one style sheet and a few lines of JavaScript (sorting and
filtering a layer's grid), nothing fetched from the network, so the site works from file://.

    index.html            the model and one row per layer
    LAYER.html            every unit of the layer in a grid, sortable and filterable
    LAYER/C.html          one unit: its renders, numbers, dataset examples and circuit
    LAYER/C.png           its feature visualization (C_diversity.png, C_examples.jpg, C_filter.png)

A unit not rendered yet is drawn as a grey box saying so, and its page says how to finish:
a site written mid-run is whole, with every link and image there.
"""
import html
import math
import os

from ..files import write_text

CIRCUIT = 4      # units of the previous conv layer shown per sign in a unit's circuit
STRIP = 12       # units per layer on the index page

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 75em; }
a { color: #1a5fb4; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
td, th { border-bottom: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; font-size: 0.9em; }
img.px { image-rendering: pixelated; }
.grid { display: flex; flex-wrap: wrap; gap: 6px; }
.unit { display: block; width: 96px; text-align: center; font-size: 0.75em; text-decoration: none; color: #222; }
.unit img, .missing-box { width: 96px; height: 96px; display: block; }
.missing-box, .missing .box { background: #ccc; color: #555; display: flex; align-items: center;
  justify-content: center; font-size: 0.8em; }
.strip img, .strip .missing-box { width: 48px; height: 48px; }
.strip { display: flex; gap: 2px; }
.tag { display: inline-block; padding: 0 0.3em; border-radius: 3px; background: #eee; }
.circuit { display: flex; flex-wrap: wrap; gap: 10px; }
.circuit .unit { width: 80px; }
.circuit .unit img, .circuit .missing-box { width: 80px; height: 80px; }
.note { color: #666; font-size: 0.85em; }
"""

SCRIPT = """
// Sort and filter the units of a layer page: the grid's children carry their numbers as data-*.
function atlasUpdate() {
  var grid = document.getElementById("grid");
  var key = document.getElementById("sort").value;
  var label = document.getElementById("label").value;
  var curves = document.getElementById("detectors").checked;
  var least = document.getElementById("selective").value;
  least = least === "" ? -Infinity : Number(least);
  var units = Array.prototype.slice.call(grid.children);
  units.sort(function (a, b) {
    if (key === "channel") { return Number(a.dataset.channel) - Number(b.dataset.channel); }
    var d = Number(b.dataset[key]) - Number(a.dataset[key]);
    return d !== 0 ? d : Number(a.dataset.channel) - Number(b.dataset.channel);
  });
  var shown = 0;
  units.forEach(function (u) {
    var on = (label === "all" || u.dataset.label === label) && (!curves || u.dataset.detector === "1")
      && Number(u.dataset.selectivity) >= least;
    u.style.display = on ? "" : "none";
    shown += on ? 1 : 0;
    grid.appendChild(u);
  });
  document.getElementById("count").textContent = shown + " of " + units.length + " units";
}
window.addEventListener("DOMContentLoaded", function () {
  if (!document.getElementById("grid")) { return; }
  document.getElementById("sort").addEventListener("change", atlasUpdate);
  document.getElementById("label").addEventListener("change", atlasUpdate);
  document.getElementById("detectors").addEventListener("change", atlasUpdate);
  document.getElementById("selective").addEventListener("input", atlasUpdate);
  atlasUpdate();
});
"""


def esc(text):
    return html.escape(str(text), quote=True)


def page(title, body, depth=0):
    up = "../" * depth
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<link rel="stylesheet" href="{up}style.css"><script src="{up}atlas.js"></script></head>'
            f"<body>\n{body}\n</body></html>\n")


def write_assets(outdir):
    write_text(os.path.join(outdir, "style.css"), STYLE.lstrip())
    write_text(os.path.join(outdir, "atlas.js"), SCRIPT.lstrip())


def _num(value, digits=2):
    return "" if value is None else f"{value:.{digits}f}"


def thumb(site, layer, c, depth, cls="unit", attrs="", after=""):
    """A unit's thumbnail as a link to its page (a grey box where it is not rendered yet),
    captioned with its name (not in the index's strips), then ``after``; ``attrs``: more
    attributes of the link (a layer page's data-* numbers)."""
    up = "../" * depth
    link = f"{up}{layer}/{c}.html"
    if site.done(layer, c):
        inner = f'<img class="px" src="{up}{layer}/{c}.png" alt="{esc(layer)}:{c}">'
    else:
        inner = '<span class="missing-box">not rendered</span>'
    caption = "" if cls == "strip-unit" else f"{esc(layer)}:{c}"      # the index's strips: pictures only
    return f'<a class="{cls}" {attrs}href="{link}" title="{esc(layer)}:{c}">{inner}{caption}{after}</a>'


# ------------------------------------------------------------------------------------------------
# index.html


def index_page(site):
    rows = "".join(f"<tr><td>{esc(n)}</td><td>{esc(k)}</td><td>{esc(s)}</td><td>{p:,d}</td><td>{esc(r)}</td></tr>"
                   for n, k, s, p, r in site.net.summary().rows)
    layer_rows = []
    for layer in site.layers:
        count = site.channels(layer)
        done = sum(site.done(layer, c) for c in range(count))
        shares = site.label_shares(layer)
        strip = "".join(thumb(site, layer, c, 0, "strip-unit") for c in range(min(STRIP, count)))
        layer_rows.append(f'<tr><td><a href="{layer}.html">{esc(layer)}</a></td><td>{count}</td>'
                          f"<td>{done}{'' if done == count else ' (rest not rendered yet)'}</td>"
                          f"<td>{esc(shares) if shares else 'not analysed yet'}</td>"
                          f'<td><div class="strip">{strip}</div></td></tr>')
    s = site.settings
    body = (f"<h1>Atlas: {esc(site.model_name)}</h1>"
            f'<p class="note">Every unit of {len(site.layers)} conv layer{"s" if len(site.layers) > 1 else ""}, '
            f"rendered by minicnn (python -m minicnn.atlas): feature visualization by gradient ascent in "
            f"Lucid's Fourier space, {s['steps']} steps at {s['size']} px, seed {s['seed']}; "
            f"{s['diversity']} diversity renders per unit. Labels: the hierarchy rule "
            f"(python -m minicnn.hierarchy); curve scores: python -m minicnn.curves. Model checksum "
            f"{esc(site.checksum[:16])}.</p>"
            f"<h2>Layers</h2><table><tr><th>layer</th><th>units</th><th>rendered</th><th>labels</th>"
            f"<th>units</th></tr>{''.join(layer_rows)}</table>"
            f"<h2>The model</h2><table><tr><th>layer</th><th>kind</th><th>output (C, H, W)</th>"
            f"<th>parameters</th><th>receptive field (px)</th></tr>{rows}</table>")
    return page(f"Atlas: {site.model_name}", body)


# ------------------------------------------------------------------------------------------------
# LAYER.html


def layer_page(site, layer):
    count = site.channels(layer)
    analysis = site.analysis(layer)
    cells = []
    for c in range(count):
        u = analysis["units"][c] if analysis else None
        act = site.activation(layer, c)
        data = (f'data-channel="{c}" data-label="{esc(u["label"]) if u else "unknown"}" '
                f'data-curve="{u["curves"]["score"] if u else 0}" data-selectivity="{u["selectivity"] if u else 0}" '
                f'data-activation="{act if act is not None else 0}" '
                f'data-detector="{int(bool(u and u["curves"]["curve_detector"]))}" ')
        label = f'<br><span class="tag">{esc(u["label"])}</span>' if u else ""
        cells.append(thumb(site, layer, c, 0, attrs=data, after=label))
    labels = sorted({u["label"] for u in analysis["units"]}) if analysis else []
    options = "".join(f'<option value="{esc(name)}">{esc(name)}</option>' for name in labels)
    body = (f'<p><a href="index.html">atlas: {esc(site.model_name)}</a></p><h1>{esc(layer)}</h1>'
            f'<p>{count} units; {esc(site.label_shares(layer) or "not analysed yet")}</p>'
            '<p><label>sort by <select id="sort"><option value="channel">channel</option>'
            '<option value="curve">curve score</option><option value="selectivity">class selectivity</option>'
            '<option value="activation">activation on its render</option></select></label> '
            f'<label>label <select id="label"><option value="all">all</option>{options}</select></label> '
            '<label><input type="checkbox" id="detectors"> curve detectors only</label> '
            '<label>class selectivity at least <input type="number" id="selective" value="" min="0" max="1" '
            'step="0.1" style="width:4em"></label> <span id="count"></span></p>'
            f'<div class="grid" id="grid">{"".join(cells)}</div>')
    return page(f"{layer} - atlas: {site.model_name}", body)


# ------------------------------------------------------------------------------------------------
# LAYER/C.html


def polar_svg(values, angles, size=160):
    """A tuning curve (firing above blank vs the direction the arc bulges, clockwise from
    right, as in image coordinates) as an inline SVG polar plot."""
    r0 = size / 2 - 6
    top = max(max(values), 1e-12)
    pts = []
    for v, a in zip(list(values) + values[:1], list(angles) + angles[:1]):
        r = r0 * max(v, 0) / top
        t = math.radians(a)
        pts.append(f"{size / 2 + r * math.cos(t):.1f},{size / 2 + r * math.sin(t):.1f}")
    return (f'<svg width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img">'
            f'<circle cx="{size / 2}" cy="{size / 2}" r="{r0}" fill="none" stroke="#ccc"/>'
            f'<line x1="{size / 2}" y1="{size / 2}" x2="{size - 6}" y2="{size / 2}" stroke="#ccc"/>'
            f'<polyline points="{" ".join(pts)}" fill="none" stroke="#2a7" stroke-width="1.5"/></svg>')


def kernel_svg(kernel, cell=10):
    """A kh x kw kernel (summed over nothing: one input channel's weights) as little squares,
    red for positive, blue for negative."""
    kh, kw = len(kernel), len(kernel[0])
    top = max(max(abs(v) for row in kernel for v in row), 1e-12)
    rects = []
    for i, row in enumerate(kernel):
        for j, v in enumerate(row):
            a = min(1.0, abs(v) / top)
            colour = f"rgba(200,40,40,{a:.2f})" if v > 0 else f"rgba(40,80,200,{a:.2f})"
            rects.append(f'<rect x="{j * cell}" y="{i * cell}" width="{cell}" height="{cell}" fill="{colour}"/>')
    return (f'<svg width="{kw * cell}" height="{kh * cell}" viewBox="0 0 {kw * cell} {kh * cell}" role="img">'
            f'{"".join(rects)}</svg>')


def unit_page(site, layer, c):
    count = site.channels(layer)
    analysis = site.analysis(layer)
    u = analysis["units"][c] if analysis else None
    nav = (f'<p><a href="../index.html">atlas: {esc(site.model_name)}</a> / <a href="../{layer}.html">{esc(layer)}</a>'
           + (f' / <a href="{c - 1}.html">previous unit</a>' if c > 0 else "")
           + (f' / <a href="{c + 1}.html">next unit</a>' if c + 1 < count else "") + "</p>")
    parts = [nav, f"<h1>{esc(layer)}:{c}</h1>"]
    if site.done(layer, c):
        parts.append(f'<p><img class="px" src="{c}.png" width="256" height="256" alt="feature visualization"></p>')
        if site.settings["diversity"]:
            parts.append(f'<h2>Diversity</h2><p><img class="px" src="{c}_diversity.png" alt="diversity renders"></p>'
                         f'<p class="note">{site.settings["diversity"]} images of this channel optimized together, '
                         "pushed apart by Lucid's diversity term: what else drives it.</p>")
    else:
        parts.append('<p class="missing-box" style="width:256px;height:256px">not rendered yet</p>'
                     '<p class="note">Not rendered yet: run the same command again to finish the atlas '
                     "(it renders only what is missing).</p>")
    parts.append(_numbers(site, layer, c, u, analysis))
    parts.append(_examples(site, layer, c, analysis))
    parts.append(_circuit(site, layer, c))
    return page(f"{layer}:{c} - atlas: {site.model_name}", "\n".join(parts), depth=1)


def _numbers(site, layer, c, u, analysis):
    if u is None:
        return "<p class='note'>Not analysed yet: labels and curve scores come when the layer's analysis is done.</p>"
    cv = u["curves"]
    act = site.activation(layer, c)
    rows = [("label (hierarchy rule)", u["label"]),
            ("curve score S = K Z D T", f"{cv['score']:.3f} (K {cv['curvature']:.2f}, Z {cv['control']:.2f}, "
                                        f"D {cv['direction']:.2f}, T {cv['tuning']:.2f}; "
                                        f"{'a curve detector' if cv['curve_detector'] else cv['label']}, "
                                        f"{cv['polarity']} polarity; the random null's 99th percentile "
                                        f"{analysis['curve_null_99']:.2f})"),
            ("orientation, hue tuning", f"{u['orientation_tuning']:.2f}, {u['hue_tuning']:.2f}"),
            ("best probe peaks", f"edge {u['edge']:.2f}, grating {u['grating']:.2f}, curve {u['curve']:.2f}, "
                                 f"texture {u['texture']:.2f} ({u['best_texture']}), part {u['part']:.2f} "
                                 f"({u['best_part']})")]
    if site.class_names:
        rows.append(("class selectivity", f"{u['selectivity']:.2f} (prefers "
                                          f"{site.class_names[u['preferred_class']]})"))
    if act is not None:
        rows.append(("mean firing on its render", f"{act:.3f}"))
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    curve = (f"<h2>Tuning to curves</h2>{polar_svg(cv['tuning_curve'], analysis['curve_angles'])}"
             f"<p class='note'>Firing of the central unit above blank, against the direction the arc bulges "
             f"(0 degrees = right, clockwise), at its preferred radius ({cv['preferred_radius']:.1f} px) and "
             f"polarity ({cv['polarity']}).</p>")
    filt = ""
    if site.first_conv == layer:
        filt = (f'<h2>The filter</h2><p><img class="px" src="{c}_filter.png" alt="filter"></p>'
                "<p class='note'>The weights themselves, as colours (grey = 0), in the RGB order of the pixels.</p>")
    return f"<h2>Numbers</h2><table>{table}</table>{curve}{filt}"


def _examples(site, layer, c, analysis):
    if analysis is None:
        return ""
    if analysis["examples"] is None:
        return ("<h2>Dataset examples</h2><p class='note'>None: this model has no world of its own; give "
                "photos with --images DIR.</p>")
    top = analysis["examples"][c]
    caption = ", ".join(f"image {n}: {v:.2f}" for n, _, _, v in top)
    return (f"<h2>Dataset examples</h2><p><img class='px' src='{c}_examples.jpg' alt='dataset examples'></p>"
            f"<p class='note'>The {len(top)} images ({esc(site.examples_source)}) in which this channel peaks "
            f"highest, each above its receptive field around the peak (outlined in red); peak firing: "
            f"{esc(caption)}.</p>")


def _circuit(site, layer, c):
    prev = site.previous_conv(layer)
    if prev is None:
        return ""
    w = site.weights(layer)[c]                               # (C_in, kh, kw)
    strength = w.sum(axis=(1, 2))
    order = strength.argsort()
    sides = [("strongest positive", order[::-1][:CIRCUIT]), ("strongest negative", order[:CIRCUIT])]
    out = [f"<h2>Circuit</h2><p class='note'>The units of {esc(prev)} with the largest summed weights into this "
           "one, positive (excite) and negative (inhibit), each with its kernel (red positive, blue negative).</p>"]
    in_atlas = prev in site.layers
    for title, chosen in sides:
        cells = []
        for j in chosen:
            j = int(j)
            kernel = w[j].tolist()
            if in_atlas:
                cell = thumb(site, prev, j, 1, after=f"<br>{strength[j]:+.3f}<br>{kernel_svg(kernel)}")
            else:
                cell = (f'<span class="unit">{esc(prev)}:{j}<br>{strength[j]:+.3f}<br>{kernel_svg(kernel)}'
                        "<br>(not in this atlas)</span>")
            cells.append(cell)
        out.append(f"<h3>{title}</h3><div class='circuit'>{''.join(cells)}</div>")
    return "".join(out)
