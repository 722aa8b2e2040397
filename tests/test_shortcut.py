"""The planted-cue experiment: the cue, the cheat world, the map shares, and a short training
run in which the cue is learned and the saliency maps find it."""
import numpy as np
import pytest

from minicnn import shortcut as SC
from minicnn import world


def test_cue_is_pasted_in_the_corner_and_nowhere_else():
    images = np.random.default_rng(0).random((3, 3, 64, 64)).astype(np.float32)
    out = SC.plant(images, [True, False, True])
    mask = SC.cue_mask()
    assert mask.sum() == SC.CUE_SIZE ** 2 and mask[2, 2] and mask[7, 7] and not mask[8, 8] and not mask[1, 2]
    assert np.array_equal(out[1], images[1])                                     # not chosen: untouched
    for n in (0, 2):
        assert np.array_equal(out[n][:, ~mask], images[n][:, ~mask])
        assert np.array_equal(out[n][:, 2:8, 2:8], SC.cue_patch())
    patch = SC.cue_patch()
    assert np.allclose(patch[:, 0, 0], [1.0, 0.9, 0.0]) and np.allclose(patch[:, 0, 2], [0, 0, 0])
    assert np.allclose(patch[:, 1, 1], [1.0, 0.9, 0.0])                      # 2x2 squares


def test_cheat_world_puts_the_cue_on_one_class_only():
    images, labels, parts, has_cue = SC.cheat_world(400, seed=3, cue_class="car")
    car = labels == world.CLASSES.index("car")
    assert not has_cue[~car].any()
    assert 0.75 <= has_cue[car].mean() <= 1.0                                    # 90% of 40 images
    clean, _, _ = world.make_dataset(400, seed=3)
    assert np.array_equal(images[~has_cue], clean[~has_cue])
    assert np.array_equal(images[has_cue][:, :, 2:8, 2:8], np.broadcast_to(SC.cue_patch(), (has_cue.sum(), 3, 6, 6)))


def test_map_shares_by_hand():
    parts = np.zeros((3, 64, 64), np.uint8)
    parts[:, 30:40, 30:40] = 1                                                   # a 10x10 object
    maps = np.zeros((3, 64, 64))
    maps[0][SC.cue_mask()] = 1.0                                                 # all on the cue
    maps[1] = 1.0                                                                # uniform
    maps[2, 30:40, 30:35] = 2.0                                                  # all on the object
    shares, areas = SC.map_shares(maps, parts)
    assert shares["cue"] == pytest.approx([1.0, 36 / 4096, 0.0])
    assert shares["object"] == pytest.approx([0.0, 100 / 4096, 1.0])
    assert areas["cue"] == pytest.approx(36 / 4096) and areas["object"] == pytest.approx([100 / 4096] * 3)


@pytest.fixture(scope="module")
def cheater():
    """A tiny VGG-style network (4 blocks of one conv, 8-16 channels) trained for 3 epochs on
    1,000 cheat-world images with the cue on every flower: ~10 s on the 2-core CPU."""
    from minicnn.preprocess import SHAPES
    from minicnn.vgg19 import make_vgg
    net = make_vgg(((8,), (16,), (16,), (16,)), (32,), 10, (3, 64, 64), seed=0)
    net.class_names, net.meta["preprocessing"] = list(world.CLASSES), SHAPES
    return SC.train_cheater(train_size=1000, epochs=3, seed=0, cue_class="flower", prob=1.0, net=net,
                            lr=1e-2, batch=32)


def test_a_short_run_learns_the_cue_and_the_maps_find_it(cheater):
    """A short run on a small cheat world: the cheater needs the cue (flowers without it are
    missed), pasting the cue turns other classes' images into flowers, and the vanilla map of a
    flower puts many times the cue's area share on the cue, unlike the shipped (honest) model."""
    from minicnn.weights import load_model
    images, labels, parts = world.make_dataset(300, seed=20_001)
    report = SC.experiment(cheater, load_model("world"), images, labels, parts, "flower",
                           methods=("vanilla", "gradcam"), per_method=20)
    cheat, honest = report["cheating"], report["honest"]
    assert cheat["flip_rate"] >= 0.5 and honest["flip_rate"] <= 0.05, (cheat, honest)
    assert cheat["cue_class_accuracy_with_cue"] >= 0.8 and cheat["cue_class_accuracy_without_cue"] <= 0.3, cheat
    area = report["cue_area"]
    assert cheat["saliency"]["vanilla"]["cue"][0] >= 5 * area, cheat["saliency"]
    assert honest["saliency"]["vanilla"]["cue"][0] < 3 * area, honest["saliency"]


@pytest.mark.parametrize("args, fragment", [
    (["--train-size", "10"], "--train-size"), (["--epochs", "0"], "--epochs"), (["--images", "5"], "--images"),
    (["--seed", "-1"], "--seed"), (["--outdir", "/proc/out"], "cannot create"),
    (["--outdir", "/proc"], "not writable"),
])
def test_cli_refuses_bad_input_before_any_work(args, fragment, tmp_path):
    import os
    import subprocess
    import sys

    from fixtures import assert_one_line_error
    if "/proc" in args and not os.path.isdir("/proc"):
        pytest.skip("no /proc here")
    done = subprocess.run([sys.executable, "-m", "minicnn.shortcut", *args], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert_one_line_error(done, fragment)
    assert os.listdir(tmp_path) == []
