"""The embedded prior's sample bar, read by judges of different strength: the same 1000 class-conditional samples
that `train-prior` draws (DDIM 50 steps, CFG 4, seed 0) labelled by ConvNet-3 judges trained for more epochs on the
real training split, beside each judge's accuracy on the real test split, per class. `train-prior`'s own judge is
2 epochs (89.6 % on real test images): a weak judge counts its own confusions (shirt / T-shirt / pullover / coat)
against the samples. One JSON line per judge.

    OMP_NUM_THREADS=1 python benchmarks/prior_judge.py 2 10 20      # epochs of each judge
    PRIOR=runs/prior_v3 python benchmarks/prior_judge.py 2 10        # another prior folder (default: the embedded)
"""
import json
import os
import sys
import time

import numpy as np

from diver_lite.experiments.datasets import load_images
from diver_lite.experiments.fashion_mnist.prior_training import sample
from diver_lite.experiments.fashion_mnist.students import predict, train_classifier
from diver_lite.models.load import load_models


def per_class(pred: np.ndarray, labels: np.ndarray, n: int) -> list[float]:
    return [round(float((pred[labels == c] == c).mean()), 3) for c in range(n)]


def main(epochs_list: list[int], per_class_samples: int = 100, seed: int = 0) -> None:
    train, test = load_images(None, "train"), load_images(None, "test")
    models = load_models(os.environ.get("PRIOR"))
    labels = np.repeat(np.arange(train.num_classes), per_class_samples)
    start = time.perf_counter()
    samples = sample(models, labels, cfg_scale=4.0, seed=seed)
    print(json.dumps({"samples": len(labels), "sampling_s": round(time.perf_counter() - start, 1),
                      "prior": models.source or "embedded", "classes": train.classes}), flush=True)
    for epochs in epochs_list:
        start = time.perf_counter()
        judge = train_classifier(train.images, train.labels, epochs=epochs, seed=seed, num_classes=train.num_classes)
        real, fake = predict(judge, test.images), predict(judge, samples)
        print(json.dumps({
            "judge_epochs": epochs, "train_s": round(time.perf_counter() - start, 1),
            "real_test_accuracy": round(float((real == test.labels).mean()), 4),
            "sample_accuracy": round(float((fake == labels).mean()), 4),
            "real_per_class": per_class(real, test.labels, train.num_classes),
            "sample_per_class": per_class(fake, labels, train.num_classes),
        }), flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2, 10, 20])
