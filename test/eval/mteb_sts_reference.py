"""Independent STS scoring, MTEB 1.39.7's way, for test/eval/mteb-parity.test.ts.

Reads a JSON list of cases from argv[1]; each case names a float32 file of the left embeddings,
one of the right embeddings (row-major, n x dim) and a float64 file of gold scores. Computes what
MTEB's STSEvaluator computes, written from its description (not from codiemb's code):
cosine = 1 - sklearn paired_cosine_distances (rows L2-normalised with zero rows left zero, then
1 - 0.5 * squared distance), in float64; euclidean / manhattan = negated paired distances of the
raw embeddings; Pearson = scipy.stats.pearsonr, Spearman = scipy.stats.spearmanr.
Prints one JSON object per case, in order, as a JSON list.
"""
import json
import sys

import numpy as np
from scipy.stats import pearsonr, spearmanr


def normalize(x):
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    norms[norms == 0] = 1.0  # sklearn.preprocessing.normalize leaves zero rows as they are
    return x / norms[:, None]


def scores(case):
    n, dim = case["n"], case["dim"]
    a = np.fromfile(case["left"], dtype="<f4").reshape(n, dim).astype(np.float64)
    b = np.fromfile(case["right"], dtype="<f4").reshape(n, dim).astype(np.float64)
    gold = np.fromfile(case["gold"], dtype="<f8")
    diff = normalize(a) - normalize(b)
    cosine = 1.0 - 0.5 * np.einsum("ij,ij->i", diff, diff)
    euclidean = -np.sqrt(np.einsum("ij,ij->i", a - b, a - b))
    manhattan = -np.abs(a - b).sum(axis=1)
    out = {"exact_ones": int((cosine == 1.0).sum())}
    for name, sim in (("cosine", cosine), ("euclidean", euclidean), ("manhattan", manhattan)):
        out[name + "_pearson"] = float(pearsonr(gold, sim)[0])
        out[name + "_spearman"] = float(spearmanr(gold, sim)[0])
    return out


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    print(json.dumps([scores(c) for c in cases]))
