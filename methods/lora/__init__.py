"""The LoRA family shared by LoRA-MCL and its baselines.

Reading order, the idea first:

1. :mod:`methods.lora.model`: the reference core — K routed LoRA adapters on a frozen
   ``transformers`` model (``MultiLoRAModel``): the router, the multi-LoRA linear (a masked
   product), ``forward_hypotheses`` (one batched forward for all K), the per-sequence NLL
   from the full logits, ``generate_hypotheses``;
2. :mod:`methods.lora_mcl`: the winner-takes-all losses (WTA, relaxed, annealed) and the
   LoRA-MCL method, one candidate per hypothesis;
3. :mod:`methods.lora.trainer`: the resumable, deterministic adapter trainer;
4. :mod:`methods.lora.base`: ``LoRAMethod``, the method base (settings, training, loading,
   decoding helpers, costs, memory footprint) each LoRA plugin builds on;
5. :mod:`methods.lora.fast`: the fast paths the methods run with (``FastMultiLoRAModel``:
   block routing, the encoder once, the NLL through the head at target positions only,
   :mod:`methods.lora.head_nll`), each tested equal to the core;
6. :mod:`methods.lora.sampling`: the batched, per-row seeded sampler of nucleus, top-k,
   temperature and MoE-LoRA sampling (``SamplingMethod``, ``sample_per_input``, ``input_seed``).

No plugin is registered here; every method imports what it needs from these modules.
"""
