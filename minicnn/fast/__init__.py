"""The machine room: the layers of ``minicnn.layers`` made fast, one engine per device.

``minicnn.layers`` is the textbook; a Network runs on an *engine* that has the same layer
functions, faster, and is tested against the textbook's (tests/test_fast.py, test_cuda.py):

    cpu.py       CPU: blocked im2col, the bias trick, dx as a convolution, transposed dW,
                 blocked max-pool, and the rule that sends wide 3x3 layers to Winograd
    winograd.py  Winograd's F(4x4, 3x3) and F(2x2, 3x3), NumPy and CuPy alike
    cuda.py      Kernels: the hand-written CUDA kernels of kernels/conv2d.cu (through CuPy)
    memory.py    glibc's malloc told to keep freed memory for the next pass

An engine holds every setting that steers the math (``CPU(algorithm="im2col")``,
``Kernels(version=3)``); nothing here reads a module global or a thread's state.
"""


def ceil_div(a, b):
    """The smallest integer >= a / b, for positive integers: how many b-sized pieces cover a."""
    return -(-a // b)

