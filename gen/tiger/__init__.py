"""TIGER (Rajput et al., NeurIPS 2023): generative retrieval over semantic IDs.

A T5 encoder-decoder reads a user token and the codes of the last 20 history
items and generates the next item's code under a trie constraint. Modules:

- :mod:`.config` - every setting (:class:`TigerConfig`);
- :mod:`.layout` - item codes and users as model token ids;
- :mod:`.model` - the T5 with a block-causal item encoder, the training loss;
- :mod:`.batches` - packed windows (one encoder pass supervises all next items
  of a user), the hybrid recipe (packed, plus a bidirectional pass for each
  user's latest item) or TIGER's one-example-per-prefix recipe;
- :mod:`.train` - early stopping, checkpoints, resume, data parallelism;
- :mod:`.checkpoint` - weights and optimizer state in a run directory;
- :mod:`.recommender` - a trained run as a :class:`semid.evaluation.Recommender`;
- :mod:`.diagnostics` - does the model condition on the history? (per-position
  NLL vs code tables, distinct@10, swap test, zeroed-encoder KL, encoder cosine,
  weight growth; ``semid diagnose tiger``);
- :mod:`.health` - the distinct-items count and collapse floor used by training.

torch and transformers load with these submodules, not with :mod:`semid`.
"""

from .config import TigerConfig
from .layout import TokenLayout
from .recommender import TigerRecommender, load_tiger
from .train import train_tiger

__all__ = ["TigerConfig", "TigerRecommender", "TokenLayout", "load_tiger", "train_tiger"]
