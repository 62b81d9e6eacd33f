# The quick start: pre-train a small Qwen3-shaped model from scratch on Tiny Shakespeare, then
# LoRA-fine-tune it on an Alpaca sample, then generate from it — all on the CPU, on bundled data.
#
#   make quickstart                     (from the top folder; QS_PT_STEPS / QS_SFT_STEPS to resize)
#
# Every step is a plain sw command reading and writing files, so each is also a recipe to copy.
# The two sw-train runs pass --add_version false so that their checkpoints have fixed paths that
# make can name (by default each sw-train run writes into its own output_dir/vN-YYYYMMDD-HHMMSS/);
# each recipe removes its folder first, so a re-run starts clean. The steps run in their
# numbered order, also under make -j (the order-only prerequisite of step 3).

QS        ?= out/quickstart
QS_TOK    := data/tokenizers/demo-bpe2k
QS_CONFIG := pipelines/configs/demo-qwen3-4m.json
QS_PT_STEPS  ?= 300
QS_SFT_STEPS ?= 120
QS_PT     := $(QS)/pretrain/checkpoint-$(QS_PT_STEPS)
QS_SFT    := $(QS)/sft-lora/checkpoint-$(QS_SFT_STEPS)

.PHONY: quickstart quickstart-clean

$(QS)/pt-train.sws: $(BIN)/sw-pack data/tinyshakespeare/tinyshakespeare.jsonl.gz
	@mkdir -p $(QS)
	@echo "== 1/5 pack Tiny Shakespeare for pre-training (text rows, packed to 256 tokens)"
	$(BIN)/sw-pack --tokenizer $(QS_TOK) --dataset data/tinyshakespeare/tinyshakespeare.jsonl.gz \
	    --packing true --max_length 256 --per_device_train_batch_size 8 --split_dataset_ratio 0.05 \
	    --output $@ --val_output $(QS)/pt-val.sws

$(QS_PT)/config.json: $(QS)/pt-train.sws $(BIN)/sw-train $(QS_CONFIG)
	@echo "== 2/5 pre-train a 3.7M-parameter Qwen3-shaped model from scratch ($(QS_PT_STEPS) steps of 8x256 tokens)"
	rm -rf $(QS)/pretrain
	$(BIN)/sw-train --init_from_config $(QS_CONFIG) --tuner_type full \
	    --dataset $(QS)/pt-train.sws --val_dataset $(QS)/pt-val.sws \
	    --max_steps $(QS_PT_STEPS) --learning_rate 3e-3 --warmup_steps 10 --weight_decay 0.1 \
	    --logging_steps 20 --eval_steps 100 --save_steps $(QS_PT_STEPS) \
	    --add_version false --output_dir $(QS)/pretrain
	scripts/show-metrics.sh $(QS)/pretrain

$(QS)/sft-train.sws: $(BIN)/sw-pack data/alpaca_en/alpaca_sample.jsonl.gz | $(QS_PT)/config.json
	@mkdir -p $(QS)
	@echo "== 3/5 pack the Alpaca sample with the ChatML template (loss on the answers only)"
	$(BIN)/sw-pack --tokenizer $(QS_TOK) --dataset data/alpaca_en/alpaca_sample.jsonl.gz \
	    --packing true --max_length 256 --per_device_train_batch_size 8 --split_dataset_ratio 0.05 \
	    --system "" --output $@ --val_output $(QS)/sft-val.sws

$(QS_SFT)/adapter_config.json: $(QS_PT)/config.json $(QS)/sft-train.sws
	@echo "== 4/5 LoRA SFT on top of the pre-trained model (rank 16, all linear layers, $(QS_SFT_STEPS) steps)"
	rm -rf $(QS)/sft-lora
	$(BIN)/sw-train --model $(QS_PT) --tuner_type lora --lora_rank 16 --lora_alpha 32 \
	    --target_modules all-linear --dataset $(QS)/sft-train.sws --val_dataset $(QS)/sft-val.sws \
	    --max_steps $(QS_SFT_STEPS) --learning_rate 3e-3 --warmup_steps 5 \
	    --logging_steps 20 --eval_steps 40 --save_steps $(QS_SFT_STEPS) \
	    --add_version false --output_dir $(QS)/sft-lora
	scripts/show-metrics.sh $(QS)/sft-lora

quickstart: all $(QS_SFT)/adapter_config.json
	@echo "== 5/5 generate with the pre-trained model, then with the LoRA adapter"
	@echo "   What to expect: a 3.7M-parameter model trained for a few minutes on a CPU writes"
	@echo "   Shakespeare-shaped text (speaker names, line breaks, archaic words) that does not make"
	@echo "   sense, and after the LoRA step answers in the shape of an Alpaca reply (a list or a few"
	@echo "   sentences of English) that is not a correct answer. The pipeline, not the model, is"
	@echo "   the point: the same commands train a real model (docs/train.md)."
	$(BIN)/sw-eval generate --model $(QS_PT) --prompt "ROMEO:" --max_new_tokens 64 --seed 1 \
	    --temperature 0.8 --top_k 40 --repetition_penalty 1.1
	$(BIN)/sw-eval generate --model $(QS_PT) --adapter $(QS_SFT) --system "" \
	    --query "Give three tips for staying healthy." --max_new_tokens 64 --seed 1 \
	    --temperature 0.7 --top_k 40 --repetition_penalty 1.3
	@echo
	@echo "outputs:"
	@echo "  streams              $(QS)/*.sws  (inspect: $(BIN)/sw-pack cat FILE | head)"
	@echo "  pre-trained model    $(QS_PT)  (HF folder: $(BIN)/sw-quant inspect $(QS_PT))"
	@echo "  LoRA adapter (PEFT)  $(QS_SFT)"
	@echo "  metrics              $(QS)/pretrain/logging.jsonl $(QS)/sft-lora/logging.jsonl"
	@echo "  curves (SVG)         $(QS)/pretrain/images/ $(QS)/sft-lora/images/"
	@echo "  TensorBoard          tensorboard --logdir $(QS)"

quickstart-clean:
	rm -rf $(QS)
