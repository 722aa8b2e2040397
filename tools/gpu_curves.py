"""Time python -m minicnn.curves on random-weight VGG19 (the real weights are not on the test
machines): one layer per block, 2 null copies, on the device given as argv[1]."""
import sys
import time

from minicnn import curves
from minicnn.preprocess import KERAS_CAFFE
from minicnn.vgg19 import vgg19

device = sys.argv[1] if len(sys.argv) > 1 else "cpu"
net = vgg19(seed=0, notop=True)
net.meta["preprocessing"] = KERAS_CAFFE
net.to(device)
for layer in sys.argv[2:] or ["conv3_3", "conv4_1", "conv5_1"]:
    t = time.perf_counter()
    ranked, probe = curves.analyze(net, layer, null_copies=2)
    print(f"{device} {layer}: input {probe['size']} px, {len(probe['images'])} stimuli x 3 networks, "
          f"{time.perf_counter() - t:.1f} s, {sum(s['curve_detector'] for s in ranked)} of {len(ranked)} "
          f"channels flagged on random weights", flush=True)
