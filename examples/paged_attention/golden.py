"""Golden of paged attention for `python3 -m tmr run` (same cases, argument order and math as the
`tmr run paged_attention` example; see attention_cases.hpp).

    python3 -m tmr run -k build/release/examples/paged_attention/libtmr_paged_attention_plugin.so \
        -g examples/paged_attention/golden.py --all

Arguments: query [B, H, D] bf16, key_cache [blocks, bs, 1, D] bf16, value_cache (same),
block_table [B, max_model_len / bs] int32, context_lens [B] int32, out [B, H, D] float32, then
the scalar scale (float32).
"""

import numpy as np

import tmr

ALL_CASES = {
    "Case1": {"batch": 1, "num_heads": 16, "head_dim": 16, "block_size": 16,
              "context_lens": [33], "max_model_len": 256},
    "Case2": {"batch": 1, "num_heads": 16, "head_dim": 16, "block_size": 16,
              "context_lens": [128], "max_model_len": 256},
    "VarSeq2": {"batch": 2, "num_heads": 16, "head_dim": 16, "block_size": 16,
                "context_lens": [33, 17], "max_model_len": 256},
    "VarSeq4": {"batch": 4, "num_heads": 16, "head_dim": 16, "block_size": 16,
                "context_lens": [33, 64, 128, 15], "max_model_len": 256},
}
DEFAULT_CASE = "Case1"
RTOL = 1e-2
ATOL = 1e-2
__outputs__ = ["out"]

SEED = 42


def generate_inputs(params):
    rng = np.random.default_rng(SEED)
    batch, heads = params["batch"], params["num_heads"]
    dim, bs = params["head_dim"], params["block_size"]
    context_lens = np.asarray(params["context_lens"], dtype=np.int32)
    assert context_lens.size == batch, "context_lens needs one entry per request"
    blocks_per_request = params["max_model_len"] // bs
    # Every request gets room for the longest context, as the reference does.
    total_blocks = batch * int(-(-context_lens.max() // bs))

    query = tmr.bf16(rng.uniform(-0.5, 0.5, (batch, heads, dim)))
    key_cache = tmr.bf16(rng.uniform(-0.5, 0.5, (total_blocks, bs, 1, dim)))
    value_cache = tmr.bf16(rng.uniform(-1.0, 1.0, (total_blocks, bs, 1, dim)))
    # Each request's used blocks are distinct blocks of a shuffled list; entries past a request's
    # context hold random ids that are never read.
    physical = rng.permutation(total_blocks).astype(np.int32)
    block_table = rng.integers(0, total_blocks, (batch, blocks_per_request), dtype=np.int32)
    taken = 0
    for b in range(batch):
        used = int(-(-context_lens[b] // bs))
        block_table[b, :used] = physical[taken:taken + used]
        taken += used
    out = np.zeros((batch, heads, dim), dtype=np.float32)
    return [
        ("query", query),
        ("key_cache", key_cache),
        ("value_cache", value_cache),
        ("block_table", block_table),
        ("context_lens", context_lens),
        ("out", out),
        ("scale", np.float32(1.0)),
    ]


def compute_golden(tensors, params):
    """Online softmax over the KV blocks in float64; P goes through bf16 as the kernel feeds it
    to the PV matmul."""
    query = tensors["query"].to_f32().astype(np.float64)
    keys = tensors["key_cache"].to_f32().astype(np.float64)[:, :, 0, :]
    values = tensors["value_cache"].to_f32().astype(np.float64)[:, :, 0, :]
    block_table, context_lens = tensors["block_table"], tensors["context_lens"]
    scale = float(tensors["scale"])
    bs = params["block_size"]
    out = tensors["out"]
    for b in range(params["batch"]):
        context = int(context_lens[b])
        m = l = o = None
        for bn in range(-(-context // bs)):
            valid = min(bs, context - bn * bs)
            block = int(block_table[b, bn])
            k, v = keys[block, :valid], values[block, :valid]
            s = (query[b] @ k.T) * scale
            m_block = np.maximum(s.max(axis=1), -1e30)
            p = tmr.bf16_to_f32(tmr.f32_to_bf16_bits(np.exp(s - m_block[:, None])))
            p = p.astype(np.float64)
            l_block, o_block = p.sum(axis=1), p @ v
            if m is None:
                m, l, o = m_block, l_block, o_block
            else:
                merged = np.maximum(m, m_block)
                alpha, beta = np.exp(m - merged), np.exp(m_block - merged)
                l = alpha * l + beta * l_block
                o = alpha[:, None] * o + beta[:, None] * o_block
                m = merged
        if m is not None:
            out[b] = o / l[:, None]
