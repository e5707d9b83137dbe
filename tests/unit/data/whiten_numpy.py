"""numpy's side of tests/unit/data/whiten_tests.cpp: PCA/ZCA whitening from numpy.linalg.eigh.

    python3 whiten_numpy.py IN.f32 ROWS COLS K OUT.f64
IN: float32 rows x cols, row-major. OUT (float64): the eigenvalues (cols, descending), the PCA output
(rows x K) and the ZCA output (rows x cols), eps 1e-5, eigenvector signs: largest |component| positive.
"""
import sys

import numpy as np

src, rows, cols, k, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
x = np.fromfile(src, dtype=np.float32).astype(np.float64).reshape(rows, cols)
eps = 1e-5
c = np.cov(x, rowvar=False, bias=True)
w, u = np.linalg.eigh(c)
order = np.argsort(-w, kind="stable")
w, u = w[order], u[:, order]
big = np.argmax(np.abs(u), axis=0)
u = u * np.sign(u[big, np.arange(cols)])
d = x - x.mean(axis=0)
pca = d @ u[:, :k] / np.sqrt(np.maximum(w[:k], 0) + eps)
zca = d @ (u @ np.diag(1 / np.sqrt(np.maximum(w, 0) + eps)) @ u.T).T
np.concatenate([w, pca.ravel(), zca.ravel()]).astype(np.float64).tofile(out)
