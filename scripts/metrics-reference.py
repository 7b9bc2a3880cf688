#!/usr/bin/python3
"""Reference numbers for test/metrics-stats.test.ts: SSIM from scikit-image and Spearman's rho from
SciPy, on inputs stored with them (CI has no Python: the JSON is committed; rerun this script to
remake it). Run with Debian's /usr/bin/python3 (python3-skimage, python3-scipy):

    /usr/bin/python3 scripts/metrics-reference.py > test/fixtures/metrics-reference.json
"""
import json

import numpy as np
import scipy
import skimage
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

rng = np.random.default_rng(18)
cases = []


def add_ssim(name, a, b):
    value = structural_similarity(a, b, data_range=1.0)  # defaults: win_size 7, K1 0.01, K2 0.03, uniform window
    cases.append({"kind": "ssim", "name": name, "height": a.shape[0], "width": a.shape[1],
                  "a": a.ravel().tolist(), "b": b.ravel().tolist(), "value": float(value)})


def add_spearman(name, a, b):
    rho = spearmanr(a, b).correlation
    cases.append({"kind": "spearman", "name": name, "a": list(map(float, a)), "b": list(map(float, b)),
                  "value": None if np.isnan(rho) else float(rho)})


a = rng.random((12, 10))
add_ssim("random pair 12x10", a, rng.random((12, 10)))
add_ssim("an image and a noisy copy 16x9", a2 := rng.random((16, 9)), np.clip(a2 + 0.1 * rng.standard_normal((16, 9)), 0, 1))
smooth = np.outer(np.linspace(0, 1, 20), np.linspace(1, 0, 14))
add_ssim("smooth ramp and its square 20x14", smooth, smooth ** 2)
add_ssim("7x7: one window", rng.random((7, 7)), rng.random((7, 7)))
add_ssim("constant and ramp 8x8", np.full((8, 8), 0.3), np.tile(np.linspace(0, 1, 8), (8, 1)))

add_spearman("random 50", rng.random(50), rng.random(50))
add_spearman("ties", [1, 2, 2, 3, 3, 3, 0, 5, 5, 1], [2, 1, 4, 4, 3, 0, 0, 1, 2, 2])
add_spearman("monotone with ties", [0, 0, 1, 2, 2, 7], [1, 1, 5, 9, 9, 40])
add_spearman("reversed", list(range(20)), list(range(20, 0, -1)))
add_spearman("constant side", [1, 1, 1, 1], [1, 2, 3, 4])

print(json.dumps({"generator": "scripts/metrics-reference.py", "numpy": np.__version__, "scipy": scipy.__version__,
                  "skimage": skimage.__version__, "cases": cases}, indent=1))
