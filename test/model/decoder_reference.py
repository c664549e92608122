"""Independent PyTorch reference of the Llama-family decoders' forward pass (llama, mistral, qwen2).

Used by test/model/decoder-reference.test.ts to check src/model/decoder-family.ts on model types that
have no ../shared fixture. Written from the public definitions of transformers' LlamaModel,
MistralModel and Qwen2Model (no transformers import; it is not installed here), in float64:

  h0 = embed_tokens[ids]
  per layer: h += o_proj(attention(RMSNorm(h)))       q/k/v projections (+ bias for qwen2),
             h += down_proj(silu(gate_proj(x)) * up_proj(x)),  x = RMSNorm(h)
  RMSNorm(x) = weight * x / sqrt(mean(x^2) + rms_norm_eps)
  rotate-half RoPE: inv_freq = theta^(-2i/d), positions 0..T-1 in every row, cos/sin = cat(f, f)
  grouped-query attention: key/value head j serves query heads j*rep .. j*rep + rep - 1 (repeat_kv)
  scores = q k^T / sqrt(head_dim); key j visible to query i iff j <= i (causal), mask[j] = 1, and,
  with a sliding window (mistral always; qwen2 only with use_sliding_window), i - j < sliding_window
  hidden_states = [h0, h1, ..., h_{L-1}, norm(h_L)]  (transformers' output_hidden_states)

Usage: decoder_reference.py MODEL_DIR INPUTS_JSON OUT_JSON, INPUTS_JSON = {"input_ids": [[...]],
"attention_mask": [[...]]}; writes {"hidden_states": [L+1][B][T][H]} with null at padded positions.
"""
import json
import math
import struct
import sys

import numpy as np
import torch

torch.set_default_dtype(torch.float64)


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        assert entry["dtype"] == "F32", entry["dtype"]
        begin, end = entry["data_offsets"]
        values = np.frombuffer(data[base + begin : base + end], dtype="<f4").astype(np.float64)
        out[name] = torch.from_numpy(values.reshape(entry["shape"]).copy())
    return out


def rms_norm(x, weight, eps):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def forward(config, w, ids, mask):
    model_type = config["model_type"]
    hidden = config["hidden_size"]
    heads = config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads", heads)
    head_dim = config.get("head_dim") or hidden // heads
    eps = config["rms_norm_eps"]
    theta = config["rope_theta"]
    bias = model_type == "qwen2"
    window = config.get("sliding_window")
    use_window = isinstance(window, int) and (model_type == "mistral" or config.get("use_sliding_window") is True)

    batch, length = ids.shape
    h = w["embed_tokens.weight"][ids]
    states = [h]
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    visible = (j <= i)[None, :, :] & mask.bool()[:, None, :]
    if use_window:
        visible = visible & ((i - j) < window)[None, :, :]
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    freqs = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    rep = heads // kv_heads

    def proj(x, name, with_bias=False):
        y = x @ w[name + ".weight"].T
        return y + w[name + ".bias"] if with_bias else y

    for layer in range(config["num_hidden_layers"]):
        p = f"layers.{layer}."
        a = rms_norm(h, w[p + "input_layernorm.weight"], eps)
        q = proj(a, p + "self_attn.q_proj", bias).view(batch, length, heads, head_dim).transpose(1, 2)
        k = proj(a, p + "self_attn.k_proj", bias).view(batch, length, kv_heads, head_dim).transpose(1, 2)
        v = proj(a, p + "self_attn.v_proj", bias).view(batch, length, kv_heads, head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(head_dim)
        # A row with no visible key (a left-padded pad query) gets uniform weights, not NaN; such
        # positions are not compared.
        scores = scores.masked_fill(~visible[:, None, :, :], torch.finfo(torch.float64).min)
        attended = torch.softmax(scores, dim=-1) @ v
        h = h + proj(attended.transpose(1, 2).reshape(batch, length, heads * head_dim), p + "self_attn.o_proj")
        m = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
        h = h + proj(torch.nn.functional.silu(proj(m, p + "mlp.gate_proj")) * proj(m, p + "mlp.up_proj"), p + "mlp.down_proj")
        states.append(h)
    states[-1] = rms_norm(h, w["norm.weight"], eps)
    return states


def main():
    model_dir, inputs_path, out_path = sys.argv[1:4]
    with open(f"{model_dir}/config.json") as f:
        config = json.load(f)
    with open(inputs_path) as f:
        inputs = json.load(f)
    w = load_safetensors(f"{model_dir}/model.safetensors")
    ids = torch.tensor(inputs["input_ids"], dtype=torch.long)
    mask = torch.tensor(inputs["attention_mask"], dtype=torch.long)
    states = forward(config, w, ids, mask)
    out = [[[row.tolist() if mask[b, t] else None for t, row in enumerate(s[b])] for b in range(ids.shape[0])] for s in states]
    with open(out_path, "w") as f:
        json.dump({"hidden_states": out}, f)


if __name__ == "__main__":
    main()
