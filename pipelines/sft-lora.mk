# LoRA SFT with a before/after evaluation, on the CPU, on bundled data (docs/pipelines.md):
#
#   base-data -> base            pre-train the 3.7M-parameter demo model on Tiny Shakespeare
#                                (skipped with BASE=DIR: any Llama/Qwen2/Qwen3 HF folder)
#   sft-data  -> sft -> merged   pack the Alpaca sample (ChatML), LoRA SFT, merge the adapter
#   gguf                         the merged model as a GGUF file for llama.cpp (GGUF_TYPE=q8_0)
#   eval-base, eval-adapter, eval-merged
#                                perplexity on 50 held-out Alpaca answers (records 2000-2049,
#                                pipelines/data/alpaca-heldout) before, with the adapter, merged
#   report.md, report.csv        the comparison table (scripts/sw-report)
#
#   make sft-lora [OUT=out/sft-lora] [BASE=DIR] [-jN]      (from the top folder)
#   make -f pipelines/sft-lora.mk [OUT=...]                 (anywhere, with the tools built)
#   make sft-lora-sweep [-j4] [SWEEP_LRS="1e-4 3e-4"] [SWEEP_RANKS="8 16"] [SWEEP_WORKERS=2]
#                                a learning rate x LoRA rank grid over the same data and base,
#                                each point evaluated over the eval farm; OUT/sweep/report.md
#   make serve-sft-lora-server   serve the merged model (sw-serve, port SERVE_PORT=8000)
#
# Any tool option of any stage can be changed on the command line, e.g. `sft.lora_rank=32` or
# `base.max_steps=50`; only the stages below the change run again. OUT/<stage>/run.json records
# each run.

SFT_LORA_MK := $(lastword $(MAKEFILE_LIST))
include $(dir $(SFT_LORA_MK))sw.mk

SFT_LORA_GOALS := sft-lora sft-lora-sweep sft-lora-clean serve-sft-lora-server serve-sft-lora-server-start serve-sft-lora-server-stop
ifneq ($(filter $(SFT_LORA_GOALS),$(MAKECMDGOALS))$(if $(MAKECMDGOALS),,$(filter $(SFT_LORA_MK),$(firstword $(MAKEFILE_LIST)))),)

sft_lora__saved_out := $(SW_OUT)
SW_OUT := $(or $(OUT),out/sft-lora)
SFT_LORA_OUT := $(SW_OUT)

SFT_TOKENIZER ?= $(call sw_path,data/tokenizers/demo-bpe2k)
BASE_CONFIG   ?= $(call sw_path,pipelines/configs/demo-qwen3-4m.json)
BASE_STEPS    ?= 200
SFT_STEPS     ?= 100
SWEEP_LRS     ?= 1e-3 3e-3
SWEEP_RANKS   ?= 8 16
SWEEP_WORKERS ?= 2
SERVE_PORT    ?= 8000
GGUF_TYPE     ?= q8_0

ifeq ($(BASE),)
base-data.tokenizer := $(SFT_TOKENIZER)
base-data.dataset := $(call sw_path,data/tinyshakespeare/tinyshakespeare.jsonl.gz)
base-data.packing := true
base-data.max_length := 256
base-data.per_device_train_batch_size := 8
base-data.split_dataset_ratio := 0.05
$(call sw_pack,base-data)

base.init_from_config := $(BASE_CONFIG)
base.tuner_type := full
base.dataset := @base-data
base.val_dataset := @base-data:val
base.max_steps = $(BASE_STEPS)
base.learning_rate := 3e-3
base.warmup_steps := 10
base.weight_decay := 0.1
base.logging_steps := 20
base.eval_steps = $(base.max_steps)
base.save_steps = $(base.max_steps)
$(call sw_train,base)
sft_lora__base := @base
else
sft_lora__base := $(BASE)
endif

sft-data.tokenizer := $(if $(BASE),$(BASE),$(SFT_TOKENIZER))
sft-data.dataset := $(call sw_path,data/alpaca_en/alpaca_sample.jsonl.gz)
sft-data.system :=
sft-data.packing := true
sft-data.max_length := 256
sft-data.per_device_train_batch_size := 8
sft-data.split_dataset_ratio := 0.05
$(call sw_pack,sft-data)

sft.model := $(sft_lora__base)
sft.tuner_type := lora
sft.lora_rank := 16
sft.lora_alpha := 32
sft.target_modules := all-linear
sft.dataset := @sft-data
sft.val_dataset := @sft-data:val
sft.max_steps = $(SFT_STEPS)
sft.learning_rate := 3e-3
sft.warmup_steps := 5
sft.logging_steps := 10
sft.eval_steps = $(sft.max_steps)
sft.save_steps = $(sft.max_steps)
$(call sw_train,sft)

merged.model := $(sft_lora__base)
merged.adapter := @sft
$(call sw_merge,merged)

gguf.model := @merged
gguf.quant_type := $(GGUF_TYPE)
$(call sw_gguf,gguf)

# One evaluation template, three models: before, with the adapter, merged (the last two agree).
heldout.eval_dataset := ppl
heldout.dataset_dir := $(call sw_path,pipelines/data/alpaca-heldout)
eval-base.model := $(sft_lora__base)
$(call sw_eval,eval-base,heldout)
eval-adapter.model := $(sft_lora__base)
eval-adapter.adapters := @sft
$(call sw_eval,eval-adapter,heldout)
eval-merged.model := @merged
$(call sw_eval,eval-merged,heldout)

sft_lora__rows := $(if $(BASE),,base) sft eval-base eval-adapter eval-merged
$(call sw_report,$(SW_OUT)/report,$(call sw_dirs,$(sft_lora__rows)),$(sft_lora__rows))

.PHONY: sft-lora sft-lora-sweep sft-lora-clean
sft-lora: $(SW_OUT)/report.md $(SW_STAMP.gguf)
	@echo
	@echo "outputs: $(SFT_LORA_OUT)/<stage>/ (run.json in each), $(SFT_LORA_OUT)/report.md, $(SFT_LORA_OUT)/report.csv"
	@echo "merged model: $(SW_DIR.merged)/model   adapter: $$($(SW_STAGE) artifact $(SW_DIR.sft))   GGUF: $(SW_DIR.gguf)/model.gguf"

# The sweep: one sft and one eval stage per (learning rate, rank), inheriting everything else from
# the sft and heldout templates above; the evaluations fan out over sw-eval's ZeroMQ farm.
define sft_lora__point
sweep/lr$1-r$2/sft.learning_rate := $1
sweep/lr$1-r$2/sft.lora_rank := $2
sweep/lr$1-r$2/sft.lora_alpha := $(shell echo $$((2 * $2)))
$$(call sw_train,sweep/lr$1-r$2/sft,sft)
sweep/lr$1-r$2/eval.model := $(sft_lora__base)
sweep/lr$1-r$2/eval.adapters := @sweep/lr$1-r$2/sft
sweep/lr$1-r$2/eval.WORKERS := $(SWEEP_WORKERS)
$$(call sw_eval,sweep/lr$1-r$2/eval,heldout)
endef
sft_lora__points := $(foreach lr,$(SWEEP_LRS),$(foreach r,$(SWEEP_RANKS),lr$(lr)-r$(r)))
$(foreach lr,$(SWEEP_LRS),$(foreach r,$(SWEEP_RANKS),$(eval $(call sft_lora__point,$(lr),$(r)))))
$(call sw_report,$(SW_OUT)/sweep/report,$(addprefix $(SW_OUT)/sweep/,$(sft_lora__points)),$(foreach p,$(sft_lora__points),sweep/$p/sft sweep/$p/eval))

sft-lora-sweep: $(SW_OUT)/sweep/report.md

sft-lora-server.model := @merged
sft-lora-server.port := $(SERVE_PORT)
$(call sw_serve,sft-lora-server)

sft-lora-clean:
	rm -rf $(SFT_LORA_OUT)

ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := sft-lora
endif
SW_OUT := $(sft_lora__saved_out)
endif
