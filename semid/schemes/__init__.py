"""Built-in schemes; importing this package registers them all.

Classic schemes follow "How to Index Item IDs for Recommendation Foundation
Models" (Hua et al., SIGIR-AP 2023); learned quantizers follow TIGER, LETTER
and LC-Rec. Learned schemes import torch only inside ``fit``.
"""

from . import category, collaborative, imported, independent, random_ids, sequential, title  # noqa: F401
from . import pq, rqkmeans, rqvae, usm  # noqa: F401
from . import letter  # noqa: F401

__all__: list[str] = []
