"""ALM, ULD and SFT at analytic edge cases (SPEC §5.2 tests)."""

import math

import pytest
import torch

from zett.losses import alm_loss, binary_f_divergence, chunk_sums, get_loss, log1mexp, token_stats
from zett.losses.stats import chunk_last


def make_batch(seed=0, b=2, lt=9, ls=12, vt=11, vs=7):
    g = torch.Generator().manual_seed(seed)
    t_chunk = torch.tensor([[-1, 0, 0, 1, 2, 2, 3, 4, -1], [-1, 0, 1, 1, 2, 3, -1, -1, -1]])
    s_chunk = torch.tensor([[-1, 0, 1, 1, 1, 2, 3, 3, 4, -1, -1, -1], [-1, 0, 0, 1, 2, 3, 3, -1, -1, -1, -1, -1]])
    batch = {
        "teacher_chunk_id": t_chunk,
        "student_chunk_id": s_chunk,
        "num_chunks": torch.tensor([5, 4]),
        "student_attention_mask": torch.ones(b, ls, dtype=torch.long),
    }
    t_logits = torch.randn(b, lt, vt, generator=g) * 2
    s_logits = torch.randn(b, ls, vs, generator=g) * 2
    t_ids = torch.randint(0, vt, (b, lt), generator=g)
    s_ids = torch.randint(0, vs, (b, ls), generator=g)
    t_bnd = torch.zeros(vt, dtype=torch.bool)
    t_bnd[:3] = True
    s_bnd = torch.zeros(vs, dtype=torch.bool)
    s_bnd[:2] = True
    return batch, (t_logits, t_ids, t_bnd), (s_logits, s_ids, s_bnd)


def test_identical_teacher_and_student_is_minimum_with_zero_gradient():
    batch, _, _ = make_batch()
    lp = torch.rand(2, 9) * -3
    lp[:, 0] = 0
    bnd = torch.rand(2, 9) * -2
    teacher = {"token_logprobs": lp, "boundary_logprobs": bnd}
    s_lp = lp.clone().requires_grad_(True)
    s_bnd = bnd.clone().requires_grad_(True)
    student = {"token_logprobs": s_lp, "boundary_logprobs": s_bnd}
    same = dict(batch, student_chunk_id=batch["teacher_chunk_id"])
    loss = alm_loss(teacher, student, same)
    loss.backward()
    assert abs(loss.item()) < 1e-6
    assert s_lp.grad.abs().max() < 1e-6 and s_bnd.grad.abs().max() < 1e-6
    # a perturbed student costs more, and gradient steps bring the loss down
    s_lp2 = (lp - 0.5 * torch.rand(2, 9)).clamp(max=0).requires_grad_(True)
    opt = torch.optim.SGD([s_lp2], lr=500.0)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        value = alm_loss(teacher, {"token_logprobs": s_lp2, "boundary_logprobs": bnd}, same)
        value.backward()
        opt.step()
        losses.append(value.item())
    assert losses[0] > 1e-5 and losses[-1] < 0.5 * losses[0]


def test_binary_kl_hand_computed():
    t, s = math.log(0.5), math.log(0.25)
    got = binary_f_divergence(torch.tensor([t]), torch.tensor([s]), tau=1.0, eps=0.0).item()
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert got == pytest.approx(expected, rel=1e-6)
    tvd = binary_f_divergence(torch.tensor([t]), torch.tensor([s]), tau=1.0, eps=0.0, kind="tvd").item()
    assert tvd == pytest.approx(0.25)
    assert binary_f_divergence(torch.tensor([t]), torch.tensor([s]), kind="abs").item() == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="unknown divergence"):
        binary_f_divergence(torch.tensor([t]), torch.tensor([s]), kind="js")


def test_alm_hand_computed_with_merging():
    # one sequence, 2 chunks of one token each; teacher boundary mass after chunk 0 is 0.05 < θ: merged
    batch = {
        "teacher_chunk_id": torch.tensor([[-1, 0, 1]]),
        "student_chunk_id": torch.tensor([[-1, 0, 1]]),
        "num_chunks": torch.tensor([2]),
    }
    t = {
        "token_logprobs": torch.tensor([[0.0, math.log(0.5), math.log(0.4)]]),
        "boundary_logprobs": torch.tensor([[0.0, math.log(0.05), math.log(0.9)]]),
    }
    s = {
        "token_logprobs": torch.tensor([[0.0, math.log(0.3), math.log(0.2)]]),
        "boundary_logprobs": torch.tensor([[0.0, math.log(0.5), math.log(0.6)]]),
    }
    lt = math.log(0.5) + math.log(0.4) + math.log(0.9)  # boundary only at the group's last member
    ls = math.log(0.3) + math.log(0.2) + math.log(0.6)
    expected = binary_f_divergence(torch.tensor([lt]), torch.tensor([ls]), tau=10.0).item()
    assert alm_loss(t, s, batch, tau=10.0).item() == pytest.approx(expected, rel=1e-5)
    # without merging: two groups, each with its own boundary term
    e0 = binary_f_divergence(torch.tensor([math.log(0.5 * 0.05)]), torch.tensor([math.log(0.3 * 0.5)]), tau=10.0)
    e1 = binary_f_divergence(torch.tensor([math.log(0.4 * 0.9)]), torch.tensor([math.log(0.2 * 0.6)]), tau=10.0)
    assert alm_loss(t, s, batch, tau=10.0, merge=False).item() == pytest.approx((e0 + e1).item() / 2, rel=1e-5)
    # the global normaliser divides the sum instead of the local count
    assert alm_loss(t, s, batch, tau=10.0, merge=False, normalizer=4).item() == pytest.approx(
        (e0 + e1).item() / 4, rel=1e-5
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("tau", [1.0, 100.0, 1e4])
def test_stable_at_extremes(dtype, tau):
    batch = {
        "teacher_chunk_id": torch.tensor([[-1, 0, 1, 2, 3]]),
        "student_chunk_id": torch.tensor([[-1, 0, 1, 2, 3]]),
        "num_chunks": torch.tensor([4]),
    }
    t_lp = torch.tensor([[0.0, -1e-9, -1e4, -30.0, -1e-3]], dtype=dtype)
    s_lp = torch.tensor([[0.0, -60.0, -1e-9, -1e-7, -1e4]], dtype=dtype).requires_grad_(True)
    bnd = torch.tensor([[0.0, -1e-9, -50.0, -0.1, -1e-9]], dtype=dtype)
    for kind in ("kl", "tvd", "abs"):
        loss = alm_loss(
            {"token_logprobs": t_lp, "boundary_logprobs": bnd},
            {"token_logprobs": s_lp, "boundary_logprobs": bnd},
            batch,
            tau=tau,
            divergence=kind,
        )
        (grad,) = torch.autograd.grad(loss, s_lp)
        assert torch.isfinite(loss) and torch.isfinite(grad).all(), (kind, tau, dtype)


def test_log1mexp():
    x = torch.tensor([-1e-12, -1e-6, -0.5, -0.7, -1.0, -50.0], dtype=torch.float64)
    assert torch.allclose(log1mexp(x), torch.log(1 - torch.exp(x)), rtol=1e-6)


def test_token_stats_and_chunk_helpers():
    batch, (t_logits, t_ids, t_bnd), _ = make_batch()
    stats = token_stats(t_logits, t_ids, t_bnd, block=5)
    lp = t_logits.log_softmax(-1)
    assert torch.allclose(stats["token_logprobs"][:, 1:], lp[:, :-1].gather(2, t_ids[:, 1:, None])[..., 0], atol=1e-5)
    assert (stats["token_logprobs"][:, 0] == 0).all()
    assert torch.allclose(stats["boundary_logprobs"], lp[..., t_bnd].logsumexp(-1), atol=1e-5)
    v = torch.arange(9.0).expand(2, 9)
    sums = chunk_sums(v, batch["teacher_chunk_id"], 5)
    assert sums[0].tolist() == [3.0, 3.0, 9.0, 6.0, 7.0]
    assert chunk_last(v, batch["teacher_chunk_id"], 5)[0].tolist() == [2.0, 3.0, 5.0, 6.0, 7.0]


def test_alm_on_logits_end_to_end_gradients_flow():
    batch, (t_logits, t_ids, t_bnd), (s_logits, s_ids, s_bnd) = make_batch()
    s_logits.requires_grad_(True)
    teacher = token_stats(t_logits, t_ids, t_bnd)
    student = token_stats(s_logits, s_ids, s_bnd)
    loss = get_loss("alm")(teacher, student, batch, hidden_weight=0.0)
    loss.backward()
    assert loss.item() > 0 and s_logits.grad.abs().sum() > 0


def test_hidden_state_term():
    batch, _, _ = make_batch()
    zeros = {"token_logprobs": torch.zeros(2, 9), "boundary_logprobs": torch.zeros(2, 9)}
    h_t = torch.randn(2, 9, 4)
    t = dict(zeros, hidden=h_t)
    same_batch = dict(batch, student_chunk_id=batch["teacher_chunk_id"])
    assert alm_loss(t, dict(zeros, hidden=h_t.clone()), same_batch, hidden_weight=1.0).item() == pytest.approx(
        0, abs=1e-6
    )
    assert alm_loss(t, dict(zeros, hidden=h_t + 1), same_batch, hidden_weight=1.0).item() > 0.01
    with pytest.raises(ValueError, match="hidden_proj"):
        alm_loss(t, dict(zeros, hidden=torch.randn(2, 9, 3)), same_batch, hidden_weight=1.0)
    proj = torch.nn.Linear(3, 4)
    assert torch.isfinite(
        alm_loss(t, dict(zeros, hidden=torch.randn(2, 9, 3)), same_batch, hidden_weight=1.0, hidden_proj=proj)
    )


def test_uld_and_sft():
    batch, (t_logits, t_ids, t_bnd), (s_logits, s_ids, s_bnd) = make_batch()
    same = dict(batch, student_chunk_id=batch["teacher_chunk_id"])
    assert get_loss("uld")({"logits": t_logits}, {"logits": t_logits.clone()}, same).item() == pytest.approx(
        0, abs=1e-6
    )
    # ULD compares sorted probabilities: a permuted vocabulary costs nothing
    perm = t_logits[..., torch.randperm(t_logits.shape[-1])]
    assert get_loss("uld")({"logits": t_logits}, {"logits": perm}, same).item() == pytest.approx(0, abs=1e-6)
    assert get_loss("uld")({"logits": t_logits}, {"logits": s_logits}, batch).item() > 0
    stats = token_stats(s_logits, s_ids, s_bnd)
    manual = torch.nn.functional.cross_entropy(s_logits[:, :-1].reshape(-1, 7), s_ids[:, 1:].reshape(-1))
    assert get_loss("sft")(None, stats, batch).item() == pytest.approx(manual.item(), rel=1e-5)
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("kd")


def test_stats_from_hidden_states_equal_stats_from_full_logits():
    """The teacher's blockwise path (logits a block of positions at a time) gives the same statistics."""
    from conftest import tiny_llama

    from zett.losses.stats import hidden_token_stats
    from zett.training.teacher import output_projection

    model = tiny_llama(100, seed=7)
    ids = torch.randint(0, 100, (2, 9), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    boundary = torch.zeros(100, dtype=torch.bool)
    boundary[:10] = True
    with torch.no_grad():
        full = token_stats(model(input_ids=ids, attention_mask=mask).logits, ids, boundary, mask)
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
        blocks = hidden_token_stats(hidden, output_projection(model), ids, boundary, mask, block=5)
    for name in full:
        assert torch.allclose(full[name], blocks[name], atol=1e-6), name


def test_lexical_loss_is_registered_and_hand_computed():
    """Σ‖pred − E[id]‖² / n / mean‖E‖ over predicted rows with a single base id (SPEC §4.3)."""
    table = torch.tensor([[3.0, 4.0], [0.0, 5.0], [6.0, 8.0]])  # row norms 5, 5, 10: mean 20/3
    rows = torch.tensor([[3.0, 5.0], [0.0, 0.0], [1.0, 1.0], [9.0, 9.0]])
    batch = {"lexical_ids": torch.tensor([0, 1, -1, 2]), "predict": torch.tensor([True, True, True, False])}
    value = get_loss("lexical")(None, {"rows": rows, "table": table}, batch)
    # used rows: 0 (vs E[0]: 1) and 1 (vs E[1]: 25); row 2 has no single base id, row 3 is not predicted
    assert value.item() == pytest.approx((1 + 25) / 2 / (20 / 3), rel=1e-6)
    none = {"lexical_ids": torch.tensor([-1, -1, -1, -1]), "predict": batch["predict"]}
    assert get_loss("lexical")(None, {"rows": rows, "table": table}, none).item() == 0.0
