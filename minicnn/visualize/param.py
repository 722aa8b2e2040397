"""Image parameterizations: what the optimizer changes, and how it becomes pixels.

A parameterization has ``init(N, size, rng, xp)`` -> params, and the convention of everything
with a gradient in minicnn: ``forward(params)`` -> (RGB images (N, 3, size, size) in [0, 1],
cache), ``backward(dpixels, cache)`` -> d score / d params (the chain rule, written out).

* ``PixelParam``: the pixels themselves (kept in [0, 1] by clipping after each step). Simple,
  and it shows why naive activation maximization gives high-frequency noise: every pixel is
  free, and the gradient is largest at the highest frequencies.
* ``FourierParam``: Lucid's decorrelated parameterization (Olah, Mordvintsev & Schubert 2017,
  "Feature Visualization", Distill). The image is a Fourier spectrum scaled by 1/frequency, so
  a step of the same size moves low frequencies as much as high ones; its colours live in a
  decorrelated space (the square root of ImageNet's colour covariance); a sigmoid keeps pixels
  in [0, 1]. Same optimizer, far more natural images.
"""
import numpy as np

from ..backend import get_xp

# Lucid's colour_correlation_svd_sqrt: a square root of the colour covariance of ImageNet
# images (lucid/optvis/param/color.py), normalised by its largest column norm as Lucid does.
COLOR_SQRT = np.array([[0.26, 0.09, 0.02],
                       [0.27, 0.00, -0.05],
                       [0.27, -0.09, 0.03]], dtype=np.float32)
COLOR = COLOR_SQRT / np.max(np.linalg.norm(COLOR_SQRT, axis=0))
_COLOR_ON = {}                    # COLOR on each array module, copied to a GPU once, not every step


def _color(xp):
    if xp.__name__ not in _COLOR_ON:
        _COLOR_ON[xp.__name__] = xp.asarray(COLOR)
    return _COLOR_ON[xp.__name__]


class PixelParam:
    name = "pixel"

    def init(self, N, size, rng, xp=np):
        """Grey plus a little noise (as Simonyan et al. and Lucid start)."""
        return xp.asarray(0.5 + 0.01 * rng.standard_normal((N, 3, size, size)).astype(np.float32))

    def forward(self, params):
        return params, None

    def backward(self, dpixels, cache):
        return dpixels

    def project(self, params):
        """After a step: keep pixels valid."""
        xp = get_xp(params)
        xp.clip(params, 0.0, 1.0, out=params)


class FourierParam:
    """pixels = sigmoid(COLOR @ Re(ifft2(scale * (a + i b))) / 4), per colour channel.

    a, b: real (N, 3, H, W) arrays, the real and imaginary parts of a full 2-D spectrum (Lucid
    keeps half a spectrum via rfft; the full one has a simpler adjoint and the same images).
    scale = 1 / max(frequency, 1/size): every frequency band gets the same energy per step.
    """
    name = "fourier"

    def __init__(self, decay=1.0):
        self.decay = decay

    def _scale(self, size, xp):
        fy = np.fft.fftfreq(size)[:, None]
        fx = np.fft.fftfreq(size)[None, :]
        freq = np.sqrt(fy * fy + fx * fx)
        return xp.asarray((1.0 / np.maximum(freq, 1.0 / size) ** self.decay).astype(np.float32))

    def init(self, N, size, rng, xp=np):
        self.scale = self._scale(size, xp)
        return xp.asarray(0.01 * rng.standard_normal((2, N, 3, size, size)).astype(np.float32))

    def _spatial(self, params):
        """Re(ifft2(scale * (a + i b))) with the unitary ("ortho") FFT: (N, 3, H, W)."""
        xp = get_xp(params)
        spectrum = self.scale * (params[0] + 1j * params[1])
        return xp.fft.ifft2(spectrum, norm="ortho").real.astype(params.dtype) / 4.0  # Lucid's /4

    def forward(self, params):
        xp = get_xp(params)
        t = self._spatial(params)
        rgb = xp.einsum("ij,njhw->nihw", _color(xp), t)             # decorrelated -> RGB
        p = 1.0 / (1.0 + xp.exp(-rgb))                                 # sigmoid -> (0, 1)
        return p, p

    def backward(self, dpixels, p):
        """The adjoint of each step, in reverse (the cache is the pixels p):
        sigmoid:  d rgb = d pixels * p (1 - p)
        colour:   d t = COLOR^T d rgb
        spectrum: for x = Re(U^H (a + i b)) with U the unitary DFT, d a = Re(U g), d b = Im(U g)
                  (g = d t), then both times the 1/frequency scale.
        """
        xp = get_xp(p)
        drgb = dpixels * p * (1 - p)
        dt = xp.einsum("ij,nihw->njhw", _color(xp), drgb)
        g = xp.fft.fft2(dt, norm="ortho") * self.scale / 4.0
        return xp.stack([g.real, g.imag]).astype(p.dtype)

    def project(self, params):
        pass


PARAMS = {"pixel": PixelParam, "fourier": FourierParam}
