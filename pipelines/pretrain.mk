# Pre-training from scratch and perplexity, on the CPU, on bundled data (docs/pipelines.md):
#
#   pt-split                     Tiny Shakespeare split into training rows and held-out speeches
#                                (every 50th, 144 of 7,222), by a plain shell command (sw_cmd)
#   pt-data                      pack the training rows (text, 256-token sequences, 5% validation)
#   pt                           pre-train the 3.7M-parameter demo model for PT_STEPS steps
#   pt-ppl                       its perplexity on the held-out speeches (sw-eval bench ppl; an
#                                untrained model scores about the vocabulary size, 2048)
#   report.md, report.csv        the comparison table
#
#   make pretrain [OUT=out/pretrain] [PT_STEPS=300] [PT_CONFIG=config.json]   (top folder)
#   make -f pipelines/pretrain.mk [OUT=...]
#
# Any tool option can be changed on the command line (`pt.learning_rate=1e-3`, `pt-data.max_length=512`);
# only the stages below the change run again.

PRETRAIN_MK := $(lastword $(MAKEFILE_LIST))
include $(dir $(PRETRAIN_MK))sw.mk

PRETRAIN_GOALS := pretrain pretrain-clean
ifneq ($(filter $(PRETRAIN_GOALS),$(MAKECMDGOALS))$(if $(MAKECMDGOALS),,$(filter $(PRETRAIN_MK),$(firstword $(MAKEFILE_LIST)))),)

pretrain__saved_out := $(SW_OUT)
SW_OUT := $(or $(OUT),out/pretrain)
PRETRAIN_OUT := $(SW_OUT)

PT_TOKENIZER ?= $(call sw_path,data/tokenizers/demo-bpe2k)
PT_CONFIG    ?= $(call sw_path,pipelines/configs/demo-qwen3-4m.json)
PT_STEPS     ?= 300
PT_HELDOUT_EVERY ?= 50

pt-split.INPUTS := $(call sw_path,data/tinyshakespeare/tinyshakespeare.jsonl.gz)
pt-split.COMMAND := mkdir -p "$$OUT/heldout"; gzip -dc "$$1" | awk -v out="$$OUT" -v n=$(PT_HELDOUT_EVERY) \
    'NR % n == 0 { print > (out "/heldout/shakespeare.jsonl"); next } { print > (out "/train.jsonl") }'
pt-split.ARTIFACTS := train.jsonl heldout
$(call sw_cmd,pt-split)

pt-data.tokenizer := $(PT_TOKENIZER)
pt-data.dataset := @pt-split
pt-data.packing := true
pt-data.max_length := 256
pt-data.per_device_train_batch_size := 8
pt-data.split_dataset_ratio := 0.05
$(call sw_pack,pt-data)

pt.init_from_config := $(PT_CONFIG)
pt.tuner_type := full
pt.dataset := @pt-data
pt.val_dataset := @pt-data:val
pt.max_steps = $(PT_STEPS)
pt.learning_rate := 3e-3
pt.warmup_steps := 10
pt.weight_decay := 0.1
pt.logging_steps := 20
pt.eval_steps := 100
pt.save_steps = $(pt.max_steps)
$(call sw_train,pt)

pt-ppl.model := @pt
pt-ppl.eval_dataset := ppl
pt-ppl.dataset_dir := @pt-split:heldout
$(call sw_eval,pt-ppl)
$(call sw_report,$(SW_OUT)/report,$(call sw_dirs,pt-data pt pt-ppl),pt-data pt pt-ppl)

.PHONY: pretrain pretrain-clean
pretrain: $(SW_OUT)/report.md
	@echo
	@echo "outputs: $(PRETRAIN_OUT)/<stage>/ (run.json in each), $(PRETRAIN_OUT)/report.md, $(PRETRAIN_OUT)/report.csv"
	@echo "model: $$($(SW_STAGE) artifact $(SW_DIR.pt))"

pretrain-clean:
	rm -rf $(PRETRAIN_OUT)

ifeq ($(.DEFAULT_GOAL),)
.DEFAULT_GOAL := pretrain
endif
SW_OUT := $(pretrain__saved_out)
endif
