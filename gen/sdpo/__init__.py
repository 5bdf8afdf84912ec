"""S-DPO (Chen et al., NeurIPS 2024): SFT, then softmax DPO with K negatives, over candidate prompts."""

from .loss import dpo_loss, reward_accuracy, sdpo_loss
from .train import SDPOConfig, build_prompt, train_sdpo

__all__ = ["SDPOConfig", "build_prompt", "dpo_loss", "reward_accuracy", "sdpo_loss", "train_sdpo"]
