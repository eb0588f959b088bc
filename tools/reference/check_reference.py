"""Sanity checks of the PyTorch reference and of the committed fixtures.

Run from the repository root:  /usr/bin/python3 tools/reference/check_reference.py

Each check compares the vectorized reference against an identity the spec implies or against a slow,
explicitly looped re-computation; the last check re-runs every fixture from its own files.
"""

import glob
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moas_reference as R  # noqa: E402
from make_fixtures import OUT_DIR, randomize_for_fixture, read_safetensors  # noqa: E402

torch.set_default_dtype(torch.float64)
EXACT = 1e-12
CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def close(a, b, tol=EXACT, what=""):
    err = (a - b).abs().max().item() if a.numel() else 0.0
    assert err <= tol * max(1.0, b.abs().max().item()), f"{what}: max abs err {err}"


def cfg(**kw):
    base = dict(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_embd=16, bias=True, dropout=0.0)
    base.update(kw)
    return R.GPTConfig(**base)


def random_model(c, seed=0):
    torch.manual_seed(seed)
    m = R.GPT(c)
    randomize_for_fixture(m, torch.Generator().manual_seed(seed))
    return m


def rand_x(seed=1, B=2, T=8, C=16):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, C, generator=g)


def naive_attention(q, k, v):
    """One head, one batch row, explicit loops. q: [T, d], k, v: [T, d] -> [T, d]."""
    T, d = q.shape
    out = torch.zeros(T, d)
    for t in range(T):
        scores = torch.stack([(q[t] * k[s]).sum() / math.sqrt(d) for s in range(t + 1)])
        probs = torch.exp(scores - scores.max())
        probs = probs / probs.sum()
        for s in range(t + 1):
            out[t] += probs[s] * v[s]
    return out


# ----------------------------------------------------------------------------------------------

@check
def gqa_with_all_kv_heads_equals_mha():
    c = cfg(n_kv_head=4)
    gqa, mha = R.GQA(c), R.MHA(c)
    with torch.no_grad():
        mha.c_attn.weight.copy_(torch.cat([gqa.q_proj.weight, gqa.k_proj.weight, gqa.v_proj.weight]))
        mha.c_attn.bias.copy_(torch.cat([gqa.q_proj.bias, gqa.k_proj.bias, gqa.v_proj.bias]))
        mha.c_proj.load_state_dict(gqa.c_proj.state_dict())
        for p in list(gqa.parameters()) + list(mha.parameters()):
            p.mul_(20.0)  # large enough that attention is far from uniform
    x = rand_x()
    close(gqa(x), mha(x), what="gqa(G=H) vs mha")


@check
def gqa_and_mqa_match_looped_heads():
    for G in (2, 1):
        c = cfg(n_kv_head=G)
        mod = R.GQA(c) if G == 2 else R.MQA(c)
        with torch.no_grad():
            for p in mod.parameters():
                p.mul_(20.0)
        x = rand_x(2)
        H, d = 4, 4
        q = mod.q_proj(x).view(2, 8, H, d)
        k = mod.k_proj(x).view(2, 8, G, d)
        v = mod.v_proj(x).view(2, 8, G, d)
        heads = torch.zeros(2, 8, H, d)
        for b in range(2):
            for h in range(H):
                kv = h // (H // G)
                heads[b, :, h] = naive_attention(q[b, :, h], k[b, :, kv], v[b, :, kv])
        close(mod(x), mod.c_proj(heads.reshape(2, 8, H * d)), what=f"G={G} looped")


@check
def static_moas_is_mean_of_branches():
    c = cfg(n_kv_head=2)
    st = R.StaticMoAS(c)
    mha, gqa, mqa = R.MHA(c), R.GQA(c), R.MQA(c)
    mha.load_state_dict(st.mha.state_dict())
    gqa.load_state_dict(st.gqa.state_dict())
    mqa.load_state_dict(st.mqa.state_dict())
    x = rand_x(3)
    y, bal, gates = st(x)
    close(y, (mha(x) + gqa(x) + mqa(x)) / 3, what="static-moas")
    assert bal.item() == 0.0 and gates is None


@check
def moas_with_zero_router_equals_static_moas():
    c_moas = cfg(attention="moas", n_kv_head=2)
    c_static = cfg(attention="static-moas", n_kv_head=2)
    moas = random_model(c_moas, seed=5)
    with torch.no_grad():
        for blk in moas.transformer.h:
            blk.attn.router[2].weight.zero_()
    static = R.GPT(c_static)
    sd = {k: v for k, v in moas.state_dict().items() if ".router." not in k}
    static.load_state_dict(sd)
    idx = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(0))
    tgt = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(1))
    lm, cm, bm = moas(idx, tgt)
    ls, cs, bs = static(idx, tgt)
    close(lm, ls, what="logits")
    close(cm, cs, what="ce")
    assert abs(bm.item()) < 1e-30 and bs.item() == 0.0
    for g in moas.gates:
        close(g, torch.full_like(g, 1 / 3), what="uniform gates")


@check
def moas_mixture_and_balance_match_loops():
    c = cfg(attention="moas", n_kv_head=2)
    torch.manual_seed(11)
    att = R.MoAS(c)
    with torch.no_grad():
        for p in att.router.parameters():
            p.normal_(0, 1.0)
    x = rand_x(12)
    y, bal, p = att(x)
    O = [att.mha(x), att.gqa(x), att.mqa(x)]
    h = F.gelu(x @ att.router[0].weight.t()) @ att.router[2].weight.t()
    close(p, torch.softmax(h, dim=-1), what="gates")
    close(y, sum(p[..., s:s + 1] * O[s] for s in range(3)), what="mixture")
    means = [sum(p[b, t, s].item() for b in range(2) for t in range(8)) / 16 for s in range(3)]
    expect = sum((m - 1 / 3) ** 2 for m in means) / 3
    assert abs(bal.item() - expect) < 1e-14 and expect > 1e-4, (bal.item(), expect)


@check
def moas_gate_dropout_only_in_training():
    c0 = cfg(attention="moas", n_kv_head=2, dropout=0.0, gate_dropout=0.0)
    c1 = cfg(attention="moas", n_kv_head=2, dropout=0.0, gate_dropout=0.5)
    m0, m1 = random_model(c0, 6), R.GPT(c1)
    m1.load_state_dict(m0.state_dict())
    m1.eval()
    idx = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(0))
    close(m0(idx)[0], m1(idx)[0], what="eval ignores gate dropout")
    m1.train()
    torch.manual_seed(0)
    l1, _, _ = m1(idx)
    assert (l1 - m0(idx)[0]).abs().max() > 1e-6, "gate dropout had no effect in training"
    # layer 0 sees the same input, so its (pre-dropout) gates, which the balance loss uses, agree
    close(m1.gates[0], m0.gates[0], what="gates before gate dropout")


@check
def moas_topk_matches_looped_selection():
    for k in (1, 2):
        c = cfg(attention="moas-topk", moas_top_k=k, n_kv_head=2)
        torch.manual_seed(7)
        att = R.MoASTopK(c)
        with torch.no_grad():
            for p in att.router.parameters():
                p.normal_(0, 1.0)
        x = rand_x(4)
        y, bal, p = att(x)
        O = [att.mha(x), att.gqa(x), att.mqa(x)]
        expect = torch.zeros_like(y)
        counts = [0, 0, 0]
        for b in range(2):
            for t in range(8):
                g = [p[b, t, s].item() for s in range(3)]
                chosen = sorted(range(3), key=lambda s: (-g[s], s))[:k]
                for s in chosen:
                    counts[s] += 1
                    w = p[b, t, s] if k == 1 else p[b, t, s] / sum(p[b, t, j] for j in chosen)
                    expect[b, t] += w * O[s][b, t]
        close(y, expect, what=f"moas-topk k={k}")
        P = [p[..., s].mean().item() for s in range(3)]
        sw = 3 * sum(counts[s] / (16 * k) * P[s] for s in range(3))
        assert abs(bal.item() - sw) < 1e-12, (bal.item(), sw)


@check
def moas_topk_ties_pick_lowest_index_and_unchosen_get_no_gradient():
    for k in (1, 2):
        c = cfg(attention="moas-topk", moas_top_k=k, n_kv_head=2)
        att = R.MoASTopK(c)
        with torch.no_grad():
            att.router[2].weight.zero_()  # all gates 1/3: a three-way tie
        x = rand_x(5)
        y, bal, p = att(x)
        expect = att.mha(x) / 3 if k == 1 else (att.mha(x) + att.gqa(x)) / 2
        close(y, expect, what=f"tie k={k}")
        # f = [1, 0, 0] (k=1) or [1/2, 1/2, 0] (k=2), P = 1/3 -> S * sum f P = 1
        assert abs(bal.item() - 1.0) < 1e-12
        y.sum().backward()
        for n, prm in att.mqa.named_parameters():
            assert prm.grad is not None and prm.grad.abs().max().item() == 0.0, n


@check
def switch_loss_is_one_when_uniform():
    S, N = 4, 8
    p = torch.full((N, S), 1.0 / S)
    chosen = torch.arange(N).remainder(S).view(N, 1)
    assert abs(R.switch_loss(p, chosen, S).item() - 1.0) < 1e-15
    chosen2 = torch.stack([torch.arange(N) % S, (torch.arange(N) + 1) % S], dim=1)
    assert abs(R.switch_loss(p, chosen2, S).item() - 1.0) < 1e-15


@check
def top_k_ties_lowest_index_first():
    p = torch.tensor([[0.2, 0.4, 0.4, 0.0], [0.25, 0.25, 0.25, 0.25]])
    assert R.top_k_desc(p, 2).tolist() == [[1, 2], [0, 1]]
    assert R.top_k_desc(p, 3).tolist() == [[1, 2, 0], [0, 1, 2]]


def naive_gqe(att, x):
    """Slow GQE re-computation straight from the spec text; returns the c_proj input [B, T, slots*d]."""
    B, T, C = x.shape
    G, M, k, d = att.G, att.M, att.k, att.d
    q = att.q_proj(x)  # [B, T, H*d]
    kk = att.k_proj(x)
    vv = att.v_proj(x)
    logits = att.router(x)  # [B, T, G*M]
    rows = []
    for b in range(B):
        # per (g, r, t): expert index and gate
        sel = {}
        for t in range(T):
            for g in range(G):
                lg = logits[b, t, g * M:(g + 1) * M]
                pg = torch.exp(lg - lg.max())
                pg = pg / pg.sum()
                order = sorted(range(M), key=lambda m: (-pg[m].item(), m))[:k]
                for r, m in enumerate(order):
                    sel[(g, r, t)] = (m, pg[m])
        # attention for every slot: query of expert e at each t, KV head g
        o = {}
        for g in range(G):
            kh = kk[b, :, g * d:(g + 1) * d]
            vh = vv[b, :, g * d:(g + 1) * d]
            for r in range(k):
                for t in range(T):
                    m = sel[(g, r, t)][0]
                    h = g * M + m
                    qt = q[b, t, h * d:(h + 1) * d]
                    sc = torch.stack([(qt * kh[s]).sum() / math.sqrt(d) for s in range(t + 1)])
                    pr = torch.softmax(sc, dim=0)
                    o[(g, r, t)] = sum(pr[s] * vh[s] for s in range(t + 1))
        if att.shared:
            qs = att.shared_q_proj(x)[b]
            if att.own_kv:
                ks, vs = att.shared_k_proj(x)[b], att.shared_v_proj(x)[b]
            else:
                ks, vs = kk[b, :, 0:d], vv[b, :, 0:d]
            o_sh = naive_attention(qs, ks, vs)
        row = []
        for t in range(T):
            parts = []
            for g in range(G):
                for r in range(k):
                    og = o[(g, r, t)]
                    parts.append(og * sel[(g, r, t)][1] if att.scale_by_gate else og)
            if att.weighted_slot:
                tot = sum(sel[(g, r, t)][1] for g in range(G) for r in range(k))
                parts.append(sum(sel[(g, r, t)][1] / tot * o[(g, r, t)] for g in range(G) for r in range(k)))
            if att.shared:
                parts.append(o_sh[t])
            row.append(torch.cat(parts))
        rows.append(torch.stack(row))
    return torch.stack(rows)


@check
def gqe_matches_looped_spec():
    cases = [
        dict(attention=a, n_head=8, n_kv_head=2, gqe_top_k=k, gqe_shared_kv=kv)
        for a in R.GQE.MODES for k in (1, 2) for kv in ("kv0", "own")
    ] + [dict(attention="gqe", n_head=8, n_kv_head=2, gqe_top_k=4)]
    for i, kw in enumerate(cases):
        c = cfg(**kw)
        torch.manual_seed(10 + i)
        att = R.GQE(c, mode=c.attention)
        with torch.no_grad():
            for p in att.parameters():
                p.mul_(10.0)
        x = rand_x(6 + i)
        y, bal, p = att(x)
        inp = naive_gqe(att, x)
        slots = c.gqe_top_k * 2 + int(att.weighted_slot) + int(att.shared)
        assert att.c_proj.weight.shape == (16, slots * 2), (kw, att.c_proj.weight.shape)
        close(y, att.c_proj(inp), what=str(kw))
        # balance: Switch loss per group averaged over groups
        e = R.top_k_desc(p, c.gqe_top_k)
        per_group = []
        for g in range(2):
            cnt = torch.zeros(4)
            for b in range(2):
                for t in range(8):
                    for r in range(c.gqe_top_k):
                        cnt[e[b, t, g, r]] += 1
            f = cnt / (16 * c.gqe_top_k)
            per_group.append(4 * (f * p[:, :, g].mean(dim=(0, 1))).sum())
        assert abs(bal.item() - (sum(per_group) / 2).item()) < 1e-12, kw


@check
def gqe_with_one_expert_per_group_is_mha():
    # M = 1 (G = H), k = 1, hard-only: the hard slots are exactly the MHA heads; zero the shared slot
    c = cfg(attention="gqe-hard-only", n_head=4, n_kv_head=4, gqe_top_k=1)
    att = R.GQE(c, mode="gqe-hard-only")
    mha = R.MHA(c)
    with torch.no_grad():
        for p in att.parameters():
            p.mul_(10.0)
        mha.c_attn.weight.copy_(torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]))
        mha.c_attn.bias.copy_(torch.cat([att.q_proj.bias, att.k_proj.bias, att.v_proj.bias]))
        mha.c_proj.weight.copy_(att.c_proj.weight[:, :16])
        mha.c_proj.bias.copy_(att.c_proj.bias)
        att.c_proj.weight[:, 16:].zero_()
    x = rand_x(8)
    y, bal, p = att(x)
    close(y, mha(x), what="gqe M=1 vs mha")
    assert torch.all(p == 1.0)
    assert abs(bal.item() - 1.0) < 1e-12  # M = 1: f = P = 1, S = 1


@check
def gqe_hard_only_router_learns_only_from_balance():
    c = cfg(attention="gqe-hard-only", n_head=8, n_kv_head=2, gqe_top_k=2)
    m = random_model(c, 9)
    idx = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(0))
    _, ce, _ = m(idx, idx)
    ce.backward()
    for n, prm in m.named_parameters():
        if ".router." in n:
            assert prm.grad is None or prm.grad.abs().max().item() == 0.0, n


@check
def spec_init_scales():
    c = cfg(n_layer=3, n_embd=64, attention="moas", bias=True, n_kv_head=2)
    torch.manual_seed(0)
    m = R.GPT(c)
    for n, prm in m.named_parameters():
        s = prm.std().item()
        if n.endswith("c_proj.weight"):
            assert abs(s - 0.02 / math.sqrt(6)) < 0.002, (n, s)
        elif n.endswith(".bias"):
            assert torch.all(prm == 0), n
        elif ".ln_" in n or "ln_f" in n:
            assert torch.all(prm == 1), n
        else:
            assert abs(s - 0.02) < 0.004, (n, s)


SPEC_NAMES = {
    "mha": ["c_attn.weight", "c_proj.weight"],
    "gqa": ["q_proj.weight", "k_proj.weight", "v_proj.weight", "c_proj.weight"],
}


def expected_names(c):
    L = c.n_layer
    names = ["transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight"]
    if c.bias:
        names.append("transformer.ln_f.bias")
    a = c.attention
    if a == "mha":
        attn = list(SPEC_NAMES["mha"])
    elif a in ("gqa", "mqa"):
        attn = list(SPEC_NAMES["gqa"])
    elif a in ("static-moas", "moas", "moas-topk"):
        attn = [f"mha.{n}" for n in SPEC_NAMES["mha"]] + [f"{s}.{n}" for s in ("gqa", "mqa") for n in SPEC_NAMES["gqa"]]
        if a != "static-moas":
            attn += ["router.0.weight", "router.2.weight"]  # no biases even with bias: true
    else:
        attn = ["q_proj.weight", "k_proj.weight", "v_proj.weight", "router.weight", "c_proj.weight"]
        if a != "gqe-no-shared":
            attn.append("shared_q_proj.weight")
            if c.gqe_shared_kv == "own":
                attn += ["shared_k_proj.weight", "shared_v_proj.weight"]
    if c.bias:
        attn += [n[:-len("weight")] + "bias" for n in attn if "router.0" not in n and "router.2" not in n]
    for i in range(L):
        p = f"transformer.h.{i}."
        names += [p + "ln_1.weight", p + "ln_2.weight", p + "mlp.c_fc.weight", p + "mlp.c_proj.weight"]
        if c.bias:
            names += [p + "ln_1.bias", p + "ln_2.bias", p + "mlp.c_fc.bias", p + "mlp.c_proj.bias"]
        names += [p + "attn." + n for n in attn]
    return set(names)


@check
def fixtures_reproduce_from_their_own_files():
    files = sorted(glob.glob(os.path.join(OUT_DIR, "*.json")))
    assert files, f"no fixtures in {OUT_DIR}; run make_fixtures.py first"
    for jf in files:
        meta = json.load(open(jf))
        t = read_safetensors(jf[:-5] + ".safetensors")
        c = R.GPTConfig(**meta["config"])
        m = R.GPT(c).double()
        params = {k[6:]: v for k, v in t.items() if k.startswith("param.")}
        assert set(params) == set(m.state_dict()) == expected_names(c), meta["case"]
        assert all(v.dtype == torch.float32 for v in params.values())
        m.load_state_dict({k: v.double() for k, v in params.items()})
        logits, ce, bal = m(t["input.idx"], t["input.targets"])
        loss = m.train_loss(ce, bal)
        loss.backward()
        close(logits, t["out.logits"], what=meta["case"] + " logits")
        assert abs(ce.item() - meta["ce_loss"]) < 1e-12
        assert abs(bal.item() - meta["balance_loss"]) < 1e-12
        assert abs(loss.item() - meta["train_loss"]) < 1e-12
        assert abs(meta["train_loss"] - (meta["ce_loss"] + c.balance_weight * meta["balance_loss"])) < 1e-12
        for n, prm in m.named_parameters():
            close(prm.grad, t["grad." + n], what=meta["case"] + " grad " + n)
        for i, g in enumerate(m.gates):
            key = f"out.gates.{i}"
            if g is None:
                assert key not in t
            else:
                close(g, t[key], what=key)
                k = c.moas_top_k if c.attention == "moas-topk" else c.gqe_top_k
                if c.attention in ("moas-topk",) or c.attention.startswith("gqe"):
                    s = torch.sort(g, dim=-1, descending=True).values
                    n_ = min(k + 1, s.size(-1))
                    assert (s[..., : n_ - 1] - s[..., 1:n_]).min() > 1e-6, meta["case"]
                    # routing is non-trivial: more than one expert/branch wins somewhere
                    assert len(torch.unique(g.argmax(-1))) > 1, meta["case"]
    print(f"    ({len(files)} fixtures)")


if __name__ == "__main__":
    for fn in CHECKS:
        fn()
        print(f"ok  {fn.__name__}")
    print(f"all {len(CHECKS)} checks passed")
