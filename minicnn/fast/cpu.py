"""The layers as the CPU runs them: ``minicnn.layers`` made fast, same signatures and caches.

What is faster here, each measured on this project's 2-core CPU (tutorial, chapter 11) and
each tested against the reference in ``minicnn.layers`` (tests/test_fast.py):

* **blocked im2col**: the columns of a big layer (conv1_2 of VGG19: 115 MB) are built and
  multiplied a band of output rows at a time, small enough to stay in the CPU's caches;
* **the bias trick**: [w | b] @ [cols; 1] = w @ cols + b, no separate pass over the output;
* **dx as a convolution** of dout with the flipped, transposed kernel, where F <= 2C;
* **transposed dW**: dW^T = cols @ dout^T, one product over a block's images;
* **Winograd's F(4x4, 3x3) and F(2x2, 3x3)** for the wide 3x3 layers (``minicnn.fast.winograd``),
  with the filter transforms of frozen weights kept from their second use (``Layer.kept``);
* **blocked max-pool**: a few planes at a time, so the K*K reads of a plane hit the cache.

One object, ``CPU``, decides how layers run: its settings (``algorithm``, ``cols_block``) and
its two rules (``winograd_tile``, ``dx_as_conv``) are all that steers the math. A Network holds
one (``net.engine``); a thread that needs other block sizes runs its pass on its own.
"""
from ..backend import get_xp
from ..layers import (ConvCache, PoolCache, check_conv_args, col2im, conv_output_size, expect_cache, pad2d,
                      pool_output_size, pool_windows, relu_backward, relu_forward, unpad2d, windows)
from . import winograd

ALGORITHMS = {"auto": "auto", "im2col": None, "winograd2": 2, "winograd4": 4}   # name -> tile side
# How many values one block of columns may hold (4 MB of float32) when the product has the
# machine's cores to itself: small enough to stay in the CPU's caches between the copy that
# builds it and the product that reads it, and to be reused by malloc instead of freshly mapped
# (and zeroed) for every layer. Threads that share the cores share the caches too: training's
# workers each run on a CPU(cols_block=COLS_BLOCK // workers).
COLS_BLOCK = 1 << 20
# Input values per block of planes (512 KB of float32). Pooling reads each input plane K*K
# times, once per window position; done a few planes at a time, the later reads hit the CPU's
# cache instead of memory (measured on conv1's output, 64 x 224 x 224: backward 13.4 -> 7.0 ms).
POOL_BLOCK = 1 << 17


class CPU:
    """How a network's layers run on the CPU.

    ``algorithm``: "auto" (the rule ``winograd_tile``), or "im2col" / "winograd2" / "winograd4"
    wherever they apply (tests, benchmarks). ``cols_block``: values per block of im2col
    columns. ``pool_block``: input values per block of max-pool planes.
    """
    device = "cpu"

    def __init__(self, algorithm="auto", cols_block=COLS_BLOCK, pool_block=POOL_BLOCK):
        if algorithm not in ALGORITHMS:
            raise ValueError(f"unknown convolution algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
        self.algorithm, self.cols_block, self.pool_block = algorithm, int(cols_block), int(pool_block)

    def __repr__(self):
        return f"CPU(algorithm={self.algorithm!r}, cols_block={self.cols_block}, pool_block={self.pool_block})"

    # -- the rules --------------------------------------------------------------------------------

    def winograd_tile(self, w_shape, stride, out_shape):
        """Winograd's tile side (4 or 2) for this convolution, or None for im2col: the measured
        rule ``winograd.tile_size`` (3x3, stride 1, >= 64 or >= 256 channels), or the tile that
        ``algorithm`` forces wherever a 3x3 stride-1 convolution allows it."""
        if self.algorithm == "auto":
            return winograd.tile_size(w_shape, stride, out_shape)
        fits = w_shape[2] == w_shape[3] == 3 and stride == 1
        return ALGORITHMS[self.algorithm] if fits else None

    @staticmethod
    def dx_as_conv(w_shape, stride, pad):
        """True where dx is computed as a convolution (``backward_data_as_conv``), False for
        col2im: stride 1, a square kernel, pad < K, and F <= 2C. Its im2col copies F*K*K values
        per pixel where col2im reads and writes C*K*K scattered ones (measured: as fast or faster
        at every VGG19 and world-model shape with F = 2C, e.g. 64 -> 128 channels on 25 images of
        112 px 0.41 -> 0.36-0.38 s); conv1_1, whose C = 3, stays with col2im."""
        F, C, KH, KW = w_shape
        return stride == 1 and KH == KW and pad < KH and F <= 2 * C

    # -- convolution ------------------------------------------------------------------------------

    def conv2d_forward(self, x, w, b, stride=1, pad=0, kept=None):
        """``layers.conv2d_forward``, by Winograd where the rule says so, else by blocked im2col
        with the bias trick. ``b=None``: no bias. ``kept``: a dict for the filter transforms of
        weights that cannot change (``Layer.kept``), or None."""
        check_conv_args(x, w, b, stride, pad)
        N, C, H, W = x.shape
        F, _, KH, KW = w.shape
        H_out, W_out = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
        m = self.winograd_tile(w.shape, stride, (H_out, W_out))
        if m:
            out = winograd.conv3x3(x, w, b, pad, m, kept=kept)
        else:
            out = self._im2col_forward(x, w, b, stride, pad, H_out, W_out)
        return out, ConvCache(x, w, stride, pad)   # x, not x_pad: the padded copy is freed now

    def _im2col_forward(self, x, w, b, stride, pad, H_out, W_out):
        """out[n] = [w | b] @ [cols[n]; 1], a block of output rows at a time."""
        xp = get_xp(x)
        N, C = x.shape[:2]
        F, _, KH, KW = w.shape
        x_pad = pad2d(x, pad)
        w2 = w.reshape(F, C * KH * KW)
        if b is not None:
            w2 = xp.concatenate([w2, b[:, None]], axis=1)             # [w | b]
        out = xp.empty((N, F, H_out, W_out), dtype=x.dtype)
        for n0, n1, i0, i1 in self.blocks(N, H_out, C * KH * KW * W_out):
            band = x_pad[n0:n1, :, i0 * stride:(i1 - 1) * stride + KH]  # input rows under out rows i0:i1
            cols = columns(band, KH, KW, stride, i1 - i0, W_out, ones_row=b is not None)
            out_block = out[n0:n1, :, i0:i1].reshape(n1 - n0, F, (i1 - i0) * W_out)  # a view
            xp.matmul(w2, cols, out=out_block)
        return out

    def conv2d_backward(self, dout, cache, param_grads=True, input_grad=True, kept=None):
        """(dx, dw, db) of ``conv2d_forward``; dw and db are None unless ``param_grads`` (saliency
        and feature visualization need only dx), dx is None unless ``input_grad`` (training)."""
        expect_cache(cache, ConvCache, "CPU.conv2d_backward")
        x, w, stride, pad = cache
        dx = self.conv2d_backward_data(dout, x.shape, w, stride, pad, kept) if input_grad else None
        if not param_grads:
            return dx, None, None
        return (dx,) + self.conv2d_backward_weights(dout, x, w, stride, pad)

    def conv2d_backward_data(self, dout, x_shape, w, stride, pad, kept=None):
        """dx, as a convolution where ``dx_as_conv`` says so, else by col2im."""
        if self.dx_as_conv(w.shape, stride, pad):
            return self.backward_data_as_conv(dout, w, pad, kept)
        N, F, H_out, W_out = dout.shape
        _, C, KH, KW = w.shape
        x_pad_shape = (N, C, x_shape[2] + 2 * pad, x_shape[3] + 2 * pad)
        dcols = w.reshape(F, -1).T @ dout.reshape(N, F, H_out * W_out)   # (N, C*KH*KW, H_out*W_out)
        return unpad2d(col2im(dcols, x_pad_shape, KH, KW, stride, H_out, W_out), pad)

    def backward_data_as_conv(self, dout, w, pad, kept=None):
        """dx for a stride-1 convolution, computed as another convolution ("full" correlation).

        Input pixel x[c, h, v] was multiplied by w[f, c, p, q] to make out[f, h - p + pad, v - q + pad],
        so dx[c, h, v] = sum_{f, p, q} dout[f, h - p + pad, v - q + pad] * w[f, c, p, q]:
        a correlation of dout with the kernel flipped in space and transposed (F <-> C), padded by
        K - 1 - pad. It equals col2im(w^T @ dout) but reuses the fast forward path and never
        builds the (C*KH*KW, H*W) gradient-of-columns matrix.
        """
        xp = get_xp(dout)
        F, C, KH, KW = w.shape
        dx_shape = (dout.shape[2] + KH - 1 - 2 * pad, dout.shape[3] + KW - 1 - 2 * pad)
        m = self.winograd_tile(w.shape, 1, dx_shape)   # the forward rule (it is symmetric in F and C)
        if m:
            return winograd.conv3x3_backward_data(dout, w, pad, m, kept=kept)   # flips nothing: see there
        w_flip = xp.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, F, KH, KW)
        dx, _ = self.conv2d_forward(dout, w_flip, None, stride=1, pad=KH - 1 - pad)
        return dx

    def conv2d_backward_weights(self, dout, x, w, stride, pad):
        """(dw, db). dW = sum_n dout[n] @ cols[n]^T, the columns rebuilt block by block (as in
        forward). The sum over a block's images is one product, images side by side in both
        factors: its inner dimension is n*rows*W_out, where n separate products would each have
        rows*W_out, too thin on an 8x8 map (64) for the BLAS to run at speed. It is computed
        transposed, dW^T = cols @ dout^T (C*KH*KW x F): BLAS works in tiles of the output's rows,
        and C*KH*KW rows fill them where F = 16 rows is one tile (measured: 1.2-1.9 times faster
        on the world model's shapes, 3-19% on VGG19's)."""
        xp = get_xp(dout)
        N, F, H_out, W_out = dout.shape
        _, C, KH, KW = w.shape
        x_pad = pad2d(x, pad)
        dw_t = xp.zeros((C * KH * KW, F), dtype=dout.dtype)
        for n0, n1, i0, i1 in self.blocks(N, H_out, C * KH * KW * W_out):
            band = x_pad[n0:n1, :, i0 * stride:(i1 - 1) * stride + KH]
            cols = columns(band, KH, KW, stride, i1 - i0, W_out, images_last=True)  # (C*KH*KW, n*rows*W_out)
            dout_block = dout[n0:n1, :, i0:i1].transpose(1, 0, 2, 3).reshape(F, -1)  # (F, n*rows*W_out)
            dw_t += cols @ dout_block.T
        db = dout.sum(axis=(0, 2, 3))
        return xp.ascontiguousarray(dw_t.T).reshape(w.shape), db

    def blocks(self, N, H_out, per_row):
        """Split the output into blocks (n0, n1, i0, i1) = images n0:n1, output rows i0:i1, whose
        column matrix holds about ``cols_block`` values (``per_row`` values per output row)."""
        rows = max(1, self.cols_block // per_row)
        if rows >= H_out:  # whole images fit: several images per block
            images = rows // H_out
            for n0 in range(0, N, images):
                yield n0, min(N, n0 + images), 0, H_out
        else:              # a band of rows of one image per block
            for n in range(N):
                for i0 in range(0, H_out, rows):
                    yield n, n + 1, i0, min(H_out, i0 + rows)

    # -- ReLU: the reference's, which is one vectorized operation each way -------------------------

    relu_forward = staticmethod(relu_forward)
    relu_backward = staticmethod(relu_backward)

    # -- max-pool ---------------------------------------------------------------------------------

    def _plane_blocks(self, x):
        """Slices of the N*C planes of x (N, C, H, W), about ``pool_block`` values each."""
        planes, size = x.shape[0] * x.shape[1], x.shape[2] * x.shape[3]
        step = max(1, self.pool_block // size)
        return [slice(p, p + step) for p in range(0, planes, step)]

    def maxpool2d_forward(self, x, kernel=2, stride=2):
        """``layers.maxpool2d_forward``, a block of planes at a time, into one output array."""
        xp = get_xp(x)
        N, C, H, W = x.shape
        if kernel < 1 or stride < 1 or H < kernel or W < kernel:
            raise ValueError(f"maxpool2d: kernel {kernel}, stride {stride} does not fit {H}x{W}")
        H_out, W_out = pool_output_size(H, kernel, stride), pool_output_size(W, kernel, stride)
        out = xp.empty((N, C, H_out, W_out), dtype=x.dtype)
        x_planes, out_planes = x.reshape(N * C, H, W), out.reshape(N * C, H_out, W_out)
        for block in self._plane_blocks(x):
            o = out_planes[block]
            views = pool_windows(x_planes[block], kernel, stride, H_out, W_out)
            o[...] = views[0]
            for view in views[1:]:
                xp.maximum(o, view, out=o)
        return out, PoolCache(x, out, kernel, stride)

    def maxpool2d_backward(self, dout, cache):
        """``layers.maxpool2d_backward``, a block of planes at a time, in place: position k wins
        where it equals the max and no earlier position has claimed the window (``wins >
        claimed`` is "wins and not claimed" on booleans, without a temporary). Where every input
        is in exactly one window, each is written once and dx needs no zeroing."""
        expect_cache(cache, PoolCache, "CPU.maxpool2d_backward")
        x, out, kernel, stride = cache
        xp = get_xp(dout)
        N, C, H_out, W_out = dout.shape
        H, W = x.shape[2:]
        overlap = stride < kernel
        tiled = stride == kernel and H == H_out * kernel and W == W_out * kernel
        dx = xp.empty(x.shape, dtype=dout.dtype) if tiled else xp.zeros(x.shape, dtype=dout.dtype)
        planes = [a.reshape((N * C,) + a.shape[2:]) for a in (x, dx, out, dout)]
        for block in self._plane_blocks(x):
            x_b, dx_b, out_b, dout_b = (a[block] for a in planes)
            claimed = None
            for view, dx_view in zip(pool_windows(x_b, kernel, stride, H_out, W_out),
                                     pool_windows(dx_b, kernel, stride, H_out, W_out)):
                wins = view == out_b
                if claimed is None:
                    claimed = wins
                else:
                    xp.greater(wins, claimed, out=wins)
                    claimed = claimed | wins
                if overlap:
                    dx_view += dout_b * wins
                else:                                           # each input written at most once
                    xp.multiply(dout_b, wins, out=dx_view)
        return dx


def columns(x_pad, KH, KW, stride, H_out, W_out, images_last=False, ones_row=False):
    """``layers.im2col`` with two layouts for the fast paths. ``images_last=True``: one wide
    matrix (C*KH*KW, N*H_out*W_out), the images side by side, for the weight gradient's single
    product over a block of images. ``ones_row=True``: (N, C*KH*KW + 1, H_out*W_out) with a row
    of ones at the end, for the bias trick."""
    xp = get_xp(x_pad)
    N, C, _, _ = x_pad.shape
    view = windows(x_pad, KH, KW, stride, H_out, W_out)
    if images_last:   # [c, p, q, n, i, j]: still a view; the reshape copies
        return view.transpose(1, 2, 3, 0, 4, 5).reshape(C * KH * KW, N * H_out * W_out)
    if not ones_row:
        return view.reshape(N, C * KH * KW, H_out * W_out)  # the one copy
    cols = xp.empty((N, C * KH * KW + 1, H_out * W_out), dtype=x_pad.dtype)
    # the one copy, into all rows but the last (a view: the reshape only splits their axes)
    cols[:, :-1].reshape(view.shape)[...] = view
    cols[:, -1] = 1
    return cols

