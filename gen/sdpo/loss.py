"""The softmax-DPO loss of S-DPO (Chen et al., NeurIPS 2024) and the DPO it generalises.

With summed response log-probabilities under the policy and a frozen reference,
``r = log pi(y | x) - log pi_ref(y | x)``, for one chosen response ``w`` and ``K``
rejected ones::

    L = - log sigmoid( - log sum_k exp( beta * (r_k - r_w) ) )

For ``K = 1`` this is exactly DPO, ``- log sigmoid( beta * (r_w - r_1) )``.
"""

from __future__ import annotations

__all__ = ["dpo_loss", "reward_accuracy", "sdpo_loss"]


def sdpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, *, beta: float = 1.0):
    """Mean S-DPO loss over a batch.

    Args:
        policy_chosen, reference_chosen: ``float (B,)`` summed log-probabilities of the chosen response.
        policy_rejected, reference_rejected: ``float (B, K)`` of the ``K`` rejected responses.
        beta: the temperature of the implicit reward.
    """
    import torch
    import torch.nn.functional as F

    chosen = policy_chosen - reference_chosen  # (B,)
    rejected = policy_rejected - reference_rejected  # (B, K)
    margin = torch.logsumexp(beta * (rejected - chosen[:, None]), dim=1)  # log sum_k exp(beta (r_k - r_w))
    return -F.logsigmoid(-margin).mean()


def dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, *, beta: float = 1.0):
    """Mean DPO loss, ``- log sigmoid(beta (r_w - r_l))``, for ``float (B,)`` inputs."""
    import torch.nn.functional as F

    return -F.logsigmoid(beta * ((policy_chosen - reference_chosen) - (policy_rejected - reference_rejected))).mean()


def reward_accuracy(policy_chosen, policy_rejected, reference_chosen, reference_rejected) -> float:
    """Share of samples whose chosen reward beats every rejected one (the reference's logged accuracy)."""
    chosen = policy_chosen - reference_chosen
    rejected = policy_rejected - reference_rejected
    return float((chosen[:, None] > rejected).all(dim=1).float().mean())
