"""The LoRA family shared by LoRA-MCL and its baselines.

- :mod:`methods.lora.model`: K routed LoRA adapters on a frozen ``transformers`` model
  (``MultiLoRAModel``), one batched forward for all of them;
- :mod:`methods.lora.trainer`: the resumable, deterministic adapter trainer;
- :mod:`methods.lora.base`: ``LoRAMethod``, the method base (settings, training, loading,
  decoding helpers, costs, memory footprint) each LoRA plugin builds on;
- :mod:`methods.lora.sampling`: the batched, per-row seeded sampler of nucleus, top-k,
  temperature and MoE-LoRA sampling (``SamplingMethod``, ``sample_per_input``, ``input_seed``).

No plugin is registered here; every method imports what it needs from these modules.
"""
