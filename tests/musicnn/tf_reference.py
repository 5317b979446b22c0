"""The original musicnn TF-1 graph, built from the wheel's own models.py, run on given patches (a subprocess of the tests).

    TF_USE_LEGACY_KERAS=1 python tests/musicnn/tf_reference.py WHEEL MODEL IN.npz OUT.npz

IN.npz holds ``patches`` (batch, 187, 96). OUT.npz gets the extractor's outputs for every patch:
``tags`` (sigmoid), ``penultimate``, ``mean_pool``, ``max_pool``. Only models.py and
configuration.py are taken from the wheel (the package itself cannot be installed: it pins
numpy<1.17); the checkpoint is restored by file prefix as its ``checkpoint`` file names the
author's home directory.
"""

import os
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.compat.v1.layers needs Keras 2 (tf-keras)

import numpy as np  # noqa: E402


def main(wheel: str, model: str, inputs: str, outputs: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / "musicnn"
        package.mkdir()
        (package / "__init__.py").write_text("")
        with zipfile.ZipFile(wheel) as z:
            for name in ("models.py", "configuration.py"):
                (package / name).write_bytes(z.read(f"musicnn/{name}"))
            checkpoint = Path(tmp) / "checkpoint"
            checkpoint.mkdir()
            for part in (".index", ".data-00000-of-00001"):
                (checkpoint / part).write_bytes(z.read(f"musicnn/{model}/{part}"))
        sys.path.insert(0, tmp)
        import tensorflow as tf
        from musicnn import configuration as config
        from musicnn import models

        tf.compat.v1.disable_eager_execution()
        patches = np.load(inputs)["patches"].astype(np.float32)
        labels = config.MTT_LABELS if "MTT" in model else config.MSD_LABELS
        with tf.name_scope("model"):  # as extractor.py builds it
            x = tf.compat.v1.placeholder(tf.float32, [None, patches.shape[1], config.N_MELS])
            is_training = tf.compat.v1.placeholder(tf.bool)
            y, _, _, _, _, _, mean_pool, max_pool, penultimate = models.define_model(x, is_training, model, len(labels))
            tags = tf.nn.sigmoid(y)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            tf.compat.v1.train.Saver().restore(sess, str(checkpoint) + "/")
            got = sess.run([tags, penultimate, mean_pool, max_pool], feed_dict={x: patches, is_training: False})
    np.savez(outputs, **dict(zip(("tags", "penultimate", "mean_pool", "max_pool"), got, strict=True)))


if __name__ == "__main__":
    main(*sys.argv[1:5])
