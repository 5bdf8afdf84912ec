#!/usr/bin/env bash
# The tuned LLM methods at their papers' scale: a 7B-class causal LM on one GPU.
# Not run in this project so far (no GPU was available); every command below is the
# one semid runs on a CPU with SmolLM2, with the papers' model, precision and sizes.
#
#   TALLRec (Bao et al., RecSys 2023): LLaMA-7B, LoRA r 8 / alpha 16 / dropout 0.05 on
#     q_proj, v_proj, lr 1e-4, 128 samples per step (micro-batch 32 as the reference, which
#     loaded LLaMA in 8 bits; its memory in bfloat16 is not measured here, so the decoder's
#     activations are recomputed in the backward pass (activation_checkpointing, the same
#     gradients); lower micro_batch if it still does not fit, the step is the same), up to 200
#     epochs, early stopping on validation AUC; 16 / 64 / 256 shots.
#     Paper, MovieLens-100K AUC 67.24 / 67.48 / 71.98.
#   S-DPO (Chen et al., NeurIPS 2024): LLaMA-2-7B, SFT then softmax DPO with K = 3
#     negatives, beta 1, lr 1e-5 for both stages as the reference (semid's CPU default
#     raises SFT to 1e-4 for a 135M model).
#   LLaRA (Liao et al., SIGIR 2024): LLaMA-2-7B, SASRec embeddings through a 2-layer
#     projector, curriculum, LoRA r 8, lr 8e-4 warm-up + cosine, 2 epochs (MovieLens).
#     Paper, MovieLens ValidRatio / HR@1 0.9789 / 0.4526.
#   InstructRec (Zhang et al., 2023): Flan-T5-XL in the paper (3B, not a causal LM; any
#     local causal LM of that size stands in), LoRA r 8, lr 3e-4, reranking of 20.
#
# Usage (from a clone, after `bash scripts/setup.sh`):
#   BASE_MODEL=/models/llama-2-7b ML100K=cache/data/ml100k bash benchmarks/bench_llm_gpu.sh
# where ML100K is `semid data import --format movielens` of MovieLens-100K and a SASRec
# run on it is trained first (below). Each command resumes with --resume.
set -euo pipefail

BASE_MODEL=${BASE_MODEL:?set BASE_MODEL to a local causal LM folder (e.g. LLaMA-2-7B)}
ML100K=${ML100K:?set ML100K to an imported MovieLens-100K directory}
DEVICE=${DEVICE:-cuda}
WORK=${WORK:-cache/llm_gpu}
SEMID=${SEMID:-$(command -v semid)}
mkdir -p "$WORK"
GPU=(--set device="$DEVICE" --set dtype=bfloat16)
# S-DPO reuses each prompt's KV cache for its K + 1 answers, which checkpointing turns off: not for sdpo.
LOW_MEMORY=(--set activation_checkpointing=true)

for shots in 16 64 256; do
  "$SEMID" train tallrec --data "$ML100K" --out "$WORK/tallrec-$shots" --llm "$BASE_MODEL" --samples "$shots" \
    "${GPU[@]}" "${LOW_MEMORY[@]}" --set micro_batch=32 --set max_epochs=200 --set patience=10 \
    > "$WORK/tallrec-$shots.json"
done

"$SEMID" train sdpo --data "$ML100K" --out "$WORK/sdpo" --llm "$BASE_MODEL" --negatives 3 "${GPU[@]}" \
  --set domain=movie --set sft_lr=1e-5 --set sdpo_lr=1e-5 --set test_users=943 > "$WORK/sdpo.json"

[ -d "$WORK/sasrec" ] || "$SEMID" cf train sasrec --data "$ML100K" --out "$WORK/sasrec"
"$SEMID" train llara --data "$ML100K" --out "$WORK/llara" --cf-run "$WORK/sasrec" --llm "$BASE_MODEL" \
  "${GPU[@]}" "${LOW_MEMORY[@]}" --set test_users=943 > "$WORK/llara.json"

"$SEMID" train instructrec --data "$ML100K" --out "$WORK/instructrec" --llm "$BASE_MODEL" "${GPU[@]}" \
  "${LOW_MEMORY[@]}" --set test_users=943 > "$WORK/instructrec.json"

echo "summaries in $WORK/*.json"
