"""``python -m minicnn.bench``: how fast is minicnn, side by side with PyTorch.

    jobs.py       the jobs, written once for minicnn and once for torch
    cpu.py        CPU timings, each framework in its own process; saliency methods, vis steps
    gpu.py        the CUDA kernels version by version, and the whole network, next to cuDNN
    workloads.py  the jobs users wait on, next to torch, Captum and Lucent (--jobs)
    convs.py      each VGG19 3x3 convolution by im2col and by Winograd's two tile sizes (--convs)
    commands.py   whole saliency commands vs a torch + Captum script (--commands)
    atlas.py      the atlas's units per minute: channels per render, local processes (--atlas)
    __main__.py   python -m minicnn.bench [--device cuda] [--methods] [--jobs] [--convs]

On full-size VGG19 with random weights (seeded, the same in both frameworks) and one random
224x224 image, it times three jobs:

* ``forward``        forward to the logits;
* ``saliency``       forward to the logits + backward of one logit to the input (a saliency map);
* ``vis_step``       forward to conv3_3 + backward of one channel's mean (a feature-vis step).

Each framework runs in its own fresh process (two BLAS thread pools in one process slow each
other down), alternating over several rounds so both see the same machine load; the outputs are
compared before any time is printed (a fast wrong answer is not a result). Memory: the resident
size after building the network (VGG19 holds 548 MB of float32 weights) and the peak extra
memory the three jobs need on top of it. torch is optional: without it only minicnn's column
is printed.
"""
