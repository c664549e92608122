"""PyTorch reference for bench/torch.bench.ts: the same BERT-style encoder (post-LN, exact GELU,
dropout 0.1, CLS pooling + L2 normalisation), the same IR batch (queries x passages, every row at
full length) and the same loss (InfoNCE over query-passage cosine scores, temperature 0.05, one
positive per query) with an AdamW step, written the way transformers' eager BERT computes it.

Prints one JSON line: {"train_step_s": ..., "encode_tokens_per_s": ..., "threads": ..., "torch": ...}.
Usage: python3 bench/torch_reference.py --layers 6 --hidden 384 --heads 12 --intermediate 1536 \
         --queries 16 --query-len 64 --passages-per-query 5 --passage-len 128 --steps 3 --threads 2
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
import torch.utils.checkpoint

# Set from the command line: fused scaled-dot-product attention (torch >= 2.0) and per-layer checkpointing.
SDPA = False
CHECKPOINT = False


class Layer(torch.nn.Module):
    def __init__(self, hidden, heads, intermediate, dropout):
        super().__init__()
        self.heads = heads
        self.q = torch.nn.Linear(hidden, hidden)
        self.k = torch.nn.Linear(hidden, hidden)
        self.v = torch.nn.Linear(hidden, hidden)
        self.o = torch.nn.Linear(hidden, hidden)
        self.ln1 = torch.nn.LayerNorm(hidden, eps=1e-12)
        self.inter = torch.nn.Linear(hidden, intermediate)
        self.out = torch.nn.Linear(intermediate, hidden)
        self.ln2 = torch.nn.LayerNorm(hidden, eps=1e-12)
        self.p = dropout

    def forward(self, h, mask_bias):
        b, t, d = h.shape
        dh = d // self.heads

        def heads(x):
            return x.view(b, t, self.heads, dh).transpose(1, 2)

        q, k, v = heads(self.q(h)), heads(self.k(h)), heads(self.v(h))
        if SDPA:
            # PyTorch 2.x fused attention (flash / memory-efficient / math, its own choice), with the mask.
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask_bias.to(q.dtype), dropout_p=self.p if self.training else 0.0)
        else:
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh) + mask_bias
            probs = F.dropout(scores.softmax(-1), self.p, self.training)
            ctx = torch.matmul(probs, v)
        ctx = ctx.transpose(1, 2).reshape(b, t, d)
        a = self.ln1(F.dropout(self.o(ctx), self.p, self.training) + h)
        f = F.dropout(self.out(F.gelu(self.inter(a))), self.p, self.training)
        return self.ln2(f + a)


class Encoder(torch.nn.Module):
    def __init__(self, vocab, layers, hidden, heads, intermediate, dropout=0.1):
        super().__init__()
        self.word = torch.nn.Embedding(vocab, hidden)
        self.pos = torch.nn.Embedding(512, hidden)
        self.tok_type = torch.nn.Embedding(2, hidden)
        self.ln = torch.nn.LayerNorm(hidden, eps=1e-12)
        self.layers = torch.nn.ModuleList([Layer(hidden, heads, intermediate, dropout) for _ in range(layers)])
        self.p = dropout
        for m in self.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Embedding)):
                torch.nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids, mask):
        b, t = ids.shape
        pos = torch.arange(t, device=ids.device).unsqueeze(0)
        h = self.ln(self.word(ids) + self.pos(pos) + self.tok_type(torch.zeros_like(ids)))
        h = F.dropout(h, self.p, self.training)
        mask_bias = ((1.0 - mask.float()) * -1e9).view(b, 1, 1, t)
        for layer in self.layers:
            if CHECKPOINT and self.training:
                h = torch.utils.checkpoint.checkpoint(layer, h, mask_bias, use_reentrant=False)
            else:
                h = layer(h, mask_bias)
        return F.normalize(h[:, 0], dim=-1)


def reset_peak_rss():
    """Resets the resident-memory high-water mark (Linux), as the bench does for codiemb."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss():
    """VmHWM in bytes: the peak resident memory since the last reset."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def main():
    ap = argparse.ArgumentParser()
    for name, default in [("layers", 6), ("hidden", 384), ("heads", 12), ("intermediate", 1536), ("queries", 16),
                          ("query-len", 64), ("passages-per-query", 5), ("passage-len", 128), ("steps", 3),
                          ("threads", 0), ("vocab", 30522), ("encode-batch", 32), ("encode-batches", 2), ("checkpoint", 0),
                          ("profile", 0)]:
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"])
    ap.add_argument("--attention", default="auto", choices=["auto", "sdpa", "eager"],
                    help="auto: F.scaled_dot_product_attention where this torch has it (>= 2.0), else eager")
    a = ap.parse_args()
    global SDPA, CHECKPOINT
    has_sdpa = hasattr(F, "scaled_dot_product_attention")
    if a.attention == "sdpa" and not has_sdpa:
        raise SystemExit(f"--attention sdpa needs torch >= 2.0 (this is {torch.__version__})")
    SDPA = a.attention == "sdpa" or (a.attention == "auto" and has_sdpa)
    CHECKPOINT = a.checkpoint == 1
    dev = torch.device(a.device)
    torch.backends.cuda.matmul.allow_tf32 = a.precision == "tf32"
    torch.backends.cudnn.allow_tf32 = a.precision == "tf32"
    autocast = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if a.precision == "bf16" else (lambda: torch.autocast("cpu", enabled=False))

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Encoder(a.vocab, a.layers, a.hidden, a.heads, a.intermediate).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01, eps=1e-6)
    nq, npass = a.queries, a.queries * a.passages_per_query
    q_ids = torch.randint(1000, a.vocab, (nq, a.query_len), device=dev)
    p_ids = torch.randint(1000, a.vocab, (npass, a.passage_len), device=dev)
    q_mask = torch.ones_like(q_ids)
    p_mask = torch.ones_like(p_ids)
    labels = torch.arange(nq, device=dev) * a.passages_per_query

    def step():
        model.train()
        opt.zero_grad(set_to_none=True)
        with autocast():
            q = model(q_ids, q_mask)
            p = model(p_ids, p_mask)
        loss = F.cross_entropy(q.float() @ p.float().T / 0.05, labels)
        loss.backward()
        opt.step()
        sync()

    step()  # warm-up
    peak_reset = reset_peak_rss()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    train_s = times[len(times) // 2]
    train_peak = peak_rss() if peak_reset else None
    if a.profile:
        # Where one step's time goes, by ATen operator (self time: each op's own time, not its callees'),
        # for comparison with codiemb's per-kernel profile (CODIEMB_BENCH_PROFILE=1). On stderr.
        with torch.autograd.profiler.profile() as prof:
            step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18), file=sys.stderr)
    cuda_peaks = (torch.cuda.max_memory_allocated(dev), torch.cuda.max_memory_reserved(dev)) if dev.type == "cuda" else (None, None)

    model.eval()
    enc_ids = torch.randint(1000, a.vocab, (a.encode_batch, a.passage_len), device=dev)
    enc_mask = torch.ones_like(enc_ids)
    with torch.no_grad(), autocast():
        model(enc_ids, enc_mask).cpu()
        t0 = time.perf_counter()
        for _ in range(a.encode_batches):
            model(enc_ids, enc_mask).cpu()
        enc_s = time.perf_counter() - t0
    print(json.dumps({
        "train_step_s": train_s,
        "train_tokens_per_s": (nq * a.query_len + npass * a.passage_len) / train_s,
        "encode_tokens_per_s": a.encode_batch * a.passage_len * a.encode_batches / enc_s,
        "train_peak_rss_bytes": train_peak,
        "cuda_peak_allocated_bytes": cuda_peaks[0],
        "cuda_peak_reserved_bytes": cuda_peaks[1],
        "attention": "sdpa" if SDPA else "eager",
        "checkpoint": CHECKPOINT,
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
