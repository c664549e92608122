"""PyTorch reference for the exact-search figures of bench/eval.bench.ts: the same work codiemb's
search does, written the plain PyTorch way: queries and each 16,384-document corpus chunk
L2-normalised, the query x chunk matrix product in query batches, torch.topk per chunk, and the
running top-k merged by concatenating it with the chunk's and taking topk again.

What is timed (and what is not), against what codiemb's side times (exactSearch in bench/eval.bench.ts):
- timed here: normalising the queries and each chunk (F.normalize), the query-batch x chunk products,
  topk per chunk, the merge (cat + topk + gather), and the final copy to the CPU (a no-op on CPU);
- not timed here: making the corpus (it is already a torch tensor; torch.from_numpy of a float32
  array would be the same, no copy), and turning indices into document ids;
- codiemb's side times strictly more: its chunks come from Float32Arrays (read in place on CPU, one
  host-to-device copy per chunk on CUDA, while the corpus here is on the GPU before timing), and it
  reads the table back into typed arrays and maps every hit to its document id string.
Both sides use the same number of intra-op threads (--threads; codiemb: CODIEMB_TORCH_THREADS).

Prints one JSON line per k: {"k": ..., "queries_per_s": ..., "seconds": ..., "threads": ..., "torch": ...}.
Usage: python3 bench/search_reference.py --docs 100000 --dim 768 --queries 1024 --k 1000,10 \
         --chunk 16384 --query-batch 256 --threads 2 [--device cpu|cuda]
"""
import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F


def search(queries, corpus, k, chunk, query_batch):
    q = F.normalize(queries, dim=1)
    running = [None] * ((q.shape[0] + query_batch - 1) // query_batch)
    for start in range(0, corpus.shape[0], chunk):
        docs = F.normalize(corpus[start:start + chunk], dim=1)
        take = min(k, docs.shape[0])
        for b, qs in enumerate(range(0, q.shape[0], query_batch)):
            values, indices = torch.topk(q[qs:qs + query_batch] @ docs.T, take, dim=1)
            indices = indices + start
            if running[b] is not None:
                values = torch.cat([running[b][0], values], dim=1)
                indices = torch.cat([running[b][1], indices], dim=1)
                values, pick = torch.topk(values, min(k, values.shape[1]), dim=1)
                indices = torch.gather(indices, 1, pick)
            running[b] = (values, indices)
    values = torch.cat([r[0] for r in running]).cpu()
    indices = torch.cat([r[1] for r in running]).cpu()
    return values, indices


def cpu_seconds():
    """User + system CPU time of this process, all threads (less sensitive than wall time to other load)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--docs", type=int, default=100000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--queries", type=int, default=1024)
    p.add_argument("--k", default="1000,10")
    p.add_argument("--chunk", type=int, default=16384)
    p.add_argument("--query-batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(a.dim)
    corpus = (torch.rand(a.docs, a.dim, generator=g) * 2 - 1).to(a.device)
    queries = (torch.rand(a.queries, a.dim, generator=g) * 2 - 1).to(a.device)
    search(queries[:8], corpus[: a.chunk], 10, a.chunk, a.query_batch)  # warm-up
    for k in [int(x) for x in a.k.split(",")]:
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        c0 = cpu_seconds()
        values, _ = search(queries, corpus, k, a.chunk, a.query_batch)
        s = time.perf_counter() - t0
        cpu = cpu_seconds() - c0
        assert values.shape == (a.queries, k)
        print(json.dumps({"k": k, "queries_per_s": a.queries / s, "seconds": s, "cpu_seconds": cpu, "threads": torch.get_num_threads(), "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
