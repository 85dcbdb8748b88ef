"""Device, precision and memory: --device, task.dtype, quantised bases, gradient
checkpointing and the decode batch that halves on out-of-memory."""

import copy
import logging

import pytest
import torch
import transformers as T

from harness.config import RunSpec
from harness.devices import DeviceError, device_key, in_batches, resolve_device
from methods.lora.fast import FastMultiLoRAModel
from methods.lora.model import MultiLoRAConfig
from methods.lora.trainer import TrainSettings, train_adapters
from methods.lora_mcl import wta_loss
from tasks._pretrained import PretrainedConfig, check_quantization


def tiny_llama(dtype=torch.float32):
    torch.manual_seed(0)
    return T.LlamaForCausalLM(T.LlamaConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32,
        bos_token_id=1, eos_token_id=2, pad_token_id=0)).to(dtype)


def test_auto_is_the_cpu_without_cuda_and_a_missing_device_is_one_line():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert resolve_device("auto") == "cpu"
    assert device_key("cpu") == {} and device_key("cuda:1") == {"device": "cuda"}
    for bad, says in [("cuda", "no CUDA device"), ("cuda:3", "no CUDA device"), ("tpu", "expected auto")]:
        with pytest.raises(DeviceError, match=says) as err:
            resolve_device(bad)
        assert "\n" not in str(err.value)


def test_the_device_is_in_the_keys_only_off_the_cpu(monkeypatch):
    from harness.plan import resolve
    from harness.runner import Runner

    spec = RunSpec(tasks={"markov": {}}, methods={"lora_mcl": {}})
    cell = resolve(spec)[0]
    cpu = Runner(spec, tracking=False).keys(cell)
    runner = Runner(spec, tracking=False)
    runner.device = "cuda"  # as if resolved on a GPU machine
    gpu = runner.keys(cell)
    assert cpu["backbone"] == gpu["backbone"]
    assert cpu["train"] != gpu["train"] and cpu["decode"] != gpu["decode"]


def test_dtype_and_quantisation_enter_the_backbone_key():
    from harness.registry import get_task

    task = get_task("translation")
    default = task(task.Config()).backbone_spec(0)
    bf16 = task(task.Config(dtype="bfloat16")).backbone_spec(0)
    assert "loading" not in default and bf16["loading"] == {"dtype": "bfloat16"}


def test_quantisation_without_bitsandbytes_or_cuda_is_a_one_line_error():
    from harness.registry import get_task

    with pytest.raises(ValueError, match="not both"):
        get_task("translation").Config(load_in_4bit=True, load_in_8bit=True).validate()
    for flag in ("load_in_4bit", "load_in_8bit"):
        with pytest.raises(ValueError, match=f"{flag}.*(bitsandbytes|CUDA)") as err:
            check_quantization(PretrainedConfig(**{flag: True}))
        assert "\n" not in str(err.value)


def test_quantisation_error_through_the_cli(capsys):
    from harness.cli import main

    code = main(["run", "--tasks", "translation", "--methods", "lora_mcl", "--set",
                 "task.load_in_4bit=true", "--no-tracking"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "load_in_4bit" in err[0]


def test_bf16_base_trains_fp32_adapters():
    model = FastMultiLoRAModel(tiny_llama(torch.bfloat16), MultiLoRAConfig(3, 2, 4.0, 0.0, "all-linear"))
    adapters = [p for n, p in model.named_parameters() if "lora_" in n]
    assert all(p.dtype == torch.float32 for p in adapters)
    ids = torch.randint(3, 32, (4, 6), generator=torch.Generator().manual_seed(0))
    nll = model.sequence_nll({"input_ids": ids, "labels": ids})
    assert nll.shape == (3, 4) and torch.isfinite(nll).all()
    wta_loss(nll).backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in adapters)
    out = model.generate_hypotheses({"input_ids": ids[:, :3]}, max_new_tokens=3, do_sample=False,
                                    pad_token_id=0)
    assert out.shape == (3, 4, 6)


@pytest.mark.parametrize("name", ["whisper", "vision_gpt2", "t5"])
def test_a_bf16_base_takes_fp32_features(name):
    """The tasks hand over fp32 audio features and pixels; Whisper's first convolution does
    not cast them itself, so the adapted model gives them the base's dtype."""
    from tests.test_architectures import ARCHS, forward_inputs

    factory, patterns = ARCHS[name]
    torch.manual_seed(0)
    model = FastMultiLoRAModel(factory().to(torch.bfloat16), MultiLoRAConfig(3, 2, 4.0, 0.0, patterns))
    batch = forward_inputs(name, model)
    assert torch.isfinite(model.forward_hypotheses(**batch).float()).all()
    batch.pop("decoder_input_ids", None)
    out = model.generate_hypotheses(batch, max_new_tokens=3, do_sample=False, pad_token_id=0)
    assert out.shape[:2] == (3, 2)


class _ViewOfOutput(torch.autograd.Function):
    """Returns a view of its input, as bitsandbytes' LLM.int8() matmul does."""

    @staticmethod
    def forward(ctx, out):
        return out.view(out.shape)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _QuantisedLikeLinear(torch.nn.Linear):
    def forward(self, x):
        return _ViewOfOutput.apply(super().forward(x))


def test_a_layer_whose_output_is_a_custom_function_view_trains():
    """Adding the update in place to such an output is an autograd error (seen with
    load_in_8bit on a GPU); the adapted layer adds it out of place there."""
    base = tiny_llama()
    for name, module in list(base.named_modules()):
        if isinstance(module, torch.nn.Linear) and name != "lm_head":
            swapped = _QuantisedLikeLinear(module.in_features, module.out_features, module.bias is not None)
            swapped.load_state_dict(module.state_dict())
            base.set_submodule(name, swapped)
    model = FastMultiLoRAModel(base, MultiLoRAConfig(3, 2, 4.0, 0.0, "all-linear"))
    ids = torch.randint(3, 32, (4, 6), generator=torch.Generator().manual_seed(0))
    wta_loss(model.sequence_nll({"input_ids": ids, "labels": ids})).backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if "lora_A" in n)


class _Pairs:
    def __init__(self, ids):
        self.ids = ids

    def __len__(self):
        return len(self.ids)

    def batch(self, indices):
        return {"input_ids": self.ids[indices], "labels": self.ids[indices]}


def test_gradient_checkpointing_changes_memory_not_numbers(tmp_path):
    ids = torch.randint(3, 32, (8, 6), generator=torch.Generator().manual_seed(0))
    settings = TrainSettings(steps=3, batch_size=4, lr=1e-2)
    trained = []
    for checkpointing in (False, True):
        base = tiny_llama()
        if checkpointing:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        torch.manual_seed(0)
        model = FastMultiLoRAModel(base, MultiLoRAConfig(2, 2, 4.0, 0.0, ["q_proj", "v_proj"]))
        history = train_adapters(model, _Pairs(ids), settings, lambda nll, step: wta_loss(nll), 0,
                                 tmp_path / str(checkpointing))
        trained.append((history["loss"], model.adapter_state_dict()))
    (loss_a, state_a), (loss_b, state_b) = trained
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    assert all(torch.allclose(state_a[n], state_b[n], atol=1e-6) for n in state_a)


def test_decode_batches_halve_on_out_of_memory_and_give_the_same_answer(caplog):
    calls = []

    def work(batch):  # a device that fits two inputs at a time
        calls.append(len(batch))
        if len(batch) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in batch]

    with caplog.at_level(logging.WARNING, logger="harness.devices"):
        out = in_batches(list(range(7)), 8, work, "decode test")
    assert out == [x * 10 for x in range(7)]
    assert calls == [7, 4, 2, 2, 2, 1]  # 8 -> 4 -> 2, then batches of 2
    assert "retrying with batches of 2" in caplog.text


def test_out_of_memory_at_one_input_is_a_one_line_error():
    def work(batch):
        raise RuntimeError("CUDA error: out of memory")

    with pytest.raises(DeviceError, match="out of memory with a single input") as err:
        in_batches([1, 2], 1, work, "decode x")
    assert "\n" not in str(err.value)


def test_other_errors_are_not_retried():
    def work(batch):
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        in_batches([1, 2, 3], 2, work, "decode x")


def test_lora_decode_moves_prompts_to_the_model_device_and_backs_off(monkeypatch):
    """LoRAMethod.decode goes through in_batches: a simulated OOM on 4 rows still decodes all."""
    from harness.registry import get_method

    method_cls = get_method("lora_mcl")
    method = method_cls(method_cls.Config(num_hypotheses=2, decode_batch_size=4))
    cfg = MultiLoRAConfig(2, 2, 4.0, 0.0, ["q_proj"])
    model = FastMultiLoRAModel(copy.deepcopy(tiny_llama()), cfg).eval()

    class Task:
        def prompt_batch(self, chunk):
            return {"input_ids": torch.tensor([[3 + c, 4] for c in chunk])}

        def generation_kwargs(self):
            return {"max_new_tokens": 2, "pad_token_id": 0}

        def decode_outputs(self, prompt, seqs):
            return [" ".join(map(str, s.tolist())) for s in seqs]

    real = method.decode_batch

    def fragile(model, task, examples, prompt, seed):
        if len(examples) > 2:
            raise torch.OutOfMemoryError("out of memory")
        return real(model, task, examples, prompt, seed)

    monkeypatch.setattr(method, "decode_batch", fragile)
    backed_off = method.decode(model, Task(), list(range(5)), 0)
    monkeypatch.setattr(method, "decode_batch", real)
    method.config.decode_batch_size = 1
    assert backed_off == method.decode(model, Task(), list(range(5)), 0)
