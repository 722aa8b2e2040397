"""Launchers for the raw CUDA kernels of kernels/conv2d.cu (through cupy.RawModule).

Same functions, signatures and caches as minicnn/layers.py, for cupy arrays: a Network moved
to the GPU (``net.to("cuda")``) calls these instead, and everything stays on the GPU. One small
launcher per kernel: check the arguments (float32, C-contiguous, on the GPU), allocate the
output, compute the grid in named variables, pass every scalar as a 32-bit int.

``CONV_VERSION`` picks the forward kernel (1 naive, 2 shared-memory tiles, 3 implicit GEMM,
4 implicit GEMM with cheaper loads, the default); ``WEIGHT_VERSION`` the weight-gradient kernel
(1 naive, 3 implicit GEMM).
"""
import functools
import os

import numpy as np

from .backend import check_device

CONV_VERSION = 4
WEIGHT_VERSION = 3
THREADS = 256        # threads per block for the one-thread-per-element kernels
_module = None


def kernel_source_path():
    """kernels/conv2d.cu in a checkout, minicnn/kernels/conv2d.cu in an installed package."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, "kernels", "conv2d.cu"),
                 os.path.join(os.path.dirname(here), "kernels", "conv2d.cu")):
        if os.path.exists(path):
            return path
    raise FileNotFoundError("kernels/conv2d.cu not found next to the minicnn package")


def _kernel(name):
    """A compiled kernel; the .cu file is compiled once, on first use."""
    global _module
    if _module is None:
        import cupy
        check_device("cuda")
        with open(kernel_source_path()) as f:
            _module = cupy.RawModule(code=f.read(), options=("--std=c++14",))
    return _module.get_function(name)


def _cp():
    import cupy
    return cupy


def _check(*arrays):
    cp = _cp()
    for a in arrays:
        assert isinstance(a, cp.ndarray), "expected a cupy array"
        assert a.dtype == cp.float32, f"expected float32, got {a.dtype}"
        assert a.flags.c_contiguous, "expected a C-contiguous array"


def _i32(*values):
    return tuple(np.int32(v) for v in values)


@functools.lru_cache(maxsize=None)
def _sm_count():
    cp = _cp()
    return cp.cuda.Device().attributes["MultiProcessorCount"]


# ------------------------------------------------------------------------------------------------
# Convolution


def conv2d_forward(x, w, b, stride=1, pad=0, version=None):
    """out = conv(x, w) + b on the GPU, with kernel version 1 to 4 (default CONV_VERSION)."""
    from .layers import _check_conv_args, conv_output_size
    cp = _cp()
    x = cp.ascontiguousarray(x)
    _check(x, w, b)
    _check_conv_args(x, w, b, stride, pad)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out, W_out = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    version = version or CONV_VERSION
    dims = _i32(N, C, H, W, F, KH, KW, stride, pad, H_out, W_out)
    if version == 1:
        out = cp.empty((N, F, H_out, W_out), dtype=cp.float32)
        blocks = (N * F * H_out * W_out + THREADS - 1) // THREADS   # one thread per output
        _kernel("conv2d_forward_v1")((blocks,), (THREADS,), (x, w, b, out) + dims)
    elif version == 2:
        out = cp.empty((N, F, H_out, W_out), dtype=cp.float32)
        tile, fb, cb = 16, 8, 8                                      # V2_TILE, V2_FB, V2_CB
        in_h, in_w = (tile - 1) * stride + KH, (tile - 1) * stride + KW
        smem = 4 * (cb * in_h * in_w + fb * cb * KH * KW)           # input tiles + weights
        if smem > 48 * 1024:
            raise ValueError(f"v2 needs {smem} bytes of shared memory for a {KH}x{KW} kernel "
                             f"with stride {stride}; use version 1 or 3")
        grid = ((W_out + tile - 1) // tile, (H_out + tile - 1) // tile, N * ((F + fb - 1) // fb))
        _kernel("conv2d_forward_v2")(grid, (tile, tile), (x, w, b, out) + dims, shared_mem=smem)
    elif version in (3, 4):
        # v4 reads the weights as (F, KH, KW, C): reduction order (p, q, c)
        w_kernel = cp.ascontiguousarray(w.transpose(0, 2, 3, 1)) if version == 4 else w
        out = _implicit_gemm(version, x, w_kernel, b, F, KH, KW, stride, pad, H_out, W_out)
    else:
        raise ValueError(f"unknown conv kernel version {version}")
    return out, (x, w, stride, pad)


def _implicit_gemm(version, x, w_kernel, b, F, KH, KW, stride, pad, H_out, W_out):
    """Launch v3 (w_kernel OIHW) or v4 (w_kernel OHWI) on x; returns out (N, F, H_out, W_out)."""
    cp = _cp()
    N, C, H, W = x.shape
    K, P = C * KH * KW, N * H_out * W_out
    tiles = ((P + 127) // 128) * ((F + 63) // 64)                   # 64 x 128 output tiles
    # split the reduction when the tiles alone cannot fill the GPU (two blocks per SM)
    splits = max(1, min((2 * _sm_count()) // tiles, K // 256))
    k_per_split = (((K + splits - 1) // splits) + 7) // 8 * 8       # a multiple of V3_BK
    splits = (K + k_per_split - 1) // k_per_split
    out = (cp.zeros if splits > 1 else cp.empty)((N, F, H_out, W_out), dtype=cp.float32)
    grid = ((P + 127) // 128, (F + 63) // 64, splits)
    dims = _i32(N, C, H, W, F, KH, KW, stride, pad, H_out, W_out, k_per_split)
    _kernel(f"conv2d_forward_v{version}")(grid, (256,), (x, w_kernel, b, out) + dims)
    return out


def conv2d_backward(dout, cache, param_grads=True, version=None, weight_version=None, input_grad=True):
    """(dx, dw, db) on the GPU; dw and db are None unless ``param_grads``, dx is None unless
    ``input_grad``. ``version`` picks the forward kernel used for dx (stride 1),
    ``weight_version`` the dw kernel (1 or 3)."""
    cp = _cp()
    x, w, stride, pad = cache
    dout = cp.ascontiguousarray(dout)
    _check(dout)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    _, _, H_out, W_out = dout.shape
    dims = _i32(N, C, H, W, F, KH, KW, stride, pad, H_out, W_out)
    if not input_grad:
        dx = None
    elif stride == 1 and KH == KW and pad < KH and C >= 16:
        # dx = dout convolved with the flipped, transposed kernel (see layers.py)
        zero_bias = cp.zeros(C, dtype=cp.float32)
        if (version or CONV_VERSION) == 4:  # straight to v4's (C, KH, KW, F) layout: one copy
            w_flip = cp.ascontiguousarray(w.transpose(1, 2, 3, 0)[:, ::-1, ::-1, :])
            dx = _implicit_gemm(4, dout, w_flip, zero_bias, C, KH, KW, 1, KH - 1 - pad, H, W)
        else:
            w_flip = cp.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            dx, _ = conv2d_forward(dout, w_flip, zero_bias, 1, KH - 1 - pad, version)
    else:  # strided, or few input channels (conv1_1: a 3-row GEMM would waste its tiles)
        dx = cp.empty_like(x)
        blocks = (x.size + THREADS - 1) // THREADS                   # one thread per input
        _kernel("conv2d_backward_data_v1")((blocks,), (THREADS,), (dout, w, dx) + dims)
    if not param_grads:
        return dx, None, None
    dw = cp.zeros_like(w)
    if (weight_version or WEIGHT_VERSION) == 1:
        blocks = (w.size + THREADS - 1) // THREADS                   # one thread per weight
        _kernel("conv2d_backward_weight_v1")((blocks,), (THREADS,), (x, dout, dw) + dims)
    else:
        K, P = C * KH * KW, N * H_out * W_out
        tiles = ((K + 63) // 64) * ((F + 63) // 64)
        splits = max(1, min((4 * _sm_count()) // tiles, P // 64))  # split the pixel sum
        cols_per_split = (((P + splits - 1) // splits) + 15) // 16 * 16
        splits = (P + cols_per_split - 1) // cols_per_split
        grid = ((K + 63) // 64, (F + 63) // 64, splits)
        _kernel("conv2d_backward_weight_v3")(grid, (256,), (x, dout, dw) + dims + _i32(cols_per_split))
    return dx, dw, dout.sum(axis=(0, 2, 3))


# ------------------------------------------------------------------------------------------------
# ReLU and max-pool


def relu_forward(x):
    cp = _cp()
    x = cp.ascontiguousarray(x)
    _check(x)
    out = cp.empty_like(x)
    _kernel("relu_forward")(((x.size + THREADS - 1) // THREADS,), (THREADS,), (x, out) + _i32(x.size))
    return out, out


def relu_backward(dout, cache, rule="plain"):
    cp = _cp()
    if rule == "redirect":
        from .layers import _relu_redirect
        return _relu_redirect(dout, cache)   # rare and cheap: plain cupy array operations
    if rule not in ("plain", "guided"):
        raise ValueError(f"unknown relu backward rule {rule!r}")
    out = cache
    dout = cp.ascontiguousarray(dout)
    _check(dout, out)
    dx = cp.empty_like(dout)
    blocks = (dout.size + THREADS - 1) // THREADS
    _kernel("relu_backward")((blocks,), (THREADS,), (dout, out, dx) + _i32(dout.size, rule == "guided"))
    return dx


def maxpool2d_forward(x, kernel=2, stride=2):
    cp = _cp()
    x = cp.ascontiguousarray(x)
    _check(x)
    N, C, H, W = x.shape
    if kernel < 1 or stride < 1 or H < kernel or W < kernel:
        raise ValueError(f"maxpool2d: kernel {kernel}, stride {stride} does not fit {H}x{W}")
    H_out, W_out = 1 + (H - kernel) // stride, 1 + (W - kernel) // stride
    out = cp.empty((N, C, H_out, W_out), dtype=cp.float32)
    argmax = cp.empty((N, C, H_out, W_out), dtype=cp.int32)
    blocks = (out.size + THREADS - 1) // THREADS                     # one thread per output
    _kernel("maxpool2d_forward")((blocks,), (THREADS,),
                                 (x, out, argmax) + _i32(N, C, H, W, kernel, stride, H_out, W_out))
    return out, (x.shape, argmax)


def maxpool2d_backward(dout, cache):
    cp = _cp()
    x_shape, argmax = cache
    dout = cp.ascontiguousarray(dout)
    _check(dout)
    dx = cp.zeros(x_shape, dtype=cp.float32)
    blocks = (dout.size + THREADS - 1) // THREADS
    _kernel("maxpool2d_backward")((blocks,), (THREADS,), (dout, argmax, dx) + _i32(dout.size))
    return dx
