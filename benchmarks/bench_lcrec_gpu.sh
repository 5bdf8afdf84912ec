#!/usr/bin/env bash
# LC-Rec at paper scale on GPUs (not run in this project so far: no GPU was available).
#
# Settings follow the LC-Rec paper (Zheng et al., ICDE 2024) and its public LoRA scripts, as
# far as semid exposes them:
#   - index: RQ-VAE, 4 levels x 256 codes, code dim 32 (the paper adds uniform semantic
#     mapping on the last level; semid's `rqvae` resolves collisions with an extra level);
#   - backbone: a LLaMA-7B-class causal LM (give its local folder as BASE_MODEL), bfloat16;
#   - LoRA r=8, alpha=32, dropout 0.05 on q,k,v,o,gate,up,down projections, plus the new
#     code-token rows of the embedding/output layers (the public scripts train the whole
#     embed_tokens and lm_head via modules_to_save; semid trains only the added rows);
#   - tasks seqrec,item2index,index2item,fusionseqrec,itemsearch,preferenceobtain, plus
#     semid's `text` task against forgetting (drop it to match the paper exactly);
#   - histories of at most 20 items separated by ", ", loss on responses only;
#   - lr 1e-4, 4 epochs, batch 8 per GPU x 2 accumulation x 8 GPUs = 128, weight decay 0.01;
#   - evaluation: leave-one-out, full ranking, constrained beam search with 20 beams.
# ANCHORS.md: LC-Rec (as reported in LETTER) R@10 0.0642, N@10 0.0374 on Beauty.
#
# Usage: BASE_MODEL=/models/llama-7b NPROC=8 bash benchmarks/bench_lcrec_gpu.sh
set -euo pipefail

BASE_MODEL=${BASE_MODEL:?set BASE_MODEL to a local causal LM folder (e.g. LLaMA-7B)}
NPROC=${NPROC:-8}
DATA=${DATA:-cache/data/beauty}
WORK=${WORK:-cache/lcrec_gpu}
SEMID=${SEMID:-$(command -v semid)}
TORCHRUN=${TORCHRUN:-$(command -v torchrun)}
mkdir -p "$WORK"

if [ ! -f "$WORK/emb.npz" ]; then
  "$SEMID" embed --data "$DATA" --out "$WORK/emb.npz" --fields title,price,brand,categories
fi
if [ ! -d "$WORK/index_rqvae4x256" ]; then
  "$SEMID" build-index --scheme rqvae --data "$DATA" --embeddings "$WORK/emb.npz" \
    --set n_levels=4 --set codebook_size=256 --set code_dim=32 --seed 0 --out "$WORK/index_rqvae4x256"
fi

RESUME=()
[ -f "$WORK/run/run.json" ] && RESUME=(--resume)
"$TORCHRUN" --nproc_per_node "$NPROC" "$SEMID" train lcrec \
  --data "$DATA" --index "$WORK/index_rqvae4x256" --out "$WORK/run" --base-model "$BASE_MODEL" \
  --tasks seqrec,item2index,index2item,fusionseqrec,itemsearch,preferenceobtain,text \
  --method lora --lora-r 8 --lora-alpha 32 --dtype bfloat16 \
  --epochs 4 --batch-size 16 --grad-accum 2 --lr 1e-4 --weight-decay 0.01 \
  --max-length 512 --num-beams 20 --checkpoint-minutes 30 --seed 0 "${RESUME[@]}"

"$SEMID" evaluate "$WORK/run" --data "$DATA" --beams 20 --k 5,10,20 --device cuda | tee "$WORK/eval_test.json"
"$SEMID" evaluate "$WORK/run" --data "$DATA" --beams 20 --k 5,10,20 --device cuda --decoding d3 \
  --assistant popularity | tee "$WORK/eval_test_d3.json"
