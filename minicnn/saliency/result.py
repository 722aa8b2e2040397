"""What every saliency method returns: one type, the same fields for all six.

    r = vanilla(net, pixels, targets)
    r.saliency      (N, H, W)     the map that is drawn (non-negative)
    r.signed        (N, H, W)     the same evidence with its sign (positive: for the target)
    r.attribution   (N, 3, H, W)  per pixel and colour channel, where the method has one
    r.logits        the forward pass's output (the logits, or the unit's layer); occlusion: the
                    targets' scores on the intact images
    r.settings      what the method ran with (samples, noise, steps, baseline, layer, patch, ...)
"""
from dataclasses import dataclass, field


@dataclass
class Saliency:
    """One method's maps for a batch of images.

    ``attribution`` is the gradient (vanilla), the mean gradient (SmoothGrad), the
    attributions (integrated gradients), the guided signal (guided); None for Grad-CAM and
    occlusion, whose evidence is a map. ``completeness`` (integrated gradients): one
    {"sum_of_attributions", "score_difference"} per image. ``cam`` and ``cam_signed``
    (Grad-CAM): the maps at the layer's own resolution, after and before the ReLU.
    """
    method: str
    saliency: object = field(repr=False)
    signed: object = field(repr=False)
    attribution: object = field(default=None, repr=False)
    logits: object = field(default=None, repr=False)
    settings: dict = field(default_factory=dict)
    completeness: list = None
    cam: object = field(default=None, repr=False)
    cam_signed: object = field(default=None, repr=False)

    @property
    def raw(self):
        """{name: array} of what the method computed besides the two maps, under the names the
        command's .npz files use: "gradient" (vanilla) or "attribution", "cam" and
        "cam_signed" (Grad-CAM), "occlusion" (the score drops, signed)."""
        if self.method == "gradcam":
            return {"cam": self.cam, "cam_signed": self.cam_signed}
        if self.method == "occlusion":
            return {"occlusion": self.signed}
        return {"gradient" if self.method == "vanilla" else "attribution": self.attribution}
