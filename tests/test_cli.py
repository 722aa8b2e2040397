"""The command-line tools as a user runs them: outputs, exit codes, one-line errors."""
import json
import os


from fixtures import EXAMPLES, SHAPES_EXAMPLES, assert_one_line_error, hostile_images, run

def test_predict_examples():
    """The default (world) model names each example after its file; so does the shapes model."""
    for model, examples, classes in (("world", EXAMPLES, 10), ("shapes", SHAPES_EXAMPLES, 8)):
        args = ("--model", model) if model != "world" else ()
        done = run("minicnn.predict", *examples, "--json", "--top", str(classes), *args)
        assert done.returncode == 0, done.stderr
        results = json.loads(done.stdout)
        assert len(results) == len(examples) == classes
        for r in results:
            expected = os.path.splitext(os.path.basename(r["image"]))[0]
            assert r["top"][0]["name"] == expected
            assert abs(sum(t["probability"] for t in r["top"]) - 1) < 1e-4  # every class: all the mass


def test_predict_refuses_bad_images(tmp_path):
    for name, message in hostile_images(tmp_path).items():
        assert_one_line_error(run("minicnn.predict", str(tmp_path / name)), name, message)


def test_predict_bad_weights_and_device(tmp_path):
    (tmp_path / "w.h5").write_text("not weights")
    assert_one_line_error(run("minicnn.predict", EXAMPLES[0], "--weights", str(tmp_path / "w.h5")),
                          "not a readable HDF5")
    from minicnn.backend import cuda_available
    if not cuda_available():
        assert_one_line_error(run("minicnn.predict", EXAMPLES[0], "--device", "cuda"), "--device cuda")
