"""The LID losses (SUR-LID, CVPR 2025, arXiv 2411.11396) on L2-normalised pooled features.

- isolation: supervised contrastive loss (Khosla et al., NeurIPS 2020, "L_out" form) where every
  (task, class) pair is its own label `task * K + class`;
- distillation: MSE between the normalised features of the student and of a frozen teacher;
- detection: cross-entropy of each sample's own task head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

K = 2
"""Classes per task: 0 = real, 1 = fake."""


def cluster_labels(task: torch.Tensor, y: torch.Tensor, shared_real_label: bool = False) -> torch.Tensor:
    """`task * K + y`; with `shared_real_label` every real sample gets label 0 (one real cluster)."""
    labels = task.long() * K + y.long()
    if shared_real_label:
        labels = torch.where(y.long() == 0, torch.zeros_like(labels), labels)
    return labels


def is_fake_cluster(labels: torch.Tensor) -> torch.Tensor:
    """Which cluster labels belong to a fake class."""
    return labels % K == 1


def supcon_loss(
    f: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1, scale_by_temperature: bool = False
) -> torch.Tensor:
    """Supervised contrastive loss over the rows of `f` (normalised here too).

    For anchor i with positives P(i) (same label, not i): -mean_{p in P(i)} log softmax_{a != i}(f_i.f_a / T)[p],
    averaged over the anchors that have at least one positive; 0 (still differentiable) when none has.
    `scale_by_temperature` multiplies by T, as the official SUR-LID code does.
    """
    f = F.normalize(f, dim=1)
    n = f.shape[0]
    labels = labels.view(-1).to(f.device)
    if n < 2:
        return f.sum() * 0.0
    sim = f @ f.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=f.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    log_prob = F.log_softmax(sim, dim=1)
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = pos.sum(dim=1)
    has_pos = n_pos > 0
    if not bool(has_pos.any()):
        return f.sum() * 0.0
    pos_log_prob = log_prob.masked_fill(~pos, 0.0).sum(dim=1)
    loss = -(pos_log_prob[has_pos] / n_pos[has_pos]).mean()
    return loss * temperature if scale_by_temperature else loss


def distillation_loss(f_student: torch.Tensor, f_teacher: torch.Tensor) -> torch.Tensor:
    """MSE (mean over elements) between normalised student features and normalised, detached teacher features."""
    if f_student.shape[0] == 0:
        return f_student.sum() * 0.0
    return F.mse_loss(F.normalize(f_student, dim=1), F.normalize(f_teacher.detach(), dim=1))


def detection_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (B, 2) logits against real/fake labels (0 when the batch is empty)."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits, y.long().to(logits.device))
