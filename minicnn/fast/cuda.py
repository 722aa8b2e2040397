"""Launchers for the raw CUDA kernels of kernels/conv2d.cu (through cupy.RawModule).

Same functions and signatures as minicnn/layers.py, for cupy arrays: a Network moved to the GPU
(``net.to("cuda")``) runs on a ``Kernels`` object, and everything stays on the GPU. The conv
cache is the reference's ``ConvCache``; max-pool's is its own ``GpuPoolCache`` (the winners'
indices), which no other backward pass accepts. One small
launcher per kernel: check the arguments (float32, C-contiguous, on the GPU), allocate the
output, compute the grid in named variables, pass every scalar as a 32-bit int.

``version`` picks the forward kernel (1 naive, 2 shared-memory tiles, 3 implicit GEMM, 4 implicit
GEMM with cheaper loads, 5 v4's loads with 128x128 tiles, the default: v5 for layers with at least
128 filters, v4 below); ``weight_version`` the weight-gradient kernel (1 naive, 2 implicit GEMM,
the default). A network runs through a ``Kernels`` object that carries its
choice: ``net.to("cuda")`` uses the defaults, ``net.engine = Kernels(version=2)`` another.
Tile sizes are the #defines of the .cu file, read from it (``TILE``): one place for each number.

For batches of images the wide 3x3 layers go to Winograd's F(4x4, 3x3) instead
(``winograd_tile``): minicnn/fast/winograd.py, the same NumPy/CuPy code as on the CPU, whose products
CuPy hands to cuBLAS. ``Kernels(winograd=False)`` turns that off.
"""
import functools
import os
import re
from typing import NamedTuple

import numpy as np

from ..backend import cupy as _cupy_module
from ..layers import ConvCache, check_conv_args, conv_output_size, expect_cache, pool_output_size
from . import ceil_div
from .winograd import conv3x3, conv3x3_backward_data, tile_size

CONV_VERSIONS = (1, 2, 3, 4, 5)
WEIGHT_VERSIONS = (1, 2)
DEFAULT_VERSION = 5
DEFAULT_WEIGHT_VERSION = 2
THREADS = 256                        # threads per block for the one-thread-per-element kernels
NVCC_OPTIONS = ("--std=c++17",)      # at run time (NVRTC) and in CI (nvcc): the same options
WINOGRAD_MIN_BATCH = 8               # images, and
WINOGRAD_MIN_CHANNELS = 128          # channels in and out, from which F(4x4, 3x3) replaces the kernels
_module = None


def kernel_source_path():
    """kernels/conv2d.cu in a checkout, minicnn/kernels/conv2d.cu in an installed package."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))       # minicnn/
    for path in (os.path.join(package, "kernels", "conv2d.cu"),
                 os.path.join(os.path.dirname(package), "kernels", "conv2d.cu")):
        if os.path.exists(path):
            return path
    raise FileNotFoundError("kernels/conv2d.cu not found next to the minicnn package")


@functools.lru_cache(maxsize=None)
def tile_sizes():
    """The integer #defines of kernels/conv2d.cu, e.g. {"V3_BM": 64, "V3_BN": 128, ...}."""
    with open(kernel_source_path()) as f:
        return {name: int(value) for name, value in re.findall(r"^#define (\w+) (\d+)\b", f.read(), re.M)}


def _kernel(name):
    """A compiled kernel; the .cu file is compiled once, on first use."""
    global _module
    if _module is None:
        cupy = _cupy_module()
        with open(kernel_source_path()) as f:
            _module = cupy.RawModule(code=f.read(), options=NVCC_OPTIONS)
    return _module.get_function(name)


def _cp():
    return _cupy_module()


def _check(*arrays):
    """Raise (not assert: checks must survive python -O) unless every array is a C-contiguous
    float32 cupy array; the kernels read raw memory and would misread anything else."""
    cp = _cp()
    for a in arrays:
        if not isinstance(a, cp.ndarray):
            raise TypeError(f"expected a cupy array, got {type(a).__name__}")
        if a.dtype != cp.float32:
            raise TypeError(f"expected float32, got {a.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError("expected a C-contiguous array")


def _check_version(version, known, what):
    if version not in known:
        raise ValueError(f"unknown {what} kernel version {version}; known: {', '.join(map(str, known))}")


def _i32(*values):
    return tuple(np.int32(v) for v in values)


@functools.lru_cache(maxsize=None)
def _sm_count():
    cp = _cp()
    return cp.cuda.Device().attributes["MultiProcessorCount"]


# ------------------------------------------------------------------------------------------------
# Convolution


def winograd_tile(batch, w_shape, stride, pad, out_shape):
    """4 where a convolution on the GPU runs as Winograd F(4x4, 3x3), None where it runs on the
    kernels: F(4x4) where the CPU's rule takes it (winograd.tile_size: 3x3, stride 1, output
    sides multiples of 4), for at least WINOGRAD_MIN_BATCH images and WINOGRAD_MIN_CHANNELS
    channels in and out. Below that, its dozen array operations per layer cost more to launch
    than the kernel takes (measured: python -m minicnn.bench --device cuda --convs)."""
    if batch < WINOGRAD_MIN_BATCH or min(w_shape[:2]) < WINOGRAD_MIN_CHANNELS or pad > 2:
        return None
    # max_waste=0: whole 4x4 tiles only (ragged ones were not measured on the GPU)
    return 4 if tile_size(w_shape, stride, out_shape, max_waste=0) == 4 else None


def conv2d_forward(x, w, b, stride=1, pad=0, version=DEFAULT_VERSION, winograd=True):
    """out = conv(x, w) + b on the GPU, with kernel version 1 to 5 (default 5); or by Winograd
    F(4x4, 3x3) where ``winograd`` and ``winograd_tile`` say so."""
    _check_version(version, CONV_VERSIONS, "forward")
    cp = _cp()
    x = cp.ascontiguousarray(x)
    _check(x, w, b)
    check_conv_args(x, w, b, stride, pad)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    H_out, W_out = conv_output_size(H, KH, stride, pad), conv_output_size(W, KW, stride, pad)
    if winograd and winograd_tile(N, w.shape, stride, pad, (H_out, W_out)):
        return conv3x3(x, w, b, pad, 4), ConvCache(x, w, stride, pad)
    dims = _i32(N, C, H, W, F, KH, KW, stride, pad, H_out, W_out)
    if version == 1:
        out = cp.empty((N, F, H_out, W_out), dtype=cp.float32)
        blocks = ceil_div(N * F * H_out * W_out, THREADS)   # one thread per output
        _kernel("conv2d_forward_v1")((blocks,), (THREADS,), (x, w, b, out) + dims)
    elif version == 2:
        out = cp.empty((N, F, H_out, W_out), dtype=cp.float32)
        tile, fb, cb = tile_sizes()["V2_TILE"], tile_sizes()["V2_FB"], tile_sizes()["V2_CB"]
        in_h, in_w = (tile - 1) * stride + KH, (tile - 1) * stride + KW
        smem = 4 * (cb * in_h * in_w + fb * cb * KH * KW)           # input tiles + weights
        if smem > 48 * 1024:
            raise ValueError(f"v2 needs {smem} bytes of shared memory for a {KH}x{KW} kernel "
                             f"with stride {stride}; use version 1 or 3")
        grid = (ceil_div(W_out, tile), ceil_div(H_out, tile), N * ceil_div(F, fb))
        _kernel("conv2d_forward_v2")(grid, (tile, tile), (x, w, b, out) + dims, shared_mem=smem)
    else:
        # v4 and v5 read the weights as (F, KH, KW, C): reduction order (p, q, c)
        version = gemm_version(version, F)
        w_kernel = cp.ascontiguousarray(w.transpose(0, 2, 3, 1)) if version >= 4 else w
        out = _implicit_gemm(version, x, w_kernel, b, F, KH, KW, stride, pad, H_out, W_out)
    return out, ConvCache(x, w, stride, pad)


def gemm_version(version, filters):
    """The kernel that version 3, 4 or 5 runs for a layer with this many filters: v5's 128-row
    tiles would be half empty below 128 filters, so there version 5 runs v4."""
    return 4 if version == 5 and filters < tile_sizes()["V5_BM"] else version


def _gemm_tile(version):
    """(filters, pixels, depth) of one block's tile and slice in implicit-GEMM version 3, 4 or 5."""
    t = tile_sizes()
    return {3: (t["V3_BM"], t["V3_BN"], t["V3_BK"]), 4: (t["V3_BM"], t["V3_BN"], t["V4_BK"]),
            5: (t["V5_BM"], t["V5_BN"], t["V5_BK"])}[version]


def _implicit_gemm(version, x, w_kernel, b, F, KH, KW, stride, pad, H_out, W_out):
    """Launch v3 (w_kernel OIHW), v4 or v5 (w_kernel OHWI) on x; returns out (N, F, H_out, W_out)."""
    cp = _cp()
    t = tile_sizes()
    BM, BN, BK = _gemm_tile(version)
    N, C, H, W = x.shape
    K, P = C * KH * KW, N * H_out * W_out
    tiles = ceil_div(P, BN) * ceil_div(F, BM)                     # BM x BN output tiles
    # split the reduction when the tiles alone cannot fill the GPU (two blocks per SM)
    splits = max(1, min((2 * _sm_count()) // tiles, K // 256))
    k_per_split = ceil_div(ceil_div(K, splits), BK) * BK          # a multiple of the slice depth
    splits = ceil_div(K, k_per_split)
    out = (cp.zeros if splits > 1 else cp.empty)((N, F, H_out, W_out), dtype=cp.float32)
    grid = (ceil_div(P, BN), ceil_div(F, BM), splits)
    dims = _i32(N, C, H, W, F, KH, KW, stride, pad, H_out, W_out, k_per_split)
    _kernel(f"conv2d_forward_v{version}")(grid, (t["GEMM_THREADS"],), (x, w_kernel, b, out) + dims)
    return out


def conv2d_backward(dout, cache, param_grads=True, version=DEFAULT_VERSION,
                    weight_version=DEFAULT_WEIGHT_VERSION, input_grad=True, winograd=True):
    """(dx, dw, db) on the GPU; dw and db are None unless ``param_grads``, dx is None unless
    ``input_grad``. ``version`` picks the forward kernel used for dx (stride 1),
    ``weight_version`` the dw kernel (1 or 2); dx by Winograd where ``winograd`` and
    ``winograd_tile`` say so (for the convolution that computes it, with F and C swapped)."""
    _check_version(version, CONV_VERSIONS, "forward")
    _check_version(weight_version, WEIGHT_VERSIONS, "weight-gradient")
    cp = _cp()
    expect_cache(cache, ConvCache, "cuda.conv2d_backward")
    x, w, stride, pad = cache
    dout = cp.ascontiguousarray(dout)
    _check(dout)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    _, _, H_out, W_out = dout.shape
    dims = _i32(N, C, H, W, F, KH, KW, stride, pad, H_out, W_out)
    if not input_grad:
        dx = None
    elif winograd and winograd_tile(N, w.shape, stride, pad, (H, W)):
        dx = conv3x3_backward_data(dout, w, pad, 4)
    elif stride == 1 and KH == KW and pad < KH and C >= 16:
        # dx = dout convolved with the flipped, transposed kernel (see fast/cpu.py)
        zero_bias = cp.zeros(C, dtype=cp.float32)
        if version >= 4:                    # straight to the (C, KH, KW, F) layout: one copy
            w_flip = cp.ascontiguousarray(w.transpose(1, 2, 3, 0)[:, ::-1, ::-1, :])
            dx = _implicit_gemm(gemm_version(version, C), dout, w_flip, zero_bias, C, KH, KW, 1, KH - 1 - pad, H, W)
        else:
            w_flip = cp.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            dx, _ = conv2d_forward(dout, w_flip, zero_bias, 1, KH - 1 - pad, version)
    else:  # strided, or few input channels (conv1_1: a 3-row GEMM would waste its tiles)
        dx = cp.empty_like(x)
        blocks = ceil_div(x.size, THREADS)                   # one thread per input
        _kernel("conv2d_backward_data_v1")((blocks,), (THREADS,), (dout, w, dx) + dims)
    if not param_grads:
        return dx, None, None
    dw = cp.zeros_like(w)
    if weight_version == 1:
        blocks = ceil_div(w.size, THREADS)                   # one thread per weight
        _kernel("conv2d_backward_weight_v1")((blocks,), (THREADS,), (x, dout, dw) + dims)
    else:
        t = tile_sizes()
        BM, BN, BR = t["W2_BM"], t["W2_BN"], t["W2_BR"]
        K, P = C * KH * KW, N * H_out * W_out
        tiles = ceil_div(K, BN) * ceil_div(F, BM)
        splits = max(1, min((4 * _sm_count()) // tiles, P // 64))  # split the pixel sum
        cols_per_split = ceil_div(ceil_div(P, splits), BR) * BR   # a multiple of the slice
        splits = ceil_div(P, cols_per_split)
        grid = (ceil_div(K, BN), ceil_div(F, BM), splits)
        _kernel("conv2d_backward_weight_v2")(grid, (t["GEMM_THREADS"],), (x, dout, dw) + dims + _i32(cols_per_split))
    return dx, dw, dout.sum(axis=(0, 2, 3))


# ------------------------------------------------------------------------------------------------
# ReLU and max-pool


def relu_forward(x):
    cp = _cp()
    x = cp.ascontiguousarray(x)
    _check(x)
    out = cp.empty_like(x)
    _kernel("relu_forward")((ceil_div(x.size, THREADS),), (THREADS,), (x, out) + _i32(x.size))
    return out, out


def relu_backward(dout, cache):
    cp = _cp()
    out = cache
    dout = cp.ascontiguousarray(dout)
    _check(dout, out)
    dx = cp.empty_like(dout)
    blocks = ceil_div(dout.size, THREADS)
    _kernel("relu_backward")((blocks,), (THREADS,), (dout, out, dx) + _i32(dout.size, 0))   # 0: the true gradient
    return dx


class GpuPoolCache(NamedTuple):
    """Max-pool's cache on the GPU: the input's shape and each window's winner (an index)."""
    x_shape: tuple
    argmax: object


def maxpool2d_forward(x, kernel=2, stride=2):
    cp = _cp()
    x = cp.ascontiguousarray(x)
    _check(x)
    N, C, H, W = x.shape
    if kernel < 1 or stride < 1 or H < kernel or W < kernel:
        raise ValueError(f"maxpool2d: kernel {kernel}, stride {stride} does not fit {H}x{W}")
    H_out, W_out = pool_output_size(H, kernel, stride), pool_output_size(W, kernel, stride)
    out = cp.empty((N, C, H_out, W_out), dtype=cp.float32)
    argmax = cp.empty((N, C, H_out, W_out), dtype=cp.int32)
    blocks = ceil_div(out.size, THREADS)                     # one thread per output
    _kernel("maxpool2d_forward")((blocks,), (THREADS,),
                                 (x, out, argmax) + _i32(N, C, H, W, kernel, stride, H_out, W_out))
    return out, GpuPoolCache(x.shape, argmax)


def maxpool2d_backward(dout, cache):
    cp = _cp()
    expect_cache(cache, GpuPoolCache, "cuda.maxpool2d_backward")
    x_shape, argmax = cache
    dout = cp.ascontiguousarray(dout)
    _check(dout)
    dx = cp.zeros(x_shape, dtype=cp.float32)
    blocks = ceil_div(dout.size, THREADS)
    _kernel("maxpool2d_backward")((blocks,), (THREADS,), (dout, argmax, dx) + _i32(dout.size))
    return dx


# ------------------------------------------------------------------------------------------------
# What a Network on the GPU calls


class Kernels:
    """How a network's layers run on the GPU (``net.engine``), with the kernel versions fixed:
    ``Kernels()`` is the default (forward v5, weight gradient v2, Winograd where
    ``winograd_tile`` says so). The CPU's counterpart is ``minicnn.fast.cpu.CPU``."""
    device = "cuda"

    def __init__(self, version=DEFAULT_VERSION, weight_version=DEFAULT_WEIGHT_VERSION, winograd=True):
        _check_version(version, CONV_VERSIONS, "forward")
        _check_version(weight_version, WEIGHT_VERSIONS, "weight-gradient")
        self.version, self.weight_version, self.winograd = version, weight_version, winograd

    def __repr__(self):
        return f"Kernels(version={self.version}, weight_version={self.weight_version}, winograd={self.winograd})"

    def conv2d_forward(self, x, w, b, stride=1, pad=0, kept=None):
        """``kept`` is ignored: CuPy arrays cannot be made read-only, so nothing is kept."""
        return conv2d_forward(x, w, b, stride, pad, version=self.version, winograd=self.winograd)

    def conv2d_backward(self, dout, cache, param_grads=True, input_grad=True, kept=None):
        return conv2d_backward(dout, cache, param_grads, version=self.version, weight_version=self.weight_version,
                               input_grad=input_grad, winograd=self.winograd)

    relu_forward = staticmethod(relu_forward)
    relu_backward = staticmethod(relu_backward)
    maxpool2d_forward = staticmethod(maxpool2d_forward)
    maxpool2d_backward = staticmethod(maxpool2d_backward)
